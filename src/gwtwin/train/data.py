"""Dataloaders over ``gwtwin-dataset/1`` files for Lightning (no device is ever hard-coded:
Lightning moves batches to whatever accelerator the Trainer runs on)."""

from __future__ import annotations

from pathlib import Path

import h5py
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from gwtwin.dataset import WindowDataset
from gwtwin.errors import GwtwinError


class SplitWindows(Dataset):
    """One split as dict items ``{witness, target, glitch, index[, truth]}``.

    Reads lazily through :class:`~gwtwin.dataset.WindowDataset`, or from memory when
    ``preload`` and the split is at most ``max_bytes`` (one HDF5 read instead of one per window).
    """

    def __init__(
        self, path, split: str, *, preload: bool = True, max_bytes: int = 2 * 2**30
    ) -> None:
        self.windows = WindowDataset(path, split)
        self.split = split
        self.has_truth = self.windows.has_truth
        self.glitch = torch.from_numpy(np.asarray(self.windows.glitch, bool))
        self.max_snr = torch.from_numpy(np.asarray(self.windows.max_snr, np.float32))
        self._arrays: dict[str, torch.Tensor] | None = None
        names = ["witness", "target"] + (["truth"] if self.has_truth else [])
        nbytes = sum(4 * len(self) * int(np.prod(self.windows.shapes[k])) for k in names)
        if preload and nbytes <= max_bytes:
            with h5py.File(self.windows.path, "r") as h5:
                self._arrays = {k: torch.from_numpy(h5[split][k][()]) for k in names}

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self._arrays is not None:
            item = {k: v[index] for k, v in self._arrays.items()}
        else:
            got = self.windows[index]
            item = {"witness": got[0], "target": got[1]}
            if self.has_truth:
                item["truth"] = self.windows.read("truth", index)
        item["glitch"] = self.glitch[index]
        item["index"] = torch.tensor(index)
        return item


class WindowDataModule(L.LightningDataModule):
    """Training and validation windows of one dataset file."""

    def __init__(
        self,
        path: str | Path,
        *,
        batch_size: int = 16,
        num_workers: int = 0,
        preload: bool = True,
        max_preload_bytes: int = 2 * 2**30,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.preload = preload
        self.max_preload_bytes = max_preload_bytes
        self.seed = seed
        self.train: SplitWindows | None = None
        self.valid: SplitWindows | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train is None:
            kw = {"preload": self.preload, "max_bytes": self.max_preload_bytes}
            self.train = SplitWindows(self.path, "train", **kw)
            self.valid = SplitWindows(self.path, "valid", **kw)
            for split in (self.train, self.valid):
                if len(split) == 0:
                    raise GwtwinError(
                        f"dataset {self.path} has no {split.split!r} windows; training needs "
                        "both a training and a validation split"
                    )

    def _loader(self, data: Dataset, shuffle: bool) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(
            data,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=generator,
            drop_last=shuffle and len(data) > self.batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.valid, False)
