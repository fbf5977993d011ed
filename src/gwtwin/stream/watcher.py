"""Watching a directory that a data-acquisition system fills with frame files.

:class:`FrameWatcher` answers one question, over and over: *what do we know about the data from
GPS ``cursor`` on?*  Files follow the naming convention ``OBS-TAG-GPSSTART-DURATION.ext`` (GWF or
HDF5, any whole-second duration); a file is taken once it reads: writers that rename a finished
file into place (lalframe, gwtwin's own writer) are read at once, and a file still being written
in place fails to read and is retried until ``wait`` seconds after its last modification.  The
answers (:class:`Arrival`) are:

- ``"data"``: the file covering ``cursor`` read; the strain and every requested witness over
  ``[cursor, file end)``, each witness either samples (NaN kept) or None with the reason (not in
  the file, another sample rate, unreadable);
- ``"strain_bad"``: the file covering ``cursor`` reads but its strain is missing or at another
  rate: the span comes back as raw data the model cannot use (``strain`` at the rate found, or
  None when missing);
- ``"corrupt"``: the file covering ``cursor`` still does not read ``wait`` s after it last changed;
- ``"gap"``: no file covers ``cursor`` but a later one exists and ``wait`` s have passed since the
  cursor was reached: the span up to that later file's start is a gap;
- ``"idle"``: nothing covers ``cursor`` yet (``waited``: since when).

Files that appear for a span the stream has already passed (late beyond the wait) are reported
once through :meth:`FrameWatcher.late`, never read.
"""

from __future__ import annotations

import bisect
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gwtwin.data.block import NS
from gwtwin.data.errors import FrameNameError, MissingChannelError, UnknownFormatError
from gwtwin.data.files import FrameFile, parse_frame_name
from gwtwin.errors import GwtwinError


@dataclass
class Arrival:
    """What the watched directory says about the data from the cursor on (module docstring)."""

    kind: str  # "data" | "strain_bad" | "corrupt" | "gap" | "idle"
    start: int
    end: int | None = None
    path: Path | None = None
    strain: np.ndarray | None = None
    strain_rate: float | None = None
    witnesses: dict[str, np.ndarray | None] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # channel -> why it is unusable
    reason: str = ""
    mtime: float | None = None  # wall time the file was complete (its modification time)
    waited: float = 0.0


