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

    # -- listing ------------------------------------------------------------------------------
    def files(self) -> list[FrameFile]:
        """The conforming frame files, in GPS order (temporary and foreign names ignored)."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            if name in self._skip or name.endswith(".tmp"):
                continue
            try:
                f = parse_frame_name(self.directory / name)
            except (FrameNameError, UnknownFormatError):
                self._skip.add(name)
                continue
            if self.tag is None or f.tag == self.tag:
                out.append(f)
        out.sort(key=lambda f: (f.start_ns, f.end_ns))
        return out

    def late(self, cursor: int) -> list[FrameFile]:
        """Files that appeared for time before ``cursor`` since the last call (reported once)."""
        out = []
        for f in self.files():
            if f.end_ns <= cursor * NS and f.path not in self._reported:
                self._reported.add(f.path)
                out.append(f)
        return out

    def forget_before(self, cursor: int) -> None:
        """Mark every file ending at or before ``cursor`` as seen (not late)."""
        for f in self.files():
            if f.end_ns <= cursor * NS:
                self._reported.add(f.path)

    # -- the question -------------------------------------------------------------------------
    def look(self, cursor: int, end: int | None = None) -> Arrival:
        """What is known from GPS ``cursor`` on (up to ``end`` if given)."""
        now = self.clock()
        if self._since is None or self._since[0] != cursor:
            self._since = (cursor, now)
        waited = now - self._since[1]
        files = self.files()
        here = [f for f in files if f.start_ns <= cursor * NS < f.end_ns]
        if here:
            f = here[-1]
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
        later = [f for f in files if f.start_ns > cursor * NS]
        if later and waited >= self.wait:
            nxt = -(-later[0].start_ns // NS)
            return Arrival(
                "gap",
                cursor,
                nxt if end is None else min(nxt, end),
                reason=f"no file covering GPS {cursor} arrived within {self.wait:g} s; the next "
                f"is {later[0].path.name}",
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
