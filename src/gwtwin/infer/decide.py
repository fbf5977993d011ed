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

**Bands.**  A unit is decided per octave band (``[0, 16), [16, 32), ... Hz`` up to the model's
Nyquist frequency; the bands come from complementary 1 s FIRs, so they sum back to the
prediction exactly): a model right about a glitch at 100 Hz and wrong at 300 Hz subtracts the
first and not the second, and a drop in one band can never pay for noise added in another.
In a band holding a share ``f`` of the frequencies (above the whitening's high-pass), white
noise of variance ``sigma^2`` has variance ``f sigma^2``, so ``sigma`` is the band's robust
level over ``sqrt(f)``.  A band whose prediction carries less than ``0.01`` (whitened SNR^2)
in a unit is no prediction there.  Where one band of a unit improved, or the whole band did
(the unit rule on the unsplit prediction: a broadband glitch's significance is not divided
between bands), the unit's other bands are kept unless ``z < -1`` (``extended``), so a glitch
is subtracted whole while a band the model gets wrong is still left out.

A continuous coupling (a witnessed mains line, always there) gives a steady small prediction
whose single-unit ``z`` hovers around the margin (``|c|^2 = 40`` per second: ``z ~ 3.2``), so a
unit-by-unit rule would switch its subtraction on and off at random, and the switching itself
would spread the line's residual into neighbouring bins.  Units are therefore also **pooled**:
over the ``2 pool_units + 1`` units around a unit, leaving out the improved ones (a loud glitch
must not vouch for the noise predicted next to it), the drops and their null variances are
summed, ``Z = sum D / (2 sqrt(sum sigma^2 |p|^2))``; a unit is kept when ``Z >= margin_sigma``
and its own ``z >= -1`` (``pooled``).  A steady coupling with ``z ~ 2`` per unit is kept
almost everywhere (``Z ~ 6`` over 9 units), one with ``z ~ 1`` about half the time; a noise
prediction, whose drops are negative on average, never is.

A unit next to an improved unit is kept too unless its power rose by more than one standard
deviation of the null (``z >= -1``): the tail of a glitch that crosses a unit boundary is
subtracted with its head (a tail of whitened SNR 2 has ``z ~ 1 +- 1``), while a neighbour where
the prediction is noise of norm ``|p|`` is kept with probability ``Q(|p| / 2 - 1)``, so the
noise it can add stays small (``|p| = 4``: 16 %).  Elsewhere the subtraction is
tapered out: the gain is 1 in kept units, 0 in the others, with half-Hann ramps of
``ramp_duration`` inside the off units next to kept ones, so it never switches with a step.
Every unit's decision is recorded (:data:`UNIT_COLUMNS`) with its reason:

- ``improved``: significant drop (``z >= margin_sigma``);
- ``pooled``: significant drop over the units around it, and ``z >= -1``;
- ``extended``: next to an improved unit, or in a unit where another band improved, and
  ``z >= -1``;
- ``worse``: significant rise (``z <= -margin_sigma``);
- ``not_significant``: neither;
- ``no_prediction``: nothing to subtract (``|p|^2 <= 0.01``: unpredictable witnesses, segment
  ends, a band the prediction does not reach);
- ``no_strain``: the whitened strain is not known there (NaN/inf strain samples within the
  whitening filter's reach).

**The local check.**  A unit is kept as a whole, and a kept unit can hold more than one thing:
the steady line the pooling kept it for, a glitch the model gets right, and next to it a
glitch it gets wrong (a deliberately wrong model on the demo's data did just that: 3 glitches
made worse inside pooled or extended units).  So inside every kept band, each tile of half, a
quarter and an eighth of a unit, on the unit grid and shifted by half a tile, is tested as a
unit is, with the gain applied: ``D = 2 <r, g p> - |g p|^2`` against ``2 sigma |g p|``, both
sums taken over the tile's spectrum above the whitening's high-pass (below it whitened strain
holds no noise, and a short tile's spectral leakage lands there), ``sigma`` the unit's
broadband robust level (a band's own level is raised by any line in it).  Where
``D <= -margin_sigma 2 sigma |g p|`` the band is withheld over the tile, with ``ramp_duration``
half-Hann ramps outside it (``withheld`` in the table: band-seconds taken out).  A prediction
right everywhere has ``D`` of mean ``+|g p|^2`` and is withheld by chance in at most ``Q(3)``
of the tiles with something predicted (none of 840 kept unit-bands with exact glitch and line
predictions in the tests); a wrong one, unrelated to strain, of whitened SNR 8 within a tile
has ``z ~ N(-4, 1)`` and is withheld with probability 0.84, one of SNR 10 with 0.98.

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
from gwtwin.infer.decide_tiles import local_mask

#: the columns of the per-unit decision table (``decisions.csv``)
UNIT_COLUMNS = (
    "gps",
    "duration",
    "predicted",
    "subtracted",
    "drop",
    "z",
    "kept",
    "bands",
    "reason",
    "withheld",
)
REASONS = (
    "improved",
    "pooled",
    "extended",
    "worse",
    "not_significant",
    "no_prediction",
    "no_strain",
)
MAD_SCALE = 1.4826  #: standard deviation per median absolute deviation of a Gaussian
#: whitened energy (SNR^2) of a unit's prediction below which it is no prediction: its sign
#: would be decided by a chance alignment of nothing (SNR 0.1 changes no power measurably)
NEGLIGIBLE = 1e-2


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
    pool_units : int
        Units each side pooled for the continuous-coupling rule (0: none).
    band_low : float or None
        Lowest band edge, Hz: bands ``[0, band_low), [band_low, 2 band_low), ...`` up to the
        Nyquist frequency, decided separately; None: one band (the whole whitened strain).
    band_filter : float
        Length of the band-splitting filters, s.
    local_check : bool
        Withhold a kept band over any tile (half, quarter and eighth of a unit, on the grid and
        shifted by half a tile) where the subtraction raised the power significantly
        (``z <= -margin_sigma``), with ramps outside the tile.
    """

    enabled: bool = True
    unit_duration: float = 1.0
    margin_sigma: float = 3.0
    ramp_duration: float = 0.25
    extend: bool = True
    pool_units: int = 4
    band_low: float | None = 16.0
    band_filter: float = 1.0
    local_check: bool = True

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
        if int(self.pool_units) != self.pool_units or self.pool_units < 0:
            raise GwtwinError(f"pool_units must be a whole number >= 0, found {self.pool_units}")
        if self.band_low is not None and not self.band_low > 0:
            raise GwtwinError(f"band_low must be > 0 Hz (or None: one band), found {self.band_low}")
        if not self.band_filter > 0:
            raise GwtwinError(f"band_filter must be > 0 s, found {self.band_filter}")

    def band_edges(self, rate: int) -> list[float]:
        """Inner band edges at ``rate`` (Hz): octaves from ``band_low`` below Nyquist."""
        edges, f = [], self.band_low
        while f is not None and f < rate / 2:
            edges.append(float(f))
            f *= 2
        return edges

    def filter_half(self, rate: int) -> int:
        """Half length of the band filters, samples (0 with one band)."""
        return round(self.band_filter * rate / 2) if self.band_edges(rate) else 0

    @property
    def reach(self) -> int:
        """Units each side whose statistics a unit's decision reads."""
        return max(1, int(self.pool_units))

    @property
    def local_units(self) -> int:
        """Units each side the local check reads beyond a unit's gain (its tiles are at most
        half a unit, shifted by up to a quarter, with ramps of at most a quarter)."""
        return 1 if self.local_check and self.enabled else 0

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
    #: units each side pooled to keep a steady (continuous) coupling's subtraction (0: none)
    pool_units: int = Field(4, ge=0)
    #: Hz, lowest edge of the octave bands decided separately (null: one band)
    band_low: float | None = Field(16.0, gt=0)
    #: s, length of the band-splitting filters
    band_filter: float = Field(1.0, gt=0)
    #: withhold a kept band over a half/quarter/eighth-unit tile where the power rose
    #: significantly (z <= -margin_sigma): a glitch the model gets wrong inside a kept unit
    local_check: bool = True

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


def unit_stats(
    p: torch.Tensor, r: torch.Tensor, j0: int, size: int, fraction: float = 1.0
) -> UnitStats:
    """Statistics of whole units from the prediction ``p`` and whitened strain ``r``.

    ``p`` and ``r`` are model-rate series starting at unit ``j0``'s first sample, a whole number
    of units long; ``r`` is NaN where the whitened strain is not known (those units get
    ``sigma = NaN``).  For one band of them, ``fraction`` is the band's share of the frequencies
    up to Nyquist: the band-limited ``r`` has variance ``fraction sigma^2`` for white noise of
    variance ``sigma^2``, which is what sets the spread of ``<r, p>``.
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
    sigma = MAD_SCALE * np.median(np.abs(rr - med), axis=1) / math.sqrt(fraction)
    sigma = np.where(known, sigma, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = drop / (2.0 * sigma * np.sqrt(predicted))
    z = np.where(predicted > 0, z, 0.0)
    return UnitStats(j0, predicted, drop, sigma, z)


def decide(stats: UnitStats, decision: Decision) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, reason)`` per unit (see the module docstring).  A unit's decision reads
    ``decision.reach`` units each side: the first and last ``reach`` units of ``stats`` are
    decided from less and should be dropped by callers."""
    n = stats.predicted.size
    reason = np.full(n, "not_significant", dtype=object)
    known = np.isfinite(stats.sigma)
    none = stats.predicted <= NEGLIGIBLE
    improved = known & ~none & (stats.z >= decision.margin_sigma)
    worse = known & ~none & (stats.z <= -decision.margin_sigma)
    reason[improved] = "improved"
    reason[worse] = "worse"
    reason[none] = "no_prediction"
    reason[~known & ~none] = "no_strain"
    kept = improved.copy()
    usable = known & ~none
    w = int(decision.pool_units)
    if w and n > 1:
        rest = usable & ~improved
        sig = np.where(known, stats.sigma, 0.0)
        sum_d = _window_sum(np.where(rest, stats.drop, 0.0), w)
        sum_v = _window_sum(np.where(rest, sig**2 * stats.predicted, 0.0), w)
        with np.errstate(divide="ignore", invalid="ignore"):
            z_pool = np.where(sum_v > 0, sum_d / (2.0 * np.sqrt(sum_v)), 0.0)
        pooled = rest & (z_pool >= decision.margin_sigma) & (stats.z >= -1.0)
        kept |= pooled
        reason[pooled] = "pooled"
    if decision.extend and n > 1:
        near = np.zeros(n, bool)
        near[1:] |= improved[:-1]
        near[:-1] |= improved[1:]
        ext = near & ~kept & usable & (stats.z >= -1.0)
        kept |= ext
        reason[ext] = "extended"
    if not decision.enabled:
        kept = ~none
    return kept, reason.astype(str)


def _window_sum(x: np.ndarray, w: int) -> np.ndarray:
    """Sum over ``[i - w, i + w]`` of each ``i`` (zero beyond the ends), each window summed on
    its own so that the result at ``i`` does not depend on the array's extent."""
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, w), 2 * w + 1)
    return windows.sum(axis=1)


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


def band_filters(decision: Decision, rate: int) -> tuple[list[tuple[float, float]], np.ndarray]:
    """The bands ``[(lo, hi)]`` (Hz) and their FIRs ``[n_bands, 2 half + 1]``: differences of
    Hann-windowed sinc low-passes at consecutive edges, the last band the rest, so the bands
    of any series sum back to it exactly (to rounding)."""
    edges = decision.band_edges(rate)
    nyquist = rate / 2
    bounds = [0.0, *edges, nyquist]
    bands = list(zip(bounds[:-1], bounds[1:], strict=True))
    half = decision.filter_half(rate)
    if not edges:
        return bands, np.ones((1, 1))
    n = np.arange(-half, half + 1)
    window = 0.5 + 0.5 * np.cos(np.pi * n / (half + 1))
    lows = [window * 2 * f / rate * np.sinc(2 * f / rate * n) for f in edges]
    lows = [lp / lp.sum() for lp in lows]  # unit gain at 0 Hz
    delta = (n == 0).astype(float)
    taps = [lows[0], *(b - a for a, b in zip(lows[:-1], lows[1:], strict=True)), delta - lows[-1]]
    return bands, np.stack(taps)


def split_bands(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """``[T] -> [n_bands, T]``: ``x`` through each band FIR (zero-phase, same length; the first
    and last ``half`` samples feel the ends)."""
    if taps.shape[1] == 1:
        return x[None].copy()
    n = x.size + taps.shape[1] - 1
    size = 1 << (n - 1).bit_length()
    spec = np.fft.rfft(x, size)[None] * np.fft.rfft(taps, size, axis=1)
    full = np.fft.irfft(spec, size, axis=1)[:, :n]
    half = taps.shape[1] // 2
    return full[:, half : half + x.size]


@dataclass
class DecidedSpan:
    """The decision over model-rate samples ``[lo, hi)``: what to subtract and the units."""

    lo: int
    hi: int
    prediction: torch.Tensor  #: the decided prediction over [lo, hi): sum of kept bands
    gain: torch.Tensor  #: [n_bands, hi - lo] per-band gain
    bands: list
    stats: list  #: UnitStats per band
    kept: np.ndarray  #: [n_bands, n_units]
    reason: np.ndarray  #: [n_bands, n_units]
    #: [n_bands, n_units] gain-seconds the local check took out of each kept band of a unit
    withheld: np.ndarray | None = None

    def rows(self, size: int, rate: int, a: int, b: int) -> dict[str, list]:
        """Table rows (:data:`UNIT_COLUMNS`) of the units starting in GPS ``[a, b)``."""
        out: dict[str, list] = {c: [] for c in UNIT_COLUMNS}
        first = self.stats[0]
        for i in range(first.predicted.size):
            start = (first.j0 + i) * size
            if not a * rate <= start < b * rate:
                continue
            kept = self.kept[:, i]
            predicted = np.array([st.predicted[i] for st in self.stats])
            out["gps"].append(start / rate)
            out["duration"].append(size / rate)
            out["predicted"].append(float(predicted.sum()))
            out["subtracted"].append(float(predicted[kept].sum()))
            drops = [st.drop[i] for st, k in zip(self.stats, kept, strict=True) if k]
            out["drop"].append(float(sum(drops)))
            zs = [st.z[i] for st in self.stats if st.predicted[i] > 0]
            out["z"].append(float(max(zs)) if zs else 0.0)
            out["kept"].append(bool(kept.any()))
            names = [f"{lo:g}-{hi:g}" for lo, hi in self.bands]
            out["bands"].append(";".join(n for n, k in zip(names, kept, strict=True) if k))
            reasons = set(self.reason[:, i])
            out["reason"].append(next(r for r in REASONS if r in reasons))
            withheld = 0.0 if self.withheld is None else float(self.withheld[:, i].sum())
            out["withheld"].append(withheld)
        return out


def decide_span(
    p: torch.Tensor,
    r: torch.Tensor,
    lo: int,
    hi: int,
    decision: Decision,
    rate: int,
    highpass: float | None = None,
) -> DecidedSpan:
    """Decide over model-rate samples ``[lo, hi)`` given ``p`` and ``r`` over a wider span.

    ``p`` (the undecided whitened prediction) and ``r`` (whitened strain, NaN where unknown)
    cover ``[ext_lo, ext_hi) = span_needed(lo, hi)``; the decided prediction and gains
    returned cover ``[lo, hi)``.  ``highpass`` (Hz): below it the whitened strain holds no
    noise (the whitening's high-pass), which sets each band's noise share.
    """
    size = decision.unit_size(rate)
    ext_lo, ext_hi = span_needed(lo, hi, size, decision)
    if p.numel() != ext_hi - ext_lo or r.numel() != p.numel():
        raise GwtwinError(
            f"internal: expected {ext_hi - ext_lo} samples of p and r, found {p.numel()} and "
            f"{r.numel()}"
        )
    half = decision.filter_half(rate)
    bands, taps = band_filters(decision, rate)
    pp = p.to(torch.float64).numpy()
    rr = r.to(torch.float64).numpy()
    finite = np.isfinite(rr)
    p_b = split_bands(pp, taps)
    r_b = split_bands(np.where(finite, rr, 0.0), taps)
    if not finite.all():  # the band filters spread an unknown sample by their half length
        bad = ~finite
        if half:
            bad = np.convolve(bad.astype(float), np.ones(2 * half + 1), mode="same") > 0
        r_b[:, bad] = np.nan
    core = slice(half, pp.size - half)
    j0 = (ext_lo + half) // size
    c = decision.reach  # units each side decided from less
    ramp = int(round(decision.ramp_duration * rate))
    g_lo = ext_lo + half + c * size
    nyquist = rate / 2
    first_bin = math.ceil((highpass or 0.0) * size / rate)
    level = None
    if decision.local_units:  # the broadband white level of each unit, for the local check
        level = unit_stats(
            torch.from_numpy(pp[core]),
            torch.from_numpy(np.where(finite, rr, np.nan)[core]),
            j0,
            size,
            1.0 - min((highpass or 0.0) / nyquist, 0.95),
        ).sigma
    full, kept, reason = [], [], []
    for k, (f0, f1) in enumerate(bands):
        share = (f1 - max(f0, highpass or 0.0)) / nyquist
        share = max(share, 0.05 * (f1 - f0) / nyquist)  # below the high-pass: a floor
        st = unit_stats(
            torch.from_numpy(p_b[k, core]), torch.from_numpy(r_b[k, core]), j0, size, share
        )
        kk, rr_k = decide(st, decision)
        full.append(st)
        kept.append(kk)
        reason.append(rr_k)
    kept, reason = np.stack(kept), np.stack(reason)
    if decision.extend and decision.enabled and len(bands) > 1:
        # a glitch improved over the whole band, or in one band, takes its other bands along
        # unless they got worse: a broadband glitch's significance is not split between bands
        r_all = np.where(finite, rr, np.nan)
        whole = unit_stats(torch.from_numpy(pp[core]), torch.from_numpy(r_all[core]), j0, size)
        alone = Decision(margin_sigma=decision.margin_sigma, extend=False, pool_units=0)
        broadband = decide(whole, alone)[1] == "improved"
        z = np.stack([st.z for st in full])
        usable = np.stack([np.isfinite(st.sigma) & (st.predicted > NEGLIGIBLE) for st in full])
        improved = (reason == "improved").any(axis=0) | broadband
        across = improved[None] & ~kept & usable & (z >= -1.0)
        kept |= across
        reason[across] = "extended"
    e = decision.local_units
    n_in = kept.shape[1] - 2 * c  # units with a full decision; their gains from the 2nd on
    gains, withheld = [], np.zeros((len(bands), n_in))
    for k, kk in enumerate(kept):
        g_k = gain(kk[c:-c], size, ramp).numpy()
        if e:
            at = slice(half + c * size, half + (c + n_in) * size)
            mask = local_mask(
                g_k * p_b[k, at],
                r_b[k, at],
                level[c : c + n_in],
                size,
                decision.margin_sigma,
                ramp,
                first_bin,
                NEGLIGIBLE,
            )
            withheld[k] = (g_k * (1.0 - mask)).reshape(n_in, size).sum(1) / rate
            g_k = g_k * mask
        gains.append(torch.from_numpy(g_k[lo - g_lo : hi - g_lo]))
    t = c + e  # the units reported: from one unit before [lo, hi) to one after
    stats = [
        UnitStats(st.j0 + t, st.predicted[t:-t], st.drop[t:-t], st.sigma[t:-t], st.z[t:-t])
        for st in full
    ]
    kept, reason = kept[:, t:-t], reason[:, t:-t]
    withheld = withheld[:, e : n_in - e]
    g = torch.stack(gains)
    inner = torch.from_numpy(p_b[:, lo - ext_lo : hi - ext_lo])
    decided = (g * inner).sum(0).to(p.dtype)
    return DecidedSpan(lo, hi, decided, g, bands, stats, kept, reason, withheld)


def span_needed(lo: int, hi: int, size: int, decision: Decision) -> tuple[int, int]:
    """Model-rate samples of prediction and whitened strain needed to decide ``[lo, hi)``: the
    units it touches, their ramp neighbours, ``decision.reach`` more each side, one more for
    the local check's tiles, and the band filters' half length."""
    more = decision.reach + decision.local_units
    j_lo = math.floor(lo / size) - 1 - more
    j_hi = math.ceil(hi / size) + 1 + more
    half = decision.filter_half(int(round(size / decision.unit_duration)))
    return j_lo * size - half, j_hi * size + half
