"""TensorBoard image panels: real / predicted / residual Q-spectrograms of validation glitches.

For the time-domain family each panel row is one of the loudest validation glitch windows: the
Q-image (:func:`gwtwin.signal.qtransform_image`, normalised energy) of the whitened strain target,
of the prediction, and of the residual ``target - prediction`` (what cleaning leaves).  The
prediction alone has no noise to normalise against, so it is drawn on a seeded unit-variance
Gaussian floor (``prediction + n``): all three images then share one energy scale (noise ~1).
For the Q-image family the rows are the real image, the predicted image and their absolute
difference (Glitchflow's "denoised" image).
"""

from __future__ import annotations

import math

import lightning as L
import numpy as np
import torch


def _figure(rows, times, freqs, titles, vmax):
    from matplotlib.figure import Figure  # no pyplot: no global figure state or backend

    fig = Figure(figsize=(11, 2.6 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), 3, squeeze=False)
    for r, (images, label) in enumerate(rows):
        for c, img in enumerate(images):
            ax = axes[r, c]
            mesh = ax.pcolormesh(times, freqs, img, vmin=0, vmax=vmax, shading="auto")
            ax.set_title(f"{titles[c]} {label}", fontsize=8)
            if freqs[0] > 0:
                ax.set_yscale("log")
            if c == 0:
                ax.set_ylabel("frequency [Hz]")
            if r == len(rows) - 1:
                ax.set_xlabel("time [s]")
        fig.colorbar(mesh, ax=axes[r, :].tolist(), label="normalised energy", shrink=0.9)
    return fig


def timeseries_panels(net, windows, targets, labels, sample_rate: float, seed: int = 0):
    """Matplotlib figure for time-domain windows: ``windows [N, C, T]``, ``targets [N, T]``
    (full windows, whitened)."""
    from gwtwin.signal import qtransform_image

    with torch.no_grad():
        pred = net(windows).cpu().to(torch.float64)
    m = net.margin
    target = targets[:, m : targets.shape[-1] - m].to(torch.float64)
    gen = torch.Generator().manual_seed(seed)
    floor = torch.randn(target.shape, generator=gen, dtype=torch.float64)
    series = torch.cat([target, pred + floor, target - pred])  # [3N, T]
    duration = target.shape[-1] / sample_rate
    # the lowest frequency a Q plane resolves in `duration` is 50 q / (2 pi duration): pick the
    # largest Q (at most 32) that still reaches f_low
    f_low = 16.0
    q_max = max(4.0, min(32.0, 0.99 * 2 * math.pi * duration * f_low / 50))
    # and the highest below Nyquist at the smallest Q: (rate / 2) / (1 + sqrt(11) / q_min)
    f_high = min(500.0, 0.9 * sample_rate / 2 / (1 + math.sqrt(11) / 4.0))
    image = qtransform_image(
        series,
        sample_rate,
        qrange=(4.0, q_max),
        frange=(f_low, f_high),
        logf=True,
        nfreq=64,
        tres=duration / 256,
    )
    e = image.energy.numpy()  # [3N, time, freq]
    n = target.shape[0]
    rows = [((e[i].T, e[n + i].T, e[2 * n + i].T), labels[i]) for i in range(n)]
    times = np.asarray(image.times) - float(image.times[0])
    vmax = max(25.0, float(np.percentile(e[:n], 99.9)))
    titles = ("real", "predicted (+ noise floor)", "residual")
    return _figure(rows, times, np.asarray(image.frequencies), titles, vmax)


def qimage_panels(net, windows, targets, labels, frequencies=None, times=None):
    """Matplotlib figure for Q-image windows: real, predicted, ``|predicted - real|``."""
    with torch.no_grad():
        pred = net(windows).cpu().numpy()
    real = targets.cpu().numpy()
    rows = [((real[i], pred[i], np.abs(pred[i] - real[i])), labels[i]) for i in range(len(real))]
    if times is None or len(times) != real.shape[-1]:
        times = np.arange(real.shape[-1], dtype=float)
    if frequencies is None or len(frequencies) != real.shape[-2]:
        frequencies = np.arange(real.shape[-2], dtype=float)
    vmax = max(25.0, float(np.percentile(real, 99.9)))
    titles = ("real", "predicted", "|difference|")
    return _figure(rows, np.asarray(times), np.asarray(frequencies), titles, vmax)


class PanelCallback(L.Callback):
    """Adds the panel figure to every TensorBoard logger after validation epochs.

    Parameters
    ----------
    valid : SplitWindows
        Validation split; the ``n`` loudest glitch windows (by ``max_snr``) are drawn.
    kind : {"timeseries", "qimage"}
    sample_rate : float
        Model rate, Hz (time series).
    every_n_epochs : int
    frequencies, times : array, optional
        Q-image axes (Hz, s).
    """

    def __init__(
        self,
        valid,
        kind: str,
        sample_rate: float,
        n: int = 3,
        every_n_epochs: int = 1,
        frequencies=None,
        times=None,
        seed: int = 0,
    ):
        super().__init__()
        order = np.argsort(-valid.max_snr.numpy(), kind="stable")
        glitchy = [int(i) for i in order if bool(valid.glitch[i])][:n]
        self.indices = glitchy or [int(i) for i in order[:n]]
        self.valid = valid
        self.kind = kind
        self.sample_rate = sample_rate
        self.every = every_n_epochs
        self.frequencies = frequencies
        self.times = times
        self.seed = seed

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not self.indices or trainer.global_rank != 0:
            return
        if trainer.current_epoch % self.every:
            return
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers:
            return
        items = [self.valid[i] for i in self.indices]
        windows = torch.stack([it["witness"] for it in items]).to(pl_module.device)
        targets = torch.stack([it["target"] for it in items])
        labels = [f"(window {i}, SNR {float(self.valid.max_snr[i]):.0f})" for i in self.indices]
        net = pl_module.net
        was_training = net.training
        net.eval()
        try:
            if self.kind == "qimage":
                fig = qimage_panels(net, windows, targets, labels, self.frequencies, self.times)
            else:
                fig = timeseries_panels(net, windows, targets, labels, self.sample_rate, self.seed)
        finally:
            net.train(was_training)
        for lg in loggers:
            lg.experiment.add_figure("validation/qspectrograms", fig, trainer.current_epoch)
