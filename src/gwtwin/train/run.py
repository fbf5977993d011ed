"""``train``: dataset file in, registered twin model out (Lightning + MLflow + TensorBoard).

Work directory layout::

    <workdir>/mlflow.db            embedded MLflow tracking + registry (unless tracking_uri is set)
    <workdir>/mlartifacts/         MLflow artifacts (logged models with twin.json)
    <workdir>/tensorboard/<run>/   TensorBoard event files (losses, lr, Q-spectrogram panels)
    <workdir>/checkpoints/<run>/   best.ckpt (lowest val_loss) and last.ckpt
"""

from __future__ import annotations

import fnmatch
import json
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import lightning as L
import torch

from gwtwin.dataset import WindowDataset, read_attrs
from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.models import TwinModel, build_model, model_config, model_parameters
from gwtwin.models.twin import ModelSpecMismatchError
from gwtwin.signal.conditioning import ConditioningSpec, whitening_kernel
from gwtwin.train import tracking
from gwtwin.train.config import TrainConfig, load_train_config
from gwtwin.train.data import WindowDataModule
from gwtwin.train.linear import fit_linear_stage
from gwtwin.train.losses import qimage_loss, whitened_mse
from gwtwin.train.metrics import excess_power_metrics, veto_accuracy, window_power
from gwtwin.train.modules import QImageModule, TimeDomainModule
from gwtwin.train.panels import PanelCallback

