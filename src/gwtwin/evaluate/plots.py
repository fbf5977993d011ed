"""The evaluation's figures (matplotlib, written as PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def truth_plots(output: Path, scores: dict, asd: dict, config, lines) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global figure state or backend

    t = asd["table"]
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    band = (t["frequency"] >= config.band[0]) & (t["frequency"] <= config.band[1])
    ax.semilogx(t["frequency"][band], t["overall"][band], lw=0.8, label="overall", color="C1")
    ax.semilogx(t["frequency"][band], t["quiet"][band], lw=0.8, label="glitch-free", color="C0")
    ax.axhspan(0.98, 1.02, color="0.85", zorder=0, label="[0.98, 1.02]")
    for f0 in lines:
        ax.axvline(f0, color="0.5", ls=":", lw=0.8)
    ax.set_xlabel("frequency [Hz]")
    ax.set_ylabel("ASD cleaned / raw")
    ax.set_ylim(0, 1.2)
    ax.legend(fontsize=8)
    ax.set_title("ASD ratio (dotted: witnessed power lines)")
    fig.savefig(output / "asd_ratio.png", dpi=90)
    fams = sorted(set(np.asarray(scores["family"]).tolist()))
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    if len(scores["residual_snr"]):
        edges = np.linspace(0, max(10.0, float(np.max(scores["residual_snr"]))), 31)
        bottom = np.zeros(edges.size - 1)
        for k, f in enumerate(fams):  # stacked by hand (gwpy's Axes.hist takes one array)
            counts, _ = np.histogram(scores["residual_snr"][scores["family"] == f], edges)
            ax.stairs(bottom + counts, edges, baseline=bottom, fill=True, label=f, color=f"C{k}")
            bottom = bottom + counts
        ax.axvline(config.residual_limit, color="k", ls="--", lw=0.8)
        ax.legend(fontsize=8)
    ax.set_xlabel("residual SNR after cleaning")
    ax.set_ylabel("witnessed glitches")
    fig.savefig(output / "residual_snr.png", dpi=90)
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    for k, f in enumerate(fams):
        sel = scores["family"] == f
        ax.scatter(scores["snr"][sel], scores["fraction_removed"][sel], s=12, label=f, c=f"C{k}")
    ax.axhline(0.9, color="k", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_ylim(-0.5, 1.05)
    ax.set_xlabel("glitch SNR (truth)")
    ax.set_ylabel("fraction of excess power removed")
    ax.legend(fontsize=8)
    fig.savefig(output / "fraction_removed.png", dpi=90)


def data_plots(output: Path, free: dict, config) -> None:
    """Truth-free figures: the ASD ratio over quiet and all time, each glitch's trigger SNR
    before vs after cleaning (coloured by verdict) and, where the metadata records it, its
    whitened power drop in noise standard deviations (``glitch_power.png``)."""
    from matplotlib.figure import Figure

    t = free["asd_table"]
    band = (t["frequency"] >= config.band[0]) & (t["frequency"] <= config.band[1])
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    ax.semilogx(t["frequency"][band], t["overall"][band], lw=0.8, label="all time", color="C1")
    ax.semilogx(t["frequency"][band], t["quiet"][band], lw=0.8, label="quiet (data)", color="C0")
    ax.axhspan(0.98, 1.02, color="0.85", zorder=0, label="[0.98, 1.02]")
    ax.set_xlabel("frequency [Hz]")
    ax.set_ylabel("ASD cleaned / raw")
    ax.set_ylim(0, 1.2)
    ax.legend(fontsize=8)
    ax.set_title(f"ASD ratio, quiet = {config.quiet_pad:g} s from any raw trigger")
    fig.savefig(output / "asd_ratio_data.png", dpi=90)
    g = free["glitch_table"]
    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.subplots()
    colours = {"improved": "C2", "untouched": "0.5", "worsened": "C3"}
    for verdict, colour in colours.items():
        sel = g["change"] == verdict
        ax.scatter(g["snr_before"][sel], g["snr_after"][sel], s=12, c=colour, label=verdict)
    top = max([10.0, *np.asarray(g["snr_before"], float).tolist()])
    ax.plot([0, top], [0, top], color="k", lw=0.6, ls="--")
    ax.set_xlabel("trigger SNR, raw strain")
    ax.set_ylabel("loudest trigger SNR after cleaning")
    ax.legend(fontsize=8)
    fig.savefig(output / "glitch_changes.png", dpi=90)
    power = free["summary"].get("glitch_power", {})
    if power.get("recorded") and "removed_sigma" in g and len(g["removed_sigma"]):
        _power_plot(output, g, power.get("margin_sigma"), colours)


def _power_plot(output: Path, g: dict, margin, colours: dict) -> None:
    """Each glitch's power drop in standard deviations of the noise (``removed_sigma``, as the
    clean step recorded it) against its trigger SNR, coloured by the power verdict."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    sigma = np.asarray(g["removed_sigma"], float)
    for verdict, colour in colours.items():
        sel = g["power_change"] == verdict
        ax.scatter(g["snr_before"][sel], sigma[sel], s=12, c=colour, label=verdict)
    if margin is not None:
        for y in (margin, -margin):
            ax.axhline(y, color="k", lw=0.6, ls="--")
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_xlabel("trigger SNR, raw strain")
    ax.set_ylabel("whitened power removed [noise sigma]")
    margin_text = "not recorded" if margin is None else f"+-{margin:g} sigma"
    ax.set_title(f"Power removed per glitch (margin {margin_text})", fontsize=9)
    ax.legend(fontsize=8)
    fig.savefig(output / "glitch_power.png", dpi=90)
