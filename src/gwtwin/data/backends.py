"""Choosing a frame reader by format: :func:`open_frame`, and the missing-channel error.

The readers (:mod:`gwtwin.data.gwf`, :mod:`gwtwin.data.hdf5`) share the sample-time arithmetic
of :mod:`gwtwin.data.pieces` and import nothing from here; this module imports them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from gwtwin.data.errors import MissingChannelError, UnknownFormatError
from gwtwin.data.gwf import GwfReader
from gwtwin.data.hdf5 import Hdf5Reader


@contextlib.contextmanager
def open_frame(path: Path, format: str) -> Iterator:
    """Open a frame file for reading (``format`` is ``"gwf"`` or ``"hdf5"``)."""
    if format == "gwf":
        reader = GwfReader(path)
    elif format == "hdf5":
        reader = Hdf5Reader(path)
    else:  # pragma: no cover - format_of() only gives the two
        raise UnknownFormatError(f"unknown frame format {format!r} for {path}")
    try:
        yield reader
    finally:
        reader.close()


def missing_channels_error(path: Path, missing: Sequence[str], held: Sequence[str]):
    """A :class:`MissingChannelError` naming the file, the missing channels and what it holds."""
    shown = ", ".join(held[:40]) + (f", ... ({len(held) - 40} more)" if len(held) > 40 else "")
    which = "channel" if len(missing) == 1 else "channels"
    return MissingChannelError(
        f"{which} {', '.join(missing)} not found in {path}; it holds {len(held)} channels: "
        f"{shown or '(none)'}"
    )
