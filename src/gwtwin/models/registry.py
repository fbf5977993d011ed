"""Model registry: architectures by name, built from keyword arguments (e.g. a YAML mapping).

>>> from gwtwin.models import build_model
>>> net = build_model("witness_td", in_channels=8)

A bad name or keyword raises :class:`~gwtwin.errors.ConfigError` naming what is allowed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from gwtwin.errors import ConfigError

_REGISTRY: dict[str, type[nn.Module] | Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable:
    """Class decorator registering an ``nn.Module`` architecture under ``name``.

    Raises
    ------
    ConfigError
        If ``name`` is already registered to another class.
    """

    def decorator(cls):
        previous = _REGISTRY.get(name)
        if previous is not None and previous is not cls:
            raise ConfigError(
                f"model name {name!r} is already registered to {previous.__qualname__}; "
                f"choose another name for {cls.__qualname__}"
            )
        _REGISTRY[name] = cls
        cls.registry_name = name
        return cls

    return decorator


def available_models() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_REGISTRY)


def model_parameters(name: str) -> dict[str, Any]:
    """Keyword arguments of the model ``name`` with their defaults (``inspect.Parameter.empty``
    for required ones)."""
    cls = _lookup(name)
    sig = inspect.signature(cls)
    return {k: p.default for k, p in sig.parameters.items() if k != "self"}


def _lookup(name: str):
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}: expected one of {', '.join(available_models())}"
        ) from None


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate the registered architecture ``name`` with ``kwargs``.

    Unknown keywords and missing required ones raise :class:`ConfigError` listing the allowed
    keywords, so a typo in a YAML file is named rather than ignored.
    """
    cls = _lookup(name)
    params = model_parameters(name)
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ConfigError(
            f"model {name!r}: unknown parameter(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(params))})"
        )
    missing = sorted(
        k for k, v in params.items() if v is inspect.Parameter.empty and k not in kwargs
    )
    if missing:
        raise ConfigError(f"model {name!r}: missing required parameter(s) {', '.join(missing)}")
    return cls(**kwargs)


def model_config(model: nn.Module) -> dict[str, Any]:
    """The ``(name, kwargs)`` a registered model was built with, as a JSON-able mapping."""
    name = getattr(model, "registry_name", None)
    hparams: Mapping[str, Any] | None = getattr(model, "hparams_", None)
    if name is None or hparams is None:
        raise ConfigError(
            f"expected a model built by gwtwin.models.build_model (with registry_name and "
            f"hparams_), found {type(model).__qualname__}"
        )
    return {"name": name, "kwargs": dict(hparams)}
