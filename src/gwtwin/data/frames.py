"""Reading and writing frame files: many files in, contiguous :class:`Block` segments out.

:func:`read` takes a file, a list of files or a directory, a channel list and a GPS span, and gives
a :class:`FrameData`: the data as contiguous :class:`Block` segments, the requested time that no
file covers as an explicit gap list (never zeros), and the NaN/inf samples per channel.  Pieces of
consecutive files are copied into one preallocated buffer per contiguous segment, so reading is
linear in the amount of data and reading across file boundaries gives exactly the samples one long
file would.  :func:`write_frame` and :func:`write_frames` write GWF (lalframe) or HDF5 (gwpy)
files named by the ``OBS-TAG-GPSSTART-DURATION.ext`` convention.
"""

from __future__ import annotations

import bisect
import os
import warnings
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from gwtwin.data import gwf, hdf5
from gwtwin.data._quiet import quiet_gwpy
from gwtwin.data.backends import missing_channels_error, open_frame
from gwtwin.data.block import NS, Block, _check_rate, ns_to_gps, to_ns
from gwtwin.data.errors import (
    FrameNameError,
    FrameNotFoundError,
    SampleRateMismatchError,
    UnknownFormatError,
)
from gwtwin.data.files import find_frames, format_of, frame_name, parse_frame_name
from gwtwin.data.framedata import FrameData, _fmt, _fmt_span, _segment, _segment_list
from gwtwin.data.pieces import Piece, grid_offset, index_at, time_at
from gwtwin.errors import GwtwinError

# -- interval helpers (integer ns) -----------------------------------------------------------


def _union(intervals) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]


def _intersect(a, b) -> list[tuple[int, int]]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _subtract(span, intervals) -> list[tuple[int, int]]:
    out, cursor = [], span[0]
    for lo, hi in intervals:
        if lo > cursor:
            out.append((cursor, lo))
        cursor = max(cursor, hi)
    if cursor < span[1]:
        out.append((cursor, span[1]))
    return out


# -- reading ---------------------------------------------------------------------------------


class _Segment:
    """Preallocated buffers of one nominal contiguous span ``[start, end)`` of files."""

    def __init__(self, start_ns: int, end_ns: int) -> None:
        self.start_ns, self.end_ns = start_ns, end_ns
        self.grids: dict[Fraction, tuple[int, int, int]] = {}  # rate -> (origin, base, size)
        self.rows: dict[str, np.ndarray] = {}  # channel -> numpy view of its buffer row
        self.tensor: torch.Tensor | None = None  # [channel, time] when all share one rate
        self.row_tensors: dict[str, torch.Tensor] = {}

    def grid(self, rate: Fraction, origin_ns: int) -> tuple[int, int, int]:
        if rate not in self.grids:
            base = index_at(self.start_ns, origin_ns, rate)
            size = index_at(self.end_ns, origin_ns, rate) - base
            self.grids[rate] = (origin_ns, base, size)
        return self.grids[rate]


def _torch_dtype(np_dtype) -> torch.dtype:
    return torch.from_numpy(np.empty(0, np.dtype(np_dtype).newbyteorder("="))).dtype


def _expected(expected_rates, channels) -> dict[str, float]:
    if expected_rates is None:
        return {}
    if isinstance(expected_rates, Mapping):
        unknown = [c for c in expected_rates if c not in channels]
        if unknown:
            raise GwtwinError(
                f"expected_rates names channels that are not requested: {unknown}; requested: "
                f"{list(channels)}"
            )
        return {c: _check_rate(r) for c, r in expected_rates.items()}
    rate = _check_rate(expected_rates)
    return dict.fromkeys(channels, rate)


def _channel_list(channels) -> tuple[str, ...]:
    channels = (channels,) if isinstance(channels, str) else tuple(str(c) for c in channels)
    if not channels:
        raise GwtwinError("no channels requested; expected at least one channel name")
    dupes = sorted({c for c in channels if channels.count(c) > 1})
    if dupes:
        raise GwtwinError(f"channels requested more than once: {dupes}")
    return channels


