"""The report section of the online service: a stream's status page (``gwtwin stream status``
in the run report) and the check of the online cleaning against the offline one."""

from __future__ import annotations

import json
from pathlib import Path

from gwtwin.report.html import Report


def stream_section(report: Report, run: Path) -> bool:
    """The section of ``RUN/stream/summary.json`` (``gwtwin run`` step ``stream``) or of a
    stream output directory itself (``RUN/stream.jsonl``)."""
    from gwtwin.stream.status import stream_status

    summary_path = run / "stream" / "summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        status, out = summary["status"], run / "stream" / "out"
    elif (run / "stream.jsonl").is_file():
        summary, status, out = {}, stream_status(run), run
    else:
        return False
    report.section("Online service (gwtwin stream)")
    span = status["span"] or ["-", "-"]
    report.paragraph(
        f"{status['seconds']} s of cleaned strain written in 1 s frames over GPS "
        f"[{span[0]}, {span[1]}), each second once ({status['duplicated_seconds']} duplicated); "
        f"{len(status['gaps'])} gaps ({status['gap_seconds']:g} s)."
    )
    lat, tot, comp = status["latency"], status["latency_total"], status["compute"]
    metrics = {
        "added latency p50 [s]": lat.get("p50"),
        "added latency p99 [s]": lat.get("p99"),
        "latency incl. look-ahead p99 [s]": tot.get("p99"),
        "compute per increment p99 [ms]": (comp.get("p99") or 0) * 1e3 if comp.get("n") else None,
        "cleaning applied": status["cleaning_applied_fraction"],
        "held back by the safety gate": status["cleaning_disabled_fraction"],
    }
    if summary.get("offline"):
        metrics["online vs offline (relative)"] = summary["offline"]["relative"]
    report.metrics(metrics)
    rows = [{"model": m["model"], "GPS span": str(m["span"])} for m in status["models"]]
    rows += [
        {"model": f"refused: {r['model']}", "GPS span": r["reason"]} for r in status["refused"]
    ]
    if rows:
        report.table(rows, ["model", "GPS span"], caption="Models", table_id="stream_models")
    problems = [
        {"what": g["kind"], "GPS span": str(g["span"]), "reason": g["reason"]}
        for g in status["gaps"]
    ] + [
        {"what": f"witness {w['channel']}", "GPS span": str(w["span"]), "reason": w["reason"]}
        for w in status["witness_problems"]
    ]
    if problems:
        report.table(
            problems[:50],
            ["what", "GPS span", "reason"],
            caption="Faults",
            table_id="stream_faults",
        )
    links = {"stream.jsonl": report.relative(out / "stream.jsonl")}
    if summary_path.is_file():
        links["summary.json"] = report.relative(summary_path)
    report.links(links)
    return True
