"""Q-image tiles for the spectrogram model (Glitchflow parity, done without its defects).

Each window becomes ``nfreq x ntime`` images (default 64 log-spaced frequencies x 256 times,
8-500 Hz, single Q = 12 as Glitchflow) of normalised energy (row median / ln 2, so Gaussian noise
has mean 1 and SNR = sqrt(2 (Z - 1))): one per conditioned witness feature (the input) and one of
the whitened strain (the target).  The transform sees ``context`` seconds of conditioned data on
each side of the window and the image covers exactly the window (no wrap-around of the FFT inside
it; the lowest frequency a Q-plane reaches is ``50 q / (2 pi duration)``, which 8 Hz needs at
least 12 s for).  Where the top frequency is beyond what the model rate resolves with that Q
(``(rate / 2) / (1 + sqrt(11) / q)``), the conditioned rows are upsampled by a power of two
first (their content stays below the model rate's Nyquist frequency).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from gwtwin.errors import GwtwinError
from gwtwin.signal.filters import resample
from gwtwin.signal.qtransform import qtransform_image

SQRT11 = math.sqrt(11.0)
BATCH = 8  # windows transformed at once (memory ~ BATCH x rows x duration x rate x 16 bytes)


def transform_rate(cfg, model_rate: float) -> float:
    """Lowest power-of-two multiple of the model rate whose Q-tiles reach ``frange[1]``."""
    qmin, fhigh = cfg.qimage.qrange[0], cfg.qimage.frange[1]
    rate = model_rate
    while (rate / 2) / (1 + SQRT11 / qmin) < fhigh:
        rate *= 2
        if rate > 64 * model_rate:
            raise GwtwinError(f"qimage frange top {fhigh:g} Hz is out of reach")
    return rate


def qimage_axes(cfg, model_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel frequencies (Hz, log-spaced) and times from the window start (s)."""
    q = cfg.qimage
    freqs = np.geomspace(q.frange[0], q.frange[1], q.nfreq)
    times = np.arange(q.ntime) * (cfg.window_duration / q.ntime)
    return freqs, times


def qimage_tiles(witness, target, truth, offsets, size, spec, cfg) -> dict[str, torch.Tensor]:
    """Images ``witness [N, C, F, Tq]``, ``target [N, F, Tq]`` (and ``truth``) of the windows
    starting at sample ``offsets`` of the conditioned span."""
    q = cfg.qimage
    rate = spec.sample_rate
    ctx = int(round(q.context * rate))
    qrate = transform_rate(cfg, rate)
    rows = [witness.to(torch.float64), target.to(torch.float64).unsqueeze(0)]
    if truth is not None:
        rows.append(truth.to(torch.float64).unsqueeze(0))
    series = torch.cat(rows)  # [R, L]
    tres = cfg.window_duration / q.ntime
    outseg = (q.context, q.context + cfg.window_duration - tres / 2)
    images = []
    for k in range(0, len(offsets), BATCH):
        batch = torch.stack([series[:, o - ctx : o + size + ctx] for o in offsets[k : k + BATCH]])
        if batch.shape[-1] != size + 2 * ctx:
            raise GwtwinError("a window's Q-transform context reaches beyond the conditioned data")
        if qrate != rate:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                batch = resample(batch, rate, qrate)
        img = qtransform_image(
            batch,
            qrate,
            qrange=q.qrange,
            frange=q.frange,
            norm="median",
            outseg=outseg,
            tres=tres,
            nfreq=q.nfreq,
            logf=True,
        )
        energy = img.energy[..., : q.ntime, :]  # [n, R, Tq, F]
        if energy.shape[-2] != q.ntime:
            raise GwtwinError(f"Q-image has {energy.shape[-2]} time bins, expected {q.ntime}")
        images.append(energy.transpose(-1, -2).to(torch.float32))  # [n, R, F, Tq]
    allimg = torch.cat(images)
    nwit = witness.shape[0]
    out = {"witness": allimg[:, :nwit], "target": allimg[:, nwit]}
    if truth is not None:
        out["truth"] = allimg[:, nwit + 1]
    return out