def read(
    source,
    channels: Sequence[str] | str,
    start=None,
    end=None,
    *,
    sample_rate: float | None = None,
    expected_rates: Mapping[str, float] | float | None = None,
    format: str | None = None,
    dtype: torch.dtype | None = torch.float64,
    observatory: str | None = None,
    tag: str | None = None,
    recursive: bool = False,
) -> FrameData:
    """Read channels over a GPS span from frame files.

    Parameters
    ----------
    source : path, sequence of paths
        A frame file, a list of files, or a directory (searched with :func:`find_frames`).
    channels : sequence of str
        Full channel names; the rows of every returned Block follow this order.
    start, end : GPS time, optional
        Any GPS type; default: the span of the files found.
    sample_rate : float, optional
        Target rate in Hz.  Without it every channel must have the same native rate (mixed rates
        raise :class:`SampleRateMismatchError` naming them); with it, channels at another rate are
        resampled explicitly per contiguous segment (see :meth:`Block.from_timeseriesdict`).
    expected_rates : float or mapping of channel -> float, optional
        Native rates (Hz) the caller expects; a file holding a channel at another rate raises
        :class:`SampleRateMismatchError` naming both rates, the file and the channel.
    format : {"gwf", "hdf5"}, optional
        Only files of this format are taken from directories; files given by path whose
        extension does not tell are read as this format.
    dtype : torch.dtype or None
        Dtype of the returned data (default float64).  None keeps the dtype of the first file
        read (promoted across its channels, e.g. float32 and float64 give float64).
    observatory, tag, recursive
        Passed to :func:`find_frames`.

    Returns
    -------
    FrameData
        ``.segments`` (contiguous Blocks), ``.gaps``, ``.nonfinite``; ``.block`` when there are no
        gaps, ``.filled()`` for one Block with the gaps filled explicitly.

    Raises
    ------
    MissingChannelError, SampleRateMismatchError, OverlappingFilesError, CorruptFrameError,
    UnknownFormatError, FrameNotFoundError
    """
    channels = _channel_list(channels)
    target = None if sample_rate is None else _check_rate(sample_rate)
    expected = _expected(expected_rates, channels)
    files = find_frames(
        source, start, end, observatory=observatory, tag=tag, recursive=recursive, format=format
    )
    if (start is None or end is None) and not files:
        raise FrameNotFoundError(f"no frame files found in {source}; cannot tell the GPS span")
    req0 = to_ns(start) if start is not None else min(f.start_ns for f in files)
    req1 = to_ns(end) if end is not None else max(f.end_ns for f in files)
    if req1 <= req0:
        raise GwtwinError(f"end ({_fmt(req1)}) must be after start ({_fmt(req0)})")

    nominal = _union((max(f.start_ns, req0), min(f.end_ns, req1)) for f in files)
    segments = [_Segment(lo, hi) for lo, hi in nominal]
    starts = [s.start_ns for s in segments]
    rates: dict[str, tuple[Fraction, Path]] = {}
    units: dict[str, str] = {}
    cover: dict[str, list[tuple[int, int]]] = {c: [] for c in channels}
    out_dtype: torch.dtype | None = dtype
    common_rate: Fraction | None = None

    for f in files:
        lo, hi = max(f.start_ns, req0), min(f.end_ns, req1)
        seg = segments[bisect.bisect_right(starts, lo) - 1]
        with open_frame(f.path, f.format) as reader:
            missing = reader.missing(channels)
            if missing:
                raise missing_channels_error(f.path, missing, reader.channels())
            pieces = {c: reader.read(c, lo, hi) for c in channels}
        for c, ps in pieces.items():
            for p in ps:
                _check_piece_rate(c, p.rate, f.path, rates, expected)
        if target is None:
            file_rates = {c: ps[0].rate for c, ps in pieces.items() if ps}
            if common_rate is None and file_rates:
                common_rate = next(iter(file_rates.values()))
            if any(r != common_rate for r in file_rates.values()):
                listing = ", ".join(f"{c} {float(r):g} Hz" for c, r in file_rates.items())
                raise SampleRateMismatchError(
                    f"channels have different native sample rates ({listing}) in {f.path}; pass "
                    "sample_rate=... to resample them explicitly, or read them separately"
                )
        if out_dtype is None:
            native = [p.data.dtype for ps in pieces.values() for p in ps]
            out_dtype = _torch_dtype(np.result_type(*native)) if native else None
        for c, ps in pieces.items():
            for p in ps:
                _place(seg, c, p, channels, out_dtype, target is None, f.path)
                cover[c].append(p.cover)
                units.setdefault(c, p.unit)

    common = [(req0, req1)]
    for c in channels:
        common = _intersect(common, _union(cover[c]))
    gaps = _subtract((req0, req1), common)
    blocks, nonfinite = [], {}
    unit_tuple = tuple(units.get(c, "") for c in channels)
    for lo, hi in common:
        seg = segments[bisect.bisect_right(starts, lo) - 1]
        blocks.append(
            _extract(seg, lo, hi, channels, unit_tuple, rates, target, out_dtype, nonfinite)
        )
    if target is not None:
        rate_out = target
    elif common_rate is not None:
        rate_out = float(common_rate)
    else:
        given = set(expected.values())
        rate_out = given.pop() if len(given) == 1 and len(expected) == len(channels) else None
    return FrameData(
        segments=blocks,
        gaps=_segment_list(gaps),
        requested=_segment(req0, req1),
        nonfinite={c: _segment_list(_union(v)) for c, v in nonfinite.items()},
        files=[f.path for f in files],
        channels=channels,
        units=unit_tuple,
        sample_rate=rate_out,
        dtype=out_dtype if out_dtype is not None else dtype,
    )


