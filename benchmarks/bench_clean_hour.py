"""Peak memory and speed of ``gwtwin clean`` on a 1-hour span (bounded memory: it streams).

Takes a finished ``gwtwin run`` directory (default ``demo-run``), simulates one hour of the same
detector (its simulate section and ``instrument_seed``, event seed 4; rounded up to whole frames:
3648 s) in a child process (so the simulator's memory does not count), then cleans the whole hour
in this process with the run's
model and the run's clean settings (256 s chunks, explaining-witness attribution and the veto
on, no images).  Prints the wall time as a multiple of real time and the process's peak
resident memory (``ru_maxrss``) before cleaning (imports + model) and after.

    .venv/bin/python benchmarks/bench_clean_hour.py [--run-dir demo-run] [--duration 3600]
        [--workdir /tmp/bench-clean-hour] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="demo-run")
    parser.add_argument("--duration", type=int, default=3600)
    parser.add_argument("--workdir", default="/tmp/bench-clean-hour")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    run = Path(args.run_dir)
    work = Path(args.workdir)
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    frame = int(resolved["simulate"].get("frame_length", 64))
    duration = -(-args.duration // frame) * frame  # whole frames: 3600 s -> 3648 s
    sim = {**resolved["simulate"], "seed": 4, "duration": duration, "workers": 2}
    simulation = work / "simulation"
    if not (simulation / "summary.json").is_file():
        code = (
            "import json, sys\n"
            "from gwtwin.simulate import Simulator, load_config\n"
            "cfg = load_config(None, json.loads(sys.argv[1]))\n"
            "Simulator(cfg).run(sys.argv[2], progress=False)\n"
        )
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code, json.dumps(sim), str(simulation)], check=True)
        print(f"simulated {duration} s in {time.perf_counter() - t0:.0f} s")

    from gwtwin.infer.clean import clean_frames, load_clean_config
    from gwtwin.models import TwinModel

    result = json.loads((run / "train" / "result.json").read_text())
    model = TwinModel.load(result["model_uri"], tracking_uri=result["tracking_uri"])
    before = _rss_mb()
    config = load_clean_config(
        {**resolved.get("clean", {}), "images": 0, "tensorboard": False, "model": None}
    )
    t0 = time.perf_counter()
    summary = clean_frames(simulation / "frames", work / "clean", config, model=model, log=str)
    wall = time.perf_counter() - t0
    rows = {
        "seconds": summary["seconds"],
        "chunk_duration": config.chunk_duration,
        "clean_x_real_time": summary["speed_x_real_time"],
        "total_x_real_time_with_veto": summary["seconds"] / wall,
        "wall_s": wall,
        "peak_rss_MB_before_cleaning": before,
        "peak_rss_MB": _rss_mb(),
        "threads": args.threads,
        "model": result["model_uri"],
    }
    print(json.dumps(rows, indent=1))
    (work / "bench_clean_hour.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
