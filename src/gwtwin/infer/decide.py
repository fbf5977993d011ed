"""Subtract only where it helps: the per-segment decision of cleaning, from the data alone.

A twin model trained on one detector, or on witnesses whose sensor noise it has not learnt to
ignore, can predict noise where strain has none; subtracting it adds that noise to strain.
Real data have no truth to check against, but they have the strain itself: over any stretch,
subtracting a prediction ``p`` from whitened strain ``r`` changes its power by

    D = |r|^2 - |r - p|^2 = 2 <r, p> - |p|^2 .

If ``p`` is unrelated to the strain (``r`` Gaussian with variance ``sigma^2`` per sample, as
whitened noise is), ``<r, p>`` is Gaussian with standard deviation ``sigma |p|``, so ``D`` has
mean ``-|p|^2`` and standard deviation ``2 sigma |p|``.  The cleaning therefore cuts the whitened
strain into **units** on a fixed GPS grid (``unit_duration``, 1 s by default: the online
service's increment) and keeps the subtraction in a unit only when its power drops by a
significant margin,

    z = D / (2 sigma |p|) >= margin_sigma        (3 by default),

a false-keep probability of at most ``Q(3) = 1.3e-3`` per unit for a prediction unrelated to
strain (less, since the null mean ``-|p|^2`` is negative).  A prediction equal to the true
coupled noise ``c`` has ``z ~ |c| / (2 sigma)``: a glitch of whitened SNR 8 in the unit is kept
with probability 0.84, one of SNR 10 with 0.98.  ``sigma`` is measured in each unit, robustly
(1.4826 times the median absolute deviation of ``r``), so a glitch does not inflate it.

A unit next to an improved unit is kept too unless its power rose by more than one standard
deviation of the null (``z >= -1``): the tail of a glitch that crosses a unit boundary is
subtracted with its head (a tail of whitened SNR 2 has ``z ~ 1 +- 1``), while a neighbour where
the prediction is noise of norm ``|p|`` is kept with probability ``Q(|p| / 2 - 1)``, so the
noise it can add stays small (``|p| = 4``: 16 %).  Elsewhere the subtraction is
tapered out: the gain is 1 in kept units, 0 in the others, with half-Hann ramps of
``ramp_duration`` inside the off units next to kept ones, so it never switches with a step.
Every unit's decision is recorded (:data:`UNIT_COLUMNS`) with its reason:

- ``improved``: significant drop (``z >= margin_sigma``);
- ``extended``: next to an improved unit and ``z >= -1``;
- ``worse``: significant rise (``z <= -margin_sigma``);
- ``not_significant``: neither;
- ``no_prediction``: nothing to subtract (``|p| = 0``: unpredictable witnesses, segment ends);
- ``no_strain``: the whitened strain is not known there (NaN/inf strain samples within the
  whitening filter's reach).

The decision of a unit depends on the data of that unit and its neighbours only (whitened
strain and the prediction, both local filters of the data), so offline chunks, one pass and the
online service's increments all decide the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from gwtwin.errors import GwtwinError

#: the columns of the per-unit decision table (``decisions.csv``)
UNIT_COLUMNS = ("gps", "duration", "predicted", "drop", "sigma", "z", "kept", "reason")
REASONS = ("improved", "extended", "worse", "not_significant", "no_prediction", "no_strain")
MAD_SCALE = 1.4826  #: standard deviation per median absolute deviation of a Gaussian


@dataclass(frozen=True)
class Decision:
    """How cleaning decides where to subtract (see the module docstring).

    Attributes
    ----------
    enabled : bool
        False subtracts the prediction everywhere it exists (the behaviour before the decision).
    unit_duration : float
        Length of a decision unit, s; units tile GPS time from GPS 0.
    margin_sigma : float
        Significance of the drop in power that keeps a unit, in standard deviations of the drop
        under the null hypothesis (prediction unrelated to strain).
    ramp_duration : float
        Half-Hann ramp inside an off unit next to a kept one, s (at most ``unit_duration``).
    extend : bool
        Keep the units next to an improved unit whose power did not rise by more than one
        standard deviation of the null (``z >= -1``).
    """

    enabled: bool = True
    unit_duration: float = 1.0
    margin_sigma: float = 3.0
    ramp_duration: float = 0.25
    extend: bool = True

    def __post_init__(self):
        if not self.unit_duration > 0:
            raise GwtwinError(f"unit_duration must be > 0 s, found {self.unit_duration}")
        if not 0 <= self.ramp_duration <= self.unit_duration:
            raise GwtwinError(
                f"ramp_duration must be in [0, unit_duration = {self.unit_duration:g}] s, found "
                f"{self.ramp_duration:g}"
            )
        if not self.margin_sigma >= 0:
            raise GwtwinError(f"margin_sigma must be >= 0, found {self.margin_sigma}")

    def unit_size(self, rate: int) -> int:
        """Samples per unit at ``rate``; a unit must hold a whole number of samples and tile
        whole seconds (1 s increments stay aligned)."""
        size = self.unit_duration * rate
        if abs(size - round(size)) > 1e-9 or round(size) < 1:
            raise GwtwinError(
                f"unit_duration {self.unit_duration:g} s is not a whole number of samples at "
                f"{rate} Hz"
            )
        size = int(round(size))
        if (rate % size) and (size % rate):
            raise GwtwinError(
                f"unit_duration {self.unit_duration:g} s must divide a second or be a whole "
                "number of seconds, so that units align with whole GPS seconds"
            )
        return size


class DecisionSettings(BaseModel):
    """The ``decision:`` keys of the clean and stream configs (a :class:`Decision`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = True
    #: s per decision unit (units tile GPS time from 0; must divide a second or be whole s)
    unit_duration: float = Field(1.0, gt=0)
    #: keep a unit when its whitened power drops by this many standard deviations of the drop
    #: under a prediction unrelated to strain (3: false keep <= 1.3e-3 per unit)
    margin_sigma: float = Field(3.0, ge=0)
    #: s, half-Hann ramp inside an off unit next to a kept one
    ramp_duration: float = Field(0.25, ge=0)
    #: keep the units next to an improved one unless their power rose (z < -1)
    extend: bool = True

    def decision(self) -> Decision:
        return Decision(**self.model_dump())


@dataclass
class UnitStats:
    """Per-unit statistics over consecutive units ``j0 .. j0 + n - 1`` (arrays of length n)."""

    j0: int
    predicted: np.ndarray  # |p|^2
    drop: np.ndarray  # D = |r|^2 - |r - p|^2
    sigma: np.ndarray  # robust noise level of r (NaN: strain unknown)
    z: np.ndarray  # D / (2 sigma |p|)


def unit_stats(p: torch.Tensor, r: torch.Tensor, j0: int, size: int) -> UnitStats:
    """Statistics of whole units from the prediction ``p`` and whitened strain ``r``.

    ``p`` and ``r`` are model-rate series starting at unit ``j0``'s first sample, a whole number
    of units long; ``r`` is NaN where the whitened strain is not known (those units get
    ``sigma = NaN``).
    """
    n = p.numel() // size
    if p.numel() != n * size or r.numel() != p.numel():
        raise GwtwinError(
            f"internal: p ({p.numel()}) and r ({r.numel()}) must be whole units of {size} samples"
        )
    pp = p.to(torch.float64).reshape(n, size).numpy()
    rr = r.to(torch.float64).reshape(n, size).numpy()
    known = np.isfinite(rr).all(axis=1)
    rr = np.where(np.isfinite(rr), rr, 0.0)
    predicted = (pp**2).sum(axis=1)
    drop = 2.0 * (rr * pp).sum(axis=1) - predicted
    med = np.median(rr, axis=1, keepdims=True)
    sigma = MAD_SCALE * np.median(np.abs(rr - med), axis=1)
    sigma = np.where(known, sigma, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = drop / (2.0 * sigma * np.sqrt(predicted))
    z = np.where(predicted > 0, z, 0.0)
    return UnitStats(j0, predicted, drop, sigma, z)


def decide(stats: UnitStats, decision: Decision) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, reason)`` per unit (see the module docstring).  The first and last units have
    no neighbour in ``stats``: they are decided without extension and should be dropped by
    callers that need the extension rule (it reads one unit each side)."""
    n = stats.predicted.size
    reason = np.full(n, "not_significant", dtype=object)
    known = np.isfinite(stats.sigma)
    none = stats.predicted <= 0
    improved = known & ~none & (stats.z >= decision.margin_sigma)
    worse = known & ~none & (stats.z <= -decision.margin_sigma)
    reason[improved] = "improved"
    reason[worse] = "worse"
    reason[none] = "no_prediction"
    reason[~known & ~none] = "no_strain"
    kept = improved.copy()
    if decision.extend and n > 1:
        near = np.zeros(n, bool)
        near[1:] |= improved[:-1]
        near[:-1] |= improved[1:]
        ext = near & ~improved & known & ~none & (stats.z >= -1.0)
        kept |= ext
        reason[ext] = "extended"
    if not decision.enabled:
        kept = ~none
    return kept, reason.astype(str)


def gain(kept: np.ndarray, size: int, ramp: int, dtype=torch.float64) -> torch.Tensor:
    """Per-sample gain over the units of ``kept`` (``len(kept) * size`` samples): 1 in kept
    units, half-Hann ramps of ``ramp`` samples inside off units next to kept ones, else 0.
    The first and last units' ramps need their outer neighbours: callers drop them."""
    n = kept.size
    g = np.repeat(kept.astype(np.float64), size).reshape(n, size)
    if ramp:
        fall = 0.5 + 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)  # 1 -> 0
        for j in np.nonzero(~kept)[0]:
            if j > 0 and kept[j - 1]:
                g[j, :ramp] = np.maximum(g[j, :ramp], fall)
            if j + 1 < n and kept[j + 1]:
                g[j, size - ramp :] = np.maximum(g[j, size - ramp :], fall[::-1])
    return torch.as_tensor(g.reshape(-1), dtype=dtype)


