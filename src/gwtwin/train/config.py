"""``TrainConfig``: the training configuration (pydantic, unknown keys refused), from YAML.

Every key has a default; ``configs/train-default.yaml`` spells them all out.  A bad key or value
raises :class:`~gwtwin.errors.ConfigError` naming the key and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OptimizerConfig(_Model):
    """AdamW."""

    lr: float = Field(2e-3, gt=0, description="peak learning rate")
    weight_decay: float = Field(1e-4, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)


class SchedulerConfig(_Model):
    """Learning-rate schedule: cosine annealing over ``max_epochs`` (after ``warmup_epochs`` of
    linear warm-up), ReduceLROnPlateau on the validation loss, or constant."""

    name: Literal["cosine", "plateau", "none"] = "cosine"
    warmup_epochs: int = Field(1, ge=0)
    min_lr_ratio: float = Field(0.01, ge=0, le=1, description="cosine floor, x lr")
    patience: int = Field(3, ge=0, description="plateau: epochs without improvement")
    factor: float = Field(0.5, gt=0, lt=1, description="plateau: lr multiplier")


class LossConfig(_Model):
    """Time-domain: MSE in whitened units on the central part (+ ``asd_weight`` x ASD ratio in
    ``asd_band``); Q-images: ``l1_weight`` x L1 + ``ssim_weight`` x (1 - SSIM)."""

    asd_weight: float = Field(0.0, ge=0)
    asd_band: tuple[float, float] = (10.0, 500.0)
    asd_fftlength: float = Field(1.0, gt=0, description="ASD-ratio Welch segment, s")
    l1_weight: float = Field(0.8, ge=0)
    ssim_weight: float = Field(0.2, ge=0)


class EarlyStoppingConfig(_Model):
    enabled: bool = True
    patience: int = Field(10, ge=1, description="validation epochs without improvement")
    min_delta: float = Field(0.0, ge=0)


class TrainerConfig(_Model):
    """Passed through to ``lightning.Trainer``: multi-GPU / multi-node need no code change."""

    accelerator: str = "auto"
    devices: int | str | list[int] = "auto"
    strategy: str = "auto"
    num_nodes: int = Field(1, ge=1)
    precision: str | int = "32-true"
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    log_every_n_steps: int = Field(10, ge=1)
    deterministic: bool | str = False


class TrackingConfig(_Model):
    """MLflow: embedded ``sqlite:///<workdir>/mlflow.db`` + ``<workdir>/mlartifacts`` unless
    ``tracking_uri`` names a server."""

    tracking_uri: str | None = None
    experiment: str = "gwtwin"
    run_name: str | None = None
    registered_model_name: str | None = Field(
        None, description="default: gwtwin-<model name with - for _>"
    )
    alias: str | None = "candidate"
    log_model: bool = True


class TensorBoardConfig(_Model):
    enabled: bool = True
    panels: int = Field(3, ge=0, description="validation glitches drawn per panel figure")
    panel_every_n_epochs: int = Field(1, ge=1)


class TrainConfig(_Model):
    """Everything ``gwtwin train`` needs besides the dataset and the work directory."""

    seed: int = 0
    model: str | None = Field(
        None,
        description="registered model name; default from the dataset kind "
        "(witness_td for timeseries, qimage_unet for qimage)",
    )
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="architecture keywords (see gwtwin.models)"
    )
    output_filter_init: Literal["whitening", "identity"] = Field(
        "identity", description="witness_td output FIRs: delta, or the dataset's whitening FIR"
    )
    linear_only_transforms: list[Literal["fringe", "standardise"]] = Field(
        default_factory=lambda: ["fringe"],
        description="witness_td: features of witnesses conditioned with these transforms feed "
        "only the linear stage (scattered light is linear in the fringe features)",
    )
    linear_products: Literal["witness_pairs", "none"] = Field(
        "witness_pairs",
        description="witness_td: products of feature pairs as extra linear-stage inputs: "
        "witness_pairs = one feature of each of two different standardised witnesses (bilinear "
        "couplings such as mains x angular control); none",
    )
    linear_only_channels: list[str] = Field(
        default_factory=list,
        description="witness_td: witness channels (globs) whose features feed only the linear "
        "stage",
    )
    witness_gate: Literal["auto", "all", "off"] = Field(
        "auto",
        description="witness_td excess-power gate on standardised witnesses (their noise floor "
        "does not couple into strain): auto = gate the witnesses whose gating lowers the linear "
        "stage's validation MSE; all = every standardised witness; off = none",
    )
    gate_duration: float = Field(
        0.0625, gt=0, description="witness_td gate: Hann window of the local power, s"
    )
    gate_sigma: float = Field(
        5.0,
        ge=0,
        description="witness_td gate: opens at 1 + gate_sigma x 1.4826 MAD of the local power "
        "over its median (the floor)",
    )
    batch_size: int = Field(16, ge=1)
    max_epochs: int = Field(30, ge=1)
    max_time: str | None = Field(None, description="wall-clock limit, 'DD:HH:MM:SS'")
    gradient_clip_val: float | None = Field(5.0, gt=0)
    num_workers: int = Field(0, ge=0)
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="torch intra-op threads (default: torch's own choice); on a "
        "shared machine 1 avoids OpenMP oversubscription, which can slow small convolutions "
        "down tenfold",
    )
    preload: bool = Field(
        True, description="read the dataset into memory when it fits (max_preload_bytes)"
    )
    max_preload_bytes: int = Field(2 * 2**30, ge=0)
    progress: bool = True
    optimizer: OptimizerConfig = OptimizerConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    loss: LossConfig = LossConfig()
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    trainer: TrainerConfig = TrainerConfig()
    tracking: TrackingConfig = TrackingConfig()
    tensorboard: TensorBoardConfig = TensorBoardConfig()
    veto_thresholds: list[float] = Field(
        default_factory=lambda: [1, 2, 5, 10, 16, 20, 30, 50],
        description="Q-image veto accuracy thresholds (normalised energy)",
    )

    def dump(self) -> str:
        """The resolved configuration as YAML."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_train_config(
    source: str | Path | Mapping[str, Any] | TrainConfig | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML file (the whole file, or its ``train:`` section of a
    run config), a mapping, or defaults, with ``overrides`` merged on top (nested mappings merge,
    ``None`` values are ignored); errors name the key and the value."""
    from gwtwin.configio import load_section

    if isinstance(source, Mapping):
        source = dict(source)
    return load_section(TrainConfig, "train", source, dict(overrides or {}), "training")
