"""Frame-file names and discovery.

Frame files are named by the LIGO/Virgo convention (LIGO-T010150) ``OBS-TAG-GPSSTART-DURATION.ext``:
``V-GWTWIN-1000000000-64.gwf`` holds 64 s of data from GPS 1000000000 written by observatory ``V``
under the tag (frame type) ``GWTWIN``.  GWOSC files follow it too
(``H-H1_GWOSC_4KHZ_R1-1126256640-4096.hdf5``).  The name is what :func:`find_frames` uses to select
and order files without opening them; the reader then checks each file's content against it.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from gwtwin.data._quiet import quiet_gwpy
from gwtwin.data.block import NS, ns_to_gps, to_ns
from gwtwin.data.errors import (
    FrameNameError,
    FrameNotFoundError,
    OverlappingFilesError,
    UnknownFormatError,
)
from gwtwin.errors import GwtwinError

#: file extension -> format name
EXTENSIONS = {".gwf": "gwf", ".hdf5": "hdf5", ".h5": "hdf5"}
#: format name -> extension used when writing
FORMAT_EXTENSION = {"gwf": ".gwf", "hdf5": ".hdf5"}

_NAME = re.compile(
    r"^(?P<obs>[A-Za-z0-9]+)-(?P<tag>[^-/]+)-(?P<start>\d+(?:\.\d+)?)-(?P<dur>\d+(?:\.\d+)?)$"
)


@dataclass(frozen=True)
class FrameFile:
    """One frame file and the GPS span its name (or, failing that, its content) gives.

    Parameters
    ----------
    path : pathlib.Path
    observatory : str
        Observatory/site code (``"V"``, ``"H"``, ``"HL"``); empty when the name does not follow the
        convention and the span was read from the file.
    tag : str
        Frame type (``"GWTWIN"``, ``"H1_GWOSC_4KHZ_R1"``); empty as above.
    start : int or decimal.Decimal
        GPS start, seconds (an ``int`` unless the name holds a fraction).
    duration : int or decimal.Decimal
        Length, seconds.
    format : str
        ``"gwf"`` or ``"hdf5"``.
    """

    path: Path
    observatory: str
    tag: str
    start: int | Decimal
    duration: int | Decimal
    format: str

    @property
    def start_ns(self) -> int:
        """GPS start, integer nanoseconds."""
        return to_ns(self.start)

    @property
    def end_ns(self) -> int:
        """GPS end (exclusive), integer nanoseconds."""
        return self.start_ns + to_ns(self.duration)

    @property
    def end(self) -> int | Decimal:
        """GPS end, seconds."""
        return self.start + self.duration

    @property
    def segment(self):
        """The ``[start, end)`` span as a :class:`gwpy.segments.Segment` of exact GPS times."""
        with quiet_gwpy():  # gwpy restyles matplotlib on first import
            from gwpy.segments import Segment

        return Segment(ns_to_gps(self.start_ns), ns_to_gps(self.end_ns))

    def __str__(self) -> str:
        return str(self.path)


def _number(text: str) -> int | Decimal:
    return int(text) if text.isdigit() else Decimal(text)


def format_of(path: str | os.PathLike, format: str | None = None) -> str:
    """Format (``"gwf"``/``"hdf5"``) of a file, from ``format`` if given, else its extension."""
    if format is not None:
        fmt = str(format).lower()
        if fmt in ("h5", "hdf5", "hdf5.gwosc"):
            return "hdf5"
        if fmt == "gwf":
            return "gwf"
        raise UnknownFormatError(
            f"unknown frame format {format!r} for {path}; expected 'gwf' or 'hdf5'"
        )
    suffix = Path(path).suffix.lower()
    try:
        return EXTENSIONS[suffix]
    except KeyError:
        raise UnknownFormatError(
            f"cannot tell the format of {path} from its extension {suffix or '(none)'!r}; "
            f"expected one of {sorted(EXTENSIONS)} (or pass format='gwf'|'hdf5')"
        ) from None


def parse_frame_name(path: str | os.PathLike) -> FrameFile:
    """Read observatory, tag, GPS start and duration from a name ``OBS-TAG-GPSSTART-DURATION.ext``.

    Raises
    ------
    UnknownFormatError
        If the extension is not ``.gwf``, ``.hdf5`` or ``.h5``.
    FrameNameError
        If the rest of the name does not follow the convention.
    """
    path = Path(path)
    fmt = format_of(path)
    match = _NAME.match(path.name[: -len(path.suffix)])
    if match is None:
        raise FrameNameError(
            f"file name {path.name!r} does not follow the frame naming convention "
            "OBS-TAG-GPSSTART-DURATION.ext (e.g. 'V-GWTWIN-1000000000-64.gwf')"
        )
    duration = _number(match["dur"])
    if duration <= 0:
        raise FrameNameError(
            f"file name {path.name!r} gives a duration of {duration} s; expected > 0"
        )
    return FrameFile(path, match["obs"], match["tag"], _number(match["start"]), duration, fmt)


def frame_name(observatory: str, tag: str, start: Any, duration: Any, format: str = "gwf") -> str:
    """The conventional file name, e.g. ``frame_name('V', 'GWTWIN', 1000000000, 64)`` ->
    ``'V-GWTWIN-1000000000-64.gwf'``.

    ``start`` and ``duration`` are GPS seconds (int, Decimal, str or ``LIGOTimeGPS``); fractions are
    written in full (the convention expects whole seconds, which :func:`write_frames` produces).
    """
    for what, value in (("observatory", observatory), ("tag", tag)):
        if not value or not re.fullmatch(r"[^-/\s]+", str(value)):
            raise FrameNameError(
                f"{what} must be a non-empty string without '-', '/' or spaces, found {value!r}"
            )
    if not re.fullmatch(r"[A-Za-z0-9]+", observatory):
        raise FrameNameError(
            f"observatory must be letters/digits (e.g. 'V'), found {observatory!r}"
        )
    fmt = format_of(f"x.{format}", format)
    start_ns, dur_ns = to_ns(start), to_ns(duration)
    if start_ns < 0 or dur_ns <= 0:
        raise FrameNameError(
            f"frame start must be >= 0 and duration > 0 s, found start={start}, duration={duration}"
        )
    return f"{observatory}-{tag}-{_seconds(start_ns)}-{_seconds(dur_ns)}{FORMAT_EXTENSION[fmt]}"


def _seconds(ns: int) -> str:
    whole, frac = divmod(ns, NS)
    return str(whole) if frac == 0 else f"{whole}.{frac:09d}".rstrip("0")


def _describe(file: FrameFile) -> str:
    return f"{file.path} (GPS [{_seconds(file.start_ns)}, {_seconds(file.end_ns)}))"


def _expand(source, recursive: bool, format: str | None) -> list[FrameFile]:
    """Files of a source: a directory (searched), a file, or an iterable of either."""
    if isinstance(source, (str, os.PathLike)):
        items = [Path(source)]
    elif isinstance(source, Iterable):
        items = [Path(s) for s in source]
    else:
        raise GwtwinError(
            f"frame source must be a file, a directory or a list of files, found {source!r}"
        )
    out: list[FrameFile] = []
    for item in items:
        if item.is_dir():
            pattern = "**/*" if recursive else "*"
            for path in sorted(item.glob(pattern)):
                if not path.is_file() or path.suffix.lower() not in EXTENSIONS:
                    continue  # other files (README, *.tmp being written) are not frames
                if format is not None and EXTENSIONS[path.suffix.lower()] != format_of(
                    path, format
                ):
                    continue  # the same data in another format
                try:
                    out.append(parse_frame_name(path))
                except FrameNameError as exc:
                    warnings.warn(f"ignoring {path}: {exc}", stacklevel=3)
        elif item.is_file():
            out.append(_file_entry(item, format))
        else:
            raise FrameNotFoundError(f"frame source {item} does not exist")
    return out


def _file_entry(path: Path, format: str | None) -> FrameFile:
    """A file given by name: its span from the name, or from its content when the name is free."""
    try:
        entry = parse_frame_name(path)
    except (FrameNameError, UnknownFormatError):
        from gwtwin.data.backends import open_frame

        fmt = format_of(path, format)
        with open_frame(path, fmt) as reader:
            start_ns, end_ns = reader.span_ns()
        return FrameFile(path, "", "", _gps_number(start_ns), _gps_number(end_ns - start_ns), fmt)
    if format is not None and format_of(path, format) != entry.format:
        raise UnknownFormatError(
            f"{path} has a {entry.format.upper()} extension but format={format!r} was given"
        )
    return entry


def _gps_number(ns: int) -> int | Decimal:
    whole, frac = divmod(ns, NS)
    return whole if frac == 0 else Decimal(ns) / NS


def find_frames(
    source,
    start=None,
    end=None,
    *,
    observatory: str | None = None,
    tag: str | None = None,
    recursive: bool = False,
    format: str | None = None,
) -> list[FrameFile]:
    """Frame files of a source that overlap ``[start, end)``, sorted by GPS start.

    Parameters
    ----------
    source : path or sequence of paths
        A directory (its files named ``OBS-TAG-GPS-DUR.gwf|.hdf5|.h5`` are taken; other files are
        skipped, frame-like files with a bad name with a warning), a file, or a list of files and
        directories.  A file given by path whose name does not follow the convention is opened to
        read its span.
    start, end : GPS time, optional
        Any GPS type (int, float, str, ``LIGOTimeGPS``); default: no limit.
    observatory, tag : str, optional
        Keep only files with this observatory code / frame type.
    recursive : bool
        Search directories recursively.
    format : str, optional
        ``"gwf"`` or ``"hdf5"``: only files of this format are taken from directories, and files
        given by path with a non-standard extension are read as this format.

    Raises
    ------
    OverlappingFilesError
        If two selected files cover the same GPS time (naming both and the overlap); select one
        set with ``observatory=``/``tag=``.
    FrameNotFoundError
        If a path does not exist.
    """
    start_ns = None if start is None else to_ns(start)
    end_ns = None if end is None else to_ns(end)
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise GwtwinError(f"end ({end}) must be after start ({start})")
    seen: dict[Path, FrameFile] = {}
    for entry in _expand(source, recursive, format):
        seen.setdefault(entry.path.resolve(), entry)
    files = [
        f
        for f in seen.values()
        if (observatory is None or f.observatory == observatory)
        and (tag is None or f.tag == tag)
        and (start_ns is None or f.end_ns > start_ns)
        and (end_ns is None or f.start_ns < end_ns)
    ]
    files.sort(key=lambda f: (f.start_ns, f.end_ns, str(f.path)))
    check_overlaps(files)
    return files


def check_overlaps(files: Sequence[FrameFile]) -> None:
    """Raise :class:`OverlappingFilesError` if any two of the (start-sorted) files overlap."""
    latest: FrameFile | None = None  # the file reaching furthest so far
    for f in files:
        if latest is not None and f.start_ns < latest.end_ns:
            lo, hi = f.start_ns, min(f.end_ns, latest.end_ns)
            raise OverlappingFilesError(
                f"frame files overlap: {_describe(latest)} and {_describe(f)} both cover GPS "
                f"[{_seconds(lo)}, {_seconds(hi)}) ({(hi - lo) / NS:g} s); remove one, or select "
                "one set with observatory=/tag="
            )
        if latest is None or f.end_ns > latest.end_ns:
            latest = f
