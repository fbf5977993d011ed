"""``gwtwin stream status``: what a shift operator wants to know about a stream, from its log.

Reads ``stream.jsonl`` (:mod:`gwtwin.stream.writer`) and summarises: the GPS span written and
the seconds in it, gaps (count, seconds, reasons), per-second latency (file complete -> cleaned
frame written; and from the second's own file, which includes the model's look-ahead) and
compute time, p50/p99/max, the fraction of time cleaning was applied and the fraction the safety
gate held it back, the model versions with the spans they cleaned, swaps and refusals, witness
and strain problems, and the last second written with its age.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from gwtwin.errors import GwtwinError
from gwtwin.stream.writer import LOG_FILE


def read_log(output) -> list[dict]:
    """The records of ``output/stream.jsonl`` (a torn last line, from a live writer, skipped)."""
    path = Path(output) / LOG_FILE
    if not path.exists():
        raise GwtwinError(f"{path} does not exist: is {output} a gwtwin stream output directory?")
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def quantiles(values, scale: float = 1.0) -> dict:
    """``n, p50, p99, max, mean`` of the values that are not None (times ``scale``)."""
    v = np.asarray([x for x in values if x is not None], dtype=float) * scale
    if not v.size:
        return {"n": 0}
    return {
        "n": int(v.size),
        "p50": float(np.percentile(v, 50)),
        "p99": float(np.percentile(v, 99)),
        "max": float(v.max()),
        "mean": float(v.mean()),
    }


def _seconds_in(spans) -> float:
    return float(sum(b - a for a, b in spans))


def stream_status(output) -> dict:
    """The summary of a stream's log (module docstring)."""
    records = read_log(output)
    seconds = [r for r in records if r["kind"] == "second"]
    events = Counter(r["kind"] for r in records if r["kind"] != "second")
    starts = [r["start"] for r in seconds]
    dup = len(starts) - len(set(starts))
    applied = sum(_seconds_in(r["bits"].get("CLEANING_APPLIED", [])) for r in seconds)
    disabled = sum(_seconds_in(r["bits"].get("CLEANING_DISABLED", [])) for r in seconds)
    models: list[list] = []
    for r in seconds:
        if models and models[-1][0] == r["model"] and models[-1][2] == r["start"]:
            models[-1][2] = r["start"] + 1
        else:
            models.append([r["model"], r["start"], r["start"] + 1])
    gaps = [r for r in records if r["kind"] in ("gap", "corrupt", "strain_bad")]
    last = seconds[-1] if seconds else None
    n = len(seconds)
    return {
        "output": str(output),
        "span": [min(starts), max(starts) + 1] if starts else None,
        "seconds": n,
        "duplicated_seconds": dup,
        "gaps": [{"kind": g["kind"], "span": g["span"], "reason": g["reason"]} for g in gaps],
        "gap_seconds": float(sum(g["span"][1] - g["span"][0] for g in gaps)),
        "latency": quantiles(r.get("latency") for r in seconds),
        "latency_total": quantiles(r.get("latency_total") for r in seconds),
        "compute": quantiles(r.get("compute") for r in seconds),
        "cleaning_applied_fraction": applied / n if n else None,
        "cleaning_disabled_fraction": disabled / n if n else None,
        "provisional_fraction": sum(bool(r.get("provisional")) for r in seconds) / n if n else None,
        "models": [{"model": m, "span": [a, b]} for m, a, b in models],
        "swaps": [r for r in records if r["kind"] == "swap"],
        "refused": [r for r in records if r["kind"] == "refused"],
        "problems": dict(events),
        "witness_problems": [
            {"channel": r["channel"], "span": r["span"], "reason": r["reason"]}
            for r in records
            if r["kind"] == "witness"
        ],
        "last_second": last["start"] if last else None,
        "last_written_age": time.time() - last["wall"] if last else None,
        "stopped": bool(records) and records[-1]["kind"] == "stop",
    }


def format_status(status: dict) -> str:
    """The summary as a few lines of text."""

    def q(d, scale=1.0, unit="s"):
        if not d.get("n"):
            return "n/a"
        return (
            f"p50 {d['p50'] * scale:.3g} {unit}, p99 {d['p99'] * scale:.3g} {unit}, "
            f"max {d['max'] * scale:.3g} {unit}"
        )

    s = status
    span = f"GPS [{s['span'][0]}, {s['span'][1]})" if s["span"] else "nothing yet"
    lines = [
        f"{s['output']}: {s['seconds']} s written, {span}"
        + (f", {s['duplicated_seconds']} DUPLICATED" if s["duplicated_seconds"] else "")
        + ("; stopped" if s["stopped"] else "; running"),
        f"  latency (file complete -> frame written): {q(s['latency'])}",
        f"  latency from a second's own file (incl. look-ahead): {q(s['latency_total'])}",
        f"  compute per increment: {q(s['compute'], 1e3, 'ms')}",
    ]
    if s["seconds"]:
        lines.append(
            f"  cleaning applied {100 * s['cleaning_applied_fraction']:.1f} % of the time, held "
            f"back by the safety gate {100 * s['cleaning_disabled_fraction']:.1f} %"
        )
    for m in s["models"]:
        lines.append(f"  {m['model']}: GPS [{m['span'][0]}, {m['span'][1]})")
    lines.append(f"  gaps: {len(s['gaps'])} ({s['gap_seconds']:g} s)")
    for g in s["gaps"][:10]:
        lines.append(f"    {g['kind']} GPS [{g['span'][0]}, {g['span'][1]}): {g['reason']}")
    for w in s["witness_problems"][:10]:
        lines.append(f"    witness GPS [{w['span'][0]}, {w['span'][1]}): {w['reason']}")
    for r in s["refused"]:
        lines.append(f"  refused {r['model']}: {r['reason']}")
    if s["last_written_age"] is not None:
        lines.append(
            f"  last second GPS {s['last_second']}, written {s['last_written_age']:.1f} s ago"
        )
    return "\n".join(lines)
