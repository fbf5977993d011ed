"""gwtwin's Q-transform image and triggers against gwpy's ``q_transform``, same data, same grid.

For each duration (default 64 s and 1024 s of 4096 Hz white Gaussian noise, i.e. already whitened
data, so gwpy runs with ``whiten=False`` and both transform identical input), each implementation
runs in its own subprocess (so peak memory is its own) and computes the image on the same output
grid: the whole span, ``tres = duration / 1000`` (gwpy's default), 500 log-spaced frequencies,
Q range (4, 64), mismatch 0.2. Printed: wall time (gwtwin: first call, which builds the tile
tables, and a second call), the ratio gwpy / gwtwin, and the peak resident memory above the
process's baseline (data loaded) to show memory stays linear in the duration; then the trigger
finder's time per channel-second.

    .venv/bin/python benchmarks/bench_qtransform.py [--durations 64 1024] [--device cuda]
        [--threads N] [--channels 4]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

FS = 4096
NFREQ = 500


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def _data(duration: int, channels: int = 1):
    import numpy as np

    rng = np.random.default_rng(1234)
    return rng.standard_normal((channels, int(duration * FS))).astype(np.float32)


def worker(impl: str, duration: int, device: str, threads: int, channels: int) -> dict:
    import numpy as np
    import torch

    if threads:
        torch.set_num_threads(threads)
    x = _data(duration, channels)
    tres = duration / 1000.0
    out: dict = {"impl": impl, "duration": duration, "device": device}
    if impl == "gwpy":
        from gwpy.timeseries import TimeSeries

        ts = TimeSeries(x[0].astype(np.float64), sample_rate=FS, t0=0)
        base = _rss_mb()
        t0 = time.perf_counter()
        img = ts.q_transform(whiten=False, tres=tres, logf=True, fres=NFREQ)
        out["seconds"] = time.perf_counter() - t0
        out["peak_mb"] = _rss_mb() - base
        out["shape"] = list(img.shape)
        out["max"] = float(img.value.max())
        return out

    from gwtwin.signal.qtransform import qtransform_image

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    xt = torch.from_numpy(x[0]).to(device)
    sync()
    base = _rss_mb()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    if impl == "gwtwin":
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            img = qtransform_image(xt, FS, tres=tres, logf=True, nfreq=NFREQ, norm="gwpy")
            sync()
            times.append(time.perf_counter() - t0)
        out["seconds_first"], out["seconds"] = times
        out["shape"] = list(img.energy.shape)
        out["max"] = float(img.energy.max())
    elif impl == "triggers":
        from gwtwin.data import Block
        from gwtwin.signal.triggers import find_triggers

        block = Block.create(
            torch.from_numpy(x).to(device), 0, FS, [f"X1:C{i}" for i in range(channels)]
        )
        find_triggers(block.isel(0, 64 * FS), whiten=False)  # build the tile tables once
        sync()
        t0 = time.perf_counter()
        trig = find_triggers(block, whiten=False)
        sync()
        out["seconds"] = time.perf_counter() - t0
        out["per_channel_second_ms"] = 1e3 * out["seconds"] / (channels * duration)
        out["n_triggers"] = int(sum(len(t) for t in trig.tables.values()))
        out["channels"] = channels
    out["peak_mb"] = _rss_mb() - base
    if device.startswith("cuda"):
        out["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def run_case(args, impl: str, duration: int, device: str) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--_worker",
        impl,
        str(duration),
        device,
        str(args.threads),
        str(args.channels),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"impl": impl, "duration": duration, "error": proc.stderr.strip().splitlines()[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--durations", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--device", default="cpu", help="torch device for gwtwin (cpu, cuda)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--channels", type=int, default=4, help="channels for the trigger timing")
    parser.add_argument("--no-gwpy", action="store_true", help="skip gwpy (e.g. not installed)")
    parser.add_argument("--_worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._worker:
        impl, duration, device, threads, channels = args._worker
        print(json.dumps(worker(impl, int(duration), device, int(threads), int(channels))))
        return

    import torch

    print(
        f"# {FS} Hz white noise; grid: tres = duration/1000, {NFREQ} log frequencies, "
        f"Q (4, 64), mismatch 0.2; torch {torch.__version__}, threads "
        f"{args.threads or torch.get_num_threads()}, cpus {os.cpu_count()}, device {args.device}"
    )
    print(
        f"{'duration':>9} {'gwpy s':>8} {'gwtwin s':>9} {'(first)':>8} {'ratio':>6} "
        f"{'gwpy MB':>8} {'gwtwin MB':>9} {'peak gwpy':>10} {'peak ours':>10}"
    )
    for duration in args.durations:
        ours = run_case(args, "gwtwin", duration, args.device)
        ref = {} if args.no_gwpy else run_case(args, "gwpy", duration, "cpu")
        if "error" in ours:
            print(f"{duration:>8}s gwtwin failed: {ours['error']}")
            continue
        ratio = ref["seconds"] / ours["seconds"] if "seconds" in ref else float("nan")
        mem = ours.get("gpu_peak_mb", ours["peak_mb"])
        print(
            f"{duration:>8}s {ref.get('seconds', float('nan')):>8.2f} {ours['seconds']:>9.3f} "
            f"{ours['seconds_first']:>8.3f} {ratio:>6.1f} {ref.get('peak_mb', float('nan')):>8.0f} "
            f"{mem:>9.0f} {ref.get('max', float('nan')):>10.1f} {ours['max']:>10.1f}"
            + ("  (gwtwin MB: GPU)" if "gpu_peak_mb" in ours else "")
            + (f"  gwpy failed: {ref['error']}" if "error" in ref else "")
        )
    for duration in args.durations:
        trig = run_case(args, "triggers", duration, args.device)
        if "error" in trig:
            print(f"triggers {duration}s failed: {trig['error']}")
            continue
        print(
            f"triggers: {trig['channels']} channels x {duration} s in {trig['seconds']:.2f} s = "
            f"{trig['per_channel_second_ms']:.2f} ms per channel-second "
            f"({trig['n_triggers']} triggers, peak +{trig.get('gpu_peak_mb', trig['peak_mb']):.0f}"
            f" MB{' GPU' if 'gpu_peak_mb' in trig else ''})"
        )


if __name__ == "__main__":
    main()
