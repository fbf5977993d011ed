"""Training of the twin models: Lightning modules per family, losses, metrics against ground
truth, MLflow tracking and model registry, TensorBoard panels.

:func:`train` takes a dataset file and a work directory and returns a :class:`TrainResult`
with the registered model's URI (``models:/gwtwin-witness-td@candidate`` by default).
"""

from gwtwin.train.config import TrainConfig, load_train_config
from gwtwin.train.losses import asd_ratio, qimage_loss, ssim, whitened_mse
from gwtwin.train.metrics import excess_power_metrics, veto_accuracy, veto_flags, window_power
from gwtwin.train.modules import QImageModule, TimeDomainModule
from gwtwin.train.run import TrainResult, load_twin, train
from gwtwin.train.tracking import list_models, pip_requirements, promote, tracking_uri_for
from gwtwin.train.validation import evaluate_twin

__all__ = [
    "QImageModule",
    "TimeDomainModule",
    "TrainConfig",
    "TrainResult",
    "asd_ratio",
    "evaluate_twin",
    "excess_power_metrics",
    "list_models",
    "load_train_config",
    "load_twin",
    "pip_requirements",
    "promote",
    "qimage_loss",
    "ssim",
    "train",
    "tracking_uri_for",
    "veto_accuracy",
    "veto_flags",
    "whitened_mse",
    "window_power",
]
