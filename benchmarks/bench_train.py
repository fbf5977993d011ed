"""Training and inference of the twin models on the default simulated scenario.

The acceptance measurement of issue 5: simulate the default scenario (2048 s, seed 1), build the
time-series dataset from its first 1740 s (training = the first 80 %, validation = the rest, used
for early stopping), train ``witness_td`` with ``configs/train-default.yaml`` on the CPU, then

- training throughput (windows/s, forward + backward + step) and seconds per epoch;
- the model loaded back from the registry by alias reproduces the logged validation numbers;
- on held-out data never used in training or model selection (the last 308 s of seed 1, the same
  instrument), through the raw-data path (:meth:`TwinModel.predict` on the witness frames, truth
  conditioned with the model's own spec), the fraction of witnessed excess power removed over 4 s
  segments holding a strain glitch (catalogue SNR >= 8), per segment (median) and overall, and
  the residual SNR, also split by the family of the loudest glitch in the segment;
- the same on a scenario with another seed (seed 2: another *instrument* - the scattered-light
  phases ``phi_n`` and static path are drawn per seed and are not visible in any witness, so a
  model of seed 1 cannot know them; magnetic and power-line couplings do transfer);
- inference throughput as a multiple of real time (reference: real time, same run);
- optionally (``--qimage``) a short ``qimage_unet`` run and its Glitchflow-style veto accuracy vs
  threshold on the validation split.

Outputs are cached in ``--workdir`` (simulations and datasets are reused when present).

    .venv/bin/python benchmarks/bench_train.py --workdir /tmp/bench-train [--threads 1]
        [--qimage] [--max-epochs N]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
WITNESSES = ["V1:SBE_SDB1_DISP_X", "V1:ENV_CEB_MAG_N", "V1:ENV_CEB_UPS_VOLT_R", "V1:ASC_NE_TX_CORR"]
STRAIN = "V1:Hrec_hoft_4096Hz"
TRUTH = ["V1:TRUTH_SCATTER", "V1:TRUTH_EM", "V1:TRUTH_POWERLINE"]
GLITCH_FAMILIES = ("scatter", "em", "powerline", "blip")
START = 1_400_000_000
TRAIN_END = 1740  # s after START: the dataset's span; the rest is held out


def simulate(out: Path, seed: int) -> Path:
    from gwtwin.simulate import Simulator, load_config

    if not (out / "summary.json").is_file():
        config = load_config(ROOT / "configs/simulate-default.yaml", {"seed": seed})
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            Simulator(config).run(out, workers=2, progress=False)
        print(f"simulated seed {seed}: {time.perf_counter() - t0:.0f} s")
    return out


def dataset(sim: Path, out: Path, kind: str, workdir: Path) -> Path:
    from gwtwin.dataset import build_dataset

    if not out.is_file():
        selected = workdir / "selected_channels.json"
        selected.write_text(
            json.dumps(
                {
                    "format": "gwtwin-selected-channels/1",
                    "strain_channel": STRAIN,
                    "span": [],
                    "channels": [{"name": c} for c in WITNESSES],
                    "redundant": [],
                }
            )
        )
        cfg = {"kind": kind, "stride": 2.0, "quiet_fraction": None, "end": START + TRAIN_END}
        if kind == "qimage":
            cfg.update(stride=4.0, quiet_fraction=0.5)
        t0 = time.perf_counter()
        summary = build_dataset(sim, selected, out, cfg)
        print(f"{kind} dataset {out.name}: {summary.counts} in {time.perf_counter() - t0:.0f} s")
    return out


def held_out(twin, sim: Path, start: float | None = None) -> dict:
    """Excess power removed from ``start`` (GPS) to the end of ``sim``, through the raw-data
    inference path, over 4 s segments; also per family of each segment's loudest glitch."""
    from gwtwin.data import Block, read
    from gwtwin.signal.conditioning import condition_strain
    from gwtwin.simulate import read_catalogue
    from gwtwin.train.metrics import excess_power_metrics

    frames = sim / "frames"
    blocks = [read(frames, [c], start).block for c in WITNESSES]
    span = blocks[0].duration
    t0 = time.perf_counter()
    pred = twin.predict(blocks)
    predict_seconds = time.perf_counter() - t0
    truth_raw = read(sim / "truth", TRUTH, start).block
    as_strain = Block(
        truth_raw.data.sum(0, keepdim=True),
        truth_raw.t0_ns,
        truth_raw.sample_rate,
        (STRAIN,),
        ("strain",),
    )
    truth = condition_strain(as_strain, twin.spec)
    i0 = round((pred.t0_ns - truth_raw.t0_ns) * twin.sample_rate / 1e9)
    truth = truth[i0 : i0 + pred.size]
    p = pred.data[0].double()
    seg = twin.target_size
    n = pred.size // seg
    t_seg = truth[: n * seg].reshape(n, seg)
    p_seg = p[: n * seg].reshape(n, seg)
    error = ((t_seg - p_seg) ** 2).sum(1)
    power = (t_seg**2).sum(1)
    cat = read_catalogue(sim)
    fam = np.asarray(cat["family"]).astype(str)
    peaks = np.asarray(cat["peak_ns"], dtype=np.int64)
    snr = np.asarray(cat["snr"], dtype=float)
    keep = np.isin(fam, GLITCH_FAMILIES) & (snr >= 8)
    starts = pred.t0_ns + np.round(np.arange(n) * seg / twin.sample_rate * 1e9).astype(np.int64)
    glitch = np.zeros(n, bool)
    loudest = np.zeros(n)
    family = np.full(n, "", dtype=object)
    for pk, f, s in zip(peaks[keep], fam[keep], snr[keep], strict=True):
        k = int(np.searchsorted(starts, pk, side="right")) - 1
        if 0 <= k < n and pk < starts[k] + round(seg / twin.sample_rate * 1e9):
            glitch[k] = True
            if s > loudest[k]:
                loudest[k], family[k] = s, f
    metrics = excess_power_metrics(error, power, glitch)
    for f in GLITCH_FAMILIES:
        sel = family == f
        part = excess_power_metrics(error[sel], power[sel])
        metrics[f"by_family_{f}"] = (part["removed"], part["removed_glitch_median"], int(sel.sum()))
    metrics["predict_seconds"] = predict_seconds
    metrics["span_seconds"] = span
    metrics["real_time_factor"] = span / predict_seconds
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench-train"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--qimage", action="store_true", help="also train the Q-image U-Net")
    parser.add_argument("--qimage-epochs", type=int, default=4)
    args = parser.parse_args()
    from gwtwin.train import evaluate_twin, load_train_config, load_twin, train

    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    sim1 = simulate(work / "sim-seed1", 1)
    sim2 = simulate(work / "sim-seed2", 2)
    ds = dataset(sim1, work / "train-seed1.h5", "timeseries", work)
    overrides = {"progress": False}
    if args.threads:
        overrides["torch_threads"] = args.threads
    if args.max_epochs:
        overrides["max_epochs"] = args.max_epochs
    cfg = load_train_config(ROOT / "configs/train-default.yaml", overrides)
    run_dir = work / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    result = train(ds, run_dir, cfg)
    threads = torch.get_num_threads()
    print(f"\n== witness_td on {ds.name} ({threads} torch thread(s)) ==")
    print(f"parameters: {result.n_parameters:,}; epochs run: {result.epochs} (early stopping)")
    print(
        f"training wall time: {result.train_seconds:.0f} s = {result.train_seconds / 60:.1f} min "
        f"(budget 10 min: ratio {result.train_seconds / 600:.2f})"
    )
    print(
        f"training throughput: {result.windows_per_second:.1f} windows/s "
        f"(8 s windows: {8 * result.windows_per_second:.0f} s of data per s); "
        f"{result.seconds_per_epoch:.1f} s per epoch (validation included)"
    )
    m = result.metrics
    print(
        f"validation (last 20 % of the first {TRAIN_END} s of seed 1): excess power removed "
        f"{100 * m['removed_glitch']:.1f} % (glitch windows), median per window "
        f"{100 * m['removed_glitch_median']:.1f} %, "
        f"residual SNR median {m['residual_snr_median']:.2f} (from {m['truth_snr_median']:.2f})"
    )

    twin = load_twin(result.model_uri, run_dir)
    again = evaluate_twin(twin, ds)
    diff = max(abs(again[k] - m[k]) for k in ("loss", "removed_glitch", "removed_glitch_median"))
    print(f"registry {result.model_uri}: reproduces logged validation numbers to {diff:.1e}")

    for label, sim, start in (
        ("held-out time, seed 1", sim1, START + TRAIN_END - 4),
        ("another instrument, seed 2", sim2, None),
    ):
        h = held_out(twin, sim, start)
        print(
            f"{label} ({h['span_seconds']:.0f} s, {h['n_glitch']} glitch segments of "
            f"{h['n_windows']}): excess power removed {100 * h['removed_glitch']:.1f} % "
            f"overall, median per segment {100 * h['removed_glitch_median']:.1f} %, all "
            f"segments {100 * h['removed']:.1f} %; residual SNR median "
            f"{h['residual_snr_median']:.2f} (from {h['truth_snr_median']:.2f})"
        )
        parts = [
            f"{f} {100 * h[f'by_family_{f}'][0]:.0f} % / {100 * h[f'by_family_{f}'][1]:.0f} % / "
            f"{h[f'by_family_{f}'][2]}"
            for f in GLITCH_FAMILIES
        ]
        print("   by loudest family (removed overall / median / segments): " + "; ".join(parts))
        print(
            f"   inference: {h['span_seconds']:.0f} s of witnesses in "
            f"{h['predict_seconds']:.2f} s = {h['real_time_factor']:.0f}x real time "
            "(conditioning included)"
        )

    if args.qimage:
        dq = dataset(sim1, work / "qimage-seed1.h5", "qimage", work)
        qcfg = load_train_config(
            ROOT / "configs/train-default.yaml",
            {
                **overrides,
                "max_epochs": args.qimage_epochs,
                "model": "qimage_unet",
                "optimizer": {"lr": 1e-3},
            },
        )
        qres = train(dq, work / f"{run_dir.name}-qimage", qcfg)
        print(
            f"\n== qimage_unet on {dq.name}: {qres.epochs} epochs in "
            f"{qres.train_seconds:.0f} s, {qres.windows_per_second:.1f} windows/s =="
        )
        from gwtwin.dataset import WindowDataset
        from gwtwin.train.metrics import veto_flags

        real = WindowDataset(dq, "valid").read("target", slice(None))
        print("threshold | veto accuracy | real images flagged (= accuracy of always flagging)")
        for t in qcfg.veto_thresholds:
            flagged = float(veto_flags(real, t).mean())
            acc = qres.metrics[f"veto_accuracy_{t:g}"]
            print(f"{t:g} | {100 * acc:.0f} % | {100 * flagged:.0f} %")


if __name__ == "__main__":
    main()
