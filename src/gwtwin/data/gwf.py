"""GWF frame files through lalframe: reading one file, writing one frame.

lalframe is the library gwpy's own GWF backend uses; it is called directly for two reasons.  A
frame's start is stored exactly (whole second in the frame header plus a per-channel offset),
where gwpy's writer passes the start through a float; and each channel vector is decoded once per
read, where gwpy first asks lalframe for the channel's type, which decodes the vector a second
time.  lalframe compresses every vector it writes (DIFF_GZIP for reals) and keeps units as LAL
units, so a unit like ``T`` reads back as its SI form ``kg / (A s2)``.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from gwtwin.data._quiet import quiet_gwpy
from gwtwin.data.block import NS, Block, ns_to_gps, to_ns
from gwtwin.data.errors import CorruptFrameError, UnknownFormatError
from gwtwin.data.pieces import Piece, rate_from_dt, slice_span
from gwtwin.errors import GwtwinError

# -- unit conversion -------------------------------------------------------------------------

_UNIT_CACHE: dict[str, str] = {}


def _unit_text(text: str) -> str:
    """A unit string as astropy spells it (``'kg s^-2 A^-1'`` -> ``'kg / (A s2)'``)."""
    if text not in _UNIT_CACHE:
        try:
            with quiet_gwpy():  # gwpy restyles matplotlib on first import
                import gwpy.detector.units  # noqa: F401 - registers 'strain' and friends
            from astropy import units

            _UNIT_CACHE[text] = units.Unit(text).to_string()
        except ValueError:
            _UNIT_CACHE[text] = text
    return _UNIT_CACHE[text]


def _lal_unit(text: str, channel: str, path: Path):
    import lal

    if not text:
        return lal.DimensionlessUnit
    try:
        from astropy import units

        with quiet_gwpy():
            import gwpy.detector.units  # noqa: F401
            from gwpy.utils.lal import to_lal_unit

        converted = to_lal_unit(units.Unit(text))
        lal_unit, scale = converted if isinstance(converted, tuple) else (converted, 1)
        if scale != 1:
            raise ValueError(f"needs a scale factor {scale}")
        return lal_unit
    except ValueError as exc:
        warnings.warn(
            f"unit {text!r} of channel {channel} cannot be stored in GWF by lalframe ({exc}); "
            f"written dimensionless in {path} (HDF5 keeps any unit)",
            stacklevel=4,
        )
        return lal.DimensionlessUnit


# -- lalframe plumbing -----------------------------------------------------------------------


@contextlib.contextmanager
def quiet_lal() -> Iterator[None]:
    """Stop LAL printing ``XLAL Error`` lines to stderr; errors are raised with context instead.

    Only the message bits of ``lalDebugLevel`` are cleared (memory-debugging bits must not change
    once LAL has allocated).
    """
    import lal

    level = lal.GetDebugLevel()
    quiet = level & ~(lal.LALERRORBIT | lal.LALWARNINGBIT | lal.LALINFOBIT | lal.LALTRACEBIT)
    lal.ClobberDebugLevel(quiet)
    try:
        yield
    finally:
        lal.ClobberDebugLevel(level)


@functools.cache
def _lal_types():
    import lal

    return {
        lal.I2_TYPE_CODE: ("INT2", np.int16),
        lal.I4_TYPE_CODE: ("INT4", np.int32),
        lal.I8_TYPE_CODE: ("INT8", np.int64),
        lal.U2_TYPE_CODE: ("UINT2", np.uint16),
        lal.U4_TYPE_CODE: ("UINT4", np.uint32),
        lal.U8_TYPE_CODE: ("UINT8", np.uint64),
        lal.S_TYPE_CODE: ("REAL4", np.float32),
        lal.D_TYPE_CODE: ("REAL8", np.float64),
        lal.C_TYPE_CODE: ("COMPLEX8", np.complex64),
        lal.Z_TYPE_CODE: ("COMPLEX16", np.complex128),
    }


#: channel name -> LAL type code seen last; lets each later read decode the vector once
_GWF_TYPES: dict[str, int] = {}

#: numpy dtype -> (LAL type name) for writing
_WRITE_TYPES = {
    np.dtype(np.int16): "INT2",
    np.dtype(np.int32): "INT4",
    np.dtype(np.int64): "INT8",
    np.dtype(np.float32): "REAL4",
    np.dtype(np.float64): "REAL8",
}


class GwfReader:
    """An open GWF file: its channels, frames and channel data."""

    format = "gwf"

    def __init__(self, path: Path) -> None:
        import lal
        import lalframe

        self.path = path
        with quiet_lal():
            try:
                self._file = lalframe.FrFileOpenURL(str(path))
            except RuntimeError as exc:
                raise CorruptFrameError(
                    f"cannot read GWF file {path}: lalframe reports '{exc}' (truncated, damaged "
                    "or not a GWF file)"
                ) from None
            self._frames = []
            for pos in range(lalframe.FrFileQueryNFrame(self._file)):
                gps = lalframe.FrFileQueryGTime(lal.LIGOTimeGPS(), self._file, pos)
                dt_ns = round(lalframe.FrFileQueryDt(self._file, pos) * NS)
                self._frames.append((to_ns(gps), dt_ns))
        self._channels: tuple[str, ...] | None = None

    def close(self) -> None:
        self._file = None

    def span_ns(self) -> tuple[int, int]:
        if not self._frames:
            raise CorruptFrameError(f"GWF file {self.path} holds no frames")
        return min(s for s, _ in self._frames), max(s + d for s, d in self._frames)

    def channels(self) -> tuple[str, ...]:
        """Names in the table of contents (ADC, proc and sim channels)."""
        if self._channels is None:
            import lalframe

            with quiet_lal():
                try:
                    # keep the file object alive while the TOC is in use
                    ufile = lalframe.FrameUFrFileOpen(str(self.path), "r")
                    toc = lalframe.FrameUFrTOCRead(ufile)
                except RuntimeError as exc:
                    toc, reason = None, exc
                else:
                    reason = "no table of contents"
                # FrameUFrTOCRead returns None (no exception) on a truncated file, and querying
                # a None TOC crashes the interpreter, so check before use.
                if toc is None:
                    raise CorruptFrameError(
                        f"cannot read the channel list of GWF file {self.path}: {reason}"
                    )
                names: list[str] = []
                for kind in ("Adc", "Proc", "Sim"):
                    count = getattr(lalframe, f"FrameUFrTOCQuery{kind}N")(toc)
                    get = getattr(lalframe, f"FrameUFrTOCQuery{kind}Name")
                    names.extend(get(toc, i) for i in range(count))
                del toc, ufile
            self._channels = tuple(dict.fromkeys(names))
        return self._channels

    def missing(self, channels: Sequence[str]) -> list[str]:
        """Those of ``channels`` this file does not hold."""
        held = set(self.channels())
        return [c for c in channels if c not in held]

    def _series(self, channel: str, pos: int):
        """The LAL time series of ``channel`` in frame ``pos``, or None if the frame lacks it."""
        import lalframe

        types = _lal_types()
        code = _GWF_TYPES.get(channel)
        for attempt in range(2):
            if code is None:
                try:
                    code = lalframe.FrFileQueryChanType(self._file, channel, pos)
                except RuntimeError as exc:
                    if "name" in str(exc).lower():
                        return None
                    raise self._corrupt(channel, pos, exc) from None
            if code not in types:
                raise UnknownFormatError(
                    f"channel {channel} in {self.path} has LAL type code {code}, which gwtwin "
                    "does not read"
                )
            name = types[code][0]
            if name.startswith("COMPLEX"):
                raise UnknownFormatError(
                    f"channel {channel} in {self.path} holds complex samples ({name}); gwtwin "
                    "reads real-valued channels only"
                )
            try:
                series = getattr(lalframe, f"FrFileRead{name}TimeSeries")(self._file, channel, pos)
            except RuntimeError as exc:
                if "type" in str(exc).lower() and attempt == 0:
                    code = None  # the cached type was for another file: ask this one
                    continue
                if "name" in str(exc).lower():
                    return None
                raise self._corrupt(channel, pos, exc) from None
            _GWF_TYPES[channel] = code
            return series
        raise self._corrupt(channel, pos, "type changed while reading")

    def _corrupt(self, channel: str, pos: int, exc) -> CorruptFrameError:
        return CorruptFrameError(
            f"cannot read channel {channel} from frame {pos} of GWF file {self.path}: lalframe "
            f"reports '{exc}' (file truncated or damaged)"
        )

    def read(self, channel: str, start_ns: int, end_ns: int) -> list[Piece]:
        pieces = []
        with quiet_lal():
            for pos, (f0, dt) in enumerate(self._frames):
                if f0 >= end_ns or f0 + dt <= start_ns:
                    continue
                series = self._series(channel, pos)
                if series is None:
                    continue
                rate = rate_from_dt(series.deltaT)
                origin = to_ns(series.epoch)
                data = series.data.data
                # clip to the frame as well as the request: a vector longer than its frame must
                # not claim time that belongs to the next file
                cut = slice_span(len(data), origin, rate, max(start_ns, f0), min(end_ns, f0 + dt))
                if cut is None:
                    continue
                i0, i1, cover = cut
                unit = _unit_text(str(series.sampleUnits))
                pieces.append(Piece(origin, rate, i0, data[i0:i1], unit, cover))
        return pieces


def _detector_flags(channels: Sequence[str]) -> int:
    import lal

    prefixes = [d.frDetector.prefix for d in lal.CachedDetectors]
    flags = 0
    for name in channels:
        prefix = name.split(":", 1)[0] if ":" in name else ""
        if prefix in prefixes:
            flags |= 1 << 2 * prefixes.index(prefix)
    return flags


def write_gwf(path: Path, blocks: Sequence[Block], span_ns: tuple[int, int], history=None) -> None:
    """Write all channels of ``blocks`` into one GWF frame covering ``span_ns`` (whole seconds),
    with ``history`` (name -> comment) as FrHistory records."""
    import lal
    import lalframe

    start_ns, end_ns = span_ns
    channels = [c for b in blocks for c in b.channels]
    frame = lalframe.FrameNew(
        ns_to_gps(start_ns), (end_ns - start_ns) / NS, "gwtwin", 0, 0, _detector_flags(channels)
    )
    for block in blocks:
        arrays = block.numpy()
        dtype = arrays.dtype
        if dtype not in _WRITE_TYPES:
            raise GwtwinError(
                f"cannot write {dtype} samples to GWF ({', '.join(block.channels)}); expected one "
                f"of {sorted(str(d) for d in _WRITE_TYPES)}"
            )
        kind = _WRITE_TYPES[dtype]
        dt = float(1 / Fraction(block.sample_rate).limit_denominator(1_000_000))
        for row, name, unit in zip(arrays, block.channels, block.units, strict=True):
            series = getattr(lal, f"Create{kind}TimeSeries")(
                name, block.t0, 0.0, dt, _lal_unit(unit, name, path), block.size
            )
            series.data.data[:] = row
            getattr(lalframe, f"FrameAdd{kind}TimeSeriesProcData")(frame, series)
    for name, comment in (history or {}).items():
        lalframe.FrameAddFrHistory(frame, str(name), str(comment))
    tmp = path.with_name(path.name + ".tmp")
    with quiet_lal():
        try:
            status = lalframe.FrameWrite(frame, str(path))  # writes path.tmp, then renames
        except RuntimeError as exc:
            status = exc
    if status != 0 or not path.exists():
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OSError(f"lalframe could not write {path} ({status})")


def read_history(path: Path) -> dict[str, str]:
    """FrHistory records (name -> comment) of a GWF file.

    lalframe writes FrHistory but offers no reader, so the records are parsed from the file
    (frame format v8; FrHistory structures are never compressed).  A structure is an 8-byte
    length, a 1-byte checksum type, a 1-byte class, a 4-byte instance, then for FrHistory:
    ``STRING name``, ``INT_4U time``, ``STRING comment``, a 6-byte next pointer and a 4-byte
    checksum; a STRING is a 2-byte length counting the NUL, then the bytes.  FrHistory's class
    number is read from its FrSH dictionary record; a candidate whose fields do not add up to its
    length is skipped.
    """
    import struct

    data = Path(path).read_bytes()
    at = data.find(b"\x0a\x00FrHistory\x00")  # FrSH: STRING "FrHistory", INT_2U class
    if at < 0:
        return {}
    klass = struct.unpack_from("<H", data, at + 12)[0]
    out: dict[str, str] = {}
    pos = 9
    while (pos := data.find(bytes([klass]), pos + 1)) > 0:
        start = pos - 9
        if start < 0 or data[pos - 1] > 1:
            continue
        length = struct.unpack_from("<Q", data, start)[0]
        if not 30 < length < 65536 or start + length > len(data):
            continue
        try:
            body = start + 14
            n = struct.unpack_from("<H", data, body)[0]
            name = data[body + 2 : body + 1 + n].decode()
            body += 2 + n + 4
            m = struct.unpack_from("<H", data, body)[0]
            comment = data[body + 2 : body + 1 + m].decode()
        except (struct.error, UnicodeDecodeError):
            continue
        if body + 2 + m + 10 == start + length and name:
            out[name] = comment
    return out