FAMILIES = {"witness_td": "timeseries", "qimage_unet": "qimage"}
DEFAULT_MODEL = {"timeseries": "witness_td", "qimage": "qimage_unet"}


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
    twin: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the in-memory :class:`TwinModel`, JSON-able."""
        out = asdict(replace(self, twin=None))
        out.pop("twin")
        return out


class _Timing(L.Callback):
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


def _linear_only(spec: ConditioningSpec, transforms, channels) -> list[int]:
    """Indices of the features of witnesses with one of ``transforms`` or a name matching one
    of the ``channels`` globs."""
    out, offset = [], 0
    for w in spec.witnesses:
        n = len(w.features)
        if w.transform in transforms or any(fnmatch.fnmatchcase(w.name, g) for g in channels):
            out.extend(range(offset, offset + n))
        offset += n
    return out


def _witness_pairs(spec: ConditioningSpec) -> list[list[int]]:
    """Feature index pairs, one feature from each of two different standardised witnesses."""
    rows, offset = [], 0
    for w in spec.witnesses:
        n = len(w.features)
        if w.transform == "standardise":
            rows.append(list(range(offset, offset + n)))
        offset += n
    return [
        [i, j]
        for a in range(len(rows))
        for b in range(a + 1, len(rows))
        for i in rows[a]
        for j in rows[b]
    ]


def _model_kwargs(
    name: str,
    attrs: dict,
    n_features: int,
    user: dict,
    spec: ConditioningSpec | None = None,
    transforms=(),
    channels=(),
    products: str = "none",
) -> dict:
    kwargs = dict(user)
    derived: dict[str, Any] = {"in_channels": n_features}
    if FAMILIES.get(name) == "timeseries":
        derived.update(
            sample_rate=float(attrs["sample_rate"]),
            window_duration=float(attrs["window_duration"]),
            target_duration=float(attrs["target_duration"]),
        )
        params = model_parameters(name)
        if spec is not None and "linear_filter_size" in params:
            derived["linear_filter_size"] = int(whitening_kernel(spec).numel())
        taps = kwargs.get("linear_taps", params.get("linear_taps", 0))
        if spec is not None and "linear_pairs" in params and taps and "linear_pairs" not in kwargs:
            if products == "witness_pairs":
                kwargs["linear_pairs"] = _witness_pairs(spec)
        if spec is not None and "linear_only" in params and taps and "linear_only" not in kwargs:
            only = _linear_only(spec, transforms, channels)
            if len(only) < n_features:
                kwargs["linear_only"] = only
            else:  # nothing would be left for the network: it sees everything
                warnings.warn(
                    f"linear_only_transforms={list(transforms)} and linear_only_channels="
                    f"{list(channels)} cover every feature; the network sees all of them",
                    stacklevel=2,
                )
    for key, value in derived.items():
        if key in kwargs and kwargs[key] != value:
            raise ModelSpecMismatchError(
                f"model_kwargs.{key}={kwargs[key]!r} disagrees with the dataset ({value!r}); "
                "leave it out, it is taken from the dataset"
            )
        kwargs[key] = value
    return kwargs


def _whitening_taps(spec: ConditioningSpec) -> torch.Tensor:
    from gwtwin.signal import design_fir

    return design_fir(spec.psd, spec.sample_rate, spec.fduration, spec.highpass, nfft=spec.nfft)[0]


def _provenance(attrs: dict) -> dict[str, Any]:
    """Dataset attributes worth a param (the conditioning spec goes into twin.json)."""
    keep = {}
    for key, value in attrs.items():
        if key == "conditioning":
            continue
        keep[key] = value if isinstance(value, (str, int, float, bool)) else json.dumps(value)
    return keep


def evaluate_twin(
    twin: TwinModel,
    dataset: str | Path,
    split: str = "valid",
    *,
    batch_size: int = 32,
    thresholds=(1, 2, 5, 10, 16, 20, 30, 50),
) -> dict[str, float]:
    """Validation numbers of a twin on a dataset split, through :meth:`TwinModel.predict_windows`.

    Time series: ``loss`` (whitened MSE on the central parts, the training loss without the
    optional ASD term) and, with truth, the excess-power metrics
    (:func:`~gwtwin.train.metrics.excess_power_metrics`).  Q-images: ``loss`` (L1 0.8 +
    (1 - SSIM) 0.2) and ``veto_accuracy_<t>`` per threshold.
    """
    ds = WindowDataset(dataset, split, return_truth=False)
    if ds.kind != twin.kind:
        raise ModelSpecMismatchError(
            f"dataset {dataset} holds {ds.kind!r} windows but the model is {twin.kind!r}"
        )
    if ds.feature_names != twin.spec.feature_names:
        raise ModelSpecMismatchError(
            f"dataset features {ds.feature_names} differ from the model's {twin.spec.feature_names}"
        )
    n = len(ds)
    sq, count = 0.0, 0
    errors, powers, preds, reals = [], [], [], []
    m = twin.margin
    for lo in range(0, n, batch_size):
        idx = slice(lo, min(lo + batch_size, n))
        witness = ds.read("witness", idx)
        target = ds.read("target", idx)
        pred = twin.predict_windows(witness, batch_size=batch_size)
        if twin.kind == "timeseries":
            t = target[:, m : target.shape[-1] - m]
            sq += float(whitened_mse(pred, t)) * t.numel()
            count += t.numel()
            if ds.has_truth:
                truth = ds.read("truth", idx)[:, m : target.shape[-1] - m]
                e, p = window_power(truth, pred)
                errors.append(e)
                powers.append(p)
        else:
            sq += float(qimage_loss(pred, target)) * target.shape[0]
            count += target.shape[0]
            preds.append(pred)
            reals.append(target)
    out: dict[str, float] = {"loss": sq / max(count, 1), "n_windows": float(n)}
    if errors:
        metrics = excess_power_metrics(torch.cat(errors), torch.cat(powers), ds.glitch)
        out.update({k: float(v) for k, v in metrics.items()})
    if preds:
        acc = veto_accuracy(torch.cat(preds), torch.cat(reals), thresholds)
        out.update({f"veto_accuracy_{t:g}": v for t, v in acc.items()})
    ds.close()
    return out


def train(
    dataset: str | Path,
    workdir: str | Path,
    config: TrainConfig | str | Path | dict | None = None,
    *,
    model: str | None = None,
    resume: str | Path | None = None,
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

    Returns
    -------
    TrainResult
    """
    cfg = load_train_config(config, {"model": model} if model else None)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    attrs = read_attrs(dataset)
    kind = attrs["kind"]
    name = cfg.model or DEFAULT_MODEL[kind]
    family = FAMILIES.get(name)
    if family is not None and family != kind:
        raise ConfigError(
            f"model {name!r} trains on {family!r} datasets but {dataset} holds {kind!r} windows"
        )
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
    kwargs = _model_kwargs(
        name,
        attrs,
        len(features),
        cfg.model_kwargs,
        spec,
        cfg.linear_only_transforms,
        cfg.linear_only_channels,
        cfg.linear_products,
    )
    net = build_model(name, **kwargs)
    if cfg.output_filter_init == "whitening" and hasattr(net, "set_output_filter"):
        net.set_output_filter(_whitening_taps(spec))
    linear_stage = None
    if getattr(net, "linear_taps", 0) and resume is None:
        # closed-form MISO Wiener filter first; the network then learns what it leaves
        linear_stage = fit_linear_stage(net, dm.train, whitening_kernel(spec))
    arch = model_config(net)
    hparams = {"model": arch, "dataset": str(Path(dataset).resolve())}
    module_cls = TimeDomainModule if kind == "timeseries" else QImageModule
    module = module_cls(net, cfg, hparams)

    uri = tracking.tracking_uri_for(workdir, cfg.tracking.tracking_uri)
    artifacts = None if cfg.tracking.tracking_uri else tracking.artifact_location_for(workdir)
    tracking.ensure_experiment(uri, cfg.tracking.experiment, artifacts)
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, RichProgressBar
    from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger

    mlf = MLFlowLogger(
        experiment_name=cfg.tracking.experiment,
        run_name=cfg.tracking.run_name or f"{name}-{Path(dataset).stem}",
        tracking_uri=uri,
        artifact_location=artifacts,
        tags={"gwtwin.model": name, "gwtwin.dataset": str(Path(dataset).resolve())},
    )
    run_id = mlf.run_id
    loggers: list = [mlf]
    tb_dir = workdir / "tensorboard"
    if cfg.tensorboard.enabled:
        loggers.append(TensorBoardLogger(save_dir=str(workdir), name="tensorboard", version=run_id))
    ckpt_dir = workdir / "checkpoints" / run_id
    checkpoint, last_checkpoint = checkpoint_callbacks(ckpt_dir)
    timing = _Timing()
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
    if cfg.tensorboard.enabled and cfg.tensorboard.panels:
        frequencies = times = None
        if kind == "qimage":
            import h5py

            with h5py.File(dataset, "r") as h5:
                if "qimage" in h5:
                    frequencies = h5["qimage/frequencies"][()]
                    times = h5["qimage/times"][()]
        callbacks.append(
            PanelCallback(
                dm.valid,
                kind,
                float(attrs["sample_rate"]),
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
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=str(resume) if resume else None)
    train_seconds = time.perf_counter() - t0
    best_path = checkpoint.best_model_path
    if not best_path:
        raise GwtwinError("training produced no checkpoint (no validation epoch completed)")
    state = torch.load(best_path, map_location="cpu", weights_only=False)["state_dict"]
    net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
    net = net.cpu().eval()
    twin = TwinModel(
        net,
        spec,
        kind=kind,
        window_duration=float(attrs["window_duration"]),
        target_duration=float(attrs["target_duration"]),
        metadata={
            "model": arch,
            "dataset": _provenance(attrs),
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
        tracking.log_params(
            run_id,
            uri,
            {
                "dataset": _provenance(attrs),
                "model_name": name,
                "n_parameters": sum(p.numel() for p in net.parameters()),
                "channels": spec.witness_channels,
            },
        )
        c = tracking.client(uri)
        for key, value in result_metrics.items():
            if value == value:
                c.log_metric(run_id, f"best_val_{key}", float(value))
        if linear_stage is not None:  # share of the training target the linear stage explains
            c.log_metric(run_id, "linear_stage_explained", linear_stage["explained"])
            result_metrics["linear_stage_explained"] = linear_stage["explained"]
        c.log_metric(run_id, "train_windows_per_second", wps)
        c.log_metric(run_id, "seconds_per_epoch", per_epoch)
        c.log_text(run_id, cfg.dump(), "train-config.yaml")
        c.log_dict(run_id, _provenance(attrs), "dataset-attrs.json")
        if cfg.tracking.log_model:
            registered = cfg.tracking.registered_model_name or f"gwtwin-{name.replace('_', '-')}"
            info = tracking.log_twin(
                twin,
                run_id=run_id,
                tracking_uri=uri,
                registered_model_name=registered,
                alias=cfg.tracking.alias,
            )
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
        n_parameters=int(sum(p.numel() for p in net.parameters())),
        twin=twin,
    )
    # the run's headline numbers beside the tracking store, for the report and for scripts
    (workdir / "result.json").write_text(json.dumps(result.to_dict(), indent=1, default=str))
    return result


def load_twin(model_uri: str, workdir: str | Path | None = None, tracking_uri: str | None = None):
    """:meth:`TwinModel.load` with the embedded tracking URI of ``workdir`` as default."""
    if tracking_uri is None and workdir is not None:
        tracking_uri = tracking.tracking_uri_for(workdir)
    return TwinModel.load(model_uri, tracking_uri=tracking_uri)


__all__ = ["TrainResult", "evaluate_twin", "load_twin", "train"]
