"""Training sets: ``build_dataset`` throughput, conditioning against gwpy, lazy window reads.

By default simulates a 256 s scenario (the default families, no decoys) into a temporary
directory, then in the same run:

1. builds a time-series dataset from it (``gwtwin.dataset.build_dataset``, default config) and
   reports windows/s and the multiple of real time (strain triggers included);
2. conditions the whole span of strain and witnesses with ``gwtwin.signal.conditioning`` and
   with gwpy (``TimeSeries.resample`` to 1024 Hz, then ``TimeSeries.whiten`` with the same ASD,
   ``fduration`` and high-pass; witnesses resampled), best of 3, and prints the time ratio;
3. reads every training window through ``WindowDataset`` + ``DataLoader`` (batch 32, lazy, one
   HDF5 chunk per window) and, as the reference, with one contiguous h5py read into memory.

    python benchmarks/bench_dataset.py
    python benchmarks/bench_dataset.py --source /tmp/sim --selected sel.json --keep out.h5
    python benchmarks/bench_dataset.py --source /tmp/sim --dataset out.h5   # no rebuild

Prints one line per measurement and the ratios.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader

from gwtwin.data import read
from gwtwin.dataset import WindowDataset, build_dataset
from gwtwin.signal.conditioning import condition_strain, condition_witnesses

STRAIN = "V1:Hrec_hoft_4096Hz"
WITNESSES = ["V1:SBE_SDB1_DISP_X", "V1:ENV_CEB_MAG_N", "V1:ENV_CEB_UPS_VOLT_R", "V1:ASC_NE_TX_CORR"]


def _best(fn, repeat=3):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="simulation or frame directory (default: simulate)")
    parser.add_argument("--selected", help="selected_channels.json (default: the 4 witnesses)")
    parser.add_argument("--duration", type=int, default=256, help="simulated seconds")
    parser.add_argument("--keep", help="write the dataset here (default: a temporary file)")
    parser.add_argument("--dataset", help="skip the build: time conditioning and reads on this")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on 2 shared cores torch's 2 OpenMP threads spin and "
        "make e.g. the DataLoader's torch.stack 50x slower)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)
    tmp = Path(tempfile.mkdtemp(prefix="bench-dataset-"))
    if args.source is None:
        from gwtwin.simulate import SimulationConfig, Simulator

        source = tmp / "sim"
        config = SimulationConfig(duration=args.duration, seed=3, decoys={"enabled": False})
        Simulator(config).run(source, workers=2, progress=False)
    else:
        source = Path(args.source)
    selected = args.selected
    if selected is None:
        selected = tmp / "selected_channels.json"
        selected.write_text(
            json.dumps(
                {
                    "format": "gwtwin-selected-channels/1",
                    "strain_channel": STRAIN,
                    "channels": [{"name": c} for c in WITNESSES],
                }
            )
        )
    output = Path(args.keep) if args.keep else tmp / "dataset.h5"

    # 1. the build
    frames = source / "frames" if (source / "frames").is_dir() else source
    data = {c: read(frames, [c]).block for c in [STRAIN, *WITNESSES]}
    span = data[STRAIN].duration
    if args.dataset:
        output = Path(args.dataset)
        spec = WindowDataset(output, "train").conditioning
    else:
        summary = build_dataset(source, selected, output)
        spec = summary.spec
        n = sum(c["windows"] for c in summary.counts.values())
        print(
            f"build_dataset: {span:g} s of data -> {n} windows in {summary.elapsed:.1f} s = "
            f"{n / summary.elapsed:.1f} windows/s, {span / summary.elapsed:.1f}x real time"
        )

    # 2. conditioning vs gwpy
    ours, _ = _best(
        lambda: (
            condition_strain(data[STRAIN], spec),
            condition_witnesses([data[c] for c in WITNESSES], spec),
        )
    )
    from gwpy.frequencyseries import FrequencySeries

    asd = FrequencySeries(
        np.sqrt(spec.psd_values), frequencies=spec.psd_frequencies, unit="1/Hz(1/2)"
    )

    def gwpy_conditioning():
        ts = data[STRAIN].to_timeseriesdict()[STRAIN].resample(spec.sample_rate)
        white = ts.whiten(
            fftlength=spec.fftlength, fduration=spec.fduration, highpass=spec.highpass, asd=asd
        )
        wit = [data[c].to_timeseriesdict()[c].resample(spec.sample_rate) for c in WITNESSES]
        return white, wit

    ref, _ = _best(gwpy_conditioning)
    print(
        f"conditioning {span:g} s (strain + {len(WITNESSES)} witnesses): gwtwin {ours:.2f} s, "
        f"gwpy {ref:.2f} s; ratio gwpy/gwtwin {ref / ours:.2f}"
    )

    # 3. reads
    ds = WindowDataset(output, "train")
    lazy, _ = _best(lambda: sum(x.shape[0] for x, _ in DataLoader(ds, batch_size=32)), 2)

    def eager():
        with h5py.File(output) as h5:
            return h5["train/witness"][()].shape[0] + h5["train/target"][()].shape[0]

    mem, _ = _best(eager, 2)
    mb = (ds.shapes["witness"][0] + 1) * ds.shapes["target"][0] * 4 * len(ds) / 2**20
    print(
        f"reads: {len(ds)} windows ({mb:.0f} MB) lazily {len(ds) / lazy:.0f} windows/s, "
        f"eager h5py {len(ds) / mem:.0f} windows/s; ratio lazy/eager time {lazy / mem:.2f}"
    )


if __name__ == "__main__":
    main()
