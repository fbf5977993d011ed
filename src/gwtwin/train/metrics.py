"""Metrics against ground truth: fraction of witnessed excess power removed, residual SNR, and
the Glitchflow-style veto accuracy of Q-images; and, without truth, the cleaned/raw ASD ratio of
quiet windows (:class:`QuietASDRatio`: where there is nothing to remove, cleaning must not add).

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


class QuietASDRatio:
    """Cleaned/raw ASD ratio accumulated over windows: per frequency bin
    ``sqrt(sum_w |rfft(hann (target - pred))|^2 / sum_w |rfft(hann target)|^2)``.

    On quiet windows (no strain glitch) the target is noise the witnesses do not explain, so a
    twin that adds nothing gives 1 and a prediction that passes a witness's own noise floor
    into strain gives more.  :meth:`add` takes ``[N, T]`` central parts; :meth:`summary`
    reduces the bins from ``fmin`` to ``fmax_ratio`` x Nyquist.
    """

    def __init__(self, sample_rate: float, fmin: float = 10.0, fmax_ratio: float = 0.9):
        self.sample_rate = float(sample_rate)
        self.fmin, self.fmax_ratio = float(fmin), float(fmax_ratio)
        self.residual: torch.Tensor | None = None
        self.raw: torch.Tensor | None = None
        self.size: int | None = None
        self.n_windows = 0

    def add(self, target: torch.Tensor, pred: torch.Tensor) -> None:
        t = torch.as_tensor(target).to(torch.float64)
        p = torch.as_tensor(pred).to(torch.float64)
        if t.shape != p.shape or t.ndim != 2:
            raise GwtwinError(
                f"expected target and prediction [N, T] of one shape, found {tuple(t.shape)} "
                f"and {tuple(p.shape)}"
            )
        if not t.shape[0]:
            return
        hann = torch.hann_window(t.shape[-1], periodic=False, dtype=torch.float64)
        res = torch.fft.rfft(hann * (t - p)).abs().pow(2).sum(0)
        raw = torch.fft.rfft(hann * t).abs().pow(2).sum(0)
        if self.raw is None:
            self.residual, self.raw = res, raw
            self.size = t.shape[-1]
        elif t.shape[-1] != self.size:
            raise GwtwinError(f"expected windows of {self.size} samples, found {t.shape[-1]}")
        else:
            self.residual, self.raw = self.residual + res, self.raw + raw
        self.n_windows += int(t.shape[0])

    def ratio(self) -> tuple[np.ndarray, np.ndarray]:
        """``(frequencies, ratio)`` over the summary band (empty before any window)."""
        if self.raw is None:
            return np.zeros(0), np.zeros(0)
        freqs = np.fft.rfftfreq(self.size, 1.0 / self.sample_rate)
        raw, res = self.raw.numpy(), self.residual.numpy()
        keep = (freqs >= self.fmin) & (freqs <= self.fmax_ratio * self.sample_rate / 2) & (raw > 0)
        return freqs[keep], np.sqrt(res[keep] / raw[keep])

    def summary(self, prefix: str = "quiet_asd_ratio") -> dict[str, float]:
        """``{prefix}_max`` and ``{prefix}_median`` over the band; empty without windows (or
        bins)."""
        _, ratio = self.ratio()
        if not ratio.size:
            return {}
        return {f"{prefix}_max": float(ratio.max()), f"{prefix}_median": float(np.median(ratio))}
