"""HDF5 frame files: gwpy's layout (written by gwpy) and GWOSC strain files, read with h5py.

gwpy writes one dataset per channel, named by the channel, with attributes ``x0``, ``dx``,
``unit``, ``name`` and ``channel``; reading goes through h5py slicing, so reading part of a file
reads only that part.  gwpy stores ``x0`` as a float (good to ~0.1 us at GPS 1e9), so gwtwin adds
the exact starts as a root attribute that gwpy ignores.  GWOSC files hold ``strain/Strain``
(attributes ``Xstart``, ``Xspacing``), ``meta/Detector`` and optionally
``quality/simple/DQmask`` (1 Hz); their channels are named as GWOSC names them in its GWF files.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from gwtwin.data._quiet import quiet_gwpy
from gwtwin.data.block import NS, Block
from gwtwin.data.errors import CorruptFrameError, UnknownFormatError
from gwtwin.data.pieces import Piece, rate_from_dt, slice_span, snap_t0, time_at

#: root attribute of gwtwin-written HDF5 files: JSON {dataset: exact GPS start in ns}
#: (gwpy stores ``x0`` as a float, good to ~0.1 us at GPS 1e9)
T0_ATTR = "gwtwin_t0_ns"


@dataclass
class _Dataset:
    path: str  # inside the file
    origin_ns: int
    rate: Fraction
    unit: str
    dataset: object = None  # the open h5py.Dataset, once looked up


def _text(value) -> str:
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


class Hdf5Reader:
    """An open HDF5 frame file: gwpy's layout, or a GWOSC strain file (``strain/Strain``)."""

    format = "hdf5"

    def __init__(self, path: Path) -> None:
        import h5py

        self.path = path
        try:
            self._file = h5py.File(path, "r")
        except OSError as exc:
            raise CorruptFrameError(
                f"cannot read HDF5 file {path}: {exc} (truncated, damaged or not HDF5)"
            ) from None
        self._datasets: dict[str, _Dataset] = {}
        self._exact: dict[str, int] = {}
        try:
            self.gwosc = "strain/Strain" in self._file
            if self.gwosc:
                self._datasets = self._gwosc_datasets()
                self._names = tuple(self._datasets)
            else:
                # gwpy layout: one dataset per channel at the root, named by the channel; the
                # attributes of a dataset are read only when it is asked for
                self._names = tuple(self._file.keys())
                if T0_ATTR in self._file.attrs:
                    self._exact = json.loads(_text(self._file.attrs[T0_ATTR]))
        except (KeyError, OSError, RuntimeError, TypeError, ValueError) as exc:
            self.close()
            raise CorruptFrameError(
                f"cannot read the metadata of HDF5 file {path}: {type(exc).__name__}: {exc}"
            ) from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._file.close()

    def _info(self, channel: str) -> _Dataset:
        """Where and how ``channel`` is stored (gwpy layout: from the dataset's attributes)."""
        if channel in self._datasets:
            return self._datasets[channel]
        import h5py

        try:
            ds = self._file[channel]
            if not (isinstance(ds, h5py.Dataset) and ds.ndim == 1 and "dx" in ds.attrs):
                raise UnknownFormatError(
                    f"{channel} in HDF5 file {self.path} is not a time series in gwpy's layout "
                    "(a 1-D dataset with 'x0' and 'dx' attributes) nor a GWOSC strain file"
                )
            attrs = ds.attrs
            xunit = _text(attrs.get("xunit", "s"))
            if xunit not in ("s", "second", "seconds"):
                raise UnknownFormatError(
                    f"{channel} in HDF5 file {self.path} has x unit {xunit!r}; expected seconds"
                )
            rate = rate_from_dt(float(attrs["dx"]))
            exact = self._exact.get(channel)
            origin = int(exact) if exact is not None else snap_t0(float(attrs["x0"]), rate)
            unit = _text(attrs.get("unit", ""))
        except UnknownFormatError:
            raise
        except (KeyError, OSError, RuntimeError, TypeError, ValueError) as exc:
            raise CorruptFrameError(
                f"cannot read channel {channel} from HDF5 file {self.path}: {exc}"
            ) from None
        self._datasets[channel] = info = _Dataset(channel, origin, rate, unit, ds)
        return info

    def _gwosc_datasets(self) -> dict[str, _Dataset]:
        f = self._file
        ifo = _text(f["meta/Detector"][()])
        strain = f["strain/Strain"]
        rate = rate_from_dt(float(strain.attrs["Xspacing"]))
        khz = f"{round(rate / 1024)}KHZ"

        def start_of(ds) -> int:
            x0 = ds.attrs["Xstart"] if "Xstart" in ds.attrs else f["meta/GPSstart"][()]
            if isinstance(x0, (int, np.integer)) or float(x0).is_integer():
                return int(x0) * NS
            return snap_t0(float(x0), rate_from_dt(float(ds.attrs.get("Xspacing", 1.0))))

        def name_of(group: str, default: str) -> str:
            meta = f"{group}/GWOSCmeta"
            return f"{ifo}:{_text(f[meta][()]) if meta in f else default}"

        out = {
            name_of("strain", f"GWOSC-{khz}_R1_STRAIN"): _Dataset(
                "strain/Strain", start_of(strain), rate, _text(strain.attrs.get("Yunits", "strain"))
            )
        }
        for group, dataset, kind in (
            ("quality/simple", "DQmask", "DQMASK"),
            ("quality/injections", "Injmask", "INJMASK"),
        ):
            key = f"{group}/{dataset}"
            if key in f:
                ds = f[key]
                mask_rate = rate_from_dt(float(ds.attrs.get("Xspacing", 1.0)))
                out[name_of(group, f"GWOSC-{khz}_R1_{kind}")] = _Dataset(
                    key, start_of(ds), mask_rate, ""
                )
        return out

    def channels(self) -> tuple[str, ...]:
        return self._names

    def missing(self, channels: Sequence[str]) -> list[str]:
        """Those of ``channels`` this file does not hold."""
        if self.gwosc:
            return [c for c in channels if c not in self._datasets]
        return [c for c in channels if c not in self._names and c not in self._file]

    def span_ns(self) -> tuple[int, int]:
        infos = [self._info(name) for name in self._names]
        if not infos:
            raise CorruptFrameError(f"HDF5 file {self.path} holds no time series")
        spans = [
            (d.origin_ns, time_at(self._file[d.path].shape[0], d.origin_ns, d.rate)) for d in infos
        ]
        return min(s for s, _ in spans), max(e for _, e in spans)

    def read(self, channel: str, start_ns: int, end_ns: int) -> list[Piece]:
        info = self._info(channel)
        if info.dataset is None:
            info.dataset = self._file[info.path]
        ds = info.dataset
        cut = slice_span(ds.shape[0], info.origin_ns, info.rate, start_ns, end_ns)
        if cut is None:
            return []
        i0, i1, cover = cut
        try:
            data = ds[i0:i1]
        except (OSError, RuntimeError) as exc:
            raise CorruptFrameError(
                f"cannot read channel {channel} (samples {i0}:{i1}) from HDF5 file "
                f"{self.path}: {exc}"
            ) from None
        return [Piece(info.origin_ns, info.rate, i0, data, info.unit, cover)]


