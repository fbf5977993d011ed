"""Latency and compute of ``gwtwin stream`` on a finished run, exact and low-latency modes.

Takes a run directory of ``gwtwin run`` (default ``demo-run``: its simulation frames and the
model its train step registered, read from ``train/result.json``) and, for each mode, replays
``--duration`` s of the frames into a temporary watched directory as a DAQ would
(:func:`gwtwin.stream.replay.replay_in_thread`: 1 s GWF files holding only the strain and the
model's witnesses, as a low-latency frame would, at ``--speed`` x real time) while a
:class:`~gwtwin.stream.service.StreamService` follows the registry alias in the main thread
(torch threads 1, the config default) until the last replayed second:

- (a) the default exact mode (output equal to offline cleaning, after the model's look-ahead);
- (b) the low-latency mode (``lookahead`` = ``--lookahead`` s, provisional predictions).

From each run's ``stream.jsonl`` (:func:`~gwtwin.stream.status.stream_status` and the per-second
records): added latency (``latency``: the input file that made the second ready complete (its
mtime) -> the cleaned frame written), latency from the second's own file (``latency_total``,
which includes the look-ahead, in wall seconds: it shrinks with ``--speed``; the look-ahead in
data seconds is printed too), compute per increment (``compute``), the main thread's CPU time
(polling, reading, computing, writing: everything the service does), cleaning-applied and
gate-disabled fractions, seconds in/out and gaps.  The ratio to real time is the processing
speed: seconds of data / wall compute (sum of ``compute``), and seconds of data / service CPU.

Cleaning checks over the same span, on the seconds the safety gate left fully on (it scales the
written prediction elsewhere), from the written ``<STRAIN>_PREDICTION``:

- online == offline: max|online - offline| / max|offline prediction| of the exact mode against
  :func:`gwtwin.infer.clean.clean_frames` run here over the same span in float64 (attribute off,
  no images) -- the reference used -- and against the run's own ``clean/frames`` (made in
  float32 by runs older than float64 cleaning: ~1e-7 there says only that);
- the low-latency mode's cost: the fraction of the exact prediction's power it gets right,
  1 - ||p_low - p_exact||^2 / ||p_exact||^2, over every compared second and over the seconds
  carrying most prediction power (the glitches: at least ``--glitch-factor`` times the median
  second's), and the seconds where it errs most; the last ``context`` s of the span are left
  out (the exact output tapers to the end of the segment there, which the low-latency mode
  cannot foresee; their error is reported apart).

Goals printed: p99 added latency <= 1.0 s beyond the look-ahead and p99 compute <= 50 ms per
increment (DeepClean's online anchor: ~1-2 s latency, ~200 ms compute per increment).  The
machine's load (``os.getloadavg``) is recorded before and after each run.

    .venv/bin/python benchmarks/bench_stream.py [--run-dir demo-run] [--start GPS]
        [--duration 600] [--speed 1] [--lookahead 2] [--output bench-stream.json] [--keep DIR]

``service_cpu_s`` is the main thread's CPU time over the run, idle polling of the watched
directory included (the difference with the sum of ``compute`` is what the loop costs besides
the increments themselves).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

BOUND = 1e-12  #: online == offline tolerance, relative to the prediction's peak (float64)
LATENCY_GOAL = 1.0  #: s of added latency (p99) beyond the look-ahead
COMPUTE_GOAL = 0.050  #: s of compute per 1 s increment (p99)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _q(values, scale: float = 1.0) -> dict:
    from gwtwin.stream.status import quantiles

    return quantiles(values, scale)


def run_mode(label, args, result, model, span, workdir: Path, lookahead) -> dict:
    """Replay ``span`` at ``args.speed`` into a watched directory and stream it."""
    from gwtwin.stream.config import load_stream_config
    from gwtwin.stream.replay import ReplayConfig, replay_in_thread
    from gwtwin.stream.service import StreamService
    from gwtwin.stream.status import read_log, stream_status

    start, end = span
    strain = model.spec.strain_channel
    base = workdir / label.split()[0]
    watch, out = base / "watch", base / "out"
    config = load_stream_config({"start": start, "end": end, "lookahead": lookahead})
    logs: list[str] = []
    load_before = _load()
    t_build = time.perf_counter()
    service = StreamService(
        watch,
        out,
        config,
        model=result["model_uri"],
        tracking_uri=result["tracking_uri"],
        log=logs.append,
    )
    build = time.perf_counter() - t_build
    replay_config = ReplayConfig(
        file_duration=1,
        speed=args.speed,
        start=start,
        end=end,
        channels=[strain, *model.channels],
        protect=[strain],
    )
    stop = threading.Event()
    thread, replayed = replay_in_thread(
        Path(args.run_dir) / "simulation" / "frames",
        watch,
        replay_config,
        manifest=base / "manifest.jsonl",
        log=logs.append,
        stop=stop,
    )
    t0, cpu0 = time.perf_counter(), time.thread_time()
    try:
        summary = service.run()
    except BaseException:
        stop.set()  # the replay returns at its next file
        raise
    finally:
        thread.join(60)
    wall, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
    if "error" in replayed:
        raise replayed["error"]
    status = stream_status(out)
    seconds = [r for r in read_log(out) if r["kind"] == "second"]
    lat = [r.get("latency") for r in seconds]
    tot = [r.get("latency_total") for r in seconds]
    ahead = [(t - a) * args.speed for a, t in zip(lat, tot, strict=True) if None not in (a, t)]
    compute = [r["compute"] for r in seconds]
    n = len(seconds)
    row = {
        "mode": label,
        "lookahead_config": lookahead,
        "lookahead_data_s": float(np.median(ahead)) if ahead else None,
        "lookahead_context": service.engine.context_seconds,
        "speed": args.speed,
        "seconds_in": replayed["seconds"],
        "files_in": replayed["files"],
        "seconds_out": n,
        "duplicated_seconds": status["duplicated_seconds"],
        "gaps": len(status["gaps"]),
        "gap_seconds": status["gap_seconds"],
        "latency_s": _q(lat),
        "latency_total_s": _q(tot),
        "compute_ms": _q(compute, 1e3),
        "speed_x_real_time_compute": n / sum(compute),
        "service_cpu_s": cpu,
        "speed_x_real_time_cpu": n / cpu,
        "wall_s": wall,
        "service_start_s": build,
        "replay_speed_achieved": replayed.get("speed"),
        "cleaning_applied_fraction": status["cleaning_applied_fraction"],
        "cleaning_disabled_fraction": status["cleaning_disabled_fraction"],
        "provisional_fraction": status["provisional_fraction"],
        "models": status["models"],
        "summary": summary,
        "load_before": load_before,
        "load_after": _load(),
        "log_lines": len(logs),
    }
    row["_gated"] = {r["start"] for r in seconds if r["bits"].get("CLEANING_DISABLED")}
    row["_out"] = out
    print(
        f"{label}: {n} s out of {replayed['seconds']} s in {wall:.0f} s wall; latency p99 "
        f"{row['latency_s'].get('p99', float('nan')):.3f} s, compute p99 "
        f"{row['compute_ms'].get('p99', float('nan')):.1f} ms; load {row['load_after']}",
        flush=True,
    )
    return row


def _predictions(frames, names, span):
    from gwtwin.data import read

    block = read(frames, names, *span).block
    return block.data.numpy(), block.sample_rate


def _per_second(x: np.ndarray, rate: float) -> np.ndarray:
    return x.reshape(-1, int(rate))


def compare(rows, args, model, span, workdir: Path) -> dict:
    """online == offline (exact mode) and the low-latency mode's share of the prediction."""
    from gwtwin.data.channels import cleaned_channel, prediction_channel
    from gwtwin.infer.clean import clean_frames, load_clean_config

    strain = model.spec.strain_channel
    names = [cleaned_channel(strain), prediction_channel(strain)]
    start, end = span
    exact, low = rows
    seconds = np.arange(start, end)
    (ec, ep), rate = _predictions(exact["_out"] / "frames", names, span)
    (lc, lp), _ = _predictions(low["_out"] / "frames", names, span)
    ep_s, lp_s = _per_second(ep, rate), _per_second(lp, rate)
    out: dict = {}

    # -- online == offline, reference cleaned here in float64 over the same span
    t0 = time.perf_counter()
    config = load_clean_config(
        {
            "start": start,
            "end": end,
            "precision": "float64",
            "attribute": False,
            "images": 0,
            "tensorboard": False,
        }
    )
    clean_frames(
        Path(args.run_dir) / "simulation" / "frames",
        workdir / "offline",
        config,
        model=model,
        log=lambda m: None,
    )
    (oc, op), _ = _predictions(workdir / "offline" / "frames", names, span)
    ok = np.array([s not in exact["_gated"] for s in seconds])
    m = np.repeat(ok, int(rate))
    peak = float(np.abs(op[m]).max())
    out["online_vs_offline"] = {
        "reference": "clean_frames here, float64, same span",
        "seconds_compared": int(ok.sum()),
        "seconds_gated_excluded": int((~ok).sum()),
        "max_abs_diff_prediction_over_peak": float(np.abs(ep[m] - op[m]).max()) / peak,
        "max_abs_diff_cleaned_over_peak": float(np.abs(ec[m] - oc[m]).max()) / peak,
        "offline_wall_s": time.perf_counter() - t0,
    }

    # -- against the run's own offline frames (made over the whole run)
    demo = Path(args.run_dir) / "clean"
    try:
        info = json.loads((demo / "clean.json").read_text())
        ctx = int(info.get("context_seconds", 20)) + 2
        lo = start if start <= info["span"][0] else start + ctx
        hi = end if end >= info["span"][1] else end - ctx
        (_, dp), _ = _predictions(demo / "frames", names, (lo, hi))
        sel = (seconds >= lo) & (seconds < hi) & ok
        dsel = np.repeat(sel[(seconds >= lo) & (seconds < hi)], int(rate))
        peak_d = float(np.abs(dp[dsel]).max())
        out["online_vs_run_clean"] = {
            "reference": f"{demo / 'frames'} (precision {info.get('precision', 'float32, older')})",
            "span": [lo, hi],
            "seconds_compared": int(sel.sum()),
            "max_abs_diff_prediction_over_peak": float(
                np.abs(ep[np.repeat(sel, int(rate))] - dp[dsel]).max()
            )
            / peak_d,
        }
    except Exception as exc:  # noqa: BLE001 - the run's own clean step is optional
        out["online_vs_run_clean"] = {"error": f"{type(exc).__name__}: {exc}"}

    # -- low-latency cost, on seconds neither gate touched
    # (the last `context` s are left out: there the exact output tapers to the segment's end,
    # which the low-latency mode cannot foresee: reported apart)
    context = int(exact["lookahead_context"])
    ungated = np.array([s not in exact["_gated"] and s not in low["_gated"] for s in seconds])
    tail = seconds >= end - context
    both = ungated & ~tail
    power = (ep_s**2).sum(axis=1)
    err = ((lp_s - ep_s) ** 2).sum(axis=1)
    pw, er, gps = power[both], err[both], seconds[both]
    glitch = pw >= args.glitch_factor * np.median(pw)
    worst = np.argsort(er)[::-1][:5]
    out["low_latency_vs_exact"] = {
        "seconds_compared": int(both.sum()),
        "seconds_gated_excluded": int((~ungated).sum()),
        "seconds_at_the_end_excluded": int(tail.sum()),
        "prediction_power_right": 1 - er.sum() / pw.sum(),
        "end_error_over_compared_power": float(err[ungated & tail].sum() / pw.sum()),
        "glitch_factor": args.glitch_factor,
        "glitch_seconds": int(glitch.sum()),
        "glitch_power_share": float(pw[glitch].sum() / pw.sum()),
        "prediction_power_right_glitch_seconds": 1 - er[glitch].sum() / pw[glitch].sum()
        if glitch.any()
        else None,
        "prediction_power_right_other_seconds": 1 - er[~glitch].sum() / pw[~glitch].sum(),
        "max_abs_diff_over_peak": float(np.abs(lp_s[both] - ep_s[both]).max())
        / float(np.abs(ep_s[both]).max()),
        "worst_seconds": [
            {
                "gps": int(gps[i]),
                "error_share_of_total_power": float(er[i] / pw.sum()),
                "power_over_median": float(pw[i] / np.median(pw)),
                "error_over_own_power": float(er[i] / pw[i]) if pw[i] else None,
            }
            for i in worst
        ],
    }
    return out


