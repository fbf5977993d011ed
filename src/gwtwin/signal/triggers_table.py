"""The trigger table: Omicron's columns, :class:`Triggers` (a table per channel), its HDF5 file.

Columns (float64, one structured numpy array per channel, ``TRIGGER_DTYPE``): ``time`` (GPS s),
``frequency`` (Hz), ``q``, ``snr``, ``amplitude``, ``phase`` (rad), ``tstart, tend`` (GPS s),
``fstart, fend`` (Hz); :mod:`gwtwin.signal.triggers` says how each is computed.
:func:`write_triggers` writes one HDF5 dataset per channel (named by the channel) that
``gwpy.table.EventTable.read(path, path=channel, format="hdf5")`` reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gwtwin.errors import GwtwinError

__all__ = [
    "TRIGGER_COLUMNS",
    "TRIGGER_DTYPE",
    "Triggers",
    "read_triggers",
    "write_triggers",
]

TRIGGER_COLUMNS = (
    "time",
    "frequency",
    "q",
    "snr",
    "amplitude",
    "phase",
    "tstart",
    "tend",
    "fstart",
    "fend",
)
TRIGGER_DTYPE = np.dtype([(name, "<f8") for name in TRIGGER_COLUMNS])
_FORMAT = "gwtwin-triggers-1"


@dataclass(frozen=True)
class Triggers:
    """Triggers of several channels: ``tables[channel]`` is a ``TRIGGER_DTYPE`` array.

    ``segment`` is the GPS ``[start, end)`` that was analysed (the input minus the edges that
    whitening corrupts); ``params`` records how the triggers were made.
    """

    tables: dict[str, np.ndarray]
    segment: tuple[float, float]
    params: dict = field(default_factory=dict)

    @property
    def channels(self) -> list[str]:
        return list(self.tables)

    def __getitem__(self, channel: str) -> np.ndarray:
        try:
            return self.tables[channel]
        except KeyError:
            raise GwtwinError(
                f"no triggers for channel {channel!r}; channels: {self.channels}"
            ) from None

    def __len__(self) -> int:
        return len(self.tables)

    def to_eventtable(self, channel: str):
        """One channel's table as a :class:`gwpy.table.EventTable` (``meta`` holds the segment)."""
        from gwtwin.data._quiet import quiet_gwpy

        with quiet_gwpy():  # gwpy restyles matplotlib on first import
            from gwpy.table import EventTable

        out = EventTable(self[channel])
        out.meta.update({"channel": channel, "segment": self.segment})
        return out


def write_triggers(path: str | os.PathLike, triggers: Triggers, *, overwrite: bool = False):
    """Write triggers to HDF5: one dataset per channel, named by the channel, at the root.

    Each dataset is a compound table with the ``TRIGGER_COLUMNS`` (float64) and attributes
    ``channel``, ``segment`` (GPS s); the file holds ``format`` and ``params`` (JSON). Readable by
    :func:`read_triggers` and by ``EventTable.read(path, path=channel, format="hdf5")``.
    """
    import h5py

    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise GwtwinError(f"{path} exists; pass overwrite=True to replace it")
    with h5py.File(path, "w") as h5:
        h5.attrs["format"] = _FORMAT
        h5.attrs["segment"] = np.asarray(triggers.segment, dtype=np.float64)
        h5.attrs["params"] = json.dumps(triggers.params)
        for channel, table in triggers.tables.items():
            if "/" in channel:
                raise GwtwinError(f"channel name {channel!r} contains '/', not a valid HDF5 name")
            arr = np.asarray(table, dtype=TRIGGER_DTYPE)
            ds = h5.create_dataset(channel, data=arr, maxshape=(None,))
            ds.attrs["channel"] = channel


def read_triggers(path: str | os.PathLike, channels: Sequence[str] | None = None) -> Triggers:
    """Read a file written by :func:`write_triggers` (all channels, or those named)."""
    import h5py

    path = os.fspath(path)
    with h5py.File(path, "r") as h5:
        if h5.attrs.get("format") != _FORMAT:
            raise GwtwinError(
                f"{path} is not a gwtwin triggers file (format attribute "
                f"{h5.attrs.get('format')!r}, expected {_FORMAT!r})"
            )
        names = list(h5.keys()) if channels is None else list(channels)
        tables = {}
        for name in names:
            if name not in h5:
                raise GwtwinError(f"{path} has no triggers for {name!r}; it has {list(h5.keys())}")
            tables[name] = np.asarray(h5[name][()], dtype=TRIGGER_DTYPE)
        segment = tuple(float(v) for v in h5.attrs["segment"])
        params = json.loads(h5.attrs["params"])
    return Triggers(tables, segment, params)
