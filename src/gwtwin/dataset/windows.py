"""Time bookkeeping of a dataset, in exact integer nanoseconds: splits, window grids, bad time.

Everything here is a plain function of integers so that the layout of a dataset (which window
starts where, which split it belongs to, why a window was skipped) is testable without data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gwtwin.data import NS, to_ns
from gwtwin.errors import GwtwinError

Interval = tuple[int, int]

# reasons a candidate window is not in the dataset (the keys of ``n_skipped``)
GAP, NONFINITE, EDGE, QUIET = "gap", "nonfinite", "edge", "quiet_not_sampled"


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, merged ``[lo, hi)`` intervals."""
    out: list[list[int]] = []
    for lo, hi in sorted(intervals):
        if hi <= lo:
            continue
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]


def subtract(span: Interval, intervals: Iterable[Interval]) -> list[Interval]:
    """``span`` minus the (merged) intervals."""
    out, cursor = [], span[0]
    for lo, hi in union(intervals):
        if hi <= span[0] or lo >= span[1]:
            continue
        if lo > cursor:
            out.append((cursor, lo))
        cursor = max(cursor, hi)
    if cursor < span[1]:
        out.append((cursor, span[1]))
    return out


def overlaps(lo: int, hi: int, intervals: Sequence[Interval]) -> bool:
    """Whether ``[lo, hi)`` intersects any of the intervals."""
    return any(a < hi and lo < b for a, b in intervals)


def whole_seconds_inward(lo: int, hi: int) -> Interval | None:
    """``[lo, hi)`` shrunk to whole GPS seconds (None if nothing is left)."""
    a = -(-lo // NS) * NS
    b = (hi // NS) * NS
    return (a, b) if b > a else None


@dataclass(frozen=True)
class Splits:
    """The training and validation spans (GPS ns), each a list of contiguous pieces."""

    train: list[Interval]
    valid: list[Interval]

    def pieces(self):
        for name in ("train", "valid"):
            for piece in getattr(self, name):
                yield name, piece


def make_splits(
    span: Interval, valid_fraction: float = 0.2, valid_span: Sequence | None = None
) -> Splits:
    """Split ``span`` by time: the last ``valid_fraction`` (rounded to whole seconds), or the
    explicit GPS ``valid_span``; training is the rest.  The two never share a second."""
    lo, hi = span
    if valid_span is not None:
        v0, v1 = to_ns(valid_span[0]), to_ns(valid_span[1])
        if v0 >= hi or v1 <= lo:
            raise GwtwinError(
                f"valid_span [{v0 / NS:g}, {v1 / NS:g}) does not overlap the data span "
                f"[{lo / NS:g}, {hi / NS:g})"
            )
        valid = [(max(lo, v0), min(hi, v1))]
    elif valid_fraction > 0:
        cut = hi - int(round((hi - lo) * valid_fraction / NS)) * NS
        valid = [(cut, hi)] if cut < hi else []
    else:
        valid = []
    train = subtract(span, valid)
    if not train:
        raise GwtwinError(
            f"no training time left in [{lo / NS:g}, {hi / NS:g}) after taking the validation "
            f"span {[(a / NS, b / NS) for a, b in valid]}"
        )
    return Splits(train, valid)


def window_starts(piece: Interval, window_ns: int, stride_ns: int, need_ns: int) -> list[int]:
    """Window starts on ``piece``: ``piece[0] + need + k * stride`` while the window plus
    ``need`` on each side (data the filters use) fits in the piece."""
    lo, hi = piece
    first = lo + need_ns
    last = hi - need_ns - window_ns
    if last < first:
        return []
    return list(range(first, last + 1, stride_ns))


@dataclass
class Survey:
    """What the first pass learnt about the candidate windows of one split."""

    starts: list[int] = field(default_factory=list)
    ok: list[bool] = field(default_factory=list)
    reason: list[str] = field(default_factory=list)
    max_snr: list[float] = field(default_factory=list)

    def add(self, start: int, reason: str | None, snr: float) -> None:
        self.starts.append(start)
        self.ok.append(reason is None)
        self.reason.append(reason or "")
        self.max_snr.append(snr)


def classify(
    start: int, window_ns: int, need_ns: int, gaps: Sequence[Interval], bad: Sequence[Interval]
) -> str | None:
    """Why a window cannot be used (None if it can): it touches a gap, NaN/inf samples, or one
    of them lies within the ``need`` its filters reach beyond the window."""
    lo, hi = start, start + window_ns
    if overlaps(lo, hi, gaps):
        return GAP
    if overlaps(lo, hi, bad):
        return NONFINITE
    if overlaps(lo - need_ns, hi + need_ns, list(gaps) + list(bad)):
        return EDGE
    return None


def loudest(times: np.ndarray, snrs: np.ndarray, starts: Sequence[int], window_ns: int):
    """Loudest trigger SNR with peak time in ``[start, start + window)`` (0 if none)."""
    out = np.zeros(len(starts), dtype=np.float32)
    if len(times) == 0:
        return out
    order = np.argsort(times)
    t, s = times[order], snrs[order]
    for i, st in enumerate(starts):
        a = np.searchsorted(t, st / NS, side="left")
        b = np.searchsorted(t, (st + window_ns) / NS, side="left")
        if b > a:
            out[i] = float(s[a:b].max())
    return out


def sample_quiet(
    glitch: np.ndarray, usable: np.ndarray, quiet_fraction: float | None, seed: int
) -> np.ndarray:
    """Mask of windows kept: every usable glitch window and quiet ones drawn (seeded, without
    replacement) so that quiet windows are ``quiet_fraction`` of the kept ones.  With no glitch
    window at all, every quiet window is kept; ``None`` keeps everything."""
    keep = usable.copy()
    if quiet_fraction is None:
        return keep
    quiet = np.flatnonzero(usable & ~glitch)
    n_glitch = int((usable & glitch).sum())
    if n_glitch == 0:
        return keep
    want = min(len(quiet), int(math.floor(quiet_fraction / (1 - quiet_fraction) * n_glitch + 0.5)))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(quiet, size=want, replace=False) if want else np.zeros(0, int)
    keep[quiet] = False
    keep[chosen] = True
    return keep
