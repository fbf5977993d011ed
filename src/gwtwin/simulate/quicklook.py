"""Quick look at a simulation: a printed summary and a PNG of example glitches.

The PNG holds one row per coupling family (scattered light, magnetic transient, power-line
modulation, blip): on the left the whitened Q-transform of strain around the glitch (read back
from the written frames), on the right what its witness saw.  For scattered light the predicted
arch frequency ``2 n |dx/dt| / lambda``, computed from the witness channel alone, is drawn over
the strain Q-transform, so a person can check that the arches follow the optic's motion.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from gwtwin.simulate.engine import SimulationResult, read_catalogue

FAMILY_TITLES = {
    "scatter": "scattered light",
    "em": "magnetic transient",
    "powerline": "power-line modulation",
    "blip": "blip (no witness)",
}


def print_summary(result: SimulationResult, console=None) -> None:
    """Print channels, glitch counts per family and files written (rich tables)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    chans = Table(title="channels", show_lines=False)
    for col in ("channel", "rate [Hz]", "unit", "role", "witnesses"):
        chans.add_column(col)
    for spec in result.channels:
        chans.add_row(spec.name, f"{spec.rate:g}", spec.unit, spec.role, spec.family)
    console.print(chans)
    table = read_catalogue(result.catalogue)
    counts = Table(title="truth catalogue")
    for col in ("family", "events", "strain SNR min", "median", "max"):
        counts.add_column(col)
    for family, n in result.counts.items():
        snrs = np.asarray(table["snr"][table["family"] == family], dtype=float)
        if family == "decoy" or not n:
            counts.add_row(family, str(n), "-", "-", "-")
        else:
            counts.add_row(
                family, str(n), f"{snrs.min():.1f}", f"{np.median(snrs):.1f}", f"{snrs.max():.1f}"
            )
    console.print(counts)
    console.print(
        f"wrote {len(result.frames)} data frames and {len(result.truth_frames)} truth frames "
        f"to {result.output / 'frames'} and {result.output / 'truth'}, catalogue "
        f"{result.catalogue} (+ .csv); {result.duration:g} s simulated in {result.elapsed:.1f} s "
        f"({result.speed:.0f}x real time)"
    )


def _pick(table, family: str):
    rows = table[table["family"] == family]
    if len(rows) == 0:
        return None
    snr = np.asarray(rows["snr"], dtype=float)
    # a clearly visible but not extreme example: the one closest to the 75th percentile
    target = np.percentile(snr, 75)
    return rows[int(np.argmin(np.abs(snr - target)))]


