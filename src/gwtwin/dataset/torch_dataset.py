"""``WindowDataset``: a lazily read torch Dataset over a ``gwtwin-dataset/1`` file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from gwtwin.dataset.hdf5 import DATASET_FORMAT, SPLITS
from gwtwin.errors import GwtwinError

_JSON_ATTRS = (
    "feature_names",
    "n_skipped",
    "config",
    "witness_channels",
    "counts",
    "splits",
    "truth_channels",
    "selection",
)


def read_attrs(path: str | Path) -> dict:
    """The file's provenance attributes, JSON ones decoded (``conditioning`` stays JSON text;
    :meth:`WindowDataset.conditioning` gives the spec)."""
    path = Path(path)
    if not path.is_file():
        raise GwtwinError(f"dataset file {path} does not exist")
    try:
        with h5py.File(path, "r") as h5:
            attrs = {k: _plain(v) for k, v in h5.attrs.items()}
    except OSError as exc:
        raise GwtwinError(f"{path} is not an HDF5 file: {exc}") from None
    if attrs.get("format") != DATASET_FORMAT:
        raise GwtwinError(
            f"{path} is not a gwtwin dataset (format attribute {attrs.get('format')!r}, expected "
            f"{DATASET_FORMAT!r})"
        )
    for key in _JSON_ATTRS:
        if key in attrs:
            attrs[key] = json.loads(attrs[key])
    return attrs


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


class WindowDataset(Dataset):
    """Windows of one split of a dataset file, read lazily (one window per read).

    Parameters
    ----------
    path : path
        A file written by :func:`gwtwin.dataset.build_dataset`.
    split : {"train", "valid"}
    return_truth : bool
        Also return the ground truth (simulations only): ``(witness, target, truth)``.
        Truth is for evaluation only and must never be fed to a model.

    Items are ``(witness, target)`` float32 tensors: ``[C, T]`` and ``[T]`` for time series,
    ``[C, F, Tq]`` and ``[F, Tq]`` for Q-images.  The HDF5 file is opened on first access in
    each process (so DataLoader workers each get their own handle) and never in ``__init__``.

    Attributes
    ----------
    attrs : dict
        Provenance (see :func:`read_attrs`).
    gps_ns, glitch, max_snr : numpy.ndarray
        Per-window GPS start (int ns), glitch flag and loudest strain trigger SNR.
    """

    def __init__(self, path: str | Path, split: str = "train", *, return_truth: bool = False):
        if split not in SPLITS:
            raise GwtwinError(f"split must be one of {SPLITS}, found {split!r}")
        self.path = Path(path)
        self.split = split
        self.return_truth = return_truth
        self.attrs = read_attrs(self.path)
        with h5py.File(self.path, "r") as h5:
            group = h5[split]
            self._len = int(group["gps_ns"].shape[0])
            self.has_truth = "truth" in group
            self.shapes = {k: tuple(group[k].shape[1:]) for k in group if k != "gps_ns"}
            self.gps_ns = group["gps_ns"][()]
            self.glitch = group["glitch"][()]
            self.max_snr = group["max_snr"][()]
        if return_truth and not self.has_truth:
            raise GwtwinError(
                f"{self.path} has no truth (only datasets built from a simulation have it)"
            )
        self._h5 = None
        self._pid = None

    # -- metadata ---------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.attrs["kind"]

    @property
    def feature_names(self) -> list[str]:
        return list(self.attrs["feature_names"])

    @property
    def sample_rate(self) -> float:
        return float(self.attrs["sample_rate"])

    @property
    def window_duration(self) -> float:
        return float(self.attrs["window_duration"])

    @property
    def target_duration(self) -> float:
        return float(self.attrs["target_duration"])

    @property
    def conditioning(self):
        """The :class:`~gwtwin.signal.conditioning.ConditioningSpec` used."""
        from gwtwin.signal.conditioning import ConditioningSpec

        return ConditioningSpec.from_json(self.attrs["conditioning"])

    # -- access -----------------------------------------------------------------------------
    def _group(self):
        pid = os.getpid()
        if self._h5 is None or self._pid != pid:
            self._h5 = h5py.File(self.path, "r")
            self._pid = pid
        return self._h5[self.split]

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int):
        if not -self._len <= index < self._len:
            raise IndexError(f"window {index} out of range for {self._len} windows")
        index = index % self._len
        group = self._group()
        witness = torch.from_numpy(group["witness"][index])
        target = torch.from_numpy(group["target"][index])
        if self.return_truth:
            return witness, target, torch.from_numpy(group["truth"][index])
        return witness, target

    def read(self, name: str, index) -> torch.Tensor:
        """Any stored per-window array (``truth``, ``blip``...) for an index or slice."""
        group = self._group()
        if name not in group:
            raise GwtwinError(f"{self.path} [{self.split}] has no {name!r}; it has {list(group)}")
        return torch.from_numpy(np.asarray(group[name][index]))

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
        self._h5 = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_h5"] = None
        state["_pid"] = None
        return state

    def __repr__(self) -> str:
        return (
            f"WindowDataset({self.path.name} [{self.split}]: {self._len} {self.kind} windows, "
            f"{int(self.glitch.sum())} glitch, shapes {self.shapes})"
        )
