"""The report section of ``gwtwin glitches``: strain glitches and their flag, from strain alone."""

from __future__ import annotations

import json
from pathlib import Path

from gwtwin.report.html import Report


def glitches_section(report: Report, run: Path) -> bool:
    """The section of a ``gwtwin glitches`` output: ``RUN/glitches.json`` (the report of that
    directory itself) or ``RUN/glitches/glitches.json`` (inside a run directory)."""
    from gwtwin.infer.strain_only import GLITCHES_FILE

    folder = next((d for d in (run, run / "glitches") if (d / GLITCHES_FILE).is_file()), None)
    if folder is None:
        return False
    info = json.loads((folder / GLITCHES_FILE).read_text())
    report.section("Strain glitches (no witness)")
    bits = info.get("dq_bits") or []
    report.paragraph(
        f"Glitches of {info['strain_channel']} found from strain alone over "
        f"{info['known_seconds']:g} s analysed"
        + (f" (GWOSC data-quality bits {', '.join(bits)} set)" if bits else "")
        + f"; each is flagged {info['flag']['name']}, as no witness channel was analysed."
    )
    report.metrics(
        {
            f"glitches (SNR >= {info['config']['snr_threshold']:g})": info["glitches"],
            "rate [1/h]": info["rate_per_hour"],
            "loudest SNR": info["max_snr"],
            "flag deadtime": info["flag"]["deadtime"],
        }
    )
    skipped = info.get("skipped") or []
    gaps = info.get("gaps") or []
    if skipped or gaps:
        report.table(
            [{"GPS span": str(s["segment"]), "why not analysed": s["reason"]} for s in skipped]
            + [{"GPS span": str(list(g)), "why not analysed": "no data (gap)"} for g in gaps],
            ["GPS span", "why not analysed"],
            caption="Time not analysed",
            table_id="not_analysed",
        )
    if (folder / "glitches.png").is_file():
        report.figure(folder / "glitches.png", "Strain glitches: time, frequency and SNR")
    links = {name: report.relative(folder / name) for name in (GLITCHES_FILE, "glitches.csv")}
    for files in info.get("flag_files", {}).values():
        for f in files:
            links[Path(f).name] = report.relative(folder / f)
    report.links(links)
    return True
