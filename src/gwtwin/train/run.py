"""``train``: dataset file in, registered twin model out (Lightning + MLflow + TensorBoard).

Work directory layout::

    <workdir>/mlflow.db            embedded MLflow tracking + registry (unless tracking_uri is set)
    <workdir>/mlartifacts/         MLflow artifacts (logged models with twin.json)
    <workdir>/tensorboard/<run>/   TensorBoard event files (losses, lr, Q-spectrogram panels)
    <workdir>/checkpoints/<run>/   best.ckpt (lowest val_loss) and last.ckpt
    <workdir>/result.json          the run's headline numbers (:meth:`TrainResult.to_dict`)

The witness gate's choice (:mod:`gwtwin.train.gate`: per witness floor, alpha, validation MSE
with and without, gated or not and why) is ``TrainResult.witness_gate``, the MLflow artifact
``witness-gate.json`` and the params ``witness_gate.mode`` / ``witness_gate.gated``.

This module is the driver; the steps are :mod:`gwtwin.train.network` (the network from the
dataset, linear stage solved), :mod:`gwtwin.train.trainer` (loggers, callbacks, Trainer),
:mod:`gwtwin.train.validation` (the best weights scored through ``TwinModel.predict_windows``)
and :mod:`gwtwin.train.register` (MLflow logging and registration).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import lightning as L
import torch

from gwtwin.dataset import read_attrs
from gwtwin.errors import GwtwinError
from gwtwin.models import TwinModel, model_config
from gwtwin.models.twin import ModelSpecMismatchError
from gwtwin.signal._threads import torch_threads
from gwtwin.signal.conditioning import ConditioningSpec
from gwtwin.train import tracking
from gwtwin.train.config import TrainConfig, load_train_config
from gwtwin.train.data import WindowDataModule
from gwtwin.train.modules import QImageModule, TimeDomainModule
from gwtwin.train.network import build_network, model_name
from gwtwin.train.register import log_and_register, provenance
from gwtwin.train.trainer import build_trainer
from gwtwin.train.validation import evaluate_twin


@dataclass
class TrainResult:
    """What a training run produced (also logged to MLflow)."""

    run_id: str
    tracking_uri: str
    model_uri: str | None
    registered_model_name: str | None
    version: int | None
    best_checkpoint: str
    best_val_loss: float
    metrics: dict[str, float]
    epochs: int
    train_seconds: float
    windows_per_second: float
    seconds_per_epoch: float
    workdir: str
    tensorboard_dir: str
    n_parameters: int = 0
    witness_gate: dict | None = None
    twin: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the in-memory :class:`TwinModel`, JSON-able."""
        out = asdict(replace(self, twin=None))
        out.pop("twin")
        return out