def write_hdf5(
    path: Path, blocks: Sequence[Block], compression: str | None = "gzip", history=None
) -> None:
    """Write the channels of ``blocks`` through gwpy (one dataset per channel) plus exact starts
    and ``history`` (name -> comment) as file attributes ``history:<name>``."""
    import h5py

    with quiet_gwpy():  # gwpy restyles matplotlib on first import
        from gwpy.timeseries import TimeSeriesDict

    tsd = TimeSeriesDict()
    exact = {}
    for block in blocks:
        tsd.update(block.to_timeseriesdict())
        exact.update({c: block.t0_ns for c in block.channels})
    tmp = path.with_name(path.name + ".tmp")
    try:
        tsd.write(tmp, format="hdf5", overwrite=True, compression=compression)
        with h5py.File(tmp, "a") as f:
            f.attrs[T0_ATTR] = json.dumps(exact)
            for name, comment in (history or {}).items():
                f.attrs[f"history:{name}"] = str(comment)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def read_history(path: Path) -> dict[str, str]:
    """The ``history:<name>`` attributes of an HDF5 frame file (name -> comment)."""
    import h5py

    with h5py.File(path, "r") as f:
        return {
            k.split(":", 1)[1]: _text(v) for k, v in f.attrs.items() if k.startswith("history:")
        }