def fmt_q(d: dict, keys=("p50", "p99", "max"), digits=3) -> str:
    if not d.get("n"):
        return "n/a"
    return " / ".join(f"{d[k]:.{digits}g}" for k in keys)


def table(rows, checks) -> str:
    exact, low = rows
    lines = [
        f"| stream, {exact['seconds_in']} s at {exact['speed']:g}x real time, 1 s GWF | "
        f"exact | low-latency ({low['lookahead_config']} s) |",
        "|---|---|---|",
    ]

    def add(name, f):
        lines.append(f"| {name} | {f(exact)} | {f(low)} |")

    add("look-ahead, data s (median)", lambda r: f"{r['lookahead_data_s']:.3g}")
    add("added latency p50 / p99 / max, s", lambda r: fmt_q(r["latency_s"]))
    add("latency from own file p50 / p99 / max, s (wall)", lambda r: fmt_q(r["latency_total_s"]))
    add(
        "compute per increment p50 / p99 / mean / max, ms",
        lambda r: fmt_q(r["compute_ms"], ("p50", "p99", "mean", "max")),
    )
    add(
        "processing speed, x real time (s / compute)",
        lambda r: f"{r['speed_x_real_time_compute']:.0f}",
    )
    add(
        "service thread CPU per s of data (polling, I/O included), ms",
        lambda r: f"{1e3 * r['service_cpu_s'] / r['seconds_out']:.0f}",
    )
    add(
        "cleaning applied / gate disabled",
        lambda r: (
            f"{100 * r['cleaning_applied_fraction']:.1f} % / "
            f"{100 * r['cleaning_disabled_fraction']:.1f} %"
        ),
    )
    add("provisional seconds", lambda r: f"{100 * r['provisional_fraction']:.1f} %")
    add(
        "seconds in / out / gaps", lambda r: f"{r['seconds_in']} / {r['seconds_out']} / {r['gaps']}"
    )
    ll = checks["low_latency_vs_exact"]
    oo = checks["online_vs_offline"]
    lines.append(
        f"| prediction power right: all / glitch seconds ({ll['glitch_seconds']} s with >= "
        f"{ll['glitch_factor']:g}x the median power, {100 * ll['glitch_power_share']:.0f} % of "
        f"it) | 1 (reference) | "
        f"1 - {1 - ll['prediction_power_right']:.1e} / "
        f"1 - {1 - ll['prediction_power_right_glitch_seconds']:.1e} |"
    )
    lines.append(
        f"| low-latency error in the last {exact['lookahead_context']} s (segment end), share of "
        f"the power | 0 | {ll['end_error_over_compared_power']:.1e} |"
    )
    lines.append(
        f"| online == offline, max abs diff / max prediction | "
        f"{oo['max_abs_diff_prediction_over_peak']:.1e} | provisional by design |"
    )
    add("load average before -> after", lambda r: f"{r['load_before'][0]} -> {r['load_after'][0]}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="demo-run")
    parser.add_argument("--start", type=int, default=None, help="GPS (default: the run's first)")
    parser.add_argument("--duration", type=int, default=600, help="s replayed per mode")
    parser.add_argument("--speed", type=float, default=1.0, help="x real time (> 0)")
    parser.add_argument("--lookahead", type=int, default=2, help="s, the low-latency mode's")
    parser.add_argument(
        "--glitch-factor",
        type=float,
        default=4.0,
        help="glitch seconds: prediction power >= this x the median second's",
    )
    parser.add_argument("--output", default="bench-stream.json")
    parser.add_argument("--keep", default=None, help="keep the watched and output dirs here")
    args = parser.parse_args()
    if args.speed <= 0:
        parser.error("--speed must be > 0: latency needs a paced stream")
    t_total = time.perf_counter()

    from gwtwin.data.files import find_frames
    from gwtwin.models import TwinModel

    run = Path(args.run_dir)
    result = json.loads((run / "train" / "result.json").read_text())
    model = TwinModel.load(result["model_uri"], tracking_uri=result["tracking_uri"])
    files = find_frames(run / "simulation" / "frames")
    start = args.start if args.start is not None else files[0].start_ns // 1_000_000_000
    span = (start, start + args.duration)
    if args.keep:
        workdir = Path(args.keep)
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    print(
        f"replaying GPS [{span[0]}, {span[1]}) at {args.speed:g}x real time per mode "
        f"({args.duration / args.speed / 60:.1f} min each); {os.cpu_count()} CPUs, load "
        f"{_load()}",
        flush=True,
    )
    try:
        rows = [
            run_mode("exact", args, result, model, span, workdir, None),
            run_mode(
                f"low-latency {args.lookahead} s",
                args,
                result,
                model,
                span,
                workdir,
                args.lookahead,
            ),
        ]
        checks = compare(rows, args, model, span, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    exact, low = rows
    goals = {
        "latency_p99_le_1s": {
            r["mode"]: r["latency_s"].get("p99", np.inf) <= LATENCY_GOAL for r in rows
        },
        "compute_p99_le_50ms": {
            r["mode"]: r["compute_ms"].get("p99", np.inf) <= COMPUTE_GOAL * 1e3 for r in rows
        },
        "online_equals_offline": checks["online_vs_offline"]["max_abs_diff_prediction_over_peak"]
        <= BOUND,
    }
    report = {
        "run_dir": str(run),
        "model": result["model_uri"],
        "span": list(span),
        "speed": args.speed,
        "cpus": os.cpu_count(),
        "modes": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
        "checks": checks,
        "goals": goals,
        "max_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "runtime_s": time.perf_counter() - t_total,
    }
    print()
    print(table(rows, checks))
    print()
    for r in rows:
        p99 = r["latency_s"].get("p99", float("nan"))
        c99 = r["compute_ms"].get("p99", float("nan"))
        print(
            f"goal {r['mode']}: p99 added latency {p99:.3f} s <= {LATENCY_GOAL} s beyond the "
            f"look-ahead: {'PASS' if p99 <= LATENCY_GOAL else 'FAIL'}; p99 compute {c99:.1f} ms "
            f"<= {COMPUTE_GOAL * 1e3:.0f} ms per increment: "
            f"{'PASS' if c99 <= COMPUTE_GOAL * 1e3 else 'FAIL'} "
            "(DeepClean online: ~1-2 s latency, ~200 ms compute)"
        )
    oo = checks["online_vs_offline"]
    print(
        f"online == offline (exact mode vs clean_frames float64 over the same span, "
        f"{oo['seconds_compared']} s): {oo['max_abs_diff_prediction_over_peak']:.2e} of the "
        f"prediction's peak ({'PASS' if goals['online_equals_offline'] else 'FAIL'} at {BOUND:g})"
    )
    rc = checks["online_vs_run_clean"]
    if "error" not in rc:
        print(
            f"  against {rc['reference']}: {rc['max_abs_diff_prediction_over_peak']:.2e} over "
            f"GPS {rc['span']}"
        )
    print(
        f"processing speed (s of data / compute): exact {exact['speed_x_real_time_compute']:.0f}x, "
        f"low-latency {low['speed_x_real_time_compute']:.0f}x real time; service CPU: "
        f"{exact['speed_x_real_time_cpu']:.0f}x / {low['speed_x_real_time_cpu']:.0f}x "
        "(includes idle polling of the watched directory)"
    )
    print(f"runtime {report['runtime_s']:.0f} s; load {_load()}")
    Path(args.output).write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
