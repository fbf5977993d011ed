"""Simulation speed of the default scenario, as a multiple of real time.

Runs the built-in scenario (2048 s, 26 channels, GWF frames + truth frames) with all cores and
prints simulated seconds per wall-clock second, plus the part spent rendering vs writing.

    .venv/bin/python benchmarks/bench_simulate.py [--duration S] [--workers N] [--format gwf]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from gwtwin.simulate import SimulationConfig, Simulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--format", default="gwf", choices=["gwf", "hdf5"])
    args = parser.parse_args()
    config = SimulationConfig(duration=args.duration, format=args.format)
    workers = args.workers or os.cpu_count() or 1

    t0 = time.perf_counter()
    sim = Simulator(config)
    t_catalogue = time.perf_counter() - t0
    t0 = time.perf_counter()
    sim.render_frame(0)
    t_render = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = Simulator(config).run(tmp, workers=workers, progress=False)
        wall = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in result.frames + result.truth_frames)
    n_channels = len([c for c in result.channels if c.role != "truth"])
    print(f"scenario: {config.duration} s, {n_channels} channels, {result.counts}")
    print(
        f"catalogue draw: {t_catalogue:.2f} s; render one {config.frame_length} s frame "
        f"(no I/O): {t_render:.2f} s"
    )
    print(
        f"end to end with {workers} workers ({args.format}, {size / 1e6:.0f} MB written): "
        f"{wall:.1f} s"
    )
    print(f"simulation speed: {config.duration / wall:.1f}x real time")


if __name__ == "__main__":
    main()
