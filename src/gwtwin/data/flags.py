"""Data-quality flags in the field's formats: LIGO_LW XML, HDF5 and DQSEGDB-shaped JSON (gwpy).

A flag is a :class:`gwpy.segments.DataQualityFlag`: ``known`` segments (where the flag was
evaluated) and ``active`` segments (where it is on), named ``IFO:NAME:VERSION``. Every gwtwin
output that marks time (selection rounds, veto flags, data gaps) goes through :func:`write_flags`,
so every file reads back with gwpy's own readers:
``DataQualityDict.read(path, format="ligolw")``, ``DataQualityDict.read(path)`` (HDF5) and
``DataQualityFlag.read(path)`` (JSON, one flag per file as DQSEGDB serves them).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from gwtwin.data._quiet import quiet_gwpy
from gwtwin.errors import GwtwinError

FORMATS = ("xml", "h5", "json")


def make_flag(name: str, active, known, *, description: str = "", version: int = 1):
    """A ``DataQualityFlag`` from ``[n, 2]`` GPS ``[start, end)`` arrays (coalesced).

    ``name`` is ``IFO:NAME`` or ``IFO:NAME:VERSION``; active time outside ``known`` is refused.
    """
    with quiet_gwpy():  # gwpy restyles matplotlib on first import
        from gwpy.segments import DataQualityFlag, Segment, SegmentList

    parts = name.split(":")
    if len(parts) == 2:
        name = f"{name}:{version}"
    elif len(parts) != 3 or not parts[2].isdigit():
        raise GwtwinError(f"flag name must be IFO:NAME or IFO:NAME:VERSION, found {name!r}")

    def segments(arr, what):
        arr = np.asarray(arr, dtype=np.float64).reshape(-1, 2)
        if np.any(arr[:, 1] < arr[:, 0]) or not np.all(np.isfinite(arr)):
            raise GwtwinError(
                f"{what} segments of {name} must be finite [start, end] with end >= start"
            )
        return SegmentList(Segment(float(a), float(b)) for a, b in arr).coalesce()

    known_l, active_l = segments(known, "known"), segments(active, "active")
    outside = active_l - known_l
    if abs(outside) > 1e-9:
        raise GwtwinError(
            f"flag {name} is active outside its known segments: {list(outside)[:3]} "
            f"(known {list(known_l)[:3]})"
        )
    return DataQualityFlag(name, active=active_l, known=known_l, description=description)


def _json_name(flag) -> str:
    return flag.name.replace(":", "-")


def write_flags(
    flags: Iterable,
    base: str | os.PathLike,
    formats: Sequence[str] = FORMATS,
    *,
    overwrite: bool = False,
) -> dict[str, list[Path]]:
    """Write flags as ``<base>.xml`` and ``<base>.h5`` (all flags) and ``<base>-<FLAG>.json``.

    Returns ``{format: [paths]}``. Existing files are refused unless ``overwrite``.
    """
    with quiet_gwpy():
        from gwpy.segments import DataQualityDict

    flags = list(flags.values()) if hasattr(flags, "values") else list(flags)
    if not flags:
        raise GwtwinError(f"no flags to write to {base}")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise GwtwinError(f"unknown flag format(s) {unknown}: choose from {list(FORMATS)}")
    base = Path(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    planned: dict[str, list[Path]] = {}
    for fmt in formats:
        if fmt == "json":
            planned[fmt] = [base.parent / f"{base.name}-{_json_name(f)}.json" for f in flags]
        else:
            planned[fmt] = [base.parent / f"{base.name}.{fmt}"]
    if not overwrite:
        existing = [str(p) for paths in planned.values() for p in paths if p.exists()]
        if existing:
            raise GwtwinError(f"flag file(s) exist: {existing}; pass overwrite=True to replace")
    table = DataQualityDict({f.name: f for f in flags})
    for fmt, paths in planned.items():
        if fmt == "xml":
            # igwn_ligolw traps signals while writing, which only the main thread may do
            trap = (
                {}
                if threading.current_thread() is threading.main_thread()
                else {"trap_signals": None}
            )
            table.write(str(paths[0]), format="ligolw", overwrite=True, **trap)
        elif fmt == "h5":
            if paths[0].exists():
                paths[0].unlink()
            table.write(str(paths[0]), format="hdf5")
        else:
            for flag, path in zip(flags, paths, strict=True):
                with open(path, "w") as handle:  # gwpy's JSON writer takes an open file
                    flag.write(handle, format="json", indent=1)
    return planned


def read_flags(path: str | os.PathLike):
    """Read flags written by :func:`write_flags` (any of the three formats) as a DataQualityDict."""
    with quiet_gwpy():
        from gwpy.segments import DataQualityDict, DataQualityFlag

    path = Path(path)
    if not path.is_file():
        raise GwtwinError(f"flag file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".xml":
            return DataQualityDict.read(str(path), format="ligolw")
        if suffix in (".h5", ".hdf5", ".hdf"):
            return DataQualityDict.read(str(path), format="hdf5")
        if suffix == ".json":
            flag = DataQualityFlag.read(str(path), format="json")
            return DataQualityDict({flag.name: flag})
    except Exception as err:  # the readers raise many types on damaged files
        raise GwtwinError(f"cannot read flags from {path}: {type(err).__name__}: {err}") from None
    raise GwtwinError(f"unknown flag file type {suffix!r} for {path}: expected .xml, .h5 or .json")
