"""The replay source: recorded frames fed into a watched directory as a data-acquisition system
would, at real-time pace or faster, re-cut into files of any whole-second duration, with faults.

:func:`replay` reads frame files (the simulator's ``SIM_DIR/frames``, any directory or list of
GWF/HDF5 files) :data:`CHUNK_SECONDS` at a time, never all at once, and writes the GPS span
``[start, end)`` into ``directory`` as ``OBS-TAG-GPSSTART-DURATION.ext`` files of
``file_duration`` s, aligned on multiples of ``file_duration`` from GPS 0 (as
:func:`gwtwin.data.frames.write_frames` with ``align=True``, and as detectors cut frames): the
first and last file may be shorter (16 s from GPS 1000000000 in 3 s files: ``[..00, ..02)``,
``[..02, ..05)``, ..., ``[..14, ..16)``).  The output stream is the span shifted by
``gps_offset`` and repeated ``loops`` times, loop ``i`` shifted by ``i`` span lengths, so it is
one contiguous stream (a file may straddle a loop boundary).  Shifts are whole seconds, so the
copies are exact (same samples, dtype and units).

**Pacing.**  File ``[t, t + d)`` appears when the replay's clock reaches
``t0 + (t + d - first_start) / speed`` (``t0``: the replay's start, ``first_start``: the
stream's), as a DAQ writes a file once its last second is acquired; ``speed=0``: one after the
other, as fast as possible.  Each file is prepared ahead in a staging directory (a hidden sibling
of ``directory``) and appears by an atomic rename, its mtime set to the moment of the rename: a
poller never sees half a file, and the mtime is the time of arrival.  The clock and the sleep
are injectable (tests run the pacing on a fake clock).

**Faults** (:class:`Fault`; ``gps``, a time of the *output* stream, picks the file containing it;
several faults may hit one file):

- ``drop``: the file is never written;
- ``delay``: the file appears ``delay`` s of wall time late; the next files are not held back,
  so files appear out of order;
- ``corrupt``: the valid file with its second half (middle byte to the end) overwritten with
  seeded random bytes, same size.  That run holds GWF's table of contents and HDF5's
  last-written metadata, so :func:`gwtwin.data.read` raises
  :class:`~gwtwin.data.CorruptFrameError` for every channel in either format (a run within the
  data alone can read as a silent gap in GWF, or leave the other channels readable);
- ``truncate``: only the first half of the bytes (``CorruptFrameError`` too);
- ``nan``: one channel's samples in that file are NaN;
- ``missing_channel``: one channel is left out of that file;
- ``rate_change``: one channel is written at half its rate in that file
  (:func:`gwtwin.signal.filters.resample`; every other sample if the data are not finite).

A channel fault's channel defaults to the first replayed channel not in ``protect``.

**Manifest** (``manifest=PATH``): one JSON line per file event, as they happen:
``{"path", "start", "end", "written_wall", "fault", "due", "elapsed"}``: the file (``null`` if
not written), its GPS span, ``time.time()`` after the rename (``null`` if not written), the
fault kind (``null``; ``"nan+delay"`` for several; ``"source-gap"`` for a file skipped where the
source has no data), and the scheduled and actual seconds since the start on the replay's clock.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gwtwin.configio import load_section
from gwtwin.data.block import NS, Block, ns_to_gps, to_ns
from gwtwin.data.errors import FrameNotFoundError
from gwtwin.data.files import FrameFile, find_frames, frame_name
from gwtwin.data.frames import list_channels, read, write_frame
from gwtwin.errors import GwtwinError

__all__ = ["Fault", "ReplayConfig", "load_replay_config", "replay", "replay_in_thread"]

#: seconds of source read at a time (more when a file is longer)
CHUNK_SECONDS = 64
#: fault kinds that act on one channel
CHANNEL_FAULTS = ("nan", "missing_channel", "rate_change")
_ORDER = ("drop", "nan", "missing_channel", "rate_change", "corrupt", "truncate", "delay")


class Fault(BaseModel):
    """One fault, applied to the output file that contains GPS ``gps``.

    Parameters
    ----------
    kind : {"drop", "delay", "corrupt", "truncate", "nan", "missing_channel", "rate_change"}
    gps : float
        GPS time, s, of the output stream (after ``gps_offset`` and the loop shift).
    delay : float
        For ``delay``: seconds of wall time the file appears late (> 0).
    channel : str, optional
        For ``nan``, ``missing_channel``, ``rate_change``: the channel hit; default the first
        replayed channel not in :attr:`ReplayConfig.protect`.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["drop", "delay", "corrupt", "truncate", "nan", "missing_channel", "rate_change"]
    gps: float
    delay: float = Field(0.0, ge=0.0)
    channel: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Fault:
        if self.kind == "delay" and self.delay <= 0:
            raise ValueError("a delay fault needs delay > 0 (seconds of wall time)")
        if self.kind != "delay" and self.delay:
            raise ValueError(f"delay applies to kind 'delay' only, not to {self.kind!r}")
        if self.channel is not None and self.kind not in CHANNEL_FAULTS:
            raise ValueError(
                f"channel applies to kinds {', '.join(CHANNEL_FAULTS)} only, not to {self.kind!r}"
            )
        return self


