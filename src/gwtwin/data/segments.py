"""Segment arithmetic on ``[n, 2]`` float arrays of GPS ``[start, end]`` (coalesced, sorted).

The one place where gwtwin adds, intersects, subtracts and measures time segments (selection,
cleaning, veto and evaluation all use it). The semantics are gwpy's ``SegmentList`` (half-open
segments, touching ones coalesce); the representation is a plain numpy array because the
selection rounds veto, subtract and measure segments thousands of times, where gwpy's pure-Python
segments would dominate the run time. :func:`to_segmentlist` converts to gwpy at the file
boundary (flags, XML); :func:`merge_spans` gives plain ``(start, end)`` tuples for JSON.
"""

from __future__ import annotations

import numpy as np

from gwtwin.data._quiet import quiet_gwpy
from gwtwin.errors import GwtwinError

__all__ = [
    "coalesce",
    "efficiency_deadtime",
    "contains",
    "intersect",
    "intersect_spans",
    "merge_spans",
    "subtract",
    "to_segmentlist",
    "total",
    "windows_around",
]


def _as(segs) -> np.ndarray:
    arr = np.asarray(segs, dtype=np.float64).reshape(-1, 2)
    return arr


def coalesce(segs) -> np.ndarray:
    """Sort and merge overlapping or touching segments; drop empty ones."""
    arr = _as(segs)
    arr = arr[arr[:, 1] > arr[:, 0]]
    if len(arr) == 0:
        return np.zeros((0, 2))
    arr = arr[np.argsort(arr[:, 0], kind="stable")]
    ends = np.maximum.accumulate(arr[:, 1])
    new = np.ones(len(arr), dtype=bool)
    new[1:] = arr[1:, 0] > ends[:-1]
    starts = arr[new, 0]
    idx = np.flatnonzero(new)
    stops = np.maximum.reduceat(arr[:, 1], idx)
    return np.stack([starts, stops], axis=1)


def merge_spans(segs, tolerance: float = 1e-9) -> list[tuple[float, float]]:
    """Coalesced segments as ``(start, end)`` float tuples (JSON-able); segments separated by at
    most ``tolerance`` s are merged too (default 1 ns, the GPS resolution: pieces computed from
    sample times in float64 touch only to rounding)."""
    arr = coalesce(segs)
    if tolerance > 0 and len(arr) > 1:
        arr = coalesce(arr + np.array([0.0, tolerance])) - np.array([0.0, tolerance])
    return [(float(lo), float(hi)) for lo, hi in arr]


def intersect_spans(a, b) -> list[tuple[float, float]]:
    """``a & b`` of two span lists in any order (overlaps allowed), as ``(start, end)`` tuples."""
    return merge_spans(intersect(coalesce(a), coalesce(b)), tolerance=0.0)


def total(segs) -> float:
    """Summed length, s (segments assumed coalesced)."""
    arr = _as(segs)
    return float(np.sum(arr[:, 1] - arr[:, 0])) if len(arr) else 0.0


def intersect(a, b) -> np.ndarray:
    """``a & b`` of two coalesced lists."""
    a, b = _as(a), _as(b)
    if not len(a) or not len(b):
        return np.zeros((0, 2))
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i, 0], b[j, 0]), min(a[i, 1], b[j, 1])
        if hi > lo:
            out.append((lo, hi))
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return _as(out) if out else np.zeros((0, 2))


def subtract(a, b) -> np.ndarray:
    """``a - b`` of two coalesced lists."""
    a, b = _as(a), _as(b)
    if not len(b) or not len(a):
        return a.copy()
    out = []
    j = 0
    for lo, hi in a:
        cur = lo
        while j < len(b) and b[j, 1] <= cur:
            j += 1
        k = j
        while k < len(b) and b[k, 0] < hi:
            if b[k, 0] > cur:
                out.append((cur, b[k, 0]))
            cur = max(cur, b[k, 1])
            if cur >= hi:
                break
            k += 1
        if cur < hi:
            out.append((cur, hi))
    return _as(out) if out else np.zeros((0, 2))


def contains(segs, times) -> np.ndarray:
    """Boolean mask: ``start <= t <= end`` for some segment (closed, as hveto vetoes)."""
    arr = _as(segs)
    times = np.asarray(times, dtype=np.float64)
    if not len(arr) or not times.size:
        return np.zeros(times.shape, dtype=bool)
    i = np.searchsorted(arr[:, 0], times, side="right") - 1
    ok = i >= 0
    out = np.zeros(times.shape, dtype=bool)
    out[ok] = times[ok] <= arr[i[ok], 1]
    return out


def windows_around(times, window: float) -> np.ndarray:
    """Coalesced ``[t - window / 2, t + window / 2]`` around each time."""
    times = np.asarray(times, dtype=np.float64)
    return coalesce(np.stack([times - window / 2, times + window / 2], axis=1))


def to_segmentlist(segs):
    """A :class:`gwpy.segments.SegmentList` of the same segments."""
    with quiet_gwpy():  # gwpy restyles matplotlib on first import
        from gwpy.segments import Segment, SegmentList

    return SegmentList(Segment(float(lo), float(hi)) for lo, hi in _as(segs))


def efficiency_deadtime(active, known, times) -> dict:
    """hveto's figures of merit of a flag: efficiency (share of ``times`` inside ``active``,
    half-open), deadtime (active time over ``known`` time) and their ratio."""
    active = _as(active)
    live = total(coalesce(known))
    if live <= 0:
        raise GwtwinError("zero known (live) time: efficiency and deadtime are undefined")
    times = np.asarray(times, np.float64)
    inside = np.zeros(times.size, bool)
    for a, b in active:
        inside |= (times >= a) & (times < b)
    dead = float(np.sum(active[:, 1] - active[:, 0])) / live
    eff = float(inside.mean()) if times.size else float("nan")
    return {
        "efficiency": eff,
        "deadtime": dead,
        "efficiency_over_deadtime": eff / dead if dead > 0 else float("inf"),
        "n_glitches": int(times.size),
        "n_vetoed": int(inside.sum()),
    }