@dataclass
class DecidedSpan:
    """The decision over model-rate samples ``[lo, hi)``: the gain to apply and the units."""

    lo: int
    hi: int
    gain: torch.Tensor
    stats: UnitStats
    kept: np.ndarray
    reason: np.ndarray

    def rows(self, size: int, rate: int, a: int, b: int) -> dict[str, list]:
        """Table rows (:data:`UNIT_COLUMNS`) of the units starting in GPS ``[a, b)``."""
        out: dict[str, list] = {c: [] for c in UNIT_COLUMNS}
        s = self.stats
        for i in range(s.predicted.size):
            start = (s.j0 + i) * size
            if not a * rate <= start < b * rate:
                continue
            out["gps"].append(start / rate)
            out["duration"].append(size / rate)
            out["predicted"].append(float(s.predicted[i]))
            out["drop"].append(float(s.drop[i]))
            out["sigma"].append(float(s.sigma[i]))
            out["z"].append(float(s.z[i]))
            out["kept"].append(bool(self.kept[i]))
            out["reason"].append(str(self.reason[i]))
        return out


def decide_span(
    p: torch.Tensor, r: torch.Tensor, lo: int, hi: int, decision: Decision, rate: int
) -> DecidedSpan:
    """Decide over model-rate samples ``[lo, hi)`` given ``p`` and ``r`` over a wider span.

    ``p`` (the undecided whitened prediction) and ``r`` (whitened strain, NaN where unknown)
    cover ``[ext_lo, ext_hi) = span_needed(lo, hi)``; the gain returned covers ``[lo, hi)``.
    """
    size = decision.unit_size(rate)
    ext_lo, ext_hi = span_needed(lo, hi, size)
    if p.numel() != ext_hi - ext_lo or r.numel() != p.numel():
        raise GwtwinError(
            f"internal: expected {ext_hi - ext_lo} samples of p and r, found {p.numel()} and "
            f"{r.numel()}"
        )
    stats = unit_stats(p, r, ext_lo // size, size)
    kept, reason = decide(stats, decision)
    # units 0 and -1 of the extended span only serve their neighbours' extension rule
    ramp = int(round(decision.ramp_duration * rate))
    g = gain(kept[1:-1], size, ramp, dtype=p.dtype)
    g_lo = ext_lo + size
    out = g[lo - g_lo : hi - g_lo]
    inner = UnitStats(
        stats.j0 + 1,
        stats.predicted[1:-1],
        stats.drop[1:-1],
        stats.sigma[1:-1],
        stats.z[1:-1],
    )
    return DecidedSpan(lo, hi, out, inner, kept[1:-1], reason[1:-1])


def span_needed(lo: int, hi: int, size: int) -> tuple[int, int]:
    """Model-rate samples of prediction and whitened strain needed to decide ``[lo, hi)``: the
    units it touches, their ramp neighbours and those neighbours' extension neighbours."""
    j_lo = math.floor(lo / size) - 2
    j_hi = math.ceil(hi / size) + 2
    return j_lo * size, j_hi * size
