"""Exact sample-time arithmetic and :class:`Piece`, shared by every frame reader.

A reader (:class:`gwtwin.data.gwf.GwfReader`, :class:`gwtwin.data.hdf5.Hdf5Reader`) hands back
:class:`Piece` objects: the samples of one channel that fall in a requested GPS span, with exact
sample-time bookkeeping; :mod:`gwtwin.data.frames` stitches them across files.  This module
imports no reader, so the readers and the dispatch (:mod:`gwtwin.data.backends`) can both
import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from gwtwin.data.block import NS, to_ns
from gwtwin.errors import GwtwinError

__all__ = [
    "Piece",
    "grid_offset",
    "index_at",
    "rate_from_dt",
    "slice_span",
    "snap_t0",
    "time_at",
]

# -- sample-time arithmetic ------------------------------------------------------------------


def rate_from_dt(dt: float) -> Fraction:
    """Exact sample rate from a sample spacing in seconds (``1/4096`` -> ``4096``)."""
    if not (dt > 0 and math.isfinite(dt)):
        raise GwtwinError(f"sample spacing must be a positive number of seconds, found {dt!r}")
    return Fraction(1 / dt).limit_denominator(1_000_000)


def index_at(t_ns: int, origin_ns: int, rate: Fraction) -> int:
    """Index of the first sample at or after ``t_ns`` on the grid ``origin + k / rate``.

    A time within 1 ns of a sample counts as on it (sample times are rounded to ns).
    """
    offset = Fraction(t_ns - origin_ns, NS) * rate
    nearest = round(offset)
    if abs(offset - nearest) <= rate / NS:
        return int(nearest)
    return math.ceil(offset)


def time_at(k: int, origin_ns: int, rate: Fraction) -> int:
    """GPS time (ns, rounded) of sample ``k`` on the grid ``origin + k / rate``."""
    return origin_ns + round(Fraction(k * NS) / rate)


def grid_offset(origin_ns: int, ref_ns: int, rate: Fraction) -> int | None:
    """Number of samples from grid ``ref`` to ``origin``, or None if not on the same grid."""
    offset = Fraction(origin_ns - ref_ns, NS) * rate
    nearest = round(offset)
    return int(nearest) if abs(offset - nearest) <= rate / NS else None


@dataclass
class Piece:
    """Samples ``data`` of one channel: entries ``i0...`` of a vector starting at ``origin_ns``.

    Sample ``k`` of the stored vector is at GPS ``origin_ns + k / rate``; ``cover`` is the
    ``[start, end)`` span (ns) these samples stand for, clipped to what was asked.
    """

    origin_ns: int
    rate: Fraction
    i0: int
    data: np.ndarray
    unit: str
    cover: tuple[int, int]


def slice_span(size: int, origin_ns: int, rate: Fraction, start_ns: int, end_ns: int):
    """Index range and covered span of a ``size``-sample vector inside ``[start_ns, end_ns)``.

    A span shorter than one sample period may hold no sample yet is still covered by the file
    (it is not a gap), so it comes back with an empty index range.
    """
    lo = max(start_ns, origin_ns)
    hi = min(end_ns, time_at(size, origin_ns, rate))
    if hi <= lo:
        return None
    i0 = min(max(index_at(lo, origin_ns, rate), 0), size)
    i1 = min(max(index_at(hi, origin_ns, rate), i0), size)
    return i0, i1, (lo, hi)


def snap_t0(x0: float, rate: Fraction) -> int:
    """Exact GPS start (ns) from a float64 one, snapped to the sample grid of the whole second.

    A float64 near GPS 1e9 is good to ~0.1 us; a start on the grid ``second + k / rate`` (every
    frame written from whole-second data) is recovered exactly.
    """
    whole = math.floor(x0)
    frac = x0 - whole
    k = round(frac * rate)
    if abs(frac - k / rate) < 2e-7:
        return whole * NS + round(Fraction(k * NS) / rate)
    return to_ns(float(x0))
