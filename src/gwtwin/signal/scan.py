"""Q-tile triggers over frame files: every channel of a frame set, batched by sample rate.

:func:`triggers_from_frames` is what ``gwtwin triggers`` runs.  Channels are read one by one
(native rates differ), grouped by sample rate and contiguous segment, and each group goes through
:func:`~gwtwin.signal.triggers.find_triggers` as one batched Block.  Gaps in the frames split the
analysis (each contiguous piece is analysed on its own and the gaps are recorded in
``Triggers.params["gaps"]``); NaN/inf samples in a channel are refused with the channel and GPS
span named, since a Q-transform cannot skip them silently.  Memory: one rate group of the
requested span is held at a time.

Real data (GWOSC strain files): the analysed time can be restricted to the seconds where chosen
bits of the file's data-quality mask are set (:func:`gwtwin.data.gwosc.dq_segments`); by default
``DATA`` when the files carry a GWOSC DQ mask, which excludes the no-data time GWOSC fills with
NaN.  Each DQ-good piece is analysed on its own; a piece too short for the settings is skipped,
with the reason (which names the frequency range it could support) in
``Triggers.params["skipped"]`` and a warning, unless it is the only one, which raises.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from gwtwin.errors import GwtwinError
from gwtwin.signal.triggers import TRIGGER_DTYPE, SegmentTooShortError, Triggers, find_triggers


def resolve_frames(source) -> Path:
    """A frame directory/file; a simulation output directory resolves to its ``frames/``."""
    path = Path(source)
    if path.is_dir() and (path / "frames").is_dir() and (path / "summary.json").is_file():
        return path / "frames"
    return path


def default_channels(source, exclude: Sequence[str] = ("TRUTH_",)) -> list[str]:
    """Channels of a frame set to analyse by default: all in its first file but GWOSC bitmasks
    (``..._DQMASK``, ``..._INJMASK``) and those whose name contains one of ``exclude``."""
    from gwtwin.data import list_channels
    from gwtwin.data.gwosc import is_gwosc_mask

    return [
        c
        for c in list_channels(resolve_frames(source))
        if not is_gwosc_mask(c) and not any(x in c for x in exclude)
    ]


def analysed_segments(source, start=None, end=None, dq_bits: Sequence[str] | None = None):
    """The DQ bits used and the DQ-good GPS time, for :func:`triggers_from_frames`.

    Returns ``(bits, segments)``: ``segments`` is a :class:`gwpy.segments.SegmentList`, or None
    when no restriction applies (``dq_bits=()``, or ``None`` on files without a GWOSC DQ mask).
    ``dq_bits=None`` means ``("DATA",)`` when the files carry a GWOSC DQ mask.
    """
    from gwtwin.data import list_channels
    from gwtwin.data.gwosc import dq_segments, gwosc_channels

    frames = resolve_frames(source)
    held = list_channels(frames)
    has_mask = "dq" in gwosc_channels(held)
    if dq_bits is None:
        bits = ("DATA",) if has_mask else ()
    else:
        bits = (dq_bits,) if isinstance(dq_bits, str) else tuple(dq_bits)
        if bits and not has_mask:
            raise GwtwinError(
                f"dq_bits {list(bits)} given but {frames} holds no GWOSC DQ mask channel "
                f"(<IFO>:GWOSC-<rate>_R<n>_DQMASK); its first file holds: {', '.join(held[:20])}"
            )
    if not bits:
        return (), None
    return bits, dq_segments(frames, bits, start, end)


def _ns(gps) -> int:
    from gwtwin.data.block import to_ns

    return to_ns(gps)


def _pieces(block, good_ns):
    """The parts of ``block`` inside the DQ-good spans (integer ns), as Blocks."""
    from gwtwin.data.block import ns_to_gps

    if good_ns is None:
        return [block]
    out = []
    for lo, hi in good_ns:
        a, b = max(lo, block.t0_ns), min(hi, block.end_ns)
        if b > a:
            piece = block.crop(ns_to_gps(a), ns_to_gps(b))
            if piece.size:
                out.append(piece)
    return out


def triggers_from_frames(
    source,
    channels: Sequence[str] | None = None,
    start=None,
    end=None,
    *,
    exclude: Sequence[str] = ("TRUTH_",),
    dq_bits: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
    **kwargs,
) -> Triggers:
    """Find triggers in channels of a frame set (default: every channel of its first file).

    Parameters
    ----------
    source : path
        Frame file, directory of frames, or a ``gwtwin simulate`` output directory.
    channels : sequence of str, optional
        Channels to analyse; default :func:`default_channels` (all channels in the first file
        except GWOSC bitmasks and those whose name contains one of ``exclude``, the simulator's
        truth channels).
    start, end : GPS, optional
        Span to analyse (default: what the files cover).
    dq_bits : sequence of str, optional
        GWOSC data-quality bits (``"DATA"``, ``"CBC_CAT1"``, ...) that must all be set for time
        to be analysed; default ``("DATA",)`` when the files carry a GWOSC DQ mask, no
        restriction otherwise; ``()`` analyses all time.
    progress : callable, optional
        Called with a short description after each step (for progress bars).
    **kwargs
        Passed to :func:`~gwtwin.signal.triggers.find_triggers` (``qrange``, ``frange``,
        ``snr_threshold``, ``cluster_window``, ``segment_duration``...).

    Returns
    -------
    Triggers
        ``params`` adds ``gaps`` (time no file covers), ``segments`` (analysed GPS spans),
        ``dq_bits``, ``dq_segments`` (DQ-good spans, when restricted) and ``skipped`` (pieces
        too short for the settings: ``{"segment": [start, end], "reason": ...}``).

    Raises
    ------
    SegmentTooShortError
        When no piece of data is long enough (the reasons name the frequency range each
        supports).
    GwtwinError
        NaN/inf samples in analysed time (naming the channel and GPS spans), ``dq_bits`` on
        files without a DQ mask, a bit the mask does not name, no data.
    """
    from gwtwin.data import Block, read

    frames = resolve_frames(source)
    if channels is None:
        channels = default_channels(frames, exclude)
    channels = list(channels)
    if not channels:
        raise GwtwinError(f"no channels to analyse in {frames}")
    bits, good = analysed_segments(frames, start, end, dq_bits)
    good_ns = None if good is None else [(_ns(s[0]), _ns(s[1])) for s in good]
    # read channel by channel; group contiguous pieces by (rate, span)
    groups: dict[tuple[float, int, int], list[Block]] = {}
    gaps: list[tuple[float, float]] = []
    for name in channels:
        data = read(frames, [name], start, end)
        gaps.extend((float(g[0]), float(g[1])) for g in data.gaps)
        bad = data.nonfinite.get(name) if data.nonfinite else None
        if bad and good is not None:
            bad = bad & good
        if bad:
            spans = ", ".join(f"[{s[0]}, {s[1]})" for s in list(bad)[:5])
            where = f", in time where DQ bits {list(bits)} are set" if bits else ""
            hint = "" if bits else ", or on GWOSC files restrict to dq_bits such as DATA"
            raise GwtwinError(
                f"channel {name} has NaN/inf samples at GPS {spans}{where}: triggers need finite "
                f"data (crop those spans out with start/end{hint})"
            )
        for seg in data.segments:
            for piece in _pieces(seg, good_ns):
                groups.setdefault((piece.sample_rate, piece.t0_ns, piece.end_ns), []).append(piece)
        if progress:
            progress(f"read {name}")
    tables: dict[str, list[np.ndarray]] = {c: [] for c in channels}
    segments: list[tuple[float, float]] = []
    skipped: list[dict] = []
    params: dict = {}
    spans = {(t0, t1) for _, t0, t1 in groups}
    for (_rate, _t0, _end), blocks in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        stacked = blocks[0].replace(
            data=torch.cat([b.data for b in blocks]),
            channels=tuple(c for b in blocks for c in b.channels),
            units=tuple(u for b in blocks for u in b.units),
        )
        try:
            found = find_triggers(stacked, **kwargs)
        except SegmentTooShortError as exc:
            if len(spans) == 1:
                raise
            skipped.append(
                {
                    "segment": [_t0 / 1_000_000_000, _end / 1_000_000_000],
                    "channels": list(stacked.channels),
                    "reason": str(exc),
                }
            )
            warnings.warn(f"skipped: {exc}", stacklevel=2)
            continue
        for name, table in found.tables.items():
            tables[name].append(table)
        segments.append(found.segment)
        params = found.params
        if progress:
            progress(f"triggers at {stacked.sample_rate:g} Hz ({len(blocks)} channels)")
    if not segments:
        if skipped:
            reasons = "; ".join(s["reason"] for s in skipped[:3])
            more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
            raise SegmentTooShortError(
                f"no piece of data in {frames} is long enough to analyse: {reasons}{more}"
            )
        where = f" with DQ bits {list(bits)} set" if bits else ""
        raise GwtwinError(f"no data for {channels} in {frames} between {start} and {end}{where}")
    merged = {
        name: np.sort(np.concatenate(parts), order="time") if parts else np.zeros(0, TRIGGER_DTYPE)
        for name, parts in tables.items()
    }
    params = {**params, "gaps": sorted(set(gaps)), "segments": sorted(set(segments))}
    params["dq_bits"] = list(bits)
    if good is not None:
        params["dq_segments"] = [[float(s[0]), float(s[1])] for s in good]
    params["skipped"] = skipped
    span = (min(s[0] for s in segments), max(s[1] for s in segments))
    return Triggers(merged, span, params)
