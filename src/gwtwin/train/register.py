"""What a finished training run leaves in MLflow.

On the run that trained it: the params (dataset provenance, model name, parameter count,
witness channels), the validation numbers of the best weights as ``best_val_<metric>``, the
linear stage's explained share, throughput, the training config (``train-config.yaml``) and the
dataset attributes (``dataset-attrs.json``); then the :class:`TwinModel` is logged with pinned
requirements, registered and given the configured alias (``candidate``).
"""

from __future__ import annotations

import json
from typing import Any

from gwtwin.models import TwinModel
from gwtwin.train import tracking
from gwtwin.train.config import TrainConfig


def provenance(attrs: dict) -> dict[str, Any]:
    """Dataset attributes worth a param (the conditioning spec goes into twin.json)."""
    keep = {}
    for key, value in attrs.items():
        if key == "conditioning":
            continue
        keep[key] = value if isinstance(value, (str, int, float, bool)) else json.dumps(value)
    return keep


def log_and_register(
    twin: TwinModel,
    cfg: TrainConfig,
    *,
    name: str,
    attrs: dict,
    run_id: str,
    tracking_uri: str,
    metrics: dict[str, float],
    n_parameters: int,
    linear_explained: float | None,
    windows_per_second: float,
    seconds_per_epoch: float,
) -> tuple[str | None, dict[str, Any]]:
    """Log the run's results on ``run_id`` and, with ``cfg.tracking.log_model``, log and
    register ``twin`` (default name ``gwtwin-<model name with - for _>``).

    Returns
    -------
    registered_model_name : str or None
    info : dict
        :func:`~gwtwin.train.tracking.log_twin`'s answer (``model_uri``, ``version``, ...), or
        ``{"model_uri": None, "version": None}`` when the model is not logged.
    """
    uri = tracking_uri
    tracking.log_params(
        run_id,
        uri,
        {
            "dataset": provenance(attrs),
            "model_name": name,
            "n_parameters": n_parameters,
            "channels": twin.spec.witness_channels,
        },
    )
    c = tracking.client(uri)
    for key, value in metrics.items():
        if value == value:
            c.log_metric(run_id, f"best_val_{key}", float(value))
    if linear_explained is not None:  # share of the training target the linear stage explains
        c.log_metric(run_id, "linear_stage_explained", linear_explained)
    c.log_metric(run_id, "train_windows_per_second", windows_per_second)
    c.log_metric(run_id, "seconds_per_epoch", seconds_per_epoch)
    c.log_text(run_id, cfg.dump(), "train-config.yaml")
    c.log_dict(run_id, provenance(attrs), "dataset-attrs.json")
    registered = None
    info: dict[str, Any] = {"model_uri": None, "version": None}
    if cfg.tracking.log_model:
        registered = cfg.tracking.registered_model_name or f"gwtwin-{name.replace('_', '-')}"
        info = tracking.log_twin(
            twin,
            run_id=run_id,
            tracking_uri=uri,
            registered_model_name=registered,
            alias=cfg.tracking.alias,
        )
    return registered, info
