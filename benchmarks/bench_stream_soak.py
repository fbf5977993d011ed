"""Soak of ``gwtwin stream``: over an hour of stream with every fault kind and two model swaps.

Takes a run directory of ``gwtwin run`` (default ``demo-run``) and replays its simulation frames
``--loops`` times (the demo's 2048 s twice: 4096 s, one contiguous stream) as fast as possible
(replay speed 0) into a temporary watched directory, 1 s GWF files holding the strain and the
model's witnesses, with faults injected (:class:`~gwtwin.stream.replay.Fault`), while a
:class:`~gwtwin.stream.service.StreamService` follows ``models:/NAME@production`` in a registry
of its own:

- the registry is brand new (sqlite in a temporary directory; the run's registry is only read):
  the run's model is loaded and logged three times with :func:`gwtwin.train.tracking.log_twin`
  (versions 1, 2, 3: the same weights), ``production`` is set on v1, and a background thread
  moves it to v2 and then v3 (:func:`~gwtwin.train.tracking.promote`) when the service's
  ``state.json`` ``next`` passes 1/3 and 2/3 of the stream; ``model_poll`` is ``--model-poll``;
- faults, placed at fixed fractions of the stream and away from the swaps: drop (one right
  after the loop boundary, so a segment starts there), delay beyond the wait, delay within the
  wait, corrupt, truncate, NaN, missing channel and rate change on witnesses, and on the strain
  channel a rate change (raw pass-through), NaN (kept NaN) and a missing strain (a gap).

**Backpressure.**  Replayed as fast as possible the source runs far ahead of the service, and
a delay fault (wall seconds) would then arrive long before the service looks for it: no gap,
nothing tested.  So the replay's clock (injectable) holds it at most ``--lead`` s of data
beyond what the service needs next (``state.json`` ``next`` + the model's look-ahead), and
while a delayed file is still held back it lets one file appear per wall second, as a DAQ would
while the service waits: delays then mean against ``wait`` what they mean live.
``--no-backpressure`` replays unthrottled (the delay outcomes are then not checked).

Summary (printed and written to ``--output``): seconds in (replayed), out (written), accounted
as gaps with their reasons, each fault with the outcome expected and found, the swaps and their
GPS, refusals, latency and compute, duplicated seconds, the service's throughput and memory over
the run, and lost seconds = in - out - gap-accounted, which must be 0.  Checks, any failure
exiting non-zero: nothing lost or duplicated, nothing written inside a gap, every fault's
expected outcome, two swaps to v2 and v3, the GWF history (``frame_history(path)
["gwtwin-model"]``) of ``--history-samples`` frames (and every frame next to a swap) naming the
version the log says cleaned it, and, since the versions share weights, the output around each
swap equal to offline cleaning (float64) of the same data to ``1e-12`` of the prediction's peak
on the seconds the gate left on.

    .venv/bin/python benchmarks/bench_stream_soak.py [--run-dir demo-run] [--loops 2]
        [--duration S] [--wait 5] [--model-poll 0.5] [--output bench-stream-soak.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

BOUND = 1e-12
ALIAS = "production"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _next(state: Path, default: int) -> int:
    try:
        return int(json.loads(state.read_text())["next"])
    except (OSError, ValueError, KeyError):
        return default


# -- the registry ------------------------------------------------------------------------------


def make_registry(twin, name: str, directory: Path, versions: int = 3) -> str:
    """A new sqlite registry in ``directory`` holding ``twin`` as versions 1..``versions``."""
    from gwtwin.train import tracking

    uri = f"sqlite:///{directory / 'mlflow.db'}"
    experiment = tracking.ensure_experiment(
        uri, "gwtwin-stream-soak", tracking.artifact_location_for(directory)
    )
    client = tracking.client(uri)
    for v in range(1, versions + 1):
        run_id = client.create_run(experiment, run_name=f"soak-v{v}").info.run_id
        info = tracking.log_twin(
            twin, run_id=run_id, tracking_uri=uri, registered_model_name=name, alias=None
        )
        assert info["version"] == v, info
    tracking.promote(name, 1, ALIAS, uri)
    return uri


# -- faults ------------------------------------------------------------------------------------


def plan_faults(start: int, loop: int, loops: int, strain: str, witnesses: list[str], wait):
    """Faults at fixed fractions of the stream (and one after the first loop boundary), with
    what each must lead to: ``(Fault kwargs, expected outcome)``."""
    total = loop * loops
    w = witnesses
    within, beyond = round(0.4 * wait, 3), wait + 5.0
    table = [
        (0.050, "drop", {}, "gap"),
        (0.075, "delay", {"delay": beyond}, "gap+late"),
        (0.100, "delay", {"delay": within}, "read"),
        (0.125, "corrupt", {}, "corrupt"),
        (0.150, "truncate", {}, "corrupt"),
        (0.175, "nan", {"channel": w[0]}, "witness"),
        (0.200, "missing_channel", {"channel": w[1 % len(w)]}, "witness"),
        (0.225, "rate_change", {"channel": w[2 % len(w)]}, "witness"),
        (0.250, "rate_change", {"channel": strain}, "passthrough"),
        # the first swap, near 1/3, in [0.28, 0.42] without faults
        (0.450, "nan", {"channel": strain}, "strain_nan"),
        (0.550, "corrupt", {}, "corrupt"),
        (0.575, "missing_channel", {"channel": strain}, "strain_gap"),
        (0.600, "rate_change", {"channel": w[3 % len(w)]}, "witness"),
        # the second swap, near 2/3, in [0.62, 0.72] without faults
        (0.750, "delay", {"delay": within}, "read"),
        (0.775, "delay", {"delay": beyond}, "gap+late"),
        (0.800, "truncate", {}, "corrupt"),
        (0.825, "drop", {}, "gap"),
        (0.850, "rate_change", {"channel": strain}, "passthrough"),
        (0.875, "nan", {"channel": w[1 % len(w)]}, "witness"),
        (0.900, "missing_channel", {"channel": w[2 % len(w)]}, "witness"),
    ]
    out = [({"kind": k, "gps": start + int(f * total), **kw}, why) for f, k, kw, why in table]
    if loops > 1:  # a segment starts right after the loop boundary (the data jump there)
        out.append(({"kind": "drop", "gps": start + loop + 2}, "gap"))
    return sorted(out, key=lambda x: x[0]["gps"])


# -- backpressure ------------------------------------------------------------------------------


class Backpressure:
    """The replay's clock: holds the replay ``lead`` s of data beyond what the service needs
    (module docstring); while a delayed file is held back, one file per wall second."""

    def __init__(
        self,
        manifest: Path,
        state: Path,
        start: int,
        context: int,
        lead: int,
        delayed: set[int],
        stall: float,
        stop: threading.Event,
    ):
        self.manifest, self.state = manifest, state
        self.start, self.context, self.lead = start, context, lead
        self.delayed, self.stall, self.stop = delayed, stall, stop
        self.published: set[int] = set()
        self.frontier = start
        self.last_pub = time.monotonic()
        self._fh = None
        self._buf = ""
        self._nxt, self._nxt_since = start, time.monotonic()
        self.releases = 0
        self.held_s = 0.0

    def _read(self) -> None:
        if self._fh is None:
            if not self.manifest.exists():
                return
            self._fh = self.manifest.open()
        self._buf += self._fh.read()
        *lines, self._buf = self._buf.split("\n")
        for line in lines:
            rec = json.loads(line)
            if rec["path"] is not None:
                self.published.add(int(rec["start"]))
                self.frontier = max(self.frontier, int(rec["end"]))
                self.last_pub = time.monotonic()

    def _pending_delay(self) -> bool:
        return any(f <= self.frontier and f not in self.published for f in self.delayed)

    def __call__(self) -> float:
        t0 = time.monotonic()
        while True:
            self._read()
            now = time.monotonic()
            if self.stop.is_set():
                break
            if self._pending_delay():
                if now - self.last_pub >= 1.0:
                    break
            else:
                nxt = _next(self.state, self.start)
                if nxt != self._nxt:
                    self._nxt, self._nxt_since = nxt, now
                if self.frontier - (nxt + self.context) <= self.lead:
                    break
                if now - self._nxt_since > self.stall:
                    self.releases += 1
                    self._nxt_since = now
                    break
            time.sleep(0.005)
        self.held_s += time.monotonic() - t0
        return time.monotonic()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


# -- the alias mover ---------------------------------------------------------------------------


def mover(name, uri, state: Path, start: int, total: int, done: threading.Event, log: dict):
    """Move ``production`` to v2 and v3 as ``next`` passes 1/3 and 2/3; sample memory."""
    from gwtwin.train.tracking import promote

    targets = [(start + total // 3, 2), (start + 2 * total // 3, 3)]
    last_rss = 0.0
    while not done.is_set():
        nxt = _next(state, start)
        if targets and nxt >= targets[0][0]:
            at, version = targets.pop(0)
            promote(name, version, ALIAS, uri)
            log["promotions"].append({"version": version, "next": nxt, "wall": time.time()})
        now = time.monotonic()
        if now - last_rss >= 1.0:
            log["rss"].append((nxt, _rss_mb()))
            last_rss = now
        done.wait(0.1)


# -- analysis ----------------------------------------------------------------------------------


def _median(values, scale=1.0):
    v = [x for x in values if x is not None]
    return float(np.median(v) * scale) if v else None


def _overlap(span, a, b) -> bool:
    return span[0] < b and a < span[1]


def _seconds(span) -> set[int]:
    return set(range(int(np.floor(span[0])), int(np.ceil(span[1]))))


def fault_outcomes(applied, planned, records, out_seconds) -> list[dict]:
    """Each applied fault with the outcome expected and the one found in the log."""
    expected = {(p["kind"], p["gps"]): why for p, why in planned}
    events = [
        r for r in records if r["kind"] in ("gap", "corrupt", "strain_bad", "witness", "late")
    ]
    by_start = {r["start"]: r for r in records if r["kind"] == "second"}
    rows = []
    for f in applied:
        a, b = f["span"]
        want = expected[(f["kind"], f["gps"])]
        hit = [e for e in events if _overlap(e["span"], a, b)]
        kinds = sorted({e["kind"] for e in hit})
        written = [s for s in range(a, b) if s in out_seconds]
        bits = set()
        for s in written:
            bits.update(k for k, v in by_start[s]["bits"].items() if v)
        whole = len(written) == b - a
        ok = {
            "gap": kinds == ["gap"] and not written,
            "gap+late": kinds == ["gap", "late"] and not written,
            "read": not kinds and whole,
            "corrupt": kinds == ["corrupt"] and not written,
            "witness": kinds == ["witness"]
            and any(e.get("channel") == f["channel"] for e in hit)
            and whole
            and "WITNESS_BAD" in bits,
            "passthrough": kinds == ["strain_bad"] and whole and "RAW_PASSTHROUGH" in bits,
            "strain_nan": not kinds and whole and "STRAIN_BAD" in bits,
            "strain_gap": kinds == ["strain_bad"] and not written,
        }[want]
        rows.append(
            {
                "kind": f["kind"],
                "gps": f["gps"],
                "channel": f["channel"],
                "span": [a, b],
                "expected": want,
                "events": kinds,
                "written": len(written),
                "bits": sorted(bits),
                "reason": "; ".join(e.get("reason", "") for e in hit if e["kind"] != "late")[:160],
                "ok": bool(ok),
            }
        )
    return rows


def history_check(out: Path, seconds, swaps, n: int) -> dict:
    from gwtwin.data.frames import frame_history

    labels: dict[str, set[str]] = {}
    for r in seconds:
        labels.setdefault(r["frame"], set()).add(r["model"])
    frames = sorted(labels)
    near = {r["frame"] for r in seconds for s in swaps if abs(r["start"] - s["at"]) <= 2}
    sample = sorted(set(random.Random(0).sample(frames, min(n, len(frames)))) | near)
    bad = []
    for frame in sample:
        got = frame_history(out / frame).get("gwtwin-model")
        want = ", ".join(sorted(labels[frame]))
        if got != want:
            bad.append({"frame": frame, "history": got, "log": want})
    return {"frames_checked": len(sample), "near_swaps": len(near), "mismatches": bad}


def timeline_check(seconds, swaps, first_label) -> dict:
    """Every second cleaned by the version the swaps say was running."""
    edges = sorted((s["at"], s["new"]) for s in swaps)
    wrong = 0
    for r in seconds:
        label = first_label
        for at, new in edges:
            if r["start"] >= at:
                label = new
        wrong += r["model"] != label
    return {"seconds_with_another_version": wrong}


def seamless_check(args, twin, out, records, swaps, faults, span, loop, workdir) -> list[dict]:
    """The output around each swap against offline cleaning of the same data (same weights)."""
    from gwtwin.data import read
    from gwtwin.data.channels import cleaned_channel, prediction_channel
    from gwtwin.infer.clean import clean_frames, load_clean_config

    strain = twin.spec.strain_channel
    names = [cleaned_channel(strain), prediction_channel(strain)]
    start, end = span
    half, pad = 30, 60
    segments, seg = [], None
    for r in records:
        if r["kind"] == "segment":
            seg = r["gps"]
        elif r["kind"] == "segment_end" and seg is not None:
            segments.append((seg, r["gps"]))
            seg = None
    gated = {
        r["start"] for r in records if r["kind"] == "second" and r["bits"].get("CLEANING_DISABLED")
    }
    rows = []
    for i, s in enumerate(swaps):
        at = int(s["at"])
        lo, hi = at - half - pad, at + half + pad
        why = None
        if not any(a <= lo and hi <= b for a, b in segments):
            why = "the comparison span is not inside one segment"
        elif (lo - start) // loop != (hi - 1 - start) // loop:
            why = "the comparison span straddles a loop boundary"
        elif any(lo - 1 <= f["gps"] < hi + 1 for f, _ in faults):
            why = "a fault lies in the comparison span"
        if why:
            rows.append({"swap": s["new"], "at": at, "skipped": why})
            continue
        shift = (lo - start) // loop * loop
        config = load_clean_config(
            {
                "start": lo - shift,
                "end": hi - shift,
                "precision": "float64",
                "attribute": False,
                "images": 0,
                "tensorboard": False,
            }
        )
        off = workdir / f"offline-swap{i}"
        clean_frames(
            Path(args.run_dir) / "simulation" / "frames",
            off,
            config,
            model=twin,
            log=lambda m: None,
        )
        a, b = at - half, at + half
        ref = read(off / "frames", names, a - shift, b - shift).block
        got = read(out / "frames", names, a, b).block
        rate = int(got.sample_rate)
        keep = np.repeat([t not in gated for t in range(a, b)], rate)
        peak = float(ref.data[1].numpy()[keep].__abs__().max())
        diff = float(np.abs(got.data[1].numpy()[keep] - ref.data[1].numpy()[keep]).max())
        rows.append(
            {
                "swap": s["new"],
                "at": at,
                "span": [a, b],
                "seconds_compared": int(keep.sum() // rate),
                "max_abs_diff_prediction_over_peak": diff / peak,
                "ok": diff / peak <= BOUND,
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="demo-run")
    parser.add_argument("--loops", type=int, default=2)
    parser.add_argument("--duration", type=int, default=None, help="s of source (default all)")
    parser.add_argument("--wait", type=float, default=5.0, help="the service's wait, s")
    parser.add_argument("--model-poll", type=float, default=0.5)
    parser.add_argument("--lead", type=int, default=4, help="backpressure: s ahead of need")
    parser.add_argument("--no-backpressure", action="store_true")
    parser.add_argument("--history-samples", type=int, default=50)
    parser.add_argument("--output", default="bench-stream-soak.json")
    parser.add_argument("--keep", default=None, help="keep the registry and stream dirs here")
    args = parser.parse_args()
    t_total = time.perf_counter()
    logging.getLogger("mlflow").setLevel(logging.ERROR)

    from gwtwin.data.files import find_frames
    from gwtwin.models import TwinModel
    from gwtwin.stream.config import load_stream_config
    from gwtwin.stream.replay import ReplayConfig, replay_in_thread
    from gwtwin.stream.service import StreamService
    from gwtwin.stream.status import read_log, stream_status

    run = Path(args.run_dir)
    result = json.loads((run / "train" / "result.json").read_text())
    twin = TwinModel.load(result["model_uri"], tracking_uri=result["tracking_uri"])
    name = result.get("registered_model_name") or "gwtwin-soak"
    strain, witnesses = twin.spec.strain_channel, list(twin.channels)
    files = find_frames(run / "simulation" / "frames")
    start = files[0].start_ns // 1_000_000_000
    loop = args.duration or (max(f.end_ns for f in files) // 1_000_000_000 - start)
    total = loop * args.loops
    span = (start, start + total)
    if args.keep:
        workdir = Path(args.keep)
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="bench-stream-soak-"))
    watch, out = workdir / "watch", workdir / "out"
    print(
        f"soak: GPS [{span[0]}, {span[1]}) = {total} s ({args.loops} x {loop} s) at replay "
        f"speed 0{'' if args.no_backpressure else f' with backpressure (lead {args.lead} s)'}; "
        f"{os.cpu_count()} CPUs, load {_load()}",
        flush=True,
    )
    try:
        t0 = time.perf_counter()
        uri = make_registry(twin, name, workdir / "registry")
        registry_s = time.perf_counter() - t0
        planned = plan_faults(start, loop, args.loops, strain, witnesses, args.wait)
        config = load_stream_config(
            {
                "model": f"models:/{name}@{ALIAS}",
                "tracking_uri": uri,
                "model_poll": args.model_poll,
                "start": start,
                "end": span[1],
                "wait": args.wait,
                "idle_timeout": 10 * args.wait + 60,
            }
        )
        logs: list[str] = []
        service = StreamService(watch, out, config, log=logs.append)
        context = service.engine.latency_seconds
        stop, done = threading.Event(), threading.Event()
        manifest = workdir / "manifest.jsonl"
        clock = None
        if not args.no_backpressure:
            delayed = {int(p["gps"]) for p, _ in planned if p["kind"] == "delay"}
            clock = Backpressure(
                manifest,
                out / "state.json",
                start,
                context,
                args.lead,
                delayed,
                stall=3 * args.wait + 10,
                stop=stop,
            )
        replay_config = ReplayConfig(
            file_duration=1,
            speed=0,
            start=start,
            end=start + loop,
            loops=args.loops,
            channels=[strain, *witnesses],
            protect=[strain],
            faults=[p for p, _ in planned],
        )
        moves = {"promotions": [], "rss": []}
        mover_thread = threading.Thread(
            target=mover,
            args=(name, uri, out / "state.json", start, total, done, moves),
            daemon=True,
        )
        kw = {"clock": clock} if clock is not None else {}
        load_before = _load()
        t_stream, cpu0 = time.perf_counter(), time.thread_time()
        thread, replayed = replay_in_thread(
            run / "simulation" / "frames",
            watch,
            replay_config,
            manifest=manifest,
            log=logs.append,
            stop=stop,
            **kw,
        )
        mover_thread.start()
        try:
            summary = service.run()
        finally:
            stop.set()
            done.set()
            thread.join(60)
            mover_thread.join(10)
            if clock is not None:
                clock.close()
        stream_s, cpu = time.perf_counter() - t_stream, time.thread_time() - cpu0
        load_after = _load()
        if "error" in replayed:
            raise replayed["error"]

        # -- accounting
        records = read_log(out)
        status = stream_status(out)
        seconds = [r for r in records if r["kind"] == "second"]
        out_seconds = [r["start"] for r in seconds]
        out_set = set(out_seconds)
        whole = set(range(*span))
        hard = set().union(
            *[_seconds(r["span"]) for r in records if r["kind"] in ("gap", "corrupt")]
        )
        strain_bad = [r for r in records if r["kind"] == "strain_bad"]
        soft = set().union(*[_seconds(r["span"]) for r in strain_bad])
        accounted = (hard | soft) - out_set
        lost = whole - out_set - accounted
        gaps = [
            {
                "kind": r["kind"],
                "span": r["span"],
                "reason": r["reason"],
                "written": len(_seconds(r["span"]) & out_set),
            }
            for r in records
            if r["kind"] in ("gap", "corrupt", "strain_bad")
        ]
        swaps = [r for r in records if r["kind"] == "swap"]
        refused = [r for r in records if r["kind"] == "refused"]
        outcomes = fault_outcomes(replayed["faults"], planned, records, out_set)
        first_label = seconds[0]["model"] if seconds else None
        history = history_check(out, seconds, swaps, args.history_samples)
        timeline = timeline_check(seconds, swaps, first_label)
        t_seam = time.perf_counter()
        seamless = seamless_check(args, twin, out, records, swaps, planned, span, loop, workdir)
        seamless_s = time.perf_counter() - t_seam

        # -- throughput and memory over the run (quarters of the stream)
        quarters = []
        for q in range(4):
            a, b = start + q * total // 4, start + (q + 1) * total // 4
            rs = [r for r in seconds if a <= r["start"] < b]
            if len(rs) > 1:
                wall = rs[-1]["wall"] - rs[0]["wall"]
                quarters.append(
                    {
                        "span": [a, b],
                        "seconds": len(rs),
                        "x_real_time": len(rs) / wall if wall > 0 else None,
                        "compute_p50_ms": _median([r.get("compute") for r in rs], 1e3),
                        "latency_p50_s": _median([r.get("latency") for r in rs]),
                    }
                )
        rss = moves["rss"]
        memory = {
            "rss_MB_first": rss[0][1] if rss else None,
            "rss_MB_at_quarter": [
                next((m for n, m in rss if n >= start + q * total // 4), None) for q in (1, 2, 3)
            ],
            "rss_MB_last": rss[-1][1] if rss else None,
            "max_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        checks = {
            "lost_seconds_zero": not lost,
            "no_duplicates": status["duplicated_seconds"] == 0,
            "nothing_written_in_a_gap": not (hard & out_set),
            "nothing_written_outside": not (out_set - whole),
            "strain_bad_all_or_nothing": all(
                len(_seconds(r["span"]) & out_set) in (0, len(_seconds(r["span"])))
                for r in strain_bad
            ),
            "faults_as_expected": all(
                o["ok"] for o in outcomes if args.no_backpressure is False or o["kind"] != "delay"
            ),
            "every_fault_applied": len(replayed["faults"]) == len(planned),
            "two_swaps": [s["new"] for s in swaps] == [f"{name} v2", f"{name} v3"],
            "no_refusals": not refused,
            "history_names_the_version": not history["mismatches"],
            "timeline_matches_swaps": timeline["seconds_with_another_version"] == 0,
            "swap_seamless": all(r.get("ok", True) for r in seamless),
        }
        report = {
            "run_dir": str(run),
            "span": list(span),
            "loops": args.loops,
            "replay": {k: v for k, v in replayed.items() if k not in ("faults", "channels")},
            "backpressure": None
            if clock is None
            else {"lead_s": args.lead, "releases": clock.releases, "held_s": clock.held_s},
            "wait_s": args.wait,
            "model_poll_s": args.model_poll,
            "seconds_in": replayed["seconds"],
            "seconds_out": len(out_seconds),
            "seconds_gap_accounted": len(accounted),
            "lost_seconds": len(whole) - len(out_set) - len(accounted),
            "lost": sorted(lost)[:20],
            "duplicated_seconds": status["duplicated_seconds"],
            "gaps": gaps,
            "faults": outcomes,
            "swaps": [{"at": s["at"], "old": s["old"], "new": s["new"]} for s in swaps],
            "promotions": moves["promotions"],
            "refused": refused,
            "latency_s": status["latency"],
            "latency_total_s": status["latency_total"],
            "compute_ms": {k: (v * 1e3 if k != "n" else v) for k, v in status["compute"].items()},
            "cleaning_applied_fraction": status["cleaning_applied_fraction"],
            "cleaning_disabled_fraction": status["cleaning_disabled_fraction"],
            "witness_problems": len(status["witness_problems"]),
            "problems": status["problems"],
            "history": history,
            "timeline": timeline,
            "swap_seamless": seamless,
            "quarters": quarters,
            "memory": memory,
            "service": summary,
            "stream_wall_s": stream_s,
            "service_cpu_s": cpu,
            "x_real_time_wall": total / stream_s,
            "x_real_time_cpu": len(out_seconds) / cpu,
            "registry_s": registry_s,
            "seamless_check_s": seamless_s,
            "load_before": load_before,
            "load_after": load_after,
            "checks": checks,
        }
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report["runtime_s"] = time.perf_counter() - t_total
    print_report(report)
    Path(args.output).write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {args.output}")
    failed = [k for k, v in checks.items() if not v]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    assert report["lost_seconds"] == 0
    return 0


def print_report(r: dict) -> None:
    lat, comp = r["latency_s"], r["compute_ms"]
    print()
    print(f"| soak, {r['seconds_in']} s ({r['loops']} loops), replay speed 0 | |")
    print("|---|---|")
    rows = [
        ("seconds in (replayed) / out (written)", f"{r['seconds_in']} / {r['seconds_out']}"),
        ("seconds accounted as gaps", f"{r['seconds_gap_accounted']} ({len(r['gaps'])} events)"),
        ("lost seconds (in - out - gaps)", f"{r['lost_seconds']}"),
        ("duplicated seconds", f"{r['duplicated_seconds']}"),
        (
            "faults injected / as expected",
            f"{len(r['faults'])} / {sum(f['ok'] for f in r['faults'])}",
        ),
        ("swaps (GPS)", ", ".join(f"{s['new']} at {s['at']}" for s in r["swaps"]) or "none"),
        ("refusals", f"{len(r['refused'])}"),
        ("latency p50 / p99 / max, s", f"{lat['p50']:.3g} / {lat['p99']:.3g} / {lat['max']:.3g}"),
        (
            "compute p50 / p99 / max, ms",
            f"{comp['p50']:.3g} / {comp['p99']:.3g} / {comp['max']:.3g}",
        ),
        (
            "wall speed / service CPU, x real time",
            f"{r['x_real_time_wall']:.1f} / {r['x_real_time_cpu']:.1f}",
        ),
        (
            "throughput by quarter, x real time",
            " / ".join(f"{q['x_real_time']:.1f}" for q in r["quarters"]),
        ),
        (
            "compute p50 by quarter, ms",
            " / ".join(f"{q['compute_p50_ms']:.1f}" for q in r["quarters"]),
        ),
        (
            "RSS first / quarters / last, MB",
            f"{r['memory']['rss_MB_first']:.0f} / "
            + " / ".join(f"{m:.0f}" for m in r["memory"]["rss_MB_at_quarter"] if m is not None)
            + f" / {r['memory']['rss_MB_last']:.0f}",
        ),
        (
            "history = log version",
            f"{r['history']['frames_checked']} frames, "
            f"{len(r['history']['mismatches'])} mismatches",
        ),
        (
            "swap seamless (vs offline)",
            ", ".join(
                f"{s['swap']}: {s['max_abs_diff_prediction_over_peak']:.1e}"
                if "skipped" not in s
                else f"{s['swap']}: skipped ({s['skipped']})"
                for s in r["swap_seamless"]
            )
            or "n/a",
        ),
        (
            "cleaning applied / gate disabled",
            f"{100 * r['cleaning_applied_fraction']:.1f} % / "
            f"{100 * r['cleaning_disabled_fraction']:.1f} %",
        ),
        ("load average before -> after", f"{r['load_before'][0]} -> {r['load_after'][0]}"),
    ]
    for k, v in rows:
        print(f"| {k} | {v} |")
    print()
    print("| fault | GPS | expected | log | written | ok |")
    print("|---|---|---|---|---|---|")
    for f in r["faults"]:
        what = f["kind"] + (f" {f['channel']}" if f["channel"] else "")
        print(
            f"| {what} | {f['gps']:.0f} | {f['expected']} | {', '.join(f['events']) or '-'} "
            f"{'[' + ','.join(f['bits']) + ']' if f['bits'] else ''} | {f['written']} | "
            f"{'yes' if f['ok'] else 'NO'} |"
        )
    print()
    for g in r["gaps"]:
        print(f"gap {g['kind']} GPS {g['span']} (written {g['written']}): {g['reason']}")
    print(f"promotions: {r['promotions']}")
    print(f"backpressure: {r['backpressure']}")
    print(f"checks: {json.dumps(r['checks'])}")
    print(f"runtime {r['runtime_s']:.0f} s (stream {r['stream_wall_s']:.0f} s); load {_load()}")


if __name__ == "__main__":
    sys.exit(main())