def _check_piece_rate(channel, rate, path, rates, expected) -> None:
    if channel in expected and float(rate) != expected[channel]:
        raise SampleRateMismatchError(
            f"expected {expected[channel]:g} Hz, found {float(rate):g} Hz in file {path} for "
            f"channel {channel}"
        )
    first = rates.setdefault(channel, (rate, path))
    if first[0] != rate:
        raise SampleRateMismatchError(
            f"channel {channel} is sampled at {float(first[0]):g} Hz in {first[1]} but at "
            f"{float(rate):g} Hz in {path}"
        )


def _place(seg: _Segment, channel, piece: Piece, channels, dtype, stacked, path) -> None:
    """Copy a piece into the segment's buffer (allocated on first use)."""
    origin, base, size = seg.grid(piece.rate, piece.origin_ns)
    offset = grid_offset(piece.origin_ns, origin, piece.rate)
    if offset is None:
        raise GwtwinError(
            f"samples of channel {channel} in {path} (first at GPS {_fmt(piece.origin_ns)}) are "
            f"not on the sample grid of the preceding file (GPS {_fmt(origin)} + k / "
            f"{float(piece.rate):g} Hz); cannot join them"
        )
    if channel not in seg.rows:
        if stacked:  # one [channel, time] tensor: the Block is a view of it, no final copy
            seg.tensor = torch.empty((len(channels), size), dtype=dtype)
            array = seg.tensor.numpy()
            seg.rows = {c: array[i] for i, c in enumerate(channels)}
            seg.row_tensors = {c: seg.tensor[i] for i, c in enumerate(channels)}
        else:
            row = torch.empty(size, dtype=dtype)
            seg.row_tensors[channel] = row
            seg.rows[channel] = row.numpy()
    j = offset + piece.i0 - base
    n = len(piece.data)
    if j < 0 or j + n > size:  # pragma: no cover - readers clip pieces to the file's span
        raise GwtwinError(f"internal error: piece of {channel} from {path} falls outside its span")
    seg.rows[channel][j : j + n] = piece.data