class ReplayConfig(BaseModel):
    """What :func:`replay` writes, how fast, and which faults it injects.

    Parameters
    ----------
    file_duration : int
        Seconds per output file (>= 1), aligned on multiples of it from GPS 0.
    speed : float
        Times real time; 0: as fast as possible.
    start, end : float, optional
        GPS span of the source to replay, whole seconds (default: all of it).
    loops, gps_offset : int
        Replay the span ``loops`` times (each shifted by the span's length), every GPS time
        shifted by ``gps_offset`` s.
    channels, protect : list of str
        Channels to copy (default: all of the source's first file); channels that channel
        faults never pick by default (e.g. the strain).
    format, observatory, tag : str, optional
        Output format (``"gwf"``/``"hdf5"``) and name fields (default: the source's).
    faults : list of Fault
    """

    model_config = ConfigDict(extra="forbid")

    file_duration: int = Field(1, ge=1)
    speed: float = Field(1.0, ge=0.0)
    start: float | None = None
    end: float | None = None
    loops: int = Field(1, ge=1)
    gps_offset: int = 0
    channels: list[str] | None = Field(None, min_length=1)
    protect: list[str] = []
    format: Literal["gwf", "hdf5"] | None = None
    observatory: str | None = None
    tag: str | None = None
    faults: list[Fault] = []


def load_replay_config(source=None, overrides=None) -> ReplayConfig:
    """A :class:`ReplayConfig` from a YAML file (its ``replay:`` section or the whole file), a
    mapping, a model or None (the defaults), with ``overrides`` merged on top.

    Raises :class:`~gwtwin.errors.ConfigError` naming a bad key and the keys allowed there.
    """
    return load_section(ReplayConfig, "replay", source, overrides)


# -- planning ----------------------------------------------------------------------------------


def _span_text(lo: int, hi: int) -> str:
    return f"GPS [{lo}, {hi})"


def _whole(value: float, what: str) -> int:
    ns = to_ns(value)
    if ns % NS:
        raise GwtwinError(f"{what} must be a whole GPS second, found {value!r}")
    return ns // NS


@dataclass
class _FileFaults:
    """The faults that hit one output file."""

    kinds: list[str] = field(default_factory=list)
    channels: dict[str, list[str]] = field(default_factory=dict)  # channel fault -> channels
    delay: float = 0.0
    faults: list[tuple[Fault, str | None]] = field(default_factory=list)  # with its channel


@dataclass
class _Plan:
    """What to write: source files and span (GPS s), output span and file grid, faults by file."""

    files: list[FrameFile]
    channels: list[str]
    src: tuple[int, int]
    out: tuple[int, int]
    grid: list[tuple[int, int]]
    faults: dict[int, _FileFaults]
    observatory: str
    tag: str
    format: str


