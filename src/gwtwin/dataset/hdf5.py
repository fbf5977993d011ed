"""The dataset file layout (``gwtwin-dataset/1``) and its writer.

::

    attrs: format="gwtwin-dataset/1", kind="timeseries"|"qimage", strain_channel,
           conditioning (JSON of ConditioningSpec), source, config (JSON), created (ISO),
           sample_rate, window_duration, target_duration, feature_names (JSON list),
           n_skipped (JSON dict reason -> count), counts (JSON), splits (JSON, GPS ns), ...
    /train/witness  float32 [N, C, T]     (qimage: [N, C, F, Tq])
    /train/target   float32 [N, T]        (qimage: [N, F, Tq])
    /train/truth    float32 [N, T]        (simulations only; qimage: [N, F, Tq])
    /train/blip     float32 [N, T]        (simulations only, time series)
    /train/gps_ns   int64   [N]           exact GPS start of each window, ns
    /train/glitch   bool    [N]           a strain trigger >= snr_threshold in the window
    /train/max_snr  float32 [N]           loudest strain trigger SNR in the window (0 if none)
    /valid/...      the same
    /psd/frequencies, /psd/strain         strain PSD used for whitening (Hz, strain**2/Hz)
    /qimage/frequencies, /qimage/times    (qimage) pixel frequencies (Hz), times from the window
                                          start (s)

Datasets are chunked one window per chunk along N (lazy reads of any window touch one chunk)
and grow as windows are appended, so a dataset is never held in memory while it is written.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

DATASET_FORMAT = "gwtwin-dataset/1"
SPLITS = ("train", "valid")


class DatasetWriter:
    """Appends windows to a new ``gwtwin-dataset/1`` file (use as a context manager)."""

    def __init__(self, path: str | Path, attrs: dict, shapes: dict[str, tuple[int, ...]]):
        self.path = Path(path)
        tmp = self.path.with_name(self.path.name + ".partial")
        self._tmp = tmp
        self.h5 = h5py.File(tmp, "w")
        for key, value in attrs.items():
            self.h5.attrs[key] = value
        for split in SPLITS:
            group = self.h5.create_group(split)
            for name, shape in shapes.items():
                group.create_dataset(
                    name,
                    shape=(0, *shape),
                    maxshape=(None, *shape),
                    dtype="float32",
                    chunks=(1, *shape),
                )
            group.create_dataset("gps_ns", shape=(0,), maxshape=(None,), dtype="int64")
            group.create_dataset("glitch", shape=(0,), maxshape=(None,), dtype="bool")
            group.create_dataset("max_snr", shape=(0,), maxshape=(None,), dtype="float32")

    def write_psd(self, spec) -> None:
        group = self.h5.create_group("psd")
        group["frequencies"] = np.asarray(spec.psd_frequencies, dtype=np.float64)
        group["strain"] = np.asarray(spec.psd_values, dtype=np.float64)
        group["frequencies"].attrs["unit"] = "Hz"
        group["strain"].attrs["unit"] = f"{spec.strain_unit}**2/Hz"

    def write_qimage_axes(self, frequencies: np.ndarray, times: np.ndarray) -> None:
        group = self.h5.create_group("qimage")
        group["frequencies"] = np.asarray(frequencies, dtype=np.float64)
        group["times"] = np.asarray(times, dtype=np.float64)

    def set_attr(self, key: str, value) -> None:
        self.h5.attrs[key] = value

    def append(self, split: str, arrays: dict[str, np.ndarray], **columns: np.ndarray) -> None:
        """Append windows: ``arrays`` (``witness``, ``target``, ...) and the per-window
        ``gps_ns``, ``glitch``, ``max_snr``."""
        group = self.h5[split]
        n = len(columns["gps_ns"])
        for name, values in {**arrays, **columns}.items():
            ds = group[name]
            old = ds.shape[0]
            ds.resize(old + n, axis=0)
            ds[old:] = values

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.h5.close()
        if exc_type is None:
            self._tmp.replace(self.path)
        else:
            self._tmp.unlink(missing_ok=True)
