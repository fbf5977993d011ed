"""The network of a training run, built from the dataset it trains on.

The model family must match the dataset's kind; the geometry (input features, sample rate,
window and target lengths) is taken from the dataset, never from the user's ``model_kwargs``
(a disagreeing key is refused); the linear stage's inputs (witness-pair products, features that
feed only it) are derived from the conditioning spec; the output FIRs may start from the strain's
whitening filter; the witness gate is chosen (:mod:`gwtwin.train.gate`) and the linear stage
solved in closed form before any gradient step.
"""

from __future__ import annotations

import fnmatch
import warnings
from pathlib import Path
from typing import Any

import torch

from gwtwin.errors import ConfigError
from gwtwin.models import build_model, model_parameters
from gwtwin.models.twin import ModelSpecMismatchError
from gwtwin.signal.conditioning import ConditioningSpec, whitening_kernel
from gwtwin.train.config import TrainConfig
from gwtwin.train.gate import fit_witness_gate
from gwtwin.train.linear import fit_linear_stage

FAMILIES = {"witness_td": "timeseries", "qimage_unet": "qimage"}
DEFAULT_MODEL = {"timeseries": "witness_td", "qimage": "qimage_unet"}


def model_name(name: str | None, kind: str, dataset: str | Path) -> str:
    """``name`` (or the default model of the dataset's ``kind``), checked against the kind."""
    name = name or DEFAULT_MODEL[kind]
    family = FAMILIES.get(name)
    if family is not None and family != kind:
        raise ConfigError(
            f"model {name!r} trains on {family!r} datasets but {dataset} holds {kind!r} windows"
        )
    return name


def build_network(
    name: str,
    attrs: dict,
    spec: ConditioningSpec,
    cfg: TrainConfig,
    train_windows,
    *,
    valid_windows=None,
    fit_linear: bool = True,
) -> tuple[torch.nn.Module, dict | None, dict | None]:
    """``(net, linear_stage, witness_gate)``: the network with the dataset's geometry, its
    output filter initialised as configured and, with ``fit_linear``, its witness gate chosen
    (``cfg.witness_gate``, scored on ``valid_windows``) and its linear stage solved on
    ``train_windows`` (else ``linear_stage`` and ``witness_gate`` are None: a resumed run takes
    both from its checkpoint).  ``witness_gate`` is :func:`~gwtwin.train.gate.fit_witness_gate`'s
    record."""
    kwargs = _model_kwargs(
        name,
        attrs,
        len(spec.feature_names),
        cfg.model_kwargs,
        spec,
        cfg.linear_only_transforms,
        cfg.linear_only_channels,
        cfg.linear_products,
        gate_duration=cfg.gate_duration,
    )
    net = build_model(name, **kwargs)
    if cfg.output_filter_init == "whitening" and hasattr(net, "set_output_filter"):
        net.set_output_filter(_whitening_taps(spec))
    if not fit_linear:
        return net, None, None
    has_linear = bool(getattr(net, "linear_taps", 0))
    kernel = whitening_kernel(spec) if has_linear else None
    gate, linear_stage = fit_witness_gate(
        net, spec, train_windows, valid_windows, kernel, mode=cfg.witness_gate, sigma=cfg.gate_sigma
    )
    if has_linear and linear_stage is None:
        # closed-form MISO Wiener filter first; the network then learns what it leaves
        linear_stage = fit_linear_stage(net, train_windows, kernel)
    return net, linear_stage, gate


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
    *,
    gate_duration: float | None = None,
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
        if gate_duration is not None and "gate_duration" in params:
            if kwargs.setdefault("gate_duration", gate_duration) != gate_duration:
                raise ConfigError(
                    f"model_kwargs.gate_duration={kwargs['gate_duration']!r} disagrees with "
                    f"train.gate_duration ({gate_duration!r}); set train.gate_duration only"
                )
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