def _extract(seg, lo, hi, channels, units, rates, target, dtype, nonfinite) -> Block:
    """The Block of one contiguous covered span ``[lo, hi)``; records non-finite samples."""
    per_channel = []
    for c in channels:
        rate = rates[c][0]
        origin, base, _ = seg.grids[rate]
        k0 = index_at(lo, origin, rate) - base
        k1 = index_at(hi, origin, rate) - base
        per_channel.append((c, rate, origin, base, k0, k1))
    if target is None:
        _, rate, origin, base, k0, k1 = per_channel[0]
        data = seg.tensor[:, k0:k1]
        _record_nonfinite(data, channels, rate, time_at(base + k0, origin, rate), nonfinite)
        return Block(data, time_at(base + k0, origin, rate), float(rate), channels, units)

    with quiet_gwpy():  # gwpy restyles matplotlib on first import
        from gwpy.timeseries import TimeSeries, TimeSeriesDict

    tsd = TimeSeriesDict()
    for (c, rate, origin, base, k0, k1), unit in zip(per_channel, units, strict=True):
        row = seg.row_tensors[c][k0:k1]
        t0 = time_at(base + k0, origin, rate)
        bad = _record_nonfinite(row[None, :], (c,), rate, t0, nonfinite)
        if bad and float(rate) != target:
            warnings.warn(
                f"channel {c} has non-finite samples in GPS {_fmt_span(lo, hi)}; resampling "
                f"{float(rate):g} Hz -> {target:g} Hz spreads them over the filter length",
                stacklevel=3,
            )
        tsd[c] = TimeSeries(
            row.numpy(),
            t0=ns_to_gps(t0),
            sample_rate=float(rate),
            name=c,
            channel=c,
            unit=unit or None,
            copy=False,
        )
    return Block.from_timeseriesdict(tsd, channels, sample_rate=target, dtype=dtype)


def _record_nonfinite(data: torch.Tensor, channels, rate, t0_ns, nonfinite) -> bool:
    """Add the spans of NaN/inf samples of each row to ``nonfinite``; True if any."""
    if not data.is_floating_point():
        return False
    # fast path: a row whose sum is finite holds no NaN/inf (a sum that overflows only sends the
    # row to the exact check below); summing is ~15x faster than isfinite over all samples
    suspects = (~torch.isfinite(data.sum(dim=1))).nonzero().flatten().tolist()
    found = False
    for i in suspects:
        mask = (~torch.isfinite(data[i])).numpy().astype(np.int8)
        edges = np.diff(mask, prepend=np.int8(0), append=np.int8(0))
        run_starts = np.flatnonzero(edges == 1)
        if not run_starts.size:
            continue
        run_ends = np.flatnonzero(edges == -1)
        spans = nonfinite.setdefault(channels[i], [])
        for a, b in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
            spans.append((t0_ns + _offset_ns(a, rate), t0_ns + _offset_ns(b, rate)))
        found = True
    return found


def _offset_ns(k: int, rate: Fraction) -> int:
    return round(Fraction(k * NS) / rate)


# -- writing ---------------------------------------------------------------------------------


def _blocks(blocks) -> list[Block]:
    blocks = [blocks] if isinstance(blocks, Block) else list(blocks)
    if not blocks:
        raise GwtwinError("nothing to write: expected a Block or a non-empty list of Blocks")
    names = [c for b in blocks for c in b.channels]
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise GwtwinError(f"channels appear in more than one Block: {dupes}")
    return blocks


