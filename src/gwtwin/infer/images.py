"""Glitch panels: real / predicted / cleaned Q-spectrograms and time series of one glitch.

The inputs are whitened (unit-variance noise), so the three Q-images share one energy scale.
The prediction alone holds no noise to normalise against, so its image is drawn on a seeded
unit-variance Gaussian floor (as the training panels do): all three images then share one energy
scale (noise ~1) and the prediction's pixels read as ``1 + SNR^2 / 2`` of what the witnesses
explain.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def glitch_figure(w_raw, w_clean, rate: float, row: dict, category: str, veto):
    """Matplotlib figure: three Q-images (top) and the three time series (bottom).

    ``w_raw`` and ``w_clean`` are whitened strain centred on the glitch (equal lengths).
    """
    from matplotlib.figure import Figure  # no pyplot: no global figure state or backend

    from gwtwin.signal.qimage import qtransform_image

    w_raw = np.asarray(w_raw, np.float64)
    w_clean = np.asarray(w_clean, np.float64)
    floor = np.random.default_rng(0).standard_normal(w_raw.size)
    series = np.stack([w_raw, w_raw - w_clean, w_clean])
    imaged = series.copy()
    imaged[1] += floor
    duration = series.shape[-1] / rate
    f_low = max(float(veto.frange[0]), 16.0)
    q_max = max(4.0, min(float(veto.qrange[1]), 0.99 * 2 * math.pi * duration * f_low / 50))
    f_high = min(float(veto.frange[1]), 0.9 * rate / 2 / (1 + math.sqrt(11) / 4.0))
    image = qtransform_image(
        torch.from_numpy(imaged),
        rate,
        qrange=(float(veto.qrange[0]), q_max),
        frange=(f_low, f_high),
        logf=True,
        nfreq=96,
        tres=duration / 400,
    )
    energy = image.energy.numpy()
    times = np.asarray(image.times) - duration / 2
    freqs = np.asarray(image.frequencies)
    vmax = 25.0  # the usual Omicron / gwpy scale: loud glitches saturate and show their extent
    titles = ("raw", "predicted from witnesses (+ unit noise floor)", "cleaned")
    fig = Figure(figsize=(13, 6), layout="constrained")
    axes = fig.subplots(2, 3)
    t = (np.arange(series.shape[-1]) / rate) - duration / 2
    for c in range(3):
        ax = axes[0, c]
        mesh = ax.pcolormesh(times, freqs, energy[c].T, vmin=0, vmax=vmax, shading="auto")
        ax.set_yscale("log")
        ax.set_title(titles[c], fontsize=9)
        ax.set_xlabel("time from glitch [s]")
        if c == 0:
            ax.set_ylabel("frequency [Hz]")
        ax = axes[1, c]
        ax.plot(t, series[c], lw=0.4, color=("k", "C1", "C0")[c])
        ax.set_xlim(t[0], t[-1])
        ax.set_xlabel("time from glitch [s]")
        if c == 0:
            ax.set_ylabel("whitened strain")
    fig.colorbar(mesh, ax=axes[0, :].tolist(), label="normalised energy", shrink=0.9)
    witness = f", witness {row['witness']}" if row.get("witness") else ""
    outcome = row.get("outcome")
    label = f"{category} ({outcome})" if outcome and outcome != category else category
    power = ""
    if row.get("power_removed") is not None:  # metadata of an older gwtwin lacks it
        power = (
            f"\nwhitened power {row['power_before']:.0f} -> {row['power_after']:.0f} "
            f"({row['removed_sigma']:+.1f} sigma, {row['change']}), attempted SNR "
            f"{row['attempted_snr']:.1f}"
        )
    fig.suptitle(
        f"GPS {row['gps']:.3f}  {label}: SNR {row['snr_before']:.1f} -> "
        f"{row['snr_after']:.1f}, predicted SNR {row['predicted_snr']:.1f}, residual SNR^2 "
        f"{row['residual_snr2']:.1f}, area {row['residual_area']}{witness}{power}",
        fontsize=10,
    )
    return fig
