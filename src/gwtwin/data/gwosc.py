"""GWOSC strain files: their data-quality and injection bitmasks as named segment lists.

GWOSC (https://gwosc.org) distributes strain as HDF5 and GWF files of one detector at 4096 Hz
and 16384 Hz.  :func:`gwtwin.data.read` reads their strain like any other channel (see
:mod:`gwtwin.data.hdf5` for the HDF5 layout); this module reads their bitmasks.

- HDF5: ``quality/simple/DQmask`` (the data-quality mask) and ``quality/injections/Injmask``
  (the hardware-injection mask), integer series at 1 Hz with attributes ``Xstart``,
  ``Xspacing``, ``Npoints``; bit ``k`` is named by entry ``k`` of ``DQShortnames`` /
  ``InjShortnames`` (``DQDescriptions`` / ``InjDescriptions`` hold sentences).
- GWF: channels ``<IFO>:GWOSC-<4|16>KHZ_R<n>_DQMASK`` and ``..._INJMASK`` next to
  ``..._STRAIN``.  A GWF vector has no room for bit names; gwpy reads them from the vector's unit
  string when it is written as ``"0:DATA 1:CBC_CAT1 ..."``, and so does gwtwin; otherwise the
  names GWOSC documents for its O1-O4 releases (:data:`DQ_BITS`, :data:`INJ_BITS`) are used.

A set bit means the second passes the test the bit names: ``DATA`` is set where strain data are
present (strain is NaN where it is not), ``CBC_CAT1`` where the CBC category-1 checks pass,
``NO_CBC_HW_INJ`` where no CBC hardware injection is active.  :func:`read_dq_mask` gives, for
each bit, the GPS time where it is set; :func:`dq_segments` the time where all chosen bits are
set, which is what :func:`gwtwin.signal.scan.triggers_from_frames` analyses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from gwtwin.data.backends import missing_channels_error, open_frame
from gwtwin.data.errors import FrameNotFoundError
from gwtwin.data.files import find_frames
from gwtwin.data.framedata import _segment_list
from gwtwin.data.frames import read
from gwtwin.data.pieces import time_at
from gwtwin.errors import GwtwinError

__all__ = [
    "DQ_BITS",
    "INJ_BITS",
    "dq_segments",
    "gwosc_channels",
    "is_gwosc_mask",
    "read_dq_mask",
]

#: GWOSC's data-quality bits in its O1-O4 releases (bit 0 first), from its dataset API
DQ_BITS = ("DATA", "CBC_CAT1", "CBC_CAT2", "CBC_CAT3", "BURST_CAT1", "BURST_CAT2", "BURST_CAT3")
#: GWOSC's hardware-injection bits in its O1-O4 releases (bit 0 first)
INJ_BITS = (
    "NO_CBC_HW_INJ",
    "NO_BURST_HW_INJ",
    "NO_DETCHAR_HW_INJ",
    "NO_CW_HW_INJ",
    "NO_STOCH_HW_INJ",
)

#: mask kind -> (channel-name suffix, HDF5 group, HDF5 name prefix, default bit names)
_MASKS = {
    "dq": ("DQMASK", "quality/simple", "DQ", DQ_BITS),
    "injection": ("INJMASK", "quality/injections", "Inj", INJ_BITS),
}
_GWOSC_CHANNEL = re.compile(r"^[A-Z]\d:(?:GW|L)OSC-.*_(STRAIN|DQMASK|INJMASK)$")
_KINDS = {"STRAIN": "strain", "DQMASK": "dq", "INJMASK": "injection"}
_UNIT_BITS = re.compile(r"^(\d+):(\S+)$")


def gwosc_channels(channels: Sequence[str]) -> dict[str, str]:
    """The GWOSC channels among ``channels``: ``{"strain": ..., "dq": ..., "injection": ...}``.

    Only the kinds present are keys; a GWOSC file holds one of each at most.
    """
    out: dict[str, str] = {}
    for name in channels:
        match = _GWOSC_CHANNEL.match(name)
        if match:
            out.setdefault(_KINDS[match.group(1)], name)
    return out


def is_gwosc_mask(channel: str) -> bool:
    """Whether ``channel`` is a GWOSC DQ or injection bitmask (not a time series to analyse)."""
    match = _GWOSC_CHANNEL.match(channel)
    return bool(match) and match.group(1) != "STRAIN"


def _mask_kind(mask: str):
    if mask not in _MASKS:
        raise GwtwinError(f"mask must be one of {sorted(_MASKS)}, found {mask!r}")
    return _MASKS[mask]


def _hdf5_bit_names(path, group: str, prefix: str) -> list[str] | None:
    import h5py

    with h5py.File(path, "r") as f:
        for key in (f"{group}/{prefix}Shortnames", f"{group}/{prefix}Descriptions"):
            if key in f:
                values = np.atleast_1d(f[key][()])
                return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]
    return None


def _unit_bit_names(unit: str) -> list[str] | None:
    """Bit names from a GWF unit string ``"0:DATA 1:CBC_CAT1 ..."`` (gwpy's reading of it)."""
    tokens = unit.split()
    matches = [_UNIT_BITS.match(t) for t in tokens]
    if not tokens or not all(matches):
        return None
    bits = {int(m.group(1)): m.group(2) for m in matches}
    return [bits.get(k, f"BIT{k}") for k in range(max(bits) + 1)]


def read_dq_mask(
    source,
    start=None,
    end=None,
    *,
    mask: str = "dq",
    bit_names: Sequence[str] | None = None,
    format: str | None = None,
) -> dict:
    """The time each bit of a GWOSC file's bitmask is set, as named segment lists.

    Parameters
    ----------
    source : path or sequence of paths
        A GWOSC strain file, a list of them, or a directory of them (one detector).
    start, end : GPS time, optional
        Span to read (default: what the files cover).
    mask : {"dq", "injection"}
        The data-quality mask (``DQMASK``, ``quality/simple/DQmask``) or the hardware-injection
        mask (``INJMASK``, ``quality/injections/Injmask``).
    bit_names : sequence of str, optional
        Names of bits 0, 1, ...; default: those the file holds (HDF5 ``DQShortnames``, a GWF
        unit string ``"0:DATA 1:..."``), else GWOSC's (:data:`DQ_BITS`, :data:`INJ_BITS`).
    format : {"gwf", "hdf5"}, optional
        As for :func:`gwtwin.data.read`.

    Returns
    -------
    dict of str -> gwpy.segments.SegmentList
        For each named bit, in bit order, the coalesced GPS time where it is set (each mask
        sample covers ``[t, t + Xspacing)``).  Time that no file covers is in no list.

    Raises
    ------
    FrameNotFoundError, MissingChannelError (no mask channel in the file), GwtwinError (a mask
    that is not an integer bitmask)
    """
    suffix, group, prefix, default_names = _mask_kind(mask)
    files = find_frames(source, start, end, format=format)
    if not files:
        raise FrameNotFoundError(f"no frame files in {source} between {start} and {end}")
    first = files[0]
    with open_frame(first.path, first.format) as reader:
        held = tuple(reader.channels())
    channel = gwosc_channels(held).get(mask)
    if channel is None:
        raise missing_channels_error(
            first.path, [f"<IFO>:GWOSC-<rate>_R<n>_{suffix} (the GWOSC {mask} mask)"], held
        )
    names = list(bit_names) if bit_names is not None else None
    if names is None and first.format == "hdf5":
        names = _hdf5_bit_names(first.path, group, prefix)
    data = read(source, [channel], start, end, format=format, dtype=None)
    if names is None:
        names = _unit_bit_names(data.units[0]) if data.units else None
    names = names or list(default_names)
    spans: dict[str, list[tuple[int, int]]] = {name: [] for name in names}
    for seg in data.segments:
        values = _integer_mask(seg.numpy()[0], channel, source)
        rate = Fraction(seg.sample_rate).limit_denominator(1_000_000)
        for bit, name in enumerate(names):
            on = ((values >> bit) & 1).astype(np.int8)
            edges = np.diff(on, prepend=np.int8(0), append=np.int8(0))
            for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
                spans[name].append(
                    (time_at(int(a), seg.t0_ns, rate), time_at(int(b), seg.t0_ns, rate))
                )
    return {name: _segment_list(v).coalesce() for name, v in spans.items()}


def _integer_mask(values: np.ndarray, channel: str, source) -> np.ndarray:
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    finite = np.isfinite(values)
    if not (finite.all() and np.array_equal(values, np.round(values))):
        bad = values[~finite | (values != np.round(values))][:3]
        raise GwtwinError(
            f"{channel} in {source} is not an integer bitmask: expected whole numbers, found "
            f"{', '.join(repr(float(v)) for v in bad)}"
        )
    return values.astype(np.int64)


def dq_segments(
    source,
    bits: Sequence[str] = ("DATA",),
    start=None,
    end=None,
    *,
    mask: str = "dq",
    format: str | None = None,
):
    """The GPS time where every one of ``bits`` is set in a GWOSC file's bitmask.

    Parameters
    ----------
    source, start, end, mask, format
        As for :func:`read_dq_mask`.
    bits : sequence of str
        Bit names, e.g. ``("DATA", "CBC_CAT1")``; at least one.

    Returns
    -------
    gwpy.segments.SegmentList
        Coalesced, sorted.

    Raises
    ------
    GwtwinError
        A bit the mask does not name (the message lists those it does), or no bits; and as
        :func:`read_dq_mask`.
    """
    default_names = _mask_kind(mask)[3]
    bits = [bits] if isinstance(bits, str) else list(bits)
    if not bits:
        raise GwtwinError(f"no {mask} bits given; expected names such as {default_names[:2]}")
    flags = read_dq_mask(source, start, end, mask=mask, format=format)
    unknown = [b for b in bits if b not in flags]
    if unknown:
        raise GwtwinError(
            f"{mask} bit{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} not in the GWOSC "
            f"{mask} mask of {source}; its bits: {', '.join(flags)}"
        )
    good = flags[bits[0]]
    for name in bits[1:]:
        good = good & flags[name]
    return good.coalesce()
