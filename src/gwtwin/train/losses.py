"""Losses: whitened MSE (+ ASD ratio) for time series, L1 + (1 - SSIM) for Q-images.

All are plain functions on tensors.  In whitened units (unit-variance noise) the matched-filter
SNR^2 of a signal is the sum of its squared samples, so the MSE between target and prediction is
the residual SNR^2 per sample: minimising it minimises what is left in strain.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gwtwin.errors import GwtwinError


def whitened_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared residual, whitened units (residual SNR^2 per sample)."""
    if pred.shape != target.shape:
        raise GwtwinError(
            f"prediction and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    return (pred - target).pow(2).mean()


def _psd(x: torch.Tensor, nperseg: int) -> torch.Tensor:
    """Mean Welch PSD (Hann, 50 % overlap), arbitrary units, ``[..., nperseg // 2 + 1]``."""
    window = torch.hann_window(nperseg, dtype=x.dtype, device=x.device)
    spec = torch.stft(
        x.reshape(-1, x.shape[-1]),
        n_fft=nperseg,
        hop_length=nperseg // 2,
        window=window,
        center=False,
        return_complex=True,
    )
    return spec.abs().pow(2).mean(-1).reshape(*x.shape[:-1], -1)


def asd_ratio(
    pred: torch.Tensor,
    target: torch.Tensor,
    sample_rate: float,
    band: tuple[float, float] = (10.0, 500.0),
    fftlength: float = 1.0,
) -> torch.Tensor:
    """DeepClean's loss: mean over ``band`` (Hz) of ``sqrt(PSD(target - pred) / PSD(target))``.

    PSDs are Welch means over ``fftlength``-second Hann segments of each window (``[batch, T]``),
    averaged over the batch before the ratio.  Below 1 where the prediction removes noise.
    """
    nperseg = round(fftlength * sample_rate)
    if nperseg > target.shape[-1] or nperseg < 4:
        raise GwtwinError(
            f"asd_fftlength must give 4 .. {target.shape[-1]} samples at {sample_rate:g} Hz, "
            f"found {fftlength:g} s ({nperseg} samples)"
        )
    freqs = torch.fft.rfftfreq(nperseg, 1.0 / sample_rate).to(target.device)
    sel = (freqs >= band[0]) & (freqs <= band[1])
    if not bool(sel.any()):
        raise GwtwinError(f"asd_band {band} Hz holds no frequency bin of a {nperseg}-point FFT")
    p_res = _psd(target - pred, nperseg).mean(0)[sel]
    p_raw = _psd(target, nperseg).mean(0)[sel]
    return torch.sqrt(p_res / p_raw.clamp_min(torch.finfo(p_raw.dtype).tiny)).mean()


def _gaussian_window(size: int, sigma: float, dtype, device) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float | torch.Tensor | None = None,
    window_size: int = 11,
    sigma: float = 1.5,
) -> torch.Tensor:
    """Mean structural similarity of images ``[batch, H, W]`` (Wang et al. 2004).

    Gaussian window (``window_size``, ``sigma`` in pixels), constants ``C1 = (0.01 L)^2``,
    ``C2 = (0.03 L)^2`` with ``L = data_range`` (default: the range of ``y``).  Same as
    ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)`` away from the borders (valid convolution here).
    """
    if x.shape != y.shape or x.ndim != 3:
        raise GwtwinError(
            f"expected two image batches [batch, H, W] of one shape, found {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    if min(x.shape[-2:]) < window_size:
        raise GwtwinError(f"images must be at least {window_size} pixels on each side")
    if data_range is None:
        data_range = (y.max() - y.min()).clamp_min(1e-12)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    g = _gaussian_window(window_size, sigma, x.dtype, x.device)
    kernel = (g[:, None] * g[None, :])[None, None]

    def blur(z):
        return F.conv2d(z[:, None], kernel)[:, 0]

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return (num / den).mean()


def qimage_loss(
    pred: torch.Tensor, target: torch.Tensor, l1_weight: float = 0.8, ssim_weight: float = 0.2
) -> torch.Tensor:
    """``l1_weight * L1 + ssim_weight * (1 - SSIM)`` (Glitchflow's 0.8 / 0.2); SSIM is taken on
    ``log1p`` of the energies so that loud pixels do not set the whole dynamic range."""
    loss = l1_weight * F.l1_loss(pred, target)
    if ssim_weight:
        lp, lt = torch.log1p(pred.clamp_min(0)), torch.log1p(target.clamp_min(0))
        loss = loss + ssim_weight * (1 - ssim(lp, lt))
    return loss


def cosine_warmup(epoch: float, max_epochs: int, warmup: int, floor: float) -> float:
    """Learning-rate multiplier: linear warm-up over ``warmup`` epochs, then cosine to ``floor``."""
    if warmup and epoch < warmup:
        return (epoch + 1) / (warmup + 1)
    span = max(max_epochs - warmup, 1)
    progress = min(max(epoch - warmup, 0) / span, 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
