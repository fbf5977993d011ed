"""gwpy's multi-Q tiling (:mod:`gwpy.signal.qtransform`, itself Omega's), op for op.

Log-spaced Q planes, log-spaced frequency rows per plane (rounded down to multiples of
``1 / duration``), a power of two of tiles per row (its own time resolution), and the number of
frequency bins of each row's bisquare window. The same float operations in the same order as gwpy,
so frequencies are bit-identical. The transform itself is :mod:`gwtwin.signal.qtransform`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gwtwin.errors import GwtwinError

__all__ = [
    "DEFAULT_FRANGE",
    "DEFAULT_MISMATCH",
    "DEFAULT_QRANGE",
    "MIN_INDEPENDENT_TILES",
    "SQRT11",
    "QPlane",
    "QTiling",
    "frequency_limits",
    "plane_qs",
    "qtiling",
]

DEFAULT_QRANGE = (4.0, 64.0)
DEFAULT_FRANGE = (0.0, math.inf)
DEFAULT_MISMATCH = 0.2
#: Omega's minimum number of statistically independent tiles per row, which sets the lowest
#: frequency a duration allows: ``fmin = 50 * qmax / (2 * pi * duration)``.
MIN_INDEPENDENT_TILES = 50
SQRT11 = 11 ** (1 / 2.0)


def _pow2_upper(x: float) -> int:
    # gwpy.utils.round_to_power(x, base=2, which="upper"), same float ops
    return int(2 ** math.ceil(math.log(x, 2)))


@dataclass(frozen=True)
class QPlane:
    """One plane of constant Q: its frequency rows and their tiling.

    Attributes
    ----------
    q : float
        Quality factor of the plane.
    frequencies : numpy.ndarray
        Centre frequency of each row, Hz (gwpy's ``QPlane.frequencies``).
    ntiles : numpy.ndarray
        Number of tiles in each row (a power of two); row ``i`` has time resolution
        ``duration / ntiles[i]`` s.
    windowsize : numpy.ndarray
        Number of frequency bins in each row's bisquare window.
    """

    q: float
    frequencies: np.ndarray
    ntiles: np.ndarray
    windowsize: np.ndarray

    @property
    def qprime(self) -> float:
        return self.q / SQRT11

    @property
    def bandwidths(self) -> np.ndarray:
        """Bandwidth of each row, Hz: ``2 sqrt(pi) f / q`` (gwpy's ``QTile.bandwidth``)."""
        return 2 * math.pi ** (1 / 2.0) * self.frequencies / self.q

    def __len__(self) -> int:
        return len(self.frequencies)


@dataclass(frozen=True)
class QTiling:
    """The tiles of a multi-Q transform of ``duration`` s of data at ``sample_rate`` Hz."""

    duration: float
    sample_rate: float
    qrange: tuple[float, float]
    frange: tuple[float, float]
    mismatch: float
    planes: tuple[QPlane, ...]

    @property
    def qs(self) -> np.ndarray:
        return np.array([p.q for p in self.planes])

    @property
    def deltam(self) -> float:
        return 2 * (self.mismatch / 3.0) ** (1 / 2.0)

    @property
    def ntiles_total(self) -> int:
        return int(sum(int(p.ntiles.sum()) for p in self.planes))


def _check_q(qrange: Sequence[float], mismatch: float) -> tuple[float, float, float]:
    qlo, qhi = (float(v) for v in qrange)
    mismatch = float(mismatch)
    if not (0 < mismatch <= 0.5):
        raise GwtwinError(f"mismatch must be in (0, 0.5], found {mismatch}")
    if not (math.isfinite(qlo) and math.isfinite(qhi)) or qlo > qhi:
        raise GwtwinError(f"qrange must be finite (low, high) with low <= high, found {qrange}")
    if qlo < SQRT11:
        raise GwtwinError(
            f"qrange low end must be >= sqrt(11) = {SQRT11:.4f} (the bisquare window would reach "
            f"negative frequencies), found {qlo}"
        )
    return qlo, qhi, mismatch


def _plane_qs(qlo: float, qhi: float, mismatch: float) -> list[float]:
    # gwpy QTiling._iter_qs
    deltam = 2 * (mismatch / 3.0) ** (1 / 2.0)
    cumum = math.log(qhi / qlo) / 2 ** (1 / 2.0)
    nplanes = int(max(math.ceil(cumum / deltam), 1))
    delta_q = cumum / nplanes
    return [qlo * math.exp(2 ** (1 / 2.0) * delta_q * (i + 0.5)) for i in range(nplanes)]


def plane_qs(
    qrange: Sequence[float] = DEFAULT_QRANGE, mismatch: float = DEFAULT_MISMATCH
) -> np.ndarray:
    """The Q of each plane of gwpy's tiling of ``qrange`` (independent of duration and rate).

    The highest is below ``qrange[1]`` (planes sit at the centres of equal steps in ``ln Q``).
    """
    return np.array(_plane_qs(*_check_q(qrange, mismatch)))


def frequency_limits(
    duration: float,
    sample_rate: float,
    qrange: Sequence[float] = DEFAULT_QRANGE,
    mismatch: float = DEFAULT_MISMATCH,
) -> tuple[float, float]:
    """Lowest and highest frequency (Hz) that :func:`qtiling` allows for these settings.

    ``50 q_max / (2 pi duration)`` (Omega's 50 independent tiles per row at the highest plane's
    Q) and ``(sample_rate / 2) / (1 + sqrt(11) / q_min)`` (the lowest plane's bisquare window
    stays below Nyquist); ``duration`` in s, ``sample_rate`` in Hz.
    """
    qs = _plane_qs(*_check_q(qrange, mismatch))
    duration, sample_rate = float(duration), float(sample_rate)
    return (
        MIN_INDEPENDENT_TILES * max(qs) / (2 * math.pi * duration),
        sample_rate / 2 / (1 + SQRT11 / min(qs)),
    )


def qtiling(
    duration: float,
    sample_rate: float,
    qrange: Sequence[float] = DEFAULT_QRANGE,
    frange: Sequence[float] = DEFAULT_FRANGE,
    mismatch: float = DEFAULT_MISMATCH,
) -> QTiling:
    """Build gwpy's tiling for ``duration`` s at ``sample_rate`` Hz, validating every limit.

    Parameters
    ----------
    duration : float
        Length of the data to transform, s.
    sample_rate : float
        Sample rate, Hz.
    qrange : (float, float)
        Lowest and highest Q. The lowest must be at least ``sqrt(11) = 3.317`` (below it the
        bisquare window reaches negative frequencies).
    frange : (float, float)
        Lowest and highest frequency, Hz. ``0`` picks the lowest allowed by the duration,
        ``50 q_max / (2 pi duration)`` (Omega's 50 independent tiles per row; ``q_max`` is the
        highest plane's Q); ``inf`` the highest allowed by the sample rate,
        ``(sample_rate / 2) / (1 + sqrt(11) / q_min)`` (``q_min`` the lowest plane's Q). A value
        given outside these limits is an error, not silently clipped.
    mismatch : float
        Maximum fractional energy mismatch between neighbouring tiles, in ``(0, 0.5]``.
    """
    duration, sample_rate = float(duration), float(sample_rate)
    qlo, qhi, mismatch = _check_q(qrange, mismatch)
    if not (duration > 0 and sample_rate > 0):
        raise GwtwinError(
            f"duration (s) and sample_rate (Hz) must be positive, found {duration}, {sample_rate}"
        )
    deltam = 2 * (mismatch / 3.0) ** (1 / 2.0)
    qs = _plane_qs(qlo, qhi, mismatch)
    # frequency limits (gwpy QTiling.__init__)
    fmin_allowed = MIN_INDEPENDENT_TILES * max(qs) / (2 * math.pi * duration)
    fmax_allowed = sample_rate / 2 / (1 + SQRT11 / min(qs))
    fmin, fmax = (float(v) for v in frange)
    nyq = sample_rate / 2
    if fmin_allowed >= fmax_allowed:
        raise GwtwinError(
            f"data too short: {duration:g} s at {sample_rate:g} Hz allows frequencies from "
            f"{fmin_allowed:.4g} Hz (50 * q_max / (2 pi duration), q_max = {max(qs):.4g}) to "
            f"{fmax_allowed:.4g} Hz, an empty range; give at least "
            f"{MIN_INDEPENDENT_TILES * max(qs) / (2 * math.pi * fmax_allowed):.4g} s or lower "
            "the Q range"
        )
    if fmin == 0:
        fmin = fmin_allowed
    elif fmin < fmin_allowed * (1 - 1e-9):
        raise GwtwinError(
            f"frange low end {fmin:g} Hz is below the lowest frequency {fmin_allowed:.4g} Hz that "
            f"{duration:g} s of data allow at q_max = {max(qs):.4g} (50 * q_max / (2 pi "
            "duration)); give more data, a lower Q, or a higher frange low end"
        )
    if math.isinf(fmax):
        fmax = fmax_allowed
    elif fmax > fmax_allowed * (1 + 1e-9):
        raise GwtwinError(
            f"frange high end {fmax:g} Hz is above the highest frequency {fmax_allowed:.4g} Hz "
            f"allowed at {sample_rate:g} Hz for q_min = {min(qs):.4g} (Nyquist {nyq:g} Hz / "
            f"(1 + sqrt(11) / q_min)); lower it or raise the sample rate"
        )
    if not (fmin < fmax):
        raise GwtwinError(f"frange must be (low, high) with low < high, found ({fmin}, {fmax}) Hz")

    planes = []
    for q in qs:
        # gwpy QPlane._iter_frequencies
        fcum_mismatch = math.log(fmax / fmin) * (2 + q**2) ** (1 / 2.0) / 2.0
        nfreq = int(max(1, math.ceil(fcum_mismatch / deltam)))
        fstep = fcum_mismatch / nfreq
        fstepmin = 1 / duration
        freqs: list[float] = []
        last = None
        for i in range(nfreq):
            this = (
                fmin
                * math.exp(2 / (2 + q**2) ** (1 / 2.0) * (i + 0.5) * fstep)
                // fstepmin
                * fstepmin
            )
            if this != last:
                freqs.append(this)
            last = this
        qprime = q / SQRT11
        ntiles = [_pow2_upper(duration * 2 * math.pi * f / q / deltam) for f in freqs]
        wsize = [2 * int(f / qprime * duration) + 1 for f in freqs]
        for f, n, w in zip(freqs, ntiles, wsize, strict=True):
            if w > n or f <= 0:
                raise GwtwinError(
                    f"mismatch {mismatch} is too coarse for Q = {q:.4g} at {f:.4g} Hz: the window "
                    f"({w} bins) does not fit the row's {n} tiles; lower the mismatch"
                )
        planes.append(
            QPlane(
                q=q,
                frequencies=np.array(freqs, dtype=np.float64),
                ntiles=np.array(ntiles, dtype=np.int64),
                windowsize=np.array(wsize, dtype=np.int64),
            )
        )
    return QTiling(duration, sample_rate, (qlo, qhi), (fmin, fmax), mismatch, tuple(planes))
