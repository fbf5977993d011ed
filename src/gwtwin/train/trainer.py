"""The ``lightning.Trainer`` of a training run: loggers, callbacks and the ``trainer:`` keys.

Loggers: MLflow (the run whose id names the TensorBoard and checkpoint directories) and, when
enabled, TensorBoard under ``<workdir>/tensorboard/<run id>``.  Callbacks: ``best.ckpt``
(lowest ``val_loss``) and ``last.ckpt`` under ``<workdir>/checkpoints/<run id>``, throughput
timing, learning rate, optional early stopping, progress bar and Q-spectrogram panels.
Dataloaders never name a device: the ``trainer:`` keys (strategy, devices, accelerator,
num_nodes, precision) decide where it runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L

from gwtwin.train.config import TrainConfig
from gwtwin.train.panels import PanelCallback


class Timing(L.Callback):
    """Training throughput: windows per second over the training batches alone (forward,
    backward, optimiser step) and wall seconds per epoch (validation included)."""

    def __init__(self) -> None:
        self.windows = 0
        self.batch_seconds = 0.0
        self.epoch_seconds: list[float] = []
        self._t_batch = 0.0
        self._t_epoch = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t_epoch = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._t_batch = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batch_seconds += time.perf_counter() - self._t_batch
        self.windows += int(batch["witness"].shape[0])

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._t_epoch)

    @property
    def windows_per_second(self) -> float:
        return self.windows / self.batch_seconds if self.batch_seconds else float("nan")

    @property
    def seconds_per_epoch(self) -> float:
        e = self.epoch_seconds
        return sum(e) / len(e) if e else float("nan")


def checkpoint_callbacks(dirpath: str | Path):
    """``(best, last)`` checkpoint callbacks: ``best.ckpt`` holds the epoch with the LOWEST
    ``val_loss`` (``mode="min"``: a loss; DeepClean's ``mode="max"`` kept the worst), and
    ``last.ckpt`` the latest epoch, to resume from.  (Lightning's own ``save_last`` only copies
    the monitored checkpoint when that one improves, which is not the last epoch.)"""
    from lightning.pytorch.callbacks import ModelCheckpoint

    best = ModelCheckpoint(
        dirpath=dirpath,
        filename="best",
        monitor="val_loss",
        mode="min",
        save_top_k=1,
        enable_version_counter=False,
    )
    last = ModelCheckpoint(
        dirpath=dirpath, filename="last", save_top_k=1, enable_version_counter=False
    )
    return best, last


@dataclass
class Fit:
    """A trainer ready to fit, and what the run needs from it afterwards."""

    trainer: Any
    run_id: str
    checkpoint: Any  # the best.ckpt ModelCheckpoint
    timing: Timing


def build_trainer(
    cfg: TrainConfig,
    *,
    name: str,
    kind: str,
    dataset: str | Path,
    sample_rate: float,
    valid_windows,
    workdir: Path,
    tracking_uri: str,
    artifact_location: str | None,
    extra_callbacks: list | tuple = (),
    tags: dict[str, str] | None = None,
) -> Fit:
    """The run's loggers, callbacks and ``lightning.Trainer`` (MLflow run started here).

    ``sample_rate`` (Hz) and ``valid_windows`` feed the TensorBoard panels; ``tracking_uri``
    and ``artifact_location`` are the MLflow store's (the experiment must exist);
    ``extra_callbacks`` join the run's own (e.g. a sweep's pruning callback) and ``tags`` the
    MLflow run's tags.
    """
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, RichProgressBar
    from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger

    mlf = MLFlowLogger(
        experiment_name=cfg.tracking.experiment,
        run_name=cfg.tracking.run_name or f"{name}-{Path(dataset).stem}",
        tracking_uri=tracking_uri,
        artifact_location=artifact_location,
        tags={
            "gwtwin.model": name,
            "gwtwin.dataset": str(Path(dataset).resolve()),
            **(tags or {}),
        },
    )
    run_id = mlf.run_id
    loggers: list = [mlf]
    if cfg.tensorboard.enabled:
        loggers.append(TensorBoardLogger(save_dir=str(workdir), name="tensorboard", version=run_id))
    ckpt_dir = workdir / "checkpoints" / run_id
    checkpoint, last_checkpoint = checkpoint_callbacks(ckpt_dir)
    timing = Timing()
    callbacks: list = [
        checkpoint,
        last_checkpoint,
        timing,
        LearningRateMonitor(logging_interval="epoch"),
    ]
    if cfg.early_stopping.enabled:
        callbacks.append(
            EarlyStopping(
                monitor="val_loss",
                mode="min",
                patience=cfg.early_stopping.patience,
                min_delta=cfg.early_stopping.min_delta,
            )
        )
    if cfg.progress:
        callbacks.append(RichProgressBar())
    callbacks.extend(extra_callbacks)
    if cfg.tensorboard.enabled and cfg.tensorboard.panels:
        frequencies, times = _qimage_axes(dataset) if kind == "qimage" else (None, None)
        callbacks.append(
            PanelCallback(
                valid_windows,
                kind,
                sample_rate,
                n=cfg.tensorboard.panels,
                every_n_epochs=cfg.tensorboard.panel_every_n_epochs,
                frequencies=frequencies,
                times=times,
                seed=cfg.seed,
            )
        )
    tc = cfg.trainer
    trainer = L.Trainer(
        max_epochs=cfg.max_epochs,
        max_time=cfg.max_time,
        accelerator=tc.accelerator,
        devices=tc.devices,
        strategy=tc.strategy,
        num_nodes=tc.num_nodes,
        precision=tc.precision,
        gradient_clip_val=cfg.gradient_clip_val,
        logger=loggers,
        callbacks=callbacks,
        enable_progress_bar=cfg.progress,
        enable_model_summary=cfg.progress,
        log_every_n_steps=tc.log_every_n_steps,
        limit_train_batches=tc.limit_train_batches,
        limit_val_batches=tc.limit_val_batches,
        deterministic=tc.deterministic,
        default_root_dir=str(workdir),
    )
    return Fit(trainer, run_id, checkpoint, timing)


def _qimage_axes(dataset: str | Path):
    """``(frequencies, times)`` of a Q-image dataset's tiles, or ``(None, None)``."""
    import h5py

    with h5py.File(dataset, "r") as h5:
        if "qimage" in h5:
            return h5["qimage/frequencies"][()], h5["qimage/times"][()]
    return None, None