def _plan(source, config: ReplayConfig) -> _Plan:
    files = find_frames(source)
    if not files:
        raise FrameNotFoundError(f"no frame files in {source}; nothing to replay")
    lo, hi = -(-min(f.start_ns for f in files) // NS), max(f.end_ns for f in files) // NS
    start = lo if config.start is None else _whole(config.start, "replay start")
    end = hi if config.end is None else _whole(config.end, "replay end")
    if not lo <= start < end <= hi:
        raise GwtwinError(
            f"replay span {_span_text(start, end)} is not inside the source's span "
            f"{_span_text(lo, hi)} ({source})"
        )
    files = [f for f in files if f.end_ns > start * NS and f.start_ns < end * NS]
    available = list(list_channels(files[0].path))
    channels = available if config.channels is None else list(config.channels)
    for what, names in (("channels", channels), ("protect", config.protect)):
        unknown = [c for c in names if c not in available]
        if unknown:
            raise GwtwinError(
                f"replay {what} {unknown} not in the source; {files[0].path} holds: {available}"
            )
    out0 = start + config.gps_offset
    out1 = out0 + config.loops * (end - start)
    if out0 < 0:
        raise GwtwinError(f"gps_offset {config.gps_offset} makes the stream start before GPS 0")
    d = config.file_duration
    grid = [(max(t, out0), min(t + d, out1)) for t in range(out0 // d * d, out1, d)]
    faults: dict[int, _FileFaults] = {}
    free = [c for c in channels if c not in config.protect]
    for fault in config.faults:
        gps_ns = to_ns(fault.gps)
        if not out0 * NS <= gps_ns < out1 * NS:
            raise GwtwinError(
                f"{fault.kind} fault at GPS {fault.gps:g} is outside the replayed stream "
                f"{_span_text(out0, out1)}"
            )
        k = (gps_ns // NS - out0 // d * d) // d  # grid[k] starts at a multiple of d
        entry = faults.setdefault(k, _FileFaults())
        entry.kinds.append(fault.kind)
        entry.delay = max(entry.delay, fault.delay)
        channel = fault.channel
        if fault.kind in CHANNEL_FAULTS:
            if channel is None and not free:
                raise GwtwinError(
                    f"{fault.kind} fault at GPS {fault.gps:g} names no channel and every "
                    f"replayed channel is protected ({channels}); give channel="
                )
            if channel is not None and channel not in channels:
                raise GwtwinError(
                    f"{fault.kind} fault at GPS {fault.gps:g}: channel {channel!r} is not "
                    f"replayed; available channels: {channels}"
                )
            channel = channel or free[0]
            entry.channels.setdefault(fault.kind, []).append(channel)
            if set(entry.channels.get("missing_channel", ())) >= set(channels):
                raise GwtwinError(
                    f"missing_channel faults leave no channel in the file "
                    f"{_span_text(*grid[k])} (channels: {channels})"
                )
        entry.faults.append((fault, channel))
    first = files[0]
    observatory, tag = config.observatory or first.observatory, config.tag or first.tag
    if not observatory or not tag:
        raise GwtwinError(
            f"the source file {first.path} does not follow the OBS-TAG-GPS-DUR naming; give the "
            "replay's observatory and tag"
        )
    fmt = config.format or first.format
    return _Plan(files, channels, (start, end), (out0, out1), grid, faults, observatory, tag, fmt)


# -- faults on data and bytes ------------------------------------------------------------------


def _halve(block: Block, path: Path) -> Block:
    """The channel at half its rate (anti-aliased; every other sample if not finite)."""
    if block.size % 2:
        raise GwtwinError(
            f"rate_change: cannot halve {block.channels[0]} ({block.sample_rate:g} Hz) in "
            f"{path.name}: {block.size} samples, an odd number"
        )
    y = block.data[:, ::2]
    if bool(torch.isfinite(block.data).all()):
        from gwtwin.signal.filters import resample

        y = resample(block.data, block.sample_rate, block.sample_rate / 2)
    return block.replace(data=y.contiguous(), sample_rate=block.sample_rate / 2)


def _nan(block: Block) -> Block:
    dtype = block.data.dtype if block.data.is_floating_point() else torch.float64
    return block.replace(data=torch.full(tuple(block.data.shape), math.nan, dtype=dtype))


def _damage(path: Path, kind: str, seed: int) -> None:
    """``corrupt``: second half of the bytes random (size kept); ``truncate``: first half only."""
    raw = path.read_bytes()
    half = len(raw) // 2
    tail = b"" if kind == "truncate" else np.random.default_rng(seed).bytes(len(raw) - half)
    path.write_bytes(raw[:half] + tail)


# -- the replay --------------------------------------------------------------------------------


@dataclass(order=True)
class _Event:
    due: float
    seq: int
    start: int = field(compare=False)
    end: int = field(compare=False)
    staged: Path | None = field(compare=False)  # None: nothing to publish (dropped, gap)
    fault: str | None = field(compare=False)
    notes: list[str] = field(compare=False, default_factory=list)


class _Replay:
    def __init__(self, source, directory, config, manifest, log, stop, clock, sleep) -> None:
        self.config = config
        self.plan = _plan(source, config)
        self.directory = Path(directory)
        self.manifest_path = None if manifest is None else Path(manifest)
        self.log, self.stop, self.clock, self.sleep = log, stop, clock, sleep
        self.cache: tuple[tuple[int, int], dict[str, list[Block]]] = ((0, 0), {})
        self.heap: list[_Event] = []
        self.applied: list[dict] = []
        self.counts = {"files": 0, "dropped": 0, "source_gaps": 0}
        self.seconds, self.t0, self.stopped = 0, 0.0, True  # stopped until the end is reached

    # -- preparing one file ------------------------------------------------------------------
    def _source(self, x: int, y: int) -> dict[str, Block] | None:
        """Each channel over source GPS ``[x, y)`` s (None at a gap), read one channel at a
        time (any rates) and :data:`CHUNK_SECONDS` at a time."""
        (lo, hi), segments = self.cache
        if not lo <= x < y <= hi:
            lo, hi = x, max(y, min(x + CHUNK_SECONDS, self.plan.src[1]))
            paths = [f.path for f in self.plan.files if f.end_ns > lo * NS and f.start_ns < hi * NS]
            segments = {
                c: read(paths, [c], lo, hi, dtype=None).segments for c in self.plan.channels
            }
            self.cache = ((lo, hi), segments)
        out = {}
        for c, segs in segments.items():
            seg = next((b for b in segs if b.t0_ns <= x * NS and b.end_ns >= y * NS), None)
            if seg is None:
                return None
            out[c] = seg.crop(ns_to_gps(x * NS), ns_to_gps(y * NS))
        return out

    def _data(self, f0: int, f1: int) -> dict[str, Block] | None:
        """The output file's channels over output GPS ``[f0, f1)``, from one or two loops."""
        plan = self.plan
        length = plan.src[1] - plan.src[0]
        parts: dict[str, list[Block]] = {c: [] for c in plan.channels}
        for i in range(self.config.loops):
            base = plan.out[0] + i * length
            a, b = max(f0, base), min(f1, base + length)
            if a >= b:
                continue
            shift = base - plan.src[0]
            got = self._source(a - shift, b - shift)
            if got is None:
                return None
            for c, blk in got.items():
                parts[c].append(blk.replace(t0_ns=blk.t0_ns + shift * NS))
        return {
            c: ps[0] if len(ps) == 1 else ps[0].replace(data=torch.cat([p.data for p in ps], dim=1))
            for c, ps in parts.items()
        }

    def _prepare(self, k: int, f0: int, f1: int, staging: Path) -> _Event:
        plan = self.plan
        faults = plan.faults.get(k, _FileFaults())
        kinds = sorted(set(faults.kinds), key=_ORDER.index)
        label = "+".join(kinds) or None
        event = _Event(0.0, k, f0, f1, None, label)
        name = frame_name(plan.observatory, plan.tag, f0, f1 - f0, plan.format)
        if "drop" in kinds:
            event.notes.append(f"dropped {name}")
            return event
        data = self._data(f0, f1)
        if data is None:
            event.fault = "source-gap"
            return event
        staged = staging / name
        blocks = []
        hit = {kind: faults.channels.get(kind, ()) for kind in CHANNEL_FAULTS}
        for c in plan.channels:
            if c in hit["missing_channel"]:
                event.notes.append(f"left {c} out of {name}")
                continue
            blk = data[c]
            if c in hit["nan"]:
                blk = _nan(blk)
                event.notes.append(f"set {c} to NaN in {name}")
            if c in hit["rate_change"]:
                rate = blk.sample_rate
                blk = _halve(blk, staged)
                event.notes.append(f"wrote {c} at {blk.sample_rate:g} Hz (not {rate:g}) in {name}")
            blocks.append(blk)
        write_frame(staged, blocks, format=plan.format)
        for kind in ("corrupt", "truncate"):
            if kind in kinds:
                _damage(staged, kind, seed=f0)
                what = "second half overwritten" if kind == "corrupt" else "cut to half its size"
                event.notes.append(f"{kind} {name} ({what})")
        if faults.delay:
            event.notes.append(f"delayed {name} by {faults.delay:g} s")
        event.staged = staged
        return event

    # -- time ---------------------------------------------------------------------------------
    def _wait(self, target: float) -> bool:
        """Sleep until the clock reaches ``target``; False if ``stop`` was set meanwhile."""
        while True:
            if self.stop is not None and self.stop.is_set():
                return False
            now = self.clock()
            if now >= target - 1e-9:
                return True
            left = target - now
            self.sleep(min(left, 0.1) if self.stop is not None else left)

    def _publish(self, event: _Event, out) -> None:
        path = written = None
        if event.staged is not None:
            path = self.directory / event.staged.name
            os.utime(event.staged)  # the mtime is the time of arrival, not of preparation
            try:
                os.replace(event.staged, path)
            except OSError:  # staging on another file system: copy, then rename atomically
                shutil.copyfile(event.staged, path.with_name(path.name + ".tmp"))
                os.replace(path.with_name(path.name + ".tmp"), path)
            written = time.time()
        key = "files" if path else "source_gaps" if event.fault == "source-gap" else "dropped"
        self.counts[key] += 1
        name, span = None if path is None else str(path), (event.start, event.end)
        for note in event.notes:
            self.log(f"replay: {note} ({_span_text(*span)})")
        for fault, channel in self.plan.faults[event.seq].faults if event.notes else ():
            self.applied.append(
                {
                    "kind": fault.kind,
                    "gps": fault.gps,
                    "span": span,
                    "file": name,
                    "channel": channel,
                }
            )
        if out is not None:
            line = {"path": name, "start": event.start, "end": event.end, "written_wall": written}
            line.update(fault=event.fault, due=round(event.due - self.t0, 9))
            line["elapsed"] = round(self.clock() - self.t0, 9)
            out.write(json.dumps(line) + "\n")
            out.flush()

    def _flush(self, until: float, out) -> bool:
        """Publish every event due by ``until``, in order of due time; False if stopped."""
        while self.heap and self.heap[0].due <= until:
            if not self._wait(self.heap[0].due):
                return False
            self._publish(heapq.heappop(self.heap), out)
        return True

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        plan, speed = self.plan, self.config.speed
        self.directory.mkdir(parents=True, exist_ok=True)
        staging = _staging_dir(self.directory.resolve())
        out = None
        try:
            if self.manifest_path is not None:
                self.manifest_path.parent.mkdir(parents=True, exist_ok=True)
                out = self.manifest_path.open("w")
            self.t0 = self.clock()
            for k, (f0, f1) in enumerate(plan.grid):
                if self.stop is not None and self.stop.is_set():
                    break
                event = self._prepare(k, f0, f1, staging)
                normal = self.t0 + (f1 - plan.out[0]) / speed if speed else self.clock()
                event.due = normal + plan.faults.get(k, _FileFaults()).delay
                heapq.heappush(self.heap, event)
                self.seconds += f1 - f0
                if not self._flush(normal, out):
                    break
            else:  # every file prepared: publish the delayed ones still held
                self.stopped = not self._flush(math.inf, out)
            wall = self.clock() - self.t0
        finally:
            if out is not None:
                out.close()
            shutil.rmtree(staging, ignore_errors=True)
        return self._summary(wall)

    def _summary(self, wall: float) -> dict[str, Any]:
        plan, gaps = self.plan, self.counts["source_gaps"]
        speed = self.seconds / wall if wall else None
        self.log(
            f"replay: {self.counts['files']} files, {self.seconds} s of {_span_text(*plan.out)} "
            f"into {self.directory} in {wall:.3g} s ("
            + ("no time" if speed is None else f"{speed:.3g}x real time")
            + f"); {len(self.applied)} faults applied"
            + (f", {gaps} files skipped at source gaps" if gaps else "")
            + ("; stopped early" if self.stopped else "")
        )
        return {
            "directory": str(self.directory),
            "manifest": None if self.manifest_path is None else str(self.manifest_path),
            **self.counts,
            "seconds": self.seconds,
            "span": plan.out,
            "source_span": plan.src,
            "channels": list(plan.channels),
            "faults": self.applied,
            "wall": wall,
            "speed": speed,
            "stopped": self.stopped,
        }


def _staging_dir(directory: Path) -> Path:
    """A hidden sibling of the watched directory (same file system: renames are atomic)."""
    try:
        return Path(tempfile.mkdtemp(prefix=f".{directory.name}.replay-", dir=directory.parent))
    except OSError:
        return Path(tempfile.mkdtemp(prefix="gwtwin-replay-"))


def replay(
    source,
    directory,
    config: ReplayConfig | dict | str | os.PathLike | None = None,
    *,
    manifest: str | os.PathLike | None = None,
    log: Callable[[str], Any] = print,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] = time.sleep,
) -> dict[str, Any]:
    """Copy recorded frames into ``directory`` as a DAQ would (see the module docstring).

    Parameters
    ----------
    source : path or sequence of paths
        Frame files: a directory, a file or a list (:func:`gwtwin.data.find_frames`).
    directory : path
        The watched directory (created if missing).
    config : ReplayConfig, mapping, YAML path or None
        Through :func:`load_replay_config` unless a :class:`ReplayConfig`.
    manifest : path, optional
        JSON-lines file of file events (written as they happen; default: none).
    log : callable
        Receives one line per fault applied and a summary line.
    stop : threading.Event, optional
        When set, the replay returns at the next file or within 0.1 s of a wait; files not yet
        published (delayed ones included) are discarded.
    clock, sleep : callable
        Seconds (monotonic) and the matching sleep, injectable for tests.

    Returns
    -------
    dict
        ``files`` (written), ``dropped``, ``source_gaps``, ``seconds`` (of stream, GPS s),
        ``span`` (the output stream, GPS s), ``source_span``, ``channels``, ``faults`` (those
        applied: ``kind``, ``gps``, ``span`` and ``file`` it hit, ``channel``), ``wall`` (s on
        ``clock``), ``speed`` (achieved, x real time), ``stopped``, ``directory``, ``manifest``.

    Raises
    ------
    GwtwinError
        A fault outside the stream (naming its span), an unknown channel (naming those
        available), a span outside the source; ``ConfigError`` for a bad key or value.
    """
    if not isinstance(config, ReplayConfig):
        config = load_replay_config(config)
    return _Replay(source, directory, config, manifest, log, stop, clock, sleep).run()


def replay_in_thread(source, directory, config=None, **kw) -> tuple[threading.Thread, dict]:
    """Start :func:`replay` in a daemon thread.

    Returns the started thread and a dict that is filled with :func:`replay`'s summary when it
    ends (or holds ``{"error": exception}`` if it raised).  ``kw`` go to :func:`replay`
    (``manifest``, ``log``, ``stop``...).
    """
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result.update(replay(source, directory, config, **kw))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the dict
            result["error"] = exc

    thread = threading.Thread(target=target, name="gwtwin-replay", daemon=True)
    thread.start()
    return thread, result
