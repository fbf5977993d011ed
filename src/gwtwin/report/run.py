"""The report of a run directory: one static HTML page with what each step left there.

Each section builder looks for its step's files and adds a section only when they exist, so the
report of a partial run shows what has been done. The run directory layout (``gwtwin run`` and
``make demo`` write it):

- ``simulation/`` (``summary.json``, ``catalogue.csv``), ``quicklook.png``: the scenario;
- ``triggers.h5``: Q-tile triggers per channel (``gwtwin triggers``);
- ``glitches/`` (or the directory itself): strain glitches and their flag from strain alone
  (``gwtwin glitches``, real data without witnesses);
- ``scan/``: channel selection (``channels.csv``, ``rounds.json``, ``plots/``, flags);
- ``train/``: training (``result.json``, the MLflow store, TensorBoard events);
- ``clean/``: cleaning and veto (``clean.json``, ``metadata.csv`` with each glitch's outcome and
  power change, flags, glitch images);
- ``evaluate/``: the cleaning scored against truth and from the data alone (``evaluate.json``,
  plots; per glitch, the improved / untouched / worsened shares and the outcome counts);
- ``stream/`` (or a ``gwtwin stream`` output itself): the online service's status
  (``stream.jsonl``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gwtwin.errors import GwtwinError
from gwtwin.report.cleaning import cleaning_section, evaluation_section
from gwtwin.report.glitches import glitches_section
from gwtwin.report.html import Report
from gwtwin.report.stream import stream_section

SectionBuilder = Callable[[Report, Path], bool]


def _scenario(report: Report, run: Path) -> bool:
    summary_path = run / "simulation" / "summary.json"
    if not summary_path.is_file():
        return False
    summary = json.loads(summary_path.read_text())
    report.section("Scenario")
    report.paragraph(
        f"Simulated interferometer: {summary['duration']:g} s, {len(summary['channels'])} "
        f"channels, written at {summary['speed_x_real_time']:g}x real time."
    )
    report.metrics({f"{k} events": v for k, v in summary["counts"].items()})
    quick = run / "quicklook.png"
    if quick.is_file():
        report.figure(quick, "Quick look: strain and witnesses around example glitches")
    report.table(
        summary["channels"],
        ["name", "rate", "unit", "role", "family"],
        caption="Channels (role: strain, coupled witness, redundant witness or decoy)",
        table_id="channels",
    )
    catalogue = run / "simulation" / "catalogue.csv"
    if (run / "simulation" / "catalogue.h5").is_file():
        from gwtwin.simulate.engine import read_catalogue

        table = read_catalogue(run / "simulation" / "catalogue.h5")
        columns = ["id", "family", "gps_peak", "duration", "channel", "snr", "frequency"]
        rows = [{c: row[c] for c in columns} for row in table if row["family"] != "decoy"]
        report.table(
            rows,
            columns,
            caption="Truth catalogue (strain glitches and injections; decoys omitted)",
            max_rows=300,
            table_id="catalogue",
        )
    report.links(
        {"catalogue.csv": report.relative(catalogue), "summary.json": report.relative(summary_path)}
    )
    return True


def _triggers(report: Report, run: Path) -> bool:
    path = run / "triggers.h5"
    if not path.is_file():
        return False
    from gwtwin.signal.triggers import read_triggers

    triggers = read_triggers(path)
    report.section("Triggers")
    live = triggers.segment[1] - triggers.segment[0]
    rows = []
    for name, table in triggers.tables.items():
        loud = table[table["snr"] >= 8] if len(table) else table
        rows.append(
            {
                "channel": name,
                "triggers": len(table),
                "SNR >= 8": len(loud),
                "rate SNR >= 8 (1/h)": len(loud) / live * 3600 if live > 0 else float("nan"),
                "loudest SNR": float(table["snr"].max()) if len(table) else float("nan"),
            }
        )
    report.paragraph(
        f"Q-tile triggers over GPS [{triggers.segment[0]:.0f}, {triggers.segment[1]:.0f}) "
        f"({live:.0f} s analysed)."
    )
    report.table(
        rows,
        ["channel", "triggers", "SNR >= 8", "rate SNR >= 8 (1/h)", "loudest SNR"],
        table_id="triggers",
    )
    strain = next(
        (c for c in triggers.channels if "hoft" in c.lower() or "strain" in c.lower()),
        triggers.channels[0],
    )
    png = _trigger_plot(triggers[strain], strain, report.directory / "_plots")
    report.figure(png, f"Triggers of {strain}: time, frequency and SNR")
    report.links({"triggers.h5": report.relative(path)})
    return True


def _trigger_plot(table, channel: str, folder: Path) -> Path:
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure  # no pyplot: no global figure state or backend

    folder.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    ax = fig.subplots()
    if len(table):
        t0 = np.floor(table["time"].min())
        sc = ax.scatter(
            table["time"] - t0,
            table["frequency"],
            c=table["snr"],
            s=np.clip(table["snr"], 4, 40),
            cmap="viridis",
            norm=LogNorm(vmin=5, vmax=max(10, float(table["snr"].max()))),
        )
        fig.colorbar(sc, ax=ax, label="SNR")
        ax.set_xlabel(f"time since GPS {t0:.0f} [s]")
    ax.set_yscale("log")
    ax.set_ylabel("frequency [Hz]")
    ax.set_title(channel)
    out = folder / f"triggers-{channel.replace(':', '_')}.png"
    fig.savefig(out, dpi=110)
    return out


def _selection(report: Report, run: Path) -> bool:
    scan = run / "scan"
    if not (scan / "channels.csv").is_file():
        return False
    from astropy.table import Table

    report.section("Channel selection")
    rounds = (
        json.loads((scan / "rounds.json").read_text()) if (scan / "rounds.json").is_file() else {}
    )
    selected = json.loads((scan / "selected_channels.json").read_text())
    names = [c["name"] for c in selected["channels"]]
    report.paragraph(
        f"Selected witnesses of {selected['strain_channel']}: {', '.join(names) or 'none'}. "
        f"{rounds.get('n_strain', '?')} strain triggers in {rounds.get('livetime', 0):.0f} s "
        "of live time; hierarchical rounds with Poisson significance (hveto's method), each "
        "channel checked against its time-slide background."
    )
    table = Table.read(scan / "channels.csv", format="csv")
    columns = [
        c
        for c in (
            "rank",
            "channel",
            "status",
            "round",
            "significance",
            "slide_background",
            "threshold",
            "window",
            "coincidence_fraction",
            "use_percentage",
            "iou",
            "median_delay",
            "redundant_of",
        )
        if c in table.colnames
    ]
    rows = [
        {c: (None if getattr(row[c], "mask", False) else row[c]) for c in columns} for row in table
    ]
    report.table(rows, columns, caption="Ranked channels", table_id="selection")
    captions = {
        "efficiency_deadtime.png": "Cumulative efficiency vs deadtime per round (guides at 1, 5, "
        "10, 20)",
        "significance.png": "Significance per channel",
        "delays.png": "Witness-to-strain delay histograms",
    }
    for name, caption in captions.items():
        if (scan / "plots" / name).is_file():
            report.figure(scan / "plots" / name, caption)
    report.links(
        {
            name: report.relative(scan / name)
            for name in (
                "channels.csv",
                "selected_channels.json",
                "rounds.json",
                "veto_segments.xml",
                "veto_segments.h5",
            )
            if (scan / name).is_file()
        }
    )
    return True


def _training(report: Report, run: Path) -> bool:
    path = run / "train" / "result.json"
    if not path.is_file():
        return False
    result = json.loads(path.read_text())
    report.section("Training")
    metrics = result.get("metrics", {})
    headline = {
        "excess power removed (validation glitch windows)": metrics.get(
            "val_removed_glitch", metrics.get("removed_glitch")
        ),
        "best validation loss": result.get("best_val_loss"),
        "epochs": result.get("epochs"),
        "training time [s]": result.get("train_seconds"),
        "windows / s": result.get("windows_per_second"),
        "parameters": result.get("n_parameters"),
    }
    report.metrics({k: v for k, v in headline.items() if v is not None})
    report.table(
        [{"metric": k, "value": v} for k, v in sorted(metrics.items())],
        ["metric", "value"],
        caption="Validation metrics logged to MLflow",
        table_id="training",
    )
    report.paragraph(
        f"Model {result.get('registered_model_name')} version {result.get('version')} "
        f"({result.get('model_uri')}); MLflow store {result.get('tracking_uri')}; open it with "
        f"`mlflow ui --backend-store-uri {result.get('tracking_uri')}` and TensorBoard with "
        f"`tensorboard --logdir {Path(result.get('workdir', '.')) / 'tensorboard'}`."
    )
    report.links({"result.json": report.relative(path)})
    return True


#: section builders, in page order
SECTIONS: list[SectionBuilder] = [
    _scenario,
    _triggers,
    glitches_section,
    _selection,
    _training,
    evaluation_section,
    cleaning_section,
    stream_section,
]


def build_report(run_dir: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Write the report of ``run_dir`` (default ``<run_dir>/report``); returns ``index.html``."""
    run = Path(run_dir)
    if not run.is_dir():
        raise GwtwinError(f"run directory {run} does not exist")
    report = Report(Path(output) if output else run / "report", "gwtwin run report", str(run))
    found = [builder(report, run) for builder in SECTIONS]
    if not any(found):
        raise GwtwinError(
            f"nothing to report in {run}: expected simulation/summary.json, triggers.h5 or "
            "glitches.json "
            "(run the pipeline first)"
        )
    index = report.write()
    plots = report.directory / "_plots"
    if plots.is_dir():
        for png in plots.iterdir():
            png.unlink()
        plots.rmdir()
    return index
