"""Warm start: a new network begins from a trained model's learnt weights.

Retraining on recent data (:mod:`gwtwin.lifecycle`) starts from the champion rather than from
scratch: every learnt parameter (``nn.Parameter``) of the same name and shape is copied.  The
fitted buffers (the witness gate's floors, the closed-form linear stage's FIR) are not: they were
just solved on the new data by :func:`~gwtwin.train.network.build_network`, which is the point of
retraining when a coupling constant has drifted.
"""

from __future__ import annotations

import torch

from gwtwin.errors import GwtwinError


class WarmStartError(GwtwinError):
    """The model to warm-start from does not fit the new network (other inputs or shapes)."""


def warm_start_network(net: torch.nn.Module, source, spec) -> dict[str, int]:
    """Copy ``source.network``'s parameters into ``net`` (in place).

    Parameters
    ----------
    net : nn.Module
        The freshly built network (linear stage and gate already fitted).
    source : TwinModel
        The trained model; its conditioned features must be ``spec``'s, in the same order.
    spec : ConditioningSpec
        The new dataset's conditioning.

    Returns
    -------
    dict
        ``{"copied": n, "total": m}`` parameter tensors.

    Raises
    ------
    WarmStartError
        Other witness features, another architecture, or a parameter of another shape.
    """
    old, new = list(source.spec.feature_names), list(spec.feature_names)
    if old != new:
        raise WarmStartError(
            f"cannot warm-start: the model was trained on features {old}, the new dataset has "
            f"{new} (train from scratch when the witness selection changed)"
        )
    if type(source.network).__name__ != type(net).__name__:
        raise WarmStartError(
            f"cannot warm-start a {type(net).__name__} from a {type(source.network).__name__}"
        )
    theirs = dict(source.network.named_parameters())
    copied = 0
    with torch.no_grad():
        for name, p in net.named_parameters():
            q = theirs.get(name)
            if q is None or q.shape != p.shape:
                found = None if q is None else tuple(q.shape)
                raise WarmStartError(
                    f"cannot warm-start parameter {name}: expected shape {tuple(p.shape)}, "
                    f"found {found} in the source model (another architecture)"
                )
            p.copy_(q.to(p.dtype))
            copied += 1
    return {"copied": copied, "total": len(theirs)}


__all__ = ["WarmStartError", "warm_start_network"]
