"""Reading the span chunk by chunk, in integer GPS nanoseconds (both passes of the build).

A *plan* is the list of ``(split, piece, starts)`` chunks, each a run of consecutive window
starts inside one contiguous piece of a split; a chunk reads its windows plus ``need`` on each
side, clipped to the piece.  Each channel is read alone (native rates differ); gaps and NaN/inf
spans of all channels together decide which whole seconds are good.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from gwtwin.data import NS, Block, read, to_ns
from gwtwin.data.block import ns_to_gps
from gwtwin.dataset.windows import Splits, subtract, union, whole_seconds_inward, window_starts
from gwtwin.errors import GwtwinError

Chunk = tuple[str, tuple[int, int], list[int]]
Progress = Callable[[str, int, int], None]  # (stage, chunks done, chunks in the pass)


def plan_chunks(
    splits: Splits, window_ns: int, stride_ns: int, need_ns: int, chunk_duration: float
) -> list[Chunk]:
    """``(split, piece, starts)`` per chunk of consecutive windows, ``chunk_duration`` seconds
    of window starts (at least one) per chunk."""
    per = max(1, int(chunk_duration * NS // stride_ns))
    plan = []
    for split, piece in splits.pieces():
        starts = window_starts(piece, window_ns, stride_ns, need_ns)
        for k in range(0, len(starts), per):
            plan.append((split, piece, starts[k : k + per]))
    return plan


def chunk_range(piece, starts, window_ns: int, need_ns: int) -> tuple[int, int]:
    """GPS ns ``[lo, hi)`` a chunk reads: its windows plus ``need`` each side, inside ``piece``."""
    return max(piece[0], starts[0] - need_ns), min(piece[1], starts[-1] + window_ns + need_ns)


def core_end(plan: Sequence[Chunk], i: int, rhi: int) -> int:
    """Triggers and fit data of chunk ``i`` end where the next chunk's windows start."""
    split, piece, _ = plan[i]
    if i + 1 < len(plan) and plan[i + 1][1] == piece:
        return plan[i + 1][2][0]
    return rhi


def read_channels(frames: Path, channels: Sequence[str], lo: int, hi: int) -> dict:
    """Each channel read alone (native rates differ) over GPS ns ``[lo, hi)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # lalframe unit notes
        return {c: read(frames, [c], ns_to_gps(lo), ns_to_gps(hi)) for c in channels}


def bad_time(datas) -> tuple[list, list]:
    """``(gaps, nonfinite spans)`` of all channels read, each merged into sorted GPS ns spans."""
    gaps, bad = [], []
    for d in datas.values():
        gaps += [(to_ns(g[0]), to_ns(g[1])) for g in d.gaps]
        for segs in d.nonfinite.values():
            bad += [(to_ns(s[0]), to_ns(s[1])) for s in segs]
    return union(gaps), union(bad)


def good_spans(lo: int, hi: int, gaps, bad) -> list[tuple[int, int]]:
    """The whole seconds of ``[lo, hi)`` outside every gap and NaN/inf span, as GPS ns spans."""
    out = []
    for a, b in subtract((lo, hi), list(gaps) + list(bad)):
        span = whole_seconds_inward(a, b)
        if span:
            out.append(span)
    return out


def crop(fd, lo: int, hi: int) -> Block:
    """The piece of a channel's FrameData covering GPS ns ``[lo, hi)``."""
    for seg in fd.segments:
        if seg.t0_ns <= lo and seg.end_ns >= hi:
            return seg.crop(ns_to_gps(lo), ns_to_gps(hi))
    raise GwtwinError(f"no contiguous data for {fd.channels} over [{lo / NS}, {hi / NS})")


def join_abutting(blocks: list[Block]) -> list[Block]:
    """Blocks that abut in time joined into one (pieces of one span cut at chunk boundaries)."""
    out: list[Block] = []
    for b in sorted(blocks, key=lambda b: b.t0_ns):
        if out and out[-1].end_ns == b.t0_ns:
            out[-1] = out[-1].replace(data=torch.cat([out[-1].data, b.data], dim=1))
        else:
            out.append(b)
    return out


def probe_rates(
    frames: Path, channels: Sequence[str], start_ns: int, units: dict | None = None
) -> dict[str, float]:
    """Native rate (Hz) of each channel (one second read); fills ``units`` when given."""
    datas = read_channels(frames, channels, start_ns, start_ns + NS)
    rates = {}
    for c, d in datas.items():
        if d.sample_rate is None:
            raise GwtwinError(f"cannot tell the sample rate of {c} from {frames}")
        rates[c] = float(d.sample_rate)
        if units is not None:
            units[c] = d.units[0] if d.units else ""
    return rates
