"""Fit of the ``witness_td`` excess-power gate: which witnesses to gate, and at what level.

A real witness is the disturbance plus its own sensor-noise floor (a magnetometer: the field's
bursts plus white sensor noise), and only the disturbance couples into strain.  The linear
stage is time-invariant: solved on glitch-rich windows its gain is ~1, so in quiet time it passes
the floor through the coupling into strain.  The model's gate
(:meth:`~gwtwin.models.witness_td.WitnessTD.gate_inputs`) is the time-local Wiener gain
``clamp(1 - alpha F / P, 0, 1)`` on a row's local power ``P``; here, per candidate row (the
features of *standardised* witnesses; fringe features are bounded phases, never gated), over the
training windows:

- ``F = median(P)`` (the floor: robust to the bursts, which occupy a minority of the samples);
- ``alpha = 1 + sigma * 1.4826 * MAD(P / F)`` (``sigma`` = ``train.gate_sigma``, 5: a Gaussian
  floor's own power fluctuations almost never open the gate).

Which witnesses to gate is decided from the data (``train.witness_gate: auto``): the linear stage
is solved without gates and with each candidate witness gated alone, each solve scored on the
validation windows' central parts (the training loss), and a witness is gated when gating it
lowers that loss by more than a relative ``1e-4`` (rounding).  A witness whose floor does couple
(a slow angular channel in a bilinear pair, a continuous mains monitor) loses when gated and
stays ungated.  Without a linear stage or a validation split, ``auto`` gates nothing, saying
why; ``all`` gates every candidate, ``off`` none.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gwtwin.signal.conditioning import ConditioningSpec
from gwtwin.train.linear import fit_linear_stage, linear_stage_mse

__all__ = ["MAD_SIGMA", "MIN_GAIN", "fit_witness_gate", "gate_candidates", "gate_statistics"]

MAD_SIGMA = 1.4826  # MAD -> standard deviation of a Gaussian
MIN_GAIN = 1e-4  # relative validation-MSE gain below which gating is rounding


def gate_candidates(spec: ConditioningSpec) -> dict[str, list[int]]:
    """Witness name -> its feature rows, for the standardised witnesses (gate candidates)."""
    out, offset = {}, 0
    for w in spec.witnesses:
        n = len(w.features)
        if w.transform == "standardise":
            out[w.name] = list(range(offset, offset + n))
        offset += n
    return out


def gate_statistics(
    net, windows, rows: list[int], sigma: float, *, batch_size: int = 8, max_samples: int = 2**22
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(floor, alpha)`` per row in ``rows`` (float64) from the windows' local power ``P``
    (:meth:`WitnessTD.gate_power`, samples clear of the window edges): ``floor = median(P)``,
    ``alpha = 1 + sigma * 1.4826 * MAD(P / floor)`` (floor 0 and alpha 0 for a row without
    power).  ``P`` is smooth over the gate's window, so it is read every ``window / 8``
    samples, and at most ``max_samples`` per row."""
    index = torch.tensor(rows)
    half = net.gate_half
    step = max(1, (2 * half + 1) // 8)
    size = windows[0]["witness"].shape[-1]
    per_window = max(1, len(range(half, size - half, step)))
    every = max(1, -(-len(windows) * per_window // max_samples))
    chosen = list(range(0, len(windows), every))
    powers = []
    for lo in range(0, len(chosen), batch_size):
        x = torch.stack([windows[i]["witness"] for i in chosen[lo : lo + batch_size]])
        p = net.gate_power(x.to(torch.float64).index_select(1, index))
        powers.append(p[..., half : size - half : step].transpose(0, 1).reshape(len(rows), -1))
    p = torch.cat(powers, 1).numpy()
    floor = np.median(p, axis=1)
    ok = floor > 0
    ratio = p / np.where(ok, floor, 1.0)[:, None]
    mad = np.median(np.abs(ratio - np.median(ratio, axis=1, keepdims=True)), axis=1)
    alpha = np.where(ok, 1.0 + sigma * MAD_SIGMA * mad, 0.0)
    return torch.from_numpy(np.where(ok, floor, 0.0)), torch.from_numpy(alpha)


def _gate_of(n: int, rows, floor: dict[int, float], alpha: dict[int, float]):
    f, a = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    for r in rows:
        f[r], a[r] = floor[r], alpha[r]
    return f, a


def fit_witness_gate(
    net,
    spec: ConditioningSpec,
    train_windows,
    valid_windows,
    filter_taps: torch.Tensor | None,
    *,
    mode: str = "auto",
    sigma: float = 5.0,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Choose and set ``net``'s gate (:meth:`WitnessTD.set_gate`); module docstring.

    Returns
    -------
    record : dict
        ``mode``, ``sigma``, ``duration`` (s), ``gated`` (witness names), ``reason`` (why
        nothing was tried, else None), ``validation_mse`` (ungated and final linear stage, when
        scored) and ``witnesses``: per candidate ``rows``, ``floor``, ``alpha``,
        ``validation_mse_without`` / ``validation_mse_with`` (``auto``), ``gated``, ``reason``.
    linear_stage : dict or None
        :func:`~gwtwin.train.linear.fit_linear_stage`'s answer for the chosen gate, when the
        choice solved it (loaded in ``net``); else None (the caller solves it).
    """
    record: dict[str, Any] = {"mode": mode, "sigma": float(sigma), "gated": [], "reason": None}
    if not hasattr(net, "set_gate"):
        record["reason"] = "the model family has no witness gate"
        return record, None
    record["duration"] = (2 * net.gate_half + 1) / net.sample_rate
    n = net.in_channels
    net.set_gate(torch.zeros(n), torch.zeros(n))
    candidates = gate_candidates(spec)
    witnesses: dict[str, dict[str, Any]] = {name: {"rows": r} for name, r in candidates.items()}
    record["witnesses"] = witnesses
    if mode == "off" or not candidates:
        record["reason"] = "witness_gate: off" if mode == "off" else "no standardised witness"
        for info in witnesses.values():
            info.update(gated=False, reason=record["reason"])
        return record, None
    rows = [r for r_ in candidates.values() for r in r_]
    floor_t, alpha_t = gate_statistics(net, train_windows, rows, sigma)
    floor = dict(zip(rows, floor_t.tolist(), strict=True))
    alpha = dict(zip(rows, alpha_t.tolist(), strict=True))
    usable = []
    for name, info in witnesses.items():
        info.update(floor=[floor[r] for r in info["rows"]], alpha=[alpha[r] for r in info["rows"]])
        if min(info["floor"]) > 0:
            usable.append(name)
        else:
            info.update(gated=False, reason="a feature without power (median local power 0)")
    linear = bool(getattr(net, "linear_taps", 0))
    if mode == "all":
        chosen = usable
        for name in usable:
            witnesses[name].update(gated=True, reason="witness_gate: all")
        fitted = None
    elif not linear or not valid_windows:
        record["reason"] = (
            "no linear stage to score the gate with"
            if not linear
            else "no validation windows to score the gate on"
        )
        for name in usable:
            witnesses[name].update(gated=False, reason=f"auto: {record['reason']}")
        return record, None
    else:
        chosen, fitted = _choose(
            net, train_windows, valid_windows, filter_taps, witnesses, usable, floor, alpha, record
        )
    all_rows = [r for name in chosen for r in witnesses[name]["rows"]]
    net.set_gate(*_gate_of(n, all_rows, floor, alpha))
    record["gated"] = list(chosen)
    return record, fitted


def _choose(
    net, train_windows, valid_windows, filter_taps, witnesses, usable, floor, alpha, record
):
    """``auto``: each usable witness gated alone against no gate, on the validation MSE."""
    n = net.in_channels

    def trial(rows):
        net.set_gate(*_gate_of(n, rows, floor, alpha))
        stage = fit_linear_stage(net, train_windows, filter_taps)
        return stage, linear_stage_mse(net, valid_windows, filter_taps, stage["taps"])

    base, base_mse = trial([])
    fits = {}
    for name in usable:
        fits[name] = trial(witnesses[name]["rows"])
        mse = fits[name][1]
        gain = 1.0 - mse / base_mse if base_mse > 0 else 0.0
        gated = gain > MIN_GAIN
        witnesses[name].update(
            validation_mse_without=base_mse,
            validation_mse_with=mse,
            gated=gated,
            reason=f"gating {'lowers' if gain > 0 else 'raises'} the validation MSE by "
            f"{abs(gain):.3%}" + ("" if gated or gain <= 0 else f" (< {MIN_GAIN:g}: rounding)"),
        )
    chosen = [name for name in usable if witnesses[name]["gated"]]
    if not chosen:
        stage, mse = base, base_mse
    elif len(chosen) == 1:
        stage, mse = fits[chosen[0]]
    else:
        stage, mse = trial([r for name in chosen for r in witnesses[name]["rows"]])
    net.set_gate(torch.zeros(n), torch.zeros(n))
    net.set_linear_stage(stage["taps"], filter_taps)  # the chosen fit, gate set by the caller
    record["validation_mse"] = {"ungated": base_mse, "final": mse}
    return chosen, stage
