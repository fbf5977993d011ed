"""Files of a selection run, in the field's own formats.

In the output directory:

- ``channels.csv``, ``channels.json``: the ranked channel table (one row per auxiliary channel:
  status, round, significance, slide background, coincidence scores, median delay...);
  ``channels.json`` also holds each channel's delay histogram;
- ``rounds.json``: every round's winner and figures of merit, the significance of every channel
  in every round and its drop, the slides' summary, live time and notes;
- ``selected_channels.json``: the hand-off to the dataset builder (format
  ``gwtwin-selected-channels/1``: ``strain_channel``, ``span``, ``channels`` in selection order
  with ``name, sample_rate, unit, delay, band, round, significance, threshold, window, efficiency,
  deadtime``, ``redundant``, ``refused_unsafe``, ``config``);
- ``veto_segments.xml`` (LIGO_LW) and ``veto_segments.h5``: one gwpy ``DataQualityFlag`` per round,
  ``<IFO>:GWTWIN-HVETO_ROUND_<n>:1`` (active: the round's vetoes within its live time; known:
  the live time at the start of the round);
- ``glitches.csv``: the strain glitches analysed with the round and witness that vetoed them;
- ``plots/*.png`` (:mod:`gwtwin.select.plots`), unless ``plots: false``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from gwtwin.data import segments as sg
from gwtwin.data._quiet import quiet_gwpy
from gwtwin.data.channels import flag_name

__all__ = ["round_flag_name", "veto_flags", "write_outputs"]

_CSV_COLUMNS = [
    "rank",
    "channel",
    "status",
    "coherence",
    "round",
    "significance",
    "first_significance",
    "slide_background",
    "threshold",
    "window",
    "n_triggers",
    "n_above_threshold",
    "coincidence_fraction",
    "chance_fraction",
    "use_percentage",
    "iou",
    "median_delay",
    "tolerance",
    "redundant_of",
    "drop",
    "method",
    "sample_rate",
    "unit",
]


def _clean(obj):
    """JSON-safe: numpy scalars to Python, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, np.str_):
        return str(obj)
    return obj


def round_flag_name(strain_channel: str, n: int) -> str:
    """``<IFO>:GWTWIN-HVETO_ROUND_<n>:1``, the detector taken from the strain channel."""
    return flag_name(strain_channel, f"HVETO_ROUND_{n}")


def veto_flags(selection):
    """A gwpy ``DataQualityDict`` with one flag per round."""
    with quiet_gwpy():  # gwpy restyles matplotlib on first import
        from gwpy.segments import DataQualityDict, DataQualityFlag

    flags = DataQualityDict()
    for r in selection.rounds.rounds:
        name = round_flag_name(selection.strain_channel, r.n)
        flags[name] = DataQualityFlag(
            name,
            active=sg.to_segmentlist(sg.intersect(r.vetoes, r.known)),
            known=sg.to_segmentlist(r.known),
            description=(
                f"winner={r.winner}, window={r.window:g} s, snr>={r.threshold:g}, "
                f"significance={r.significance:.2f}"
            ),
        )
    return flags


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(_clean(data), indent=1) + "\n")


def write_outputs(selection, output) -> dict[str, Path]:
    """Write every file of a selection into ``output`` (created); returns name -> path."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    bins = selection.config.coincidence.delay_bins

    paths["channels.csv"] = out / "channels.csv"
    with open(paths["channels.csv"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=_CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in selection.rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in _CSV_COLUMNS})
    paths["channels.json"] = out / "channels.json"
    _write_json(
        paths["channels.json"],
        {
            "strain_channel": selection.strain_channel,
            "livetime": selection.livetime,
            "channels": [
                {**row, "delay_histogram": selection.scores[row["channel"]].histogram(bins)}
                for row in selection.rows
            ],
        },
    )
    paths["rounds.json"] = out / "rounds.json"
    _write_json(
        paths["rounds.json"],
        {
            "strain_channel": selection.strain_channel,
            "span": list(selection.span),
            "live_segments": selection.live.tolist(),
            "livetime": selection.livetime,
            "n_strain": selection.rounds.n_strain,
            "rounds": [r.summary() for r in selection.rounds.rounds],
            "final_significances": selection.rounds.final_significances,
            "slides": selection.slides.summary() if selection.slides else None,
            "notes": selection.notes,
        },
    )
    paths["selected_channels.json"] = out / "selected_channels.json"
    _write_json(paths["selected_channels.json"], selection.handoff())

    flags = veto_flags(selection)
    paths["veto_segments.xml"] = out / "veto_segments.xml"
    paths["veto_segments.h5"] = out / "veto_segments.h5"
    if len(flags):
        flags.write(str(paths["veto_segments.xml"]), format="ligolw", overwrite=True)
        flags.write(str(paths["veto_segments.h5"]), format="hdf5", overwrite=True)
    else:
        for key in ("veto_segments.xml", "veto_segments.h5"):
            paths.pop(key)

    paths["glitches.csv"] = out / "glitches.csv"
    table = selection.glitch_table()
    with open(paths["glitches.csv"], "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(table.dtype.names)
        for row in table:
            writer.writerow(
                [
                    f"{row['time']:.4f}",
                    f"{row['frequency']:.2f}",
                    f"{row['snr']:.2f}",
                    int(row["round"]),
                    str(row["witness"]),
                ]
            )

    if selection.config.plots:
        from gwtwin.select.plots import write_plots

        paths.update(write_plots(selection, out / "plots"))
    return paths
