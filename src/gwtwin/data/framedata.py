"""The result of :func:`gwtwin.data.read`: contiguous segments, gaps and non-finite samples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch

from gwtwin.data._quiet import quiet_gwpy
from gwtwin.data.block import NS, Block, ns_to_gps, to_ns
from gwtwin.data.errors import GapError
from gwtwin.data.pieces import grid_offset, index_at, time_at
from gwtwin.errors import GwtwinError


def _segment(lo_ns: int, hi_ns: int):
    with quiet_gwpy():  # gwpy restyles matplotlib on first import
        from gwpy.segments import Segment

    return Segment(ns_to_gps(lo_ns), ns_to_gps(hi_ns))


def _segment_list(intervals):
    with quiet_gwpy():
        from gwpy.segments import SegmentList

    return SegmentList(_segment(lo, hi) for lo, hi in intervals)


def _fmt(ns: int) -> str:
    whole, frac = divmod(int(ns), NS)
    return str(whole) if frac == 0 else f"{whole}.{frac:09d}".rstrip("0")


def _fmt_span(lo_ns: int, hi_ns: int) -> str:
    return f"[{_fmt(lo_ns)}, {_fmt(hi_ns)})"


@dataclass(frozen=True, repr=False, eq=False)
class FrameData:
    """What :func:`read` found for a channel list over a requested GPS span.

    Attributes
    ----------
    segments : list of Block
        Contiguous pieces of data covering the requested span where every channel has data, in
        time order.
    gaps : gwpy.segments.SegmentList
        Requested time that the files do not cover (for at least one channel).
    requested : gwpy.segments.Segment
        The requested ``[start, end)`` span.
    nonfinite : dict
        Channel -> :class:`~gwpy.segments.SegmentList` of the sample times holding NaN or inf
        (each sample spans ``1 / sample_rate``), only for channels that have any.
    files : list of pathlib.Path
        The files read, in time order.
    channels, units : tuple of str
    sample_rate : float or None
        Rate of the segments in Hz (None when no data were read and no rate was given).
    """

    segments: list[Block]
    gaps: object
    requested: object
    nonfinite: dict
    files: list[Path]
    channels: tuple[str, ...]
    units: tuple[str, ...]
    sample_rate: float | None
    dtype: torch.dtype | None = None

    @property
    def _span_ns(self) -> tuple[int, int]:
        return to_ns(self.requested[0]), to_ns(self.requested[1])

    @property
    def block(self) -> Block:
        """The data as one Block; raises :class:`GapError` naming the gaps if there are any."""
        if self.gaps or len(self.segments) != 1:
            raise GapError(
                f"requested GPS {_fmt_span(*self._span_ns)} of {_channels_text(self.channels)} "
                f"is not covered: {self._gap_text()}; use .segments for the contiguous pieces or "
                ".filled() to fill the gaps explicitly"
            )
        return self.segments[0]

    def _gap_text(self) -> str:
        total = sum(_ns(s[1]) - _ns(s[0]) for s in self.gaps) / NS
        listed = ", ".join(_fmt_span(_ns(s[0]), _ns(s[1])) for s in list(self.gaps)[:10])
        more = f", ... ({len(self.gaps) - 10} more)" if len(self.gaps) > 10 else ""
        n = len(self.gaps)
        return f"{n} gap{'s' if n != 1 else ''} totalling {total:g} s: {listed}{more}"

    def filled(self, value: float = float("nan")) -> Block:
        """One Block over the whole requested span, the gaps set to ``value`` (default NaN).

        The gaps stay listed in :attr:`gaps` and are recorded in the Block's history.
        """
        if self.sample_rate is None:
            raise GapError(
                f"cannot fill GPS {_fmt_span(*self._span_ns)}: no data were read "
                f"({self._gap_text()}) and the sample rate is unknown; pass sample_rate= or "
                "expected_rates= to read()"
            )
        rate = Fraction(self.sample_rate).limit_denominator(1_000_000)
        req0, req1 = self._span_ns
        origin = self.segments[0].t0_ns if self.segments else req0
        base = index_at(req0, origin, rate)
        size = index_at(req1, origin, rate) - base
        dtype = self.dtype if self.dtype is not None else torch.float64
        try:
            out = torch.full((len(self.channels), size), value, dtype=dtype)
        except (RuntimeError, TypeError) as exc:
            raise GwtwinError(f"cannot fill {dtype} data with {value!r}: {exc}") from None
        for seg in self.segments:
            offset = grid_offset(seg.t0_ns, origin, rate)
            if offset is None:
                raise GwtwinError(
                    f"segments are not on one sample grid (segment at {_fmt(seg.t0_ns)} is off "
                    f"the grid of {_fmt(origin)} at {self.sample_rate:g} Hz); cannot fill"
                )
            out[:, offset - base : offset - base + seg.size] = seg.data
        history = self.segments[0].history if self.segments else ()
        if self.gaps:
            history = (*history, f"filled {self._gap_text()} with {value}")
        return Block(
            out, time_at(base, origin, rate), float(rate), self.channels, self.units, history
        )

    def summary(self) -> str:
        """A few lines saying what was read, what is missing and what is not finite."""
        lines = [repr(self)]
        for seg in self.segments:
            lines.append(f"  segment {_fmt_span(seg.t0_ns, seg.end_ns)}: {seg.duration:g} s")
        for gap in self.gaps:
            lo, hi = _ns(gap[0]), _ns(gap[1])
            lines.append(f"  gap     {_fmt_span(lo, hi)}: {(hi - lo) / NS:g} s")
        for name, segs in self.nonfinite.items():
            total = sum(_ns(s[1]) - _ns(s[0]) for s in segs) / NS
            lines.append(f"  non-finite {name}: {len(segs)} span(s), {total:g} s")
        lines.append(f"  files: {len(self.files)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        rate = "?" if self.sample_rate is None else f"{self.sample_rate:g}"
        covered = sum(seg.duration_ns for seg in self.segments) / NS
        return (
            f"FrameData({len(self.channels)} channels at {rate} Hz, requested "
            f"{_fmt_span(*self._span_ns)}: {len(self.segments)} segment(s) {covered:g} s, "
            f"{len(self.gaps)} gap(s), {len(self.nonfinite)} channel(s) with non-finite "
            f"samples, {len(self.files)} file(s))"
        )


def _ns(gps) -> int:
    return to_ns(gps)


def _channels_text(channels: Sequence[str]) -> str:
    if len(channels) <= 4:
        return ", ".join(channels)
    return f"{', '.join(channels[:3])}, ... ({len(channels)} channels)"
