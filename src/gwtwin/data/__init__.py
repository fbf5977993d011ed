"""Data model and frame I/O: :class:`Block`, GWF/HDF5 readers and writers, gaps."""

from gwtwin.data.block import NS, Block, SampleRateMismatchError, ns_to_gps, resample, to_ns

__all__ = ["NS", "Block", "SampleRateMismatchError", "ns_to_gps", "resample", "to_ns"]