@torch_threads()  # the caller's thread count comes back, whatever cfg.torch_threads sets
def train(
    dataset: str | Path,
    workdir: str | Path,
    config: TrainConfig | str | Path | dict | None = None,
    *,
    model: str | None = None,
    resume: str | Path | None = None,
    warm_start: TwinModel | None = None,
    callbacks: list | tuple = (),
    tags: dict[str, str] | None = None,
) -> TrainResult:
    """Train a twin model on a dataset file, keep the best checkpoint, log and register it.

    Parameters
    ----------
    dataset : path
        A ``gwtwin-dataset/1`` file (:func:`gwtwin.dataset.build_dataset`).
    workdir : path
        Where MLflow (embedded), TensorBoard and checkpoints go (created).
    config : TrainConfig, YAML path or mapping, optional
    model : str, optional
        Registered model name, overriding ``config.model``.
    resume : path, optional
        A checkpoint (e.g. ``last.ckpt``) to resume from: weights, optimiser, scheduler and
        epoch counter.
    warm_start : TwinModel, optional
        A trained model (e.g. the registry's champion) whose weights start the network: every
        parameter of the same name and shape is copied after the linear stage is solved on
        this dataset (the closed-form stage is refitted, the learnt rest is warm-started);
        its witnesses must be this dataset's.
    callbacks : sequence of Lightning callbacks, optional
        Added to the run's own (a sweep's pruning callback).
    tags : mapping, optional
        Extra MLflow run tags.

    Returns
    -------
    TrainResult
    """
    cfg = load_train_config(config, {"model": model} if model else None)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    attrs = read_attrs(dataset)
    kind = attrs["kind"]
    name = model_name(cfg.model, kind, dataset)
    spec = ConditioningSpec.from_json(attrs["conditioning"])
    features = list(attrs["feature_names"])
    if features != spec.feature_names:
        raise ModelSpecMismatchError(
            f"dataset {dataset}: feature_names {features} differ from its conditioning's "
            f"{spec.feature_names}"
        )
    if resume is not None and not Path(resume).is_file():
        raise GwtwinError(f"checkpoint to resume from, {resume}, does not exist")

    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = WindowDataModule(
        dataset,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        preload=cfg.preload,
        max_preload_bytes=cfg.max_preload_bytes,
        seed=cfg.seed,
    )
    dm.setup("fit")
    net, linear_stage, gate = build_network(
        name, attrs, spec, cfg, dm.train, valid_windows=dm.valid, fit_linear=resume is None
    )
    if warm_start is not None:
        from gwtwin.train.warm import warm_start_network

        warm_start_network(net, warm_start, spec)
    arch = model_config(net)
    hparams = {"model": arch, "dataset": str(Path(dataset).resolve())}
    module_cls = TimeDomainModule if kind == "timeseries" else QImageModule
    module = module_cls(net, cfg, hparams)

    uri = tracking.tracking_uri_for(workdir, cfg.tracking.tracking_uri)
    artifacts = None if cfg.tracking.tracking_uri else tracking.artifact_location_for(workdir)
    tracking.ensure_experiment(uri, cfg.tracking.experiment, artifacts)
    fit = build_trainer(
        cfg,
        name=name,
        kind=kind,
        dataset=dataset,
        sample_rate=float(attrs["sample_rate"]),
        valid_windows=dm.valid,
        workdir=workdir,
        tracking_uri=uri,
        artifact_location=artifacts,
        extra_callbacks=callbacks,
        tags=tags,
    )
    trainer, run_id, checkpoint, timing = fit.trainer, fit.run_id, fit.checkpoint, fit.timing
    tb_dir = workdir / "tensorboard"
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=str(resume) if resume else None)
    train_seconds = time.perf_counter() - t0
    best_path = checkpoint.best_model_path
    if not best_path:
        raise GwtwinError("training produced no checkpoint (no validation epoch completed)")
    state = torch.load(best_path, map_location="cpu", weights_only=False)["state_dict"]
    net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
    net = net.cpu().eval()
    n_parameters = int(sum(p.numel() for p in net.parameters()))
    twin = TwinModel(
        net,
        spec,
        kind=kind,
        window_duration=float(attrs["window_duration"]),
        target_duration=float(attrs["target_duration"]),
        metadata={
            "model": arch,
            "dataset": provenance(attrs),
            "run_id": run_id,
            "train_config": cfg.model_dump(mode="json"),
            "gwtwin_version": tracking.gwtwin_version(),
        },
    )
    result_metrics = {}
    registered = None
    info: dict[str, Any] = {"model_uri": None, "version": None}
    if trainer.is_global_zero:
        result_metrics = evaluate_twin(twin, dataset, "valid", thresholds=cfg.veto_thresholds)
        per_epoch, wps = timing.seconds_per_epoch, timing.windows_per_second
        explained = None if linear_stage is None else linear_stage["explained"]
        registered, info = log_and_register(
            twin,
            cfg,
            name=name,
            attrs=attrs,
            run_id=run_id,
            tracking_uri=uri,
            metrics=result_metrics,
            n_parameters=n_parameters,
            linear_explained=explained,
            windows_per_second=wps,
            seconds_per_epoch=per_epoch,
        )
        if explained is not None:
            result_metrics["linear_stage_explained"] = explained
        if gate is not None:
            _log_gate(run_id, uri, gate)
    else:  # pragma: no cover - multi-process runs
        per_epoch, wps = float("nan"), float("nan")
    result = TrainResult(
        run_id=run_id,
        tracking_uri=uri,
        model_uri=info["model_uri"],
        registered_model_name=registered,
        version=info["version"],
        best_checkpoint=str(best_path),
        best_val_loss=float("nan")
        if checkpoint.best_model_score is None
        else float(checkpoint.best_model_score),
        metrics=result_metrics,
        epochs=int(trainer.current_epoch),
        train_seconds=train_seconds,
        windows_per_second=wps,
        seconds_per_epoch=per_epoch,
        workdir=str(workdir.resolve()),
        tensorboard_dir=str(tb_dir.resolve() / run_id) if cfg.tensorboard.enabled else "",
        n_parameters=n_parameters,
        witness_gate=gate,
        twin=twin,
    )
    # the run's headline numbers beside the tracking store, for the report and for scripts
    (workdir / "result.json").write_text(json.dumps(result.to_dict(), indent=1, default=str))
    return result


def _log_gate(run_id: str, uri: str, gate: dict) -> None:
    """The witness gate's choice: params ``witness_gate.mode`` / ``.gated``, the whole record
    as ``witness-gate.json``."""
    tracking.log_params(
        run_id, uri, {"witness_gate": {"mode": gate["mode"], "gated": gate["gated"]}}
    )
    tracking.client(uri).log_dict(run_id, gate, "witness-gate.json")


def load_twin(model_uri: str, workdir: str | Path | None = None, tracking_uri: str | None = None):
    """:meth:`TwinModel.load` with the embedded tracking URI of ``workdir`` as default."""
    if tracking_uri is None and workdir is not None:
        tracking_uri = tracking.tracking_uri_for(workdir)
    return TwinModel.load(model_uri, tracking_uri=tracking_uri)


__all__ = ["TrainResult", "load_twin", "train"]
