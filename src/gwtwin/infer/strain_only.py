"""Glitch flags from strain alone: real data with no auxiliary channel (public GWOSC files).

Without witnesses, gwtwin can still do what a data-quality shift does first: find the strain's
glitches and flag them. :func:`flag_strain_glitches` analyses the strain of a frame set (GWF or
HDF5, GWOSC's own files included, at any rate), restricted to the GWOSC data-quality bits asked
for (default ``DATA`` where the files carry a mask), and writes into an output directory::

    triggers.h5   Q-tile triggers of the strain (Omicron columns)
    glitches.csv  one row per glitch (trigger SNR >= snr_threshold): gps, tstart, tend,
                  frequency, q, snr
    flags/        <IFO>:GWTWIN-UNWITNESSED:1 (LIGO_LW XML, HDF5, DQSEGDB JSON): active = the
                  glitches (+- pad), known = the analysed time (gaps, DQ-failed time and
                  pieces too short for the Q-transform excluded, each listed in glitches.json)
    glitches.png  the glitches in time and frequency, sized by SNR
    glitches.json what was analysed and found

``gwtwin report`` shows the directory (its own, or as ``glitches/`` inside a run directory).
Every glitch is unwitnessed by construction: there is no witness to explain it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gwtwin.data import segments as sg
from gwtwin.errors import GwtwinError

GLITCHES_FILE = "glitches.json"
COLUMNS = ("gps", "tstart", "tend", "frequency", "q", "snr")


class StrainFlagConfig(BaseModel):
    """Thresholds of :func:`flag_strain_glitches` (SNRs are tile SNRs ``sqrt(2 (Z - 1))``)."""

    model_config = ConfigDict(extra="forbid")

    snr_threshold: float = Field(8.0, gt=0)  # a trigger at or above this is a glitch
    trigger_snr: float = Field(5.5, gt=0)  # lowest tile SNR of the trigger search
    pad: float = Field(0.1, ge=0)  # s each side of a glitch in the flag
    qrange: tuple[float, float] = (4.0, 64.0)
    #: Hz; None: from 10 Hz (or what the segment allows) to what the tiling allows at the rate
    frange: tuple[float, float] | None = None
    segment_duration: float = Field(64.0, gt=0)
    fduration: float = Field(2.0, gt=0)


def _strain_of(frames, strain_channel: str | None) -> str:
    from gwtwin.data.channels import resolve_channel
    from gwtwin.signal.scan import default_channels

    channels = default_channels(frames)
    if strain_channel:
        return resolve_channel(strain_channel, channels)
    if len(channels) == 1:  # a GWOSC strain file: strain and its bitmasks only
        return channels[0]
    raise GwtwinError(
        f"the frames hold {len(channels)} channels ({', '.join(channels[:8])}): name the strain "
        "channel (a full name or a glob such as '*:GWOSC-*STRAIN')"
    )


def flag_strain_glitches(
    source,
    output,
    strain_channel: str | None = None,
    config: StrainFlagConfig | None = None,
    *,
    dq_bits=None,
    start=None,
    end=None,
    log=print,
) -> dict:
    """Find and flag the strain glitches of ``source``; see the module docstring.

    ``strain_channel``: a full name or a glob; default the one channel of a strain-only file.
    ``dq_bits``: as :func:`gwtwin.signal.scan.triggers_from_frames`. Returns ``glitches.json``.
    """
    from gwtwin.data.channels import flag_name
    from gwtwin.data.flags import make_flag, write_flags
    from gwtwin.signal.scan import resolve_frames, triggers_from_frames
    from gwtwin.signal.triggers import write_triggers

    config = config or StrainFlagConfig()
    frames = resolve_frames(source)
    strain = _strain_of(frames, strain_channel)
    kwargs = {
        "snr_threshold": config.trigger_snr,
        "qrange": tuple(config.qrange),
        "segment_duration": config.segment_duration,
        "fduration": config.fduration,
    }
    if config.frange is not None:
        kwargs["frange"] = tuple(config.frange)
    triggers = triggers_from_frames(frames, [strain], start, end, dq_bits=dq_bits, **kwargs)
    table = triggers[strain]
    loud = np.sort(table[table["snr"] >= config.snr_threshold], order="time")
    known = sg.coalesce(triggers.params.get("segments") or [triggers.segment])
    active = sg.intersect(
        sg.coalesce(np.stack([loud["tstart"] - config.pad, loud["tend"] + config.pad], axis=1)),
        known,
    )
    flag = make_flag(
        flag_name(strain, "UNWITNESSED"),
        active,
        known,
        description="strain glitch (trigger SNR >= "
        f"{config.snr_threshold:g}) with no witness channel analysed",
    )
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    files = write_flags([flag], output / "flags" / "gwtwin-unwitnessed", overwrite=True)
    write_triggers(output / "triggers.h5", triggers, overwrite=True)
    rows = {
        "gps": loud["time"],
        "tstart": loud["tstart"],
        "tend": loud["tend"],
        "frequency": loud["frequency"],
        "q": loud["q"],
        "snr": loud["snr"],
    }
    from gwtwin.infer.glitches import write_columns

    write_columns(output / "glitches.csv", rows)
    _plot(output / "glitches.png", rows, strain)
    live = sg.total(known)
    summary = {
        "strain_channel": strain,
        "frames": str(frames),
        "span": list(triggers.segment),
        "known": known.tolist(),
        "known_seconds": live,
        "gaps": triggers.params.get("gaps", []),
        "skipped": triggers.params.get("skipped", []),
        "dq_bits": triggers.params.get("dq_bits", []),
        "dq_segments": triggers.params.get("dq_segments"),
        "glitches": int(loud.size),
        "rate_per_hour": float(loud.size / live * 3600) if live else None,
        "max_snr": float(loud["snr"].max()) if loud.size else None,
        "flag": {
            "name": flag.name,
            "active_seconds": sg.total(active),
            "deadtime": sg.total(active) / live if live else None,
        },
        "flag_files": {k: [str(p.relative_to(output)) for p in v] for k, v in files.items()},
        "config": config.model_dump(mode="json"),
    }
    (output / GLITCHES_FILE).write_text(json.dumps(summary, indent=1))
    for piece in summary["skipped"]:
        log(f"skipped {piece['segment']}: {piece['reason']}")
    log(
        f"{strain}: {summary['glitches']} glitches (SNR >= {config.snr_threshold:g}) in "
        f"{live:g} s analysed; flag {flag.name} active {summary['flag']['active_seconds']:.1f} s"
    )
    return summary


def _plot(path: Path, rows: dict, strain: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.5), layout="constrained")
    ax = fig.subplots()
    if len(rows["gps"]):
        t0 = float(np.floor(rows["gps"].min()))
        points = ax.scatter(
            rows["gps"] - t0,
            rows["frequency"],
            s=4 + 2 * rows["snr"],
            c=rows["snr"],
            cmap="viridis",
        )
        fig.colorbar(points, ax=ax, label="SNR")
        ax.set_xlabel(f"time [s] from GPS {t0:.0f}")
    else:
        ax.set_xlabel("time [s]")
    ax.set_yscale("log")
    ax.set_ylabel("frequency [Hz]")
    ax.set_title(f"{strain}: glitches (no witness)")
    fig.savefig(path, dpi=90)