class FrameWatcher:
    """Polls ``directory`` for the file covering a cursor (see the module docstring).

    Parameters
    ----------
    directory : path
        The watched directory (it may not exist yet).
    strain : str
        The strain channel; ``rates`` the expected native rate of it and of every witness.
    rates : mapping channel -> float
        Expected native rates, Hz (the strain's included).
    tag : str, optional
        Only files whose name carries this tag.
    wait : float
        s before a missing file becomes a gap and an unreadable one is corrupt.
    clock : callable
        Monotonic clock (tests inject one).
    """

    def __init__(self, directory, strain: str, rates, *, tag=None, wait=10.0, clock=time.monotonic):
        self.directory = Path(directory)
        self.strain = strain
        self.rates = dict(rates)
        self.tag = tag
        self.wait = float(wait)
        self.clock = clock
        self._since: tuple[int, float] | None = None  # (cursor, clock when first looked for)
        self._failing: dict[Path, str] = {}
        self._reported: set[Path] = set()
        self._skip: set[str] = set()
        self._index: dict[str, FrameFile] = {}
        self._sorted: list[FrameFile] = []
        self._starts: list[int] = []
        self._new: list[FrameFile] = []
        self._mtime, self._listed, self._mtime_seen = None, -1e9, None
        self._late_listed = -1e9
        self._patterns: set[tuple] = set()

    # -- listing ------------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Bring the sorted file index up to date: names are parsed once, and the directory is
        listed again only when it changed (its mtime) or a second has passed (mtime ticks can
        be coarser than two renames), so a day of 1 s files costs what a minute does."""
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except FileNotFoundError:
            self._index, self._sorted, self._starts = {}, [], []
            return
        now = time.monotonic()
        if mtime == self._mtime and now - self._listed < 1.0:
            return
        self._mtime, self._listed = mtime, now
        names = set(os.listdir(self.directory))
        gone = [n for n in self._index if n not in names]
        for name in gone:
            del self._index[name]
        added = []
        for name in names - self._index.keys() - self._skip:
            if name.endswith(".tmp") or name.startswith("."):
                continue
            try:
                f = parse_frame_name(self.directory / name)
            except (FrameNameError, UnknownFormatError):
                self._skip.add(name)
                continue
            if self.tag is not None and f.tag != self.tag:
                self._skip.add(name)
                continue
            self._index[name] = f
            added.append(f)
        first = self._mtime_seen is None
        self._mtime_seen = mtime
        if gone or len(added) > 64:
            self._sorted = sorted(self._index.values(), key=lambda f: (f.start_ns, f.end_ns))
            self._starts = [f.start_ns for f in self._sorted]
        else:  # the usual case: a file or two at the end
            for f in added:
                self._insert(f)
        for f in added:
            self._patterns.add((f.observatory, f.tag, f.duration, f.path.suffix))
        if not first:  # what was there when the service started did not "arrive"
            self._new += added

    def _insert(self, f: FrameFile) -> None:
        i = bisect.bisect_right(self._starts, f.start_ns)
        self._sorted.insert(i, f)
        self._starts.insert(i, f.start_ns)

    def _probe(self, cursor: int) -> None:
        """Look for the file a DAQ would write next (the names seen so far, starting at
        ``cursor``) without listing the directory: the steady state costs one stat."""
        for obs, tag, duration, suffix in list(self._patterns)[:8]:
            name = f"{obs}-{tag}-{cursor}-{duration}{suffix}"
            if name in self._index or not os.path.exists(self.directory / name):
                continue
            try:
                f = parse_frame_name(self.directory / name)
            except (FrameNameError, UnknownFormatError):  # pragma: no cover - built from one
                continue
            self._index[name] = f
            self._insert(f)
            self._new.append(f)
            return

    def files(self) -> list[FrameFile]:
        """The conforming frame files, in GPS order (temporary and foreign names ignored)."""
        self._refresh()
        return list(self._sorted)

    def late(self, cursor: int) -> list[FrameFile]:
        """Files that appeared for time before ``cursor`` since the last call (reported once;
        the directory is listed for them at most every 10 s)."""
        now = time.monotonic()
        if now - self._late_listed >= 10.0:
            self._late_listed = now
            self._refresh()
        out, keep = [], []
        for f in self._new:
            if f.path in self._reported:
                continue
            if f.end_ns <= cursor * NS:
                self._reported.add(f.path)
                out.append(f)
            else:
                keep.append(f)
        self._new = keep
        return out

    def forget_before(self, cursor: int) -> None:
        """Mark every file ending at or before ``cursor`` as seen (not late)."""
        for f in self.files():
            if f.end_ns <= cursor * NS:
                self._reported.add(f.path)

    def _around(self, cursor: int) -> tuple[FrameFile | None, FrameFile | None]:
        """The file covering GPS ``cursor`` (the latest starting, if several) and the first
        starting after it: from the index, else the expected next name, else a listing."""
        found = self._find(cursor)
        if found[0] is None:
            self._probe(cursor)
            found = self._find(cursor)
        if found[0] is None:
            self._refresh()
            found = self._find(cursor)
        return found

    def _find(self, cursor: int) -> tuple[FrameFile | None, FrameFile | None]:
        t = cursor * NS
        i = bisect.bisect_right(self._starts, t)
        here = None
        for j in range(i - 1, max(i - 16, -1), -1):  # overlapping files: the latest start wins
            if self._sorted[j].end_ns > t:
                here = self._sorted[j]
                break
        return here, (self._sorted[i] if i < len(self._sorted) else None)

    # -- the question -------------------------------------------------------------------------
    def look(self, cursor: int, end: int | None = None) -> Arrival:
        """What is known from GPS ``cursor`` on (up to ``end`` if given)."""
        now = self.clock()
        if self._since is None or self._since[0] != cursor:
            self._since = (cursor, now)
        waited = now - self._since[1]
        f, later = self._around(cursor)
        if f is not None and not f.path.exists():  # removed (a rolling DAQ directory)
            self._index.pop(f.path.name, None)
            self._sorted = [g for g in self._sorted if g.path != f.path]
            self._starts = [g.start_ns for g in self._sorted]
            self._listed = -1e9
            f, later = self._around(cursor)
        if f is not None:
            stop = f.end_ns // NS if end is None else min(f.end_ns // NS, end)
            if f.end_ns % NS or f.start_ns % NS:
                raise GwtwinError(
                    f"{f.path.name}: the stream handles whole-second files, found GPS "
                    f"[{f.start_ns / NS}, {f.end_ns / NS})"
                )
            arrival = self._read(f, cursor, stop)
            if arrival.kind == "retry":
                age = time.time() - arrival.mtime
                if age < self.wait:
                    return Arrival("idle", cursor, waited=waited, reason=arrival.reason)
                self._reported.add(f.path)
                return Arrival(
                    "corrupt",
                    cursor,
                    stop,
                    path=f.path,
                    reason=f"{f.path.name} does not read {age:.1f} s after it last changed: "
                    f"{arrival.reason}",
                    mtime=arrival.mtime,
                )
            arrival.waited = waited
            self._reported.add(f.path)
            return arrival
        if later is not None and waited >= self.wait:
            nxt = -(-later.start_ns // NS)
            return Arrival(
                "gap",
                cursor,
                nxt if end is None else min(nxt, end),
                reason=f"no file covering GPS {cursor} arrived within {self.wait:g} s; the next "
                f"is {later.path.name}",
                waited=waited,
            )
        return Arrival("idle", cursor, waited=waited)

    def _read(self, f: FrameFile, a: int, b: int) -> Arrival:
        from gwtwin.data.backends import open_frame
        from gwtwin.data.frames import read

        try:
            mtime = f.path.stat().st_mtime
        except FileNotFoundError:
            return Arrival("retry", a, reason="file vanished", mtime=time.time())
        try:
            with open_frame(f.path, f.format) as reader:
                held = set(reader.channels())
        except Exception as exc:  # noqa: BLE001 - any failure to open is a file not ready/corrupt
            return Arrival("retry", a, reason=f"{type(exc).__name__}: {exc}", mtime=mtime)

        def one(channel):
            """(Block or None, why not, whether the file itself failed)."""
            if channel not in held:
                return None, f"{channel} is not in {f.path.name}", False
            try:
                data = read(f.path, [channel], a, b, format=f.format)
            except MissingChannelError as exc:
                return None, str(exc), False
            except Exception as exc:  # noqa: BLE001 - an unreadable channel is reported, not fatal
                return None, f"{channel} does not read from {f.path.name}: {exc}", True
            return data.filled(), "", False

        strain, why, failed = one(self.strain)
        if failed:
            return Arrival("retry", a, reason=why, mtime=mtime)
        base = {"start": a, "end": b, "path": f.path, "mtime": mtime}
        expected = self.rates[self.strain]
        if strain is None:
            return Arrival("strain_bad", **base, reason=why)
        if strain.sample_rate != expected:
            return Arrival(
                "strain_bad",
                **base,
                strain=strain.data[0].numpy(),
                strain_rate=strain.sample_rate,
                reason=f"{self.strain} is at {strain.sample_rate:g} Hz in {f.path.name}, "
                f"expected {expected:g} Hz",
            )
        witnesses, problems = {}, {}
        for channel, rate in self.rates.items():
            if channel == self.strain:
                continue
            block, why, _ = one(channel)
            if block is not None and block.sample_rate != rate:
                why = (
                    f"{channel} is at {block.sample_rate:g} Hz in {f.path.name}, expected "
                    f"{rate:g} Hz"
                )
                block = None
            witnesses[channel] = None if block is None else block.data[0].numpy()
            if why:
                problems[channel] = why
            elif not np.isfinite(witnesses[channel]).all():
                n = int(np.count_nonzero(~np.isfinite(witnesses[channel])))
                problems[channel] = f"{channel} has {n} NaN/inf samples in {f.path.name}"
        return Arrival(
            "data",
            **base,
            strain=strain.data[0].numpy(),
            strain_rate=expected,
            witnesses=witnesses,
            problems=problems,
        )
