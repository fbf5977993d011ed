"""Data model and frame I/O: :class:`Block`, GWF/HDF5 readers and writers, gaps."""

from gwtwin.data.block import NS, Block, SampleRateMismatchError, ns_to_gps, resample, to_ns
from gwtwin.data.errors import (
    CorruptFrameError,
    FrameNameError,
    FrameNotFoundError,
    GapError,
    MissingChannelError,
    OverlappingFilesError,
    UnknownFormatError,
)
from gwtwin.data.files import FrameFile, find_frames, frame_name, parse_frame_name
from gwtwin.data.frames import FrameData, list_channels, read, write_frame, write_frames

__all__ = [
    "NS",
    "Block",
    "CorruptFrameError",
    "FrameData",
    "FrameFile",
    "FrameNameError",
    "FrameNotFoundError",
    "GapError",
    "MissingChannelError",
    "OverlappingFilesError",
    "SampleRateMismatchError",
    "UnknownFormatError",
    "find_frames",
    "frame_name",
    "list_channels",
    "ns_to_gps",
    "parse_frame_name",
    "read",
    "resample",
    "to_ns",
    "write_frame",
    "write_frames",
]
