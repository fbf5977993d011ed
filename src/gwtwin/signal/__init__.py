"""Signal processing on tensors ``[..., time]`` (torch first, CPU and GPU, numpy accepted):
PSD (Welch), whitening and colouring, zero-phase Butterworth filters, resampling, the exact
Q-transform and Q-tile triggers, and thin :class:`~gwtwin.data.Block` wrappers."""

from gwtwin.signal.filters import (
    ResampleSettle,
    bandpass,
    design_sos,
    filter_block,
    highpass,
    lowpass,
    resample,
    resample_block,
    resample_settle,
    settle_time,
    sosfiltfilt,
)
from gwtwin.signal.qtransform import (
    QImage,
    QScan,
    QTiling,
    energy_from_snr,
    qtiling,
    qtransform,
    qtransform_image,
    snr_from_energy,
)
from gwtwin.signal.spectral import PSD, psd_block, welch
from gwtwin.signal.triggers import (
    TRIGGER_COLUMNS,
    Triggers,
    cluster_tiles,
    find_triggers,
    read_triggers,
    write_triggers,
)
from gwtwin.signal.whitening import (
    colour,
    colour_block,
    design_fir,
    whiten,
    whiten_block,
    whiten_edge_size,
)

__all__ = [
    "PSD",
    "QImage",
    "QScan",
    "QTiling",
    "TRIGGER_COLUMNS",
    "Triggers",
    "cluster_tiles",
    "energy_from_snr",
    "find_triggers",
    "qtiling",
    "qtransform",
    "qtransform_image",
    "read_triggers",
    "snr_from_energy",
    "write_triggers",
    "ResampleSettle",
    "bandpass",
    "colour",
    "colour_block",
    "design_fir",
    "design_sos",
    "filter_block",
    "highpass",
    "lowpass",
    "psd_block",
    "resample",
    "resample_block",
    "resample_settle",
    "settle_time",
    "sosfiltfilt",
    "welch",
    "whiten",
    "whiten_block",
    "whiten_edge_size",
]