def write_frame(
    path: str | os.PathLike,
    blocks: Block | Sequence[Block],
    *,
    format: str | None = None,
    compression: str | None = "gzip",
    history: Mapping[str, str] | None = None,
) -> Path:
    """Write all channels of one or more Blocks into one frame file.

    Parameters
    ----------
    path : path
        Output file; the format comes from its extension (``.gwf``, ``.hdf5``, ``.h5``) unless
        ``format`` is given.  The parent directory is created.  The file appears atomically
        (written under ``path.tmp``, then renamed), so a reader polling the directory never sees
        half a file.
    blocks : Block or sequence of Block
        Channels to write; Blocks may have different sample rates.  Each channel keeps its dtype
        (float32 -> REAL4, float64 -> REAL8 in GWF) and unit.
    format : {"gwf", "hdf5"}, optional
    compression : str or None
        HDF5 dataset compression (gwpy's default ``"gzip"``; None is faster).  lalframe always
        compresses GWF vectors (DIFF_GZIP) and ignores this.
    history : mapping of str -> str, optional
        Provenance records (e.g. ``{"gwtwin-model": "gwtwin-witness-td v3"}``): FrHistory
        entries of the GWF frame, attributes ``history:<name>`` of the HDF5 file
        (:func:`frame_history` reads them back).

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    blocks = _blocks(blocks)
    fmt = format_of(path, format)
    if format is not None and path.suffix.lower() in (".gwf", ".hdf5", ".h5"):
        if format_of(path) != fmt:
            raise UnknownFormatError(
                f"cannot write format {format!r} to {path}: the extension says {format_of(path)!r}"
            )
    start = min(b.t0_ns for b in blocks)
    end = max(b.end_ns for b in blocks)
    span = (start // NS * NS, -(-end // NS) * NS)  # whole seconds around the data
    try:
        named = parse_frame_name(path)
    except (FrameNameError, UnknownFormatError):
        named = None
    if named is not None:
        if named.start_ns <= start and end <= named.end_ns:
            span = (named.start_ns, named.end_ns)
        else:
            warnings.warn(
                f"data span GPS {_fmt_span(start, end)} is not inside the span "
                f"{_fmt_span(named.start_ns, named.end_ns)} that the name {path.name} gives; "
                "readers trust the name and will ignore data outside it",
                stacklevel=2,
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "gwf":
        gwf.write_gwf(path, blocks, span, history=history)
    else:
        hdf5.write_hdf5(path, blocks, compression=compression, history=history)
    return path


def frame_history(path: str | os.PathLike) -> dict[str, str]:
    """The provenance records :func:`write_frame` stored with ``history`` (name -> comment)."""
    path = Path(path)
    if format_of(path) == "gwf":
        return gwf.read_history(path)
    return hdf5.read_history(path)


def write_frames(
    blocks: Block | Sequence[Block],
    directory: str | os.PathLike,
    *,
    observatory: str = "V",
    tag: str = "GWTWIN",
    frame_length: int = 64,
    format: str = "gwf",
    align: bool = True,
    compression: str | None = "gzip",
) -> list[Path]:
    """Split Blocks into consecutive files ``OBS-TAG-GPSSTART-DURATION.ext`` in ``directory``.

    Parameters
    ----------
    blocks : Block or sequence of Block
        Channels to write (different rates allowed); file boundaries are whole seconds.
    directory : path
        Created if missing.
    observatory, tag : str
        Name fields.
    frame_length : int
        Seconds per file.
    align : bool
        Start files at multiples of ``frame_length`` in GPS (as detectors do), so the first and
        last file may be shorter; otherwise start at the first whole second of the data.

    Returns
    -------
    list of pathlib.Path
        The files written, in time order.
    """
    blocks = _blocks(blocks)
    if not isinstance(frame_length, (int, np.integer)) or frame_length <= 0:
        raise GwtwinError(
            f"frame_length must be a positive whole number of seconds, found {frame_length!r}"
        )
    length_ns = int(frame_length) * NS
    start = min(b.t0_ns for b in blocks) // NS * NS
    end = -(-max(b.end_ns for b in blocks) // NS) * NS
    first = start // length_ns * length_ns if align else start
    paths = []
    for lo in range(first, end, length_ns):
        f0, f1 = max(lo, start), min(lo + length_ns, end)
        pieces = []
        for b in blocks:
            a, z = max(f0, b.t0_ns), min(f1, b.end_ns)
            if z > a:
                piece = b.crop(ns_to_gps(a), ns_to_gps(z))
                if piece.size:
                    pieces.append(piece)
        if not pieces:
            continue
        name = frame_name(observatory, tag, ns_to_gps(f0), ns_to_gps(f1 - f0), format)
        paths.append(
            write_frame(Path(directory) / name, pieces, format=format, compression=compression)
        )
    return paths


def list_channels(source, *, format=None) -> tuple[str, ...]:
    """Channel names held by a frame file (or by the first file of a directory or list)."""
    files = find_frames(source, format=format)
    if not files:
        raise FrameNotFoundError(f"no frame files in {source}")
    first = files[0]
    with open_frame(first.path, first.format) as reader:
        return tuple(reader.channels())
