"""Per-glitch coincidence scores (the ANNALISA idea, with a time tolerance and a chance level).

Glitchflow's ANNALISA asks, per event, whether the witness's Q-plane peaks land on the *same
pixel* as strain's, and keeps channels by mean IoU without any significance test.  Here the same
questions are asked of triggers, with a time tolerance and a per-channel strain band:

- ``strain glitches`` S: strain triggers at or above the strain SNR threshold whose peak
  frequency lies in the channel's band;
- ``witness triggers`` A: the channel's triggers at or above its SNR threshold;
- a glitch and a witness trigger are coincident when ``|t_S - t_A| <= tolerance`` s;
- ``coincidence_fraction``: glitches with a coincident witness trigger / glitches;
- ``use_percentage``: witness triggers with a coincident glitch / witness triggers, in %;
- ``iou``: ``|S & A| / |S | A|`` with ``|S & A|`` the number of one-to-one matched pairs
  (greedy, closest first), so ``|S | A| = |S| + |A| - |S & A|``;
- ``chance_fraction``: the coincidence fraction that unrelated triggers would reach,
  ``1 - exp(-|A| * 2 tolerance / T_live)`` (Poisson), the number the fraction must beat;
- ``delays``: ``t_S - t_A`` of each glitch's nearest coincident witness trigger (s, positive
  when the witness leads), with their median and histogram.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CoincidenceScores", "coincidence_scores"]


@dataclass
class CoincidenceScores:
    channel: str
    tolerance: float
    band: tuple[float, float] | None
    n_glitches: int
    n_witness: int
    n_matched: int
    coincidence_fraction: float
    use_percentage: float
    iou: float
    chance_fraction: float
    delays: np.ndarray
    glitch_frequencies: np.ndarray  # peak frequencies of coincident glitches, Hz

    @property
    def median_delay(self) -> float | None:
        return float(np.median(self.delays)) if self.delays.size else None

    def histogram(self, bins: int = 40) -> dict:
        """Delay histogram on ``[-tolerance, tolerance]`` s: ``{"edges": [..], "counts": [..]}``."""
        counts, edges = np.histogram(
            self.delays, bins=bins, range=(-self.tolerance, self.tolerance)
        )
        return {"edges": edges.tolist(), "counts": counts.tolist()}

    def summary(self, bins: int = 40) -> dict:
        return {
            "tolerance": self.tolerance,
            "band": list(self.band) if self.band else None,
            "n_glitches": self.n_glitches,
            "n_witness": self.n_witness,
            "n_matched": self.n_matched,
            "coincidence_fraction": self.coincidence_fraction,
            "chance_fraction": self.chance_fraction,
            "use_percentage": self.use_percentage,
            "iou": self.iou,
            "median_delay": self.median_delay,
            "delay_histogram": self.histogram(bins),
        }


def _nearest(ts: np.ndarray, ta: np.ndarray):
    """Index of and signed offset ``ts - ta`` to the nearest ``ta`` (sorted) for every ``ts``."""
    i = np.searchsorted(ta, ts)
    lo = np.clip(i - 1, 0, ta.size - 1)
    hi = np.clip(i, 0, ta.size - 1)
    d_lo, d_hi = ts - ta[lo], ts - ta[hi]
    use_hi = np.abs(d_hi) < np.abs(d_lo)
    return np.where(use_hi, hi, lo), np.where(use_hi, d_hi, d_lo)


def _greedy_pairs(ts: np.ndarray, ta: np.ndarray, tol: float) -> int:
    """One-to-one matches within ``tol``, closest pairs first."""
    pairs = []
    for i, t in enumerate(ts):
        lo = int(np.searchsorted(ta, t - tol, side="left"))
        hi = int(np.searchsorted(ta, t + tol, side="right"))
        for j in range(lo, hi):
            pairs.append((abs(t - ta[j]), i, j))
    pairs.sort()
    used_s, used_a, n = set(), set(), 0
    for _, i, j in pairs:
        if i not in used_s and j not in used_a:
            used_s.add(i)
            used_a.add(j)
            n += 1
    return n


def coincidence_scores(
    channel: str,
    strain,
    witness,
    *,
    tolerance: float,
    livetime: float,
    band: tuple[float, float] | None = None,
) -> CoincidenceScores:
    """Coincidence scores of one channel against the strain glitches (see the module docstring).

    Parameters
    ----------
    strain, witness : structured arrays
        Strain glitches and witness triggers (``time`` GPS s, ``frequency`` Hz), already cut at
        their SNR thresholds and to the live segments.
    tolerance : float
        Largest ``|t_S - t_A|`` that counts as coincident, s.
    livetime : float
        Live time, s (for the chance level).
    band : (low, high), optional
        Strain peak-frequency band for this channel, Hz.
    """
    if band is not None:
        strain = strain[(strain["frequency"] >= band[0]) & (strain["frequency"] <= band[1])]
    ts = np.sort(np.asarray(strain["time"], dtype=np.float64))
    fs = np.asarray(strain["frequency"], dtype=np.float64)[np.argsort(strain["time"])]
    ta = np.sort(np.asarray(witness["time"], dtype=np.float64))
    n_s, n_a = ts.size, ta.size
    chance = 1 - math.exp(-n_a * 2 * tolerance / livetime) if livetime > 0 else 0.0
    if n_s == 0 or n_a == 0:
        return CoincidenceScores(
            channel, tolerance, band, n_s, n_a, 0, 0.0, 0.0, 0.0, chance, np.zeros(0), np.zeros(0)
        )
    _, d_s = _nearest(ts, ta)
    hit_s = np.abs(d_s) <= tolerance
    _, d_a = _nearest(ta, ts)
    hit_a = np.abs(d_a) <= tolerance
    matched = _greedy_pairs(ts, ta, tolerance)
    return CoincidenceScores(
        channel=channel,
        tolerance=tolerance,
        band=band,
        n_glitches=n_s,
        n_witness=n_a,
        n_matched=matched,
        coincidence_fraction=float(hit_s.mean()),
        use_percentage=100.0 * float(hit_a.mean()),
        iou=matched / (n_s + n_a - matched),
        chance_fraction=chance,
        delays=d_s[hit_s],
        glitch_frequencies=fs[hit_s],
    )
