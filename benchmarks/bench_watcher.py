"""How the stream's directory watcher scales with the files in the watched directory.

A DAQ directory can hold hours of 1 s files.  For N files already there, this times, per
increment (a new file appears, the service looks for it and for late files), the watcher's
lookup against one ``os.listdir`` of the directory (the reference: what any lookup that lists
the directory pays), and the first listing (start-up, every name parsed once).

    .venv/bin/python benchmarks/bench_watcher.py [--sizes 600 4096 20000 86400]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

T0 = 1_400_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[600, 4096, 20000, 86400])
    parser.add_argument("--increments", type=int, default=50)
    args = parser.parse_args()
    from gwtwin.stream.watcher import FrameWatcher

    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            for i in range(n):
                (d / f"V-GWTWIN-{T0 + i}-1.gwf").touch()
            w = FrameWatcher(d, "V1:X", {"V1:X": 1.0})
            t = time.perf_counter()
            w.files()
            first = time.perf_counter() - t
            per = []
            for k in range(args.increments):
                gps = T0 + n + k
                (d / f"V-GWTWIN-{gps}-1.gwf").touch()
                t = time.perf_counter()
                found, _ = w._around(gps)
                w.late(gps)
                per.append(time.perf_counter() - t)
                assert found is not None and found.start == gps
            t = time.perf_counter()
            os.listdir(d)
            listing = time.perf_counter() - t
            per.sort()
            row = {
                "files": n,
                "start_ms": first * 1e3,
                "per_increment_p50_ms": per[len(per) // 2] * 1e3,
                "per_increment_max_ms": per[-1] * 1e3,
                "os_listdir_ms": listing * 1e3,
                "listdir_over_increment": listing / per[len(per) // 2],
            }
            rows.append(row)
            print(json.dumps(row))
    print("| files in the directory | start-up | per increment p50 / max | one os.listdir |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['files']} | {r['start_ms']:.0f} ms | {r['per_increment_p50_ms']:.3f} / "
            f"{r['per_increment_max_ms']:.2f} ms | {r['os_listdir_ms']:.1f} ms "
            f"({r['listdir_over_increment']:.0f}x) |"
        )


if __name__ == "__main__":
    main()
