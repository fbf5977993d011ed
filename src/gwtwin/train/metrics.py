"""Metrics against ground truth: fraction of witnessed excess power removed, residual SNR, and
the Glitchflow-style veto accuracy of Q-images.

In whitened units (unit-variance noise) the SNR^2 of a signal over a window is the sum of its
squared samples, so for each window ``power = sum(truth^2)`` is the SNR^2 of the witnessed
couplings and ``error = sum((truth - prediction)^2)`` the SNR^2 of what cleaning would leave.
"""

from __future__ import annotations

import numpy as np
import torch

from gwtwin.errors import GwtwinError


def window_power(truth: torch.Tensor, pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-window ``(error, power)``: ``sum((truth - pred)^2)`` and ``sum(truth^2)`` over the
    last axis, float64."""
    if truth.shape != pred.shape:
        raise GwtwinError(
            f"truth and prediction shapes differ: {tuple(truth.shape)} vs {tuple(pred.shape)}"
        )
    t = truth.to(torch.float64)
    return (t - pred.to(torch.float64)).pow(2).sum(-1), t.pow(2).sum(-1)


def excess_power_metrics(error, power, glitch=None) -> dict[str, float]:
    """Fraction of witnessed excess power removed and residual SNRs.

    Parameters
    ----------
    error, power : array-like ``[N]``
        Per-window residual and truth SNR^2 (:func:`window_power`).
    glitch : array-like of bool ``[N]``, optional
        Windows holding a strain glitch; the ``*_glitch`` metrics use only those.

    Returns
    -------
    dict with ``removed`` (``1 - sum(error) / sum(power)`` over all windows), ``removed_glitch``
    (over glitch windows), ``removed_glitch_median`` (median over glitch windows of the
    per-window fraction), ``residual_snr_median`` and ``truth_snr_median`` (medians over glitch
    windows of ``sqrt(error)`` and ``sqrt(power)``) and ``n_windows`` / ``n_glitch``.  Fractions
    are NaN where there is no excess power to remove.
    """
    error = np.asarray(error, dtype=np.float64)
    power = np.asarray(power, dtype=np.float64)
    glitch = np.ones(error.shape, bool) if glitch is None else np.asarray(glitch, bool)

    def frac(e, p):
        return float(1.0 - e.sum() / p.sum()) if p.sum() > 0 else float("nan")

    g = glitch & (power > 0)
    per = 1.0 - error[g] / power[g]
    return {
        "removed": frac(error, power),
        "removed_glitch": frac(error[glitch], power[glitch]),
        "removed_glitch_median": float(np.median(per)) if per.size else float("nan"),
        "residual_snr_median": float(np.median(np.sqrt(error[g]))) if g.any() else float("nan"),
        "truth_snr_median": float(np.median(np.sqrt(power[g]))) if g.any() else float("nan"),
        "n_windows": int(error.size),
        "n_glitch": int(glitch.sum()),
    }


def veto_flags(images, threshold: float, min_pixels: int = 2) -> np.ndarray:
    """Glitchflow's veto rule per image ``[N, F, T]``: a connected cluster (8-connectivity) of at
    least ``min_pixels`` pixels with energy above ``threshold``."""
    from scipy import ndimage

    arr = np.asarray(torch.as_tensor(images).detach().cpu(), dtype=np.float64)
    if arr.ndim != 3:
        raise GwtwinError(f"expected images [N, F, T], found shape {arr.shape}")
    structure = np.ones((3, 3), bool)
    out = np.zeros(arr.shape[0], bool)
    for i, img in enumerate(arr):
        labels, n = ndimage.label(img > threshold, structure=structure)
        if n:
            sizes = np.bincount(labels.ravel())[1:]
            out[i] = bool((sizes >= min_pixels).any())
    return out


def veto_accuracy(pred, real, thresholds, min_pixels: int = 2) -> dict[float, float]:
    """Fraction of images where the veto rule gives the same answer on the predicted and the
    real strain image, per threshold (Glitchflow's "veto accuracy")."""
    return {
        float(t): float((veto_flags(pred, t, min_pixels) == veto_flags(real, t, min_pixels)).mean())
        for t in thresholds
    }
