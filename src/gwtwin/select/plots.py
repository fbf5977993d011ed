"""PNG figures: significance per channel, delay histograms, efficiency vs deadtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_plots"]

_COLOURS = {"selected": "tab:green", "redundant": "tab:orange", "other": "tab:grey"}


def _status_colour(status: str) -> str:
    if status == "selected":
        return _COLOURS["selected"]
    if status.startswith("redundant"):
        return _COLOURS["redundant"]
    return _COLOURS["other"]


def plot_significance(selection, path: Path) -> Path:
    """First-round significance of every channel (bars), slide background (ticks), threshold."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state or backend

    rows = sorted(selection.rows, key=lambda r: r["first_significance"])
    names = [r["channel"] for r in rows]
    height = max(3.0, 0.25 * len(rows) + 1.2)
    fig = Figure(figsize=(8, height))
    ax = fig.subplots()
    y = np.arange(len(rows))
    sig = np.array([max(r["first_significance"], 1e-2) for r in rows])
    ax.barh(y, sig, color=[_status_colour(r["status"]) for r in rows])
    bg = np.array([max(r["slide_background"], 1e-2) for r in rows])
    ax.scatter(bg, y, marker="|", s=120, color="k", label="time-slide background", zorder=3)
    ax.axvline(selection.config.min_significance, color="tab:red", ls="--", label="minimum S")
    ax.set_yticks(y, names, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("first-round significance  -log10 P(Poisson(mu) >= n)")
    ax.set_title(f"Channel significance vs {selection.strain_channel}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def plot_delays(selection, path: Path, max_channels: int = 12) -> Path:
    """Witness-to-strain delay histograms of the channels with most coincidences."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state or backend

    rows = [r for r in selection.rows if selection.scores[r["channel"]].delays.size]
    rows = rows[:max_channels]
    n = max(len(rows), 1)
    ncol = min(3, n)
    nrow = int(np.ceil(n / ncol))
    fig = Figure(figsize=(4 * ncol, 2.6 * nrow))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    bins = selection.config.coincidence.delay_bins
    for ax, row in zip(axes.flat, rows, strict=False):
        sc = selection.scores[row["channel"]]
        ax.hist(
            sc.delays * 1e3,
            bins=bins,
            range=(-sc.tolerance * 1e3, sc.tolerance * 1e3),
            color=_status_colour(row["status"]),
        )
        ax.axvline(0, color="k", lw=0.5)
        ax.set_title(f"{row['channel']}\n{row['status']}", fontsize=8)
        ax.set_xlabel("delay t_strain - t_witness (ms)", fontsize=8)
    for ax in list(axes.flat)[len(rows) :]:
        ax.axis("off")
    if not rows:
        axes.flat[0].text(0.5, 0.5, "no coincidences", ha="center", va="center")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def plot_efficiency_deadtime(selection, path: Path) -> Path:
    """Cumulative efficiency vs cumulative deadtime per round, with eff/dead = 1, 5, 10, 20."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state or backend

    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    lo, hi = 1e-3, 100.0
    grid = np.logspace(np.log10(lo), np.log10(hi), 50)
    for ratio in (1, 5, 10, 20):
        ax.plot(grid, np.clip(grid * ratio, None, 100), ls=":", color="0.5", lw=1)
        x = min(hi / ratio, hi) * 0.6
        ax.text(x, min(x * ratio, 95), f"{ratio}", fontsize=8, color="0.4")
    rounds = selection.rounds.rounds
    if rounds:
        dead = [100 * r.cum_deadtime for r in rounds]
        eff = [100 * r.cum_efficiency for r in rounds]
        ax.plot(dead, eff, "o-", color="tab:blue")
        for r, x, y in zip(rounds, dead, eff, strict=True):
            ax.annotate(
                f"{r.n}: {r.winner.split(':')[-1]}",
                (x, y),
                fontsize=7,
                xytext=(4, -10),
                textcoords="offset points",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(0.1, 100)
    ax.set_xlabel("cumulative deadtime (%)")
    ax.set_ylabel("cumulative efficiency (%)")
    ax.set_title("Efficiency vs deadtime (guides: eff/dead = 1, 5, 10, 20)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def write_plots(selection, directory) -> dict[str, Path]:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "significance.png": plot_significance(selection, out / "significance.png"),
        "delays.png": plot_delays(selection, out / "delays.png"),
        "efficiency_deadtime.png": plot_efficiency_deadtime(
            selection, out / "efficiency_deadtime.png"
        ),
    }