def quicklook(output: str | Path, png: str | Path, config=None) -> Path:
    """Draw example glitches of each family from a simulation directory into ``png``."""
    import json

    from matplotlib.figure import Figure  # no pyplot: no global figure state or backend

    from gwtwin.data import read
    from gwtwin.simulate.config import load_config

    output = Path(output)
    config = config or load_config(output / "config.yaml")
    table = read_catalogue(output / "catalogue.h5")
    strain_channel = config.channel(config.strain.channel)
    families = [f for f in FAMILY_TITLES if _pick(table, f) is not None]
    fig = Figure(figsize=(13, 3.2 * len(families)))
    axes = fig.subplots(len(families), 2, squeeze=False)
    for row, family in enumerate(families):
        event = _pick(table, family)
        peak = float(event["gps_peak"])
        half = max(1.0, 0.6 * float(event["duration"]))
        lo, hi = peak - half, peak + half
        # whitening needs context: read 32 s around the event (inside the simulated span)
        span_lo = max(config.start, math.floor(lo) - 16)
        span_hi = min(config.start + config.duration, math.ceil(hi) + 16)
        strain = read(output / "frames", [strain_channel], span_lo, span_hi).block
        ts = strain.to_timeseriesdict()[strain_channel]
        frange = {"scatter": (10, 150), "powerline": (20, 120)}.get(family, (10, 1000))
        qrange = {"scatter": (4, 12), "powerline": (16, 64)}.get(family, (4, 64))
        qspec = ts.q_transform(
            outseg=(lo, hi), frange=frange, qrange=qrange, whiten=True, fftlength=4, overlap=2
        )
        ax = axes[row][0]
        mesh = ax.pcolormesh(
            qspec.times.value - peak,
            qspec.frequencies.value,
            qspec.value.T,
            vmin=0,
            vmax=25,
            shading="auto",
            cmap="viridis",
        )
        ax.set_yscale("log")
        ax.set_ylabel("frequency [Hz]")
        ax.set_title(
            f"{FAMILY_TITLES[family]}: strain, SNR {float(event['snr']):.0f} (GPS {peak:.2f})",
            fontsize=10,
        )
        fig.colorbar(mesh, ax=ax, label="normalised energy")
        wit = axes[row][1]
        channel = str(event["channel"])
        params = json.loads(str(event["params"]))
        if family == "scatter":
            from scipy.signal import butter, sosfiltfilt

            x = read(output / "frames", [channel], span_lo, span_hi).block
            # the motion is below 1 Hz: low-pass the sensor noise away before differentiating
            smooth = sosfiltfilt(butter(4, 4.0, fs=x.sample_rate, output="sos"), x.numpy()[0])
            v = np.gradient(smooth, 1.0 / x.sample_rate)  # um/s
            inside = (x.times >= lo) & (x.times <= hi)
            t, xs, v = x.times[inside] - peak, x.numpy()[0][inside], v[inside]
            lam = config.scatter.wavelength * 1e6
            for n in range(1, len(config.scatter.bounce_amplitudes) + 1):
                ax.plot(t, 2 * n * np.abs(v) / lam, color="w", lw=0.9, ls="--")
            ax.set_ylim(*frange)
            wit.plot(t, xs, lw=0.8)
            wit.set_ylabel(f"{channel} [{config.scatter.witness_unit or 'no unit'}]")
            wit.set_title(
                "witness displacement (dashed on the left: 2n|dx/dt|/lambda)", fontsize=10
            )
        elif family in ("em", "powerline"):
            w = read(output / "frames", [channel], span_lo, span_hi).block
            wts = w.to_timeseriesdict()[channel]
            if family == "em":
                wq = wts.q_transform(
                    outseg=(lo, hi),
                    frange=(10, 1000),
                    qrange=(4, 64),
                    whiten=True,
                    fftlength=4,
                    overlap=2,
                )
                m2 = wit.pcolormesh(
                    wq.times.value - peak,
                    wq.frequencies.value,
                    wq.value.T,
                    vmin=0,
                    vmax=25,
                    shading="auto",
                    cmap="viridis",
                )
                wit.set_yscale("log")
                wit.set_ylabel("frequency [Hz]")
                fig.colorbar(m2, ax=wit, label="normalised energy")
                wit.set_title(
                    f"witness {channel} (coupling delay {config.em.delay * 1e3:g} ms)", fontsize=10
                )
            else:
                cw = wts.crop(lo, hi)
                wit.plot(cw.times.value - peak, cw.value, lw=0.8)
                wit.set_ylabel(f"{channel} [{config.powerline.control_unit or 'no unit'}]")
                sb = params.get("sidebands_hz", [])
                for f in sb:
                    ax.axhline(f, color="w", lw=0.6, ls=":")
                wit.set_title(
                    f"angular witness; sidebands of the {config.powerline.mains_frequency:g} Hz "
                    f"line at {', '.join(f'{f:.1f}' for f in sb)} Hz (dotted)",
                    fontsize=10,
                )
        else:
            wit.text(
                0.5,
                0.5,
                "no witness: strain only",
                ha="center",
                va="center",
                transform=wit.transAxes,
            )
            wit.set_axis_off()
        for a in (ax, wit):
            if a.axison:
                a.set_xlabel(f"time from GPS {peak:.2f} [s]")
    fig.suptitle(f"gwtwin simulated {config.prefix}: example glitches", fontsize=12)
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    return png
