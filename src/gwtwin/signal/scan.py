"""Q-tile triggers over frame files: every channel of a frame set, batched by sample rate.

:func:`triggers_from_frames` is what ``gwtwin triggers`` runs.  Channels are read one by one
(native rates differ), grouped by sample rate and contiguous segment, and each group goes through
:func:`~gwtwin.signal.triggers.find_triggers` as one batched Block.  Gaps in the frames split the
analysis (each contiguous piece is analysed on its own and the gaps are recorded in
``Triggers.params["gaps"]``); NaN/inf samples in a channel are refused with the channel and GPS
span named, since a Q-transform cannot skip them silently.  Memory: one rate group of the
requested span is held at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from gwtwin.errors import GwtwinError
from gwtwin.signal.triggers import TRIGGER_DTYPE, Triggers, find_triggers


def resolve_frames(source) -> Path:
    """A frame directory/file; a simulation output directory resolves to its ``frames/``."""
    path = Path(source)
    if path.is_dir() and (path / "frames").is_dir() and (path / "summary.json").is_file():
        return path / "frames"
    return path


def triggers_from_frames(
    source,
    channels: Sequence[str] | None = None,
    start=None,
    end=None,
    *,
    exclude: Sequence[str] = ("TRUTH_",),
    progress: Callable[[str], None] | None = None,
    **kwargs,
) -> Triggers:
    """Find triggers in channels of a frame set (default: every channel of its first file).

    Parameters
    ----------
    source : path
        Frame file, directory of frames, or a ``gwtwin simulate`` output directory.
    channels : sequence of str, optional
        Channels to analyse; default all channels in the first file except those whose name
        contains one of ``exclude`` (the simulator's truth channels).
    start, end : GPS, optional
        Span to analyse (default: what the files cover).
    progress : callable, optional
        Called with a short description after each step (for progress bars).
    **kwargs
        Passed to :func:`~gwtwin.signal.triggers.find_triggers` (``qrange``, ``frange``,
        ``snr_threshold``, ``cluster_window``, ``segment_duration``...).
    """
    from gwtwin.data import Block, list_channels, read

    frames = resolve_frames(source)
    if channels is None:
        channels = [c for c in list_channels(frames) if not any(x in c for x in exclude)]
    channels = list(channels)
    if not channels:
        raise GwtwinError(f"no channels to analyse in {frames}")
    # read channel by channel; group contiguous pieces by (rate, span)
    groups: dict[tuple[float, int, int], list[Block]] = {}
    gaps: list[tuple[float, float]] = []
    for name in channels:
        data = read(frames, [name], start, end)
        if data.nonfinite:
            spans = ", ".join(f"[{s[0]}, {s[1]})" for s in data.nonfinite[name][:5])
            raise GwtwinError(
                f"channel {name} has NaN/inf samples at GPS {spans}: triggers need finite data "
                "(crop those spans out with start/end)"
            )
        gaps.extend((float(g[0]), float(g[1])) for g in data.gaps)
        for seg in data.segments:
            groups.setdefault((seg.sample_rate, seg.t0_ns, seg.end_ns), []).append(seg)
        if progress:
            progress(f"read {name}")
    tables: dict[str, list[np.ndarray]] = {c: [] for c in channels}
    segments: list[tuple[float, float]] = []
    params: dict = {}
    for (_rate, _t0, _end), blocks in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        stacked = blocks[0].replace(
            data=torch.cat([b.data for b in blocks]),
            channels=tuple(c for b in blocks for c in b.channels),
            units=tuple(u for b in blocks for u in b.units),
        )
        found = find_triggers(stacked, **kwargs)
        for name, table in found.tables.items():
            tables[name].append(table)
        segments.append(found.segment)
        params = found.params
        if progress:
            progress(f"triggers at {stacked.sample_rate:g} Hz ({len(blocks)} channels)")
    if not segments:
        raise GwtwinError(f"no data for {channels} in {frames} between {start} and {end}")
    merged = {
        name: np.sort(np.concatenate(parts), order="time") if parts else np.zeros(0, TRIGGER_DTYPE)
        for name, parts in tables.items()
    }
    params = {**params, "gaps": sorted(set(gaps)), "segments": sorted(set(segments))}
    span = (min(s[0] for s in segments), max(s[1] for s in segments))
    return Triggers(merged, span, params)
