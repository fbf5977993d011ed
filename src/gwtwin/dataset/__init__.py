"""Training and validation sets: witness windows -> strain target, written to HDF5.

:func:`build_dataset` cuts windows from frames (split by time, glitch and quiet windows, gaps
and NaN spans skipped and counted), conditions them with
:mod:`gwtwin.signal.conditioning` and writes one ``gwtwin-dataset/1`` file
(:mod:`gwtwin.dataset.hdf5` documents the layout); :class:`WindowDataset` reads it lazily.
"""

from gwtwin.dataset.build import DatasetSummary, build_dataset
from gwtwin.dataset.config import (
    SELECTED_FORMAT,
    ConditioningConfig,
    DatasetConfig,
    QImageConfig,
    load_dataset_config,
    read_selected,
)
from gwtwin.dataset.hdf5 import DATASET_FORMAT
from gwtwin.dataset.torch_dataset import WindowDataset, read_attrs

__all__ = [
    "DATASET_FORMAT",
    "SELECTED_FORMAT",
    "ConditioningConfig",
    "DatasetConfig",
    "DatasetSummary",
    "QImageConfig",
    "WindowDataset",
    "build_dataset",
    "load_dataset_config",
    "read_attrs",
    "read_selected",
]
