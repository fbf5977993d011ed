"""Frame reading: ``gwtwin.data.read`` against gwpy's ``TimeSeriesDict.read`` on the same files.

By default writes a detector-like set of GWF files (16 files x 64 s: one strain channel at 4096 Hz
float64 and 24 auxiliary channels at 256-4096 Hz float32, most of them slow, as in a real frame),
then reads the whole span of all channels both ways, best of 3 each, in the same run.  gwtwin
refuses to stack channels of different rates without resampling, so it reads one rate group per
call; gwpy reads all channels in one call.  Both read the same files, channels and span, and the
samples are checked to be identical.

    python benchmarks/bench_frames.py
    python benchmarks/bench_frames.py --keep /tmp/bench-frames   # write once, reuse after
    python benchmarks/bench_frames.py --frames DIR --channels V1:A V1:B [--start GPS --end GPS]

Prints one line per case, then ``ratio gwtwin/gwpy read time: X``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from gwtwin.data import Block, find_frames, frame_name, read, write_frame
from gwtwin.data.backends import open_frame

GPS0 = 1_000_000_000
STRAIN = "V1:STRAIN"
#: auxiliary channels: (rate in Hz, how many), 24 in all
AUX_RATES = [(256, 12), (512, 6), (1024, 3), (2048, 2), (4096, 1)]


def default_channels() -> list[tuple[str, int, np.dtype]]:
    out = [(STRAIN, 4096, np.dtype(np.float64))]
    i = 0
    for rate, count in AUX_RATES:
        for _ in range(count):
            out.append((f"V1:AUX_{i:02d}_{rate}HZ", rate, np.dtype(np.float32)))
            i += 1
    return out


def _write_one(args) -> str:
    directory, index, frame_length, fmt = args
    rng = np.random.default_rng(index)
    t0 = GPS0 + index * frame_length
    by_rate: dict[tuple[int, np.dtype], list[str]] = defaultdict(list)
    for name, rate, dtype in default_channels():
        by_rate[(rate, dtype)].append(name)
    blocks = []
    for (rate, dtype), names in by_rate.items():
        data = rng.standard_normal((len(names), frame_length * rate)).astype(dtype)
        blocks.append(Block.create(torch.from_numpy(data), t0, rate, names, ["m"] * len(names)))
    path = Path(directory) / frame_name("V", "GWTWIN", t0, frame_length, fmt)
    return str(write_frame(path, blocks))


def write_default(
    directory: Path, nfiles: int, frame_length: int, workers: int, fmt: str = "gwf"
) -> list[str]:
    jobs = [(str(directory), i, frame_length, fmt) for i in range(nfiles)]
    import gwpy.utils.lal  # noqa: F401 - imported once here, not in each forked writer

    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            return list(pool.map(_write_one, jobs))
    return [_write_one(job) for job in jobs]


def best_of(repeat: int, *funcs):
    """Best wall time of each function over ``repeat`` rounds, run interleaved (a, b, a, b...)
    so that a change in machine load hits both alike; also the last results."""
    best = [float("inf")] * len(funcs)
    results = [None] * len(funcs)
    for _ in range(repeat):
        for i, func in enumerate(funcs):
            t = time.perf_counter()
            results[i] = func()
            best[i] = min(best[i], time.perf_counter() - t)
    return best, results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=Path, help="directory of existing frame files")
    parser.add_argument("--channels", nargs="+", help="channels to read (default: all)")
    parser.add_argument("--start", help="GPS start (default: start of the files)")
    parser.add_argument("--end", help="GPS end (default: end of the files)")
    parser.add_argument("--files", type=int, default=16, help="files to write (default 16)")
    parser.add_argument("--frame-length", type=int, default=64, help="seconds per file")
    parser.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    parser.add_argument(
        "--format", choices=["gwf", "hdf5"], default="gwf", help="format of the default files"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="write the default files here and keep them; reused when already there",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes writing the default files",
    )
    args = parser.parse_args(argv)

    from gwpy.timeseries import TimeSeriesDict

    with tempfile.TemporaryDirectory(prefix="bench_frames_") as tmp:
        if args.frames is None:
            source = args.keep or Path(tmp)
            names = [
                frame_name(
                    "V", "GWTWIN", GPS0 + i * args.frame_length, args.frame_length, args.format
                )
                for i in range(args.files)
            ]
            if all((source / n).exists() for n in names):
                print(f"reusing {args.files} {args.format.upper()} files in {source}")
            else:
                t = time.perf_counter()
                source.mkdir(parents=True, exist_ok=True)
                write_default(source, args.files, args.frame_length, args.workers, args.format)
                print(
                    f"wrote {args.files} {args.format.upper()} files x {args.frame_length} s "
                    f"with gwtwin in {time.perf_counter() - t:.1f} s ({args.workers} processes)"
                )
        else:
            source = args.frames
        default = args.frames is None
        files = find_frames(
            source,
            args.start,
            args.end,
            tag="GWTWIN" if default else None,
            format=args.format if default else None,
        )
        if not files:
            print(f"no frame files in {source}", file=sys.stderr)
            return 1
        paths = [str(f.path) for f in files]
        start = args.start if args.start is not None else files[0].start
        end = args.end if args.end is not None else files[-1].end
        duration = float(end) - float(start)
        with open_frame(files[0].path, files[0].format) as reader:
            channels = args.channels or list(reader.channels())
            info = {c: reader.read(c, files[0].start_ns, files[0].end_ns)[0] for c in channels}
        groups: dict[float, list[str]] = defaultdict(list)
        for c in channels:
            groups[float(info[c].rate)].append(c)
        nbytes = sum(float(p.rate) * duration * p.data.dtype.itemsize for p in info.values())

        def gwtwin_read():
            return {rate: read(paths, names, start, end).block for rate, names in groups.items()}

        def gwpy_read():
            return TimeSeriesDict.read(paths, channels, start=start, end=end)

        (t_gwtwin, t_gwpy), (blocks, tsd) = best_of(args.repeat, gwtwin_read, gwpy_read)

        same = all(
            np.array_equal(blocks[rate][c].numpy(), np.asarray(tsd[c].value, dtype=np.float64))
            for rate, names in groups.items()
            for c in names
        )
        listing = ", ".join(f"{r:g} Hz x{len(n)}" for r, n in sorted(groups.items()))
        print(
            f"data: {len(files)} files, {duration:g} s, {len(channels)} channels in "
            f"{len(groups)} rate groups ({listing}), "
            f"{nbytes / 1e6:.1f} MB of samples; identical samples: {'yes' if same else 'NO'}"
        )
        for label, seconds in (
            (f"gwtwin.data.read ({len(groups)} calls, one per rate)", t_gwtwin),
            ("gwpy TimeSeriesDict.read (1 call)", t_gwpy),
        ):
            print(
                f"{label:48s} best of {args.repeat}: {seconds:7.3f} s  "
                f"{nbytes / 1e6 / seconds:7.1f} MB/s  {duration / seconds:8.1f} x real time"
            )
        print(f"ratio gwtwin/gwpy read time: {t_gwtwin / t_gwpy:.3f}")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
