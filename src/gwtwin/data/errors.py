"""Errors raised by frame discovery, reading and writing.

Each names the file, channel and GPS span involved, what was expected and what was found.  All
derive from :class:`gwtwin.errors.GwtwinError` (a :class:`ValueError`).
"""

from __future__ import annotations

from gwtwin.data.block import SampleRateMismatchError
from gwtwin.errors import GwtwinError

__all__ = [
    "CorruptFrameError",
    "FrameNameError",
    "FrameNotFoundError",
    "GapError",
    "MissingChannelError",
    "OverlappingFilesError",
    "SampleRateMismatchError",
    "UnknownFormatError",
]


class GapError(GwtwinError):
    """Data were asked for as one contiguous piece but the files leave gaps."""


class MissingChannelError(GwtwinError):
    """A requested channel is not in a file (the message lists what the file holds)."""


class UnknownFormatError(GwtwinError):
    """A file's format cannot be told from its name, or is not one gwtwin reads."""


class OverlappingFilesError(GwtwinError):
    """Two frame files cover the same GPS time."""


class CorruptFrameError(GwtwinError):
    """A frame file cannot be read: truncated, damaged or not what its name says."""


class FrameNameError(GwtwinError):
    """A file name does not follow the ``OBS-TAG-GPSSTART-DURATION.ext`` convention."""


class FrameNotFoundError(GwtwinError):
    """A frame source (file or directory) does not exist or holds no frame files."""
