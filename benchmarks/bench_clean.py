"""Offline cleaning speed against real time, and chunk independence, on a finished run.

Takes a run directory of ``gwtwin run`` (default ``demo-run``: the simulation frames and the model
its train step registered) and cleans the same span three ways in one process:

- in 256 s chunks (the default) and in 16 s chunks, timing the cleaning proper (read witnesses,
  condition, predict, colour, subtract, write frames) and the veto pass (triggers of raw and
  cleaned strain, metadata, flags, images) separately; speed = seconds of data / wall seconds,
  i.e. the ratio to real time;
- with the explaining-witness attribution off (one network pass per window instead of
  1 + n_witnesses), to show what the attribution costs;
- in float32 (``clean.precision``), to show what the float64 default costs (float64 makes the
  output independent of batching and threads, so the online service equals it);
- the maximum difference between the 256 s and the 16 s output (cleaned strain and predicted
  noise), relative to the prediction's peak: the chunk-independence the online service relies on.

    .venv/bin/python benchmarks/bench_clean.py [--run-dir demo-run] [--start GPS] [--end GPS]
        [--threads 1] [--output /tmp/bench-clean]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="demo-run")
    parser.add_argument("--start", type=float, default=1400001700)
    parser.add_argument("--end", type=float, default=1400002048)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="/tmp/bench-clean")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from gwtwin.data import read
    from gwtwin.infer.clean import clean_frames, load_clean_config
    from gwtwin.models import TwinModel

    run = Path(args.run_dir)
    result = json.loads((run / "train" / "result.json").read_text())
    model = TwinModel.load(result["model_uri"], tracking_uri=result["tracking_uri"])
    frames = run / "simulation" / "frames"
    out = Path(args.output)
    rows = {}
    for label, overrides in (
        ("chunk 256 s", {"chunk_duration": 256}),
        ("chunk 16 s", {"chunk_duration": 16}),
        ("chunk 256 s, no attribution", {"chunk_duration": 256, "attribute": False}),
        ("chunk 256 s, float32", {"chunk_duration": 256, "precision": "float32"}),
    ):
        config = load_clean_config(
            {"start": args.start, "end": args.end, "images": 0, "tensorboard": False, **overrides}
        )
        t0 = time.perf_counter()
        summary = clean_frames(frames, out / label.replace(" ", "_"), config, model=model, log=str)
        wall = time.perf_counter() - t0
        rows[label] = {
            "seconds": summary["seconds"],
            "clean_wall_s": summary["clean_seconds"],
            "clean_x_real_time": summary["speed_x_real_time"],
            "veto_wall_s": wall - summary["clean_seconds"],
            "total_x_real_time": summary["seconds"] / wall,
            "windows": summary["n_windows"],
        }
        print(label, json.dumps(rows[label]))
    names = [summary["cleaned_channel"], summary["prediction_channel"]]
    a = read(out / "chunk_256_s" / "frames", names).block.data
    b = read(out / "chunk_16_s" / "frames", names).block.data
    peak = float(a[1].abs().max())
    c = read(out / "chunk_256_s,_float32" / "frames", names).block.data
    rows["chunk_independence"] = {
        "max_abs_diff_over_prediction_peak": float((a - b).abs().max()) / peak,
        "float32_vs_float64_over_prediction_peak": float((a - c).abs().max()) / peak,
    }
    rows["max_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows["model"] = result["model_uri"]
    rows["threads"] = args.threads
    print(json.dumps(rows, indent=1))
    (out / "bench_clean.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
