"""Time slides: the selection's false-selection rate and each channel's chance background.

Auxiliary triggers are shifted by ``k * step`` s (``k = 1 .. count``) circularly within each
live segment (a trigger pushed past a segment's end re-enters at its start), which keeps every
channel's rate and clustering but destroys any physical coincidence with strain as long as the
step is much larger than the windows.  The whole round procedure runs on each slide; every
channel that wins a round there is a false selection.  The false-selection rate is
``false selections / (slides * channels)``, and a channel's background is the largest
first-round significance it reaches in any slide: at zero lag it must beat it to be selected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gwtwin.data import segments as sg
from gwtwin.select.rounds import run_rounds

__all__ = ["SlideResult", "shift_triggers", "time_slides"]


def shift_triggers(table: np.ndarray, live, shift: float) -> np.ndarray:
    """Triggers shifted by ``shift`` s, wrapped circularly inside their live segment.

    Triggers outside ``live`` are dropped; ``time``, ``tstart`` and ``tend`` move together.
    """
    live = sg.coalesce(live)
    out = []
    for lo, hi in live:
        inside = table[(table["time"] >= lo) & (table["time"] <= hi)].copy()
        if not len(inside):
            continue
        length = hi - lo
        new = lo + np.mod(inside["time"] - lo + shift, length)
        delta = new - inside["time"]
        for col in ("time", "tstart", "tend"):
            if col in inside.dtype.names:
                inside[col] = inside[col] + delta
        out.append(inside)
    if not out:
        return table[:0].copy()
    merged = np.concatenate(out)
    return merged[np.argsort(merged["time"], kind="stable")]


@dataclass
class SlideResult:
    shifts: list[float]
    winners: list[list[str]]  # per slide, the channels that won a round
    background: dict[str, float]  # channel -> max first-round significance over slides
    n_channels: int

    @property
    def false_selections(self) -> int:
        return sum(len(w) for w in self.winners)

    @property
    def false_selection_rate(self) -> float:
        trials = len(self.shifts) * self.n_channels
        return self.false_selections / trials if trials else 0.0

    def summary(self) -> dict:
        return {
            "shifts": self.shifts,
            "winners": self.winners,
            "false_selections": self.false_selections,
            "trials": len(self.shifts) * self.n_channels,
            "false_selection_rate": self.false_selection_rate,
            "background": self.background,
        }


def time_slides(strain, auxiliary: dict, live, *, count: int, step: float, **round_kwargs):
    """Run the rounds on ``count`` slides of the auxiliary triggers (see the module docstring)."""
    shifts = [k * float(step) for k in range(1, count + 1)]
    winners: list[list[str]] = []
    background = {c: 0.0 for c in auxiliary}
    for shift in shifts:
        slid = {c: shift_triggers(t, live, shift) for c, t in auxiliary.items()}
        result = run_rounds(strain, slid, live, **round_kwargs)
        winners.append(result.winners)
        for c, (s, _thr, _win) in result.first.items():
            background[c] = max(background[c], s)
    return SlideResult(shifts, winners, background, len(auxiliary))
