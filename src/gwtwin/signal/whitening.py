"""Whitening (divide by the ASD) and its inverse, colouring, with finite-duration FIR filters.

The whitening filter is gwpy's (``TimeSeries.whiten``, inverse spectrum truncation,
arXiv:gr-qc/0509116), reproduced step for step so that the two agree to rounding:

1. the ASD is interpolated linearly onto the ``nfft``-point rfft grid (``df = sample_rate / nfft``;
   by default ``nfft`` is the data length, as in gwpy, which interpolates onto ``1 / duration``);
2. the transfer function ``1 / ASD`` has its first ``highpass / df`` bins zeroed and 5 bins tapered
   (Tukey) at each end;
3. its impulse response (``irfft``) is truncated to ``ntaps = int(fduration * sample_rate)`` taps
   with the halves of a Hann window (``scipy.signal.get_window``) and rolled into a causal FIR;
4. the input is detrended (its mean removed, gwpy's default), the first and last
   ``ceil(ntaps / 2)`` samples are **tapered** with the halves of the same Hann window (so the
   filter does not ring on the step at the ends), and the FIR is applied by FFT convolution with
   the output aligned on the input ("same");
5. the output is multiplied by ``sqrt(2 / sample_rate)``, so Gaussian noise with that PSD comes
   out with unit variance.

Edges: the first and last :func:`whiten_edge_size` samples (``fduration / 2`` seconds) of the output
are corrupted (the input there is tapered, as gwpy does, so that the filter does not ring on the
step at the ends) and should be dropped; ``whiten_block(..., crop=True)`` does that and moves the
GPS start accordingly.  The next ``fduration / 2`` seconds are still touched by the FIR's tail
reaching into the taper; ``whiten_edge_size(..., exact=True)`` (~``fduration``) is the span beyond
which the output is independent of where the data start and end.

Bins where the PSD is exactly zero (a design curve below its low-frequency cut-off) carry no
information and get zero weight in the whitening filter; gwpy would return NaN there.

:func:`colour` applies the same construction with the transfer function ``ASD`` and divides by
``sqrt(2 / sample_rate)``: it puts a prediction made in whitened units back into strain units, and
``colour(whiten(x)) ~ x`` in the band where the ASD is smooth on the scale ``1 / fduration``.

Arithmetic is float64 whatever the input dtype (the FIR taps of a strain ASD are ~1e23 and the
products of float32 strain, ~1e-21, with them lose nothing in float64); the output has the input's
dtype.

Online use: the filter depends on the data length only through the interpolation grid; pass a
fixed ``nfft`` (e.g. ``fftlength * sample_rate``) to get the identical filter for every chunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gwtwin.data import Block
from gwtwin.errors import GwtwinError
from gwtwin.signal.spectral import (
    PSD,
    _as_tensor,
    _check_finite,
    _check_rate,
    _fftconvolve_same,
    _get_window,
    _interp,
    psd_block,
)

_TRANSFER_TAPER = 5  # bins tapered at each end of the transfer function (gwpy's default)


def fir_size(sample_rate: float, fduration: float) -> int:
    """Number of taps of the whitening FIR: ``int(fduration * sample_rate)`` (as gwpy)."""
    rate = _check_rate(sample_rate)
    try:
        value = float(fduration)
    except (TypeError, ValueError) as exc:
        raise GwtwinError(f"fduration must be a number of seconds, found {fduration!r}") from exc
    ntaps = int(value * rate)
    if not math.isfinite(value) or ntaps < 2:
        raise GwtwinError(
            f"fduration must be at least 2 samples ({2 / rate:g} s at {rate:g} Hz), "
            f"found {fduration!r} s"
        )
    return ntaps


def whiten_edge_size(sample_rate: float, fduration: float = 2.0, *, exact: bool = False) -> int:
    """Samples to drop at each end of a whitened (or coloured) series.

    Default: ``ceil(ntaps / 2)`` (``fduration / 2`` seconds), gwpy's "corrupted" span: the input
    tapered before filtering.  The FIR (lags up to ``ntaps / 2 - 1``) still reaches into that taper
    from the next ``ntaps / 2 - 1`` samples, which are slightly affected; ``exact=True`` gives
    ``ceil(ntaps / 2) + ntaps // 2 - 1`` (~``fduration`` seconds), beyond which the output does not
    depend on the edges at all (online chunks then equal the long span to rounding, given a fixed
    ``nfft`` and no detrending).
    """
    ntaps = fir_size(sample_rate, fduration)
    pad = math.ceil(ntaps / 2)
    return pad + ntaps // 2 - 1 if exact else pad


def _psd_grid(psd, rate: float, lead: tuple[int, ...] | None = None, name: str = "psd"):
    """``(freqs [F], values [..., F])`` float64 from a PSD, a ``(freqs, values)`` pair, or bare
    values on the grid ``0 .. rate / 2``; checks the grid against the data's Nyquist."""
    if isinstance(psd, PSD):
        if abs(psd.sample_rate - rate) > 1e-9 * rate:
            raise GwtwinError(
                f"sample rates do not match: the PSD describes data sampled at "
                f"{psd.sample_rate:g} Hz, the data are sampled at {rate:g} Hz"
            )
        freqs, values = psd.freqs, psd.values
    elif isinstance(psd, (tuple, list)) and len(psd) == 2:
        freqs, values = _as_tensor(psd[0], f"{name} freqs"), _as_tensor(psd[1], f"{name} values")
    else:
        values = _as_tensor(psd, name)
        freqs = torch.linspace(0.0, rate / 2, values.shape[-1], dtype=torch.float64)
    freqs = freqs.to(torch.float64)
    values = values.to(torch.float64)
    if freqs.ndim != 1 or values.shape[-1] != freqs.shape[0] or freqs.shape[0] < 2:
        raise GwtwinError(
            f"{name} values must have shape [..., {freqs.shape[-1]}] to match its frequencies "
            f"(at least 2), found values {tuple(values.shape)} and freqs {tuple(freqs.shape)}"
        )
    if not bool((freqs[1:] > freqs[:-1]).all()):
        raise GwtwinError(f"{name} frequencies must be increasing")
    nyquist = rate / 2
    df = float(freqs[-1] - freqs[-2])
    if abs(float(freqs[-1]) - nyquist) > 1e-6 * nyquist:
        raise GwtwinError(
            f"{name} frequency grid does not match the data: it ends at {float(freqs[-1]):g} Hz "
            f"(df={df:g} Hz) but the Nyquist frequency of the {rate:g} Hz data is {nyquist:g} Hz "
            "(was the PSD estimated at another sample rate?)"
        )
    bad = ~torch.isfinite(values) | (values < 0)
    if bool(bad.any()):
        raise GwtwinError(
            f"{name} values must be finite and non-negative, found {int(bad.sum())} that are not"
        )
    vlead = tuple(values.shape[:-1])
    try:
        if lead is not None:
            torch.broadcast_shapes(vlead, lead)
    except RuntimeError:
        raise GwtwinError(
            f"{name} has leading shape {vlead} (one PSD per row) but the data have {lead}; give "
            "one PSD, or one per channel in the data's order"
        ) from None
    return freqs, values


def design_fir(
    psd,
    sample_rate: float,
    fduration: float = 2.0,
    highpass: float | None = None,
    *,
    nfft: int,
    window="hann",
    inverse: bool = True,
    device=None,
) -> torch.Tensor:
    """The whitening FIR (``inverse=True``, transfer ``1/ASD``) or colouring FIR (``ASD``).

    Parameters
    ----------
    psd : PSD, ``(freqs, values)`` or values tensor ``[..., freq]`` on ``0 .. sample_rate/2``
        One-sided PSD, ``unit**2 / Hz``.
    sample_rate : float
        Rate of the data to filter, Hz.
    fduration : float
        Filter length, seconds.
    highpass : float, optional
        Frequency below which the transfer function is zeroed, Hz.
    nfft : int
        Size of the rfft grid the ASD is interpolated onto (gwpy: the data length).
    window : str, tuple or array
        Truncation window (length ``ntaps``).
    inverse : bool
        Whitening (``True``) or colouring (``False``) filter.

    Returns
    -------
    torch.Tensor, float64, shape ``[..., ntaps]``
        Taps, one filter per leading index of the PSD values.
    """
    rate = _check_rate(sample_rate)
    ntaps = fir_size(rate, fduration)
    if nfft < ntaps:
        raise GwtwinError(
            f"expected at least fduration={float(fduration):g} s ({ntaps} samples at {rate:g} Hz)"
            f" of data to build the FIR, got {nfft / rate:g} s ({nfft} samples)"
        )
    freqs, values = _psd_grid(psd, rate)
    if device is not None:
        freqs, values = freqs.to(device), values.to(device)
    df = rate / nfft
    grid = torch.arange(nfft // 2 + 1, dtype=torch.float64, device=freqs.device) * df
    asd = _interp(grid, freqs, values.sqrt())  # gwpy interpolates the ASD, linearly
    if inverse:
        transfer = torch.where(asd > 0, 1.0 / torch.where(asd > 0, asd, 1.0), 0.0)
    else:
        transfer = asd
    nbins = transfer.shape[-1]
    ncorner = 0
    if highpass:
        highpass = float(highpass)
        if not 0 < highpass < rate / 2:
            raise GwtwinError(
                f"highpass must be in (0, {rate / 2:g}) Hz (the Nyquist frequency of "
                f"{rate:g} Hz data), found {highpass:g} Hz"
            )
        ncorner = int(highpass / df)
    transfer = transfer.clone()
    transfer[..., :ncorner] = 0
    if nbins - ncorner > 0:  # gwpy's _truncate_transfer: Tukey(alpha=1) on 5 bins each side
        n = _TRANSFER_TAPER
        k = torch.arange(2 * n, dtype=torch.float64, device=transfer.device)
        taper = 0.5 * (1 - torch.cos(2 * math.pi * k / (2 * n - 1)))
        transfer[..., ncorner : ncorner + n] *= taper[: min(n, nbins - ncorner)]
        transfer[..., nbins - n :] *= taper[n:]
    impulse = torch.fft.irfft(transfer, n=nfft, dim=-1)
    # gwpy's _truncate_impulse + roll: keep lags -(ntaps/2 - 1) .. ntaps/2, Hann-tapered
    half = ntaps // 2
    win = _get_window(window, ntaps, torch.float64, impulse.device)
    impulse[..., :half] *= win[half:ntaps]
    impulse[..., nfft - half :] *= win[:half]
    impulse[..., half : nfft - half] = 0
    shift = int(ntaps / 2 - 1)
    return torch.roll(impulse, shift, dims=-1)[..., :ntaps]


def _apply_fir(x, psd, rate, fduration, highpass, window, nfft, inverse, detrend, name):
    x = _as_tensor(x, name)
    rate = _check_rate(rate)
    lead = tuple(x.shape[:-1])
    n = x.shape[-1]
    ntaps = fir_size(rate, fduration)
    if n < ntaps:
        raise GwtwinError(
            f"expected at least fduration={float(fduration):g} s ({ntaps} samples at {rate:g} Hz)"
            f" of data, got {n / rate:g} s ({n} samples)"
        )
    if detrend not in ("constant", None):
        raise GwtwinError(f"detrend must be 'constant' or None, found {detrend!r}")
    _check_finite(x, name)
    _psd_grid(psd, rate, lead)  # shape and grid checks before any work
    nfft = n if nfft is None else int(nfft)
    fir = design_fir(
        psd,
        rate,
        fduration,
        highpass,
        nfft=nfft,
        window=window,
        inverse=inverse,
        device=x.device,
    )
    data = x.to(torch.float64)
    if detrend == "constant":
        data = data - data.mean(dim=-1, keepdim=True)
    else:
        data = data.clone()
    pad = math.ceil(ntaps / 2)
    win = _get_window(window, ntaps, torch.float64, x.device)
    data[..., :pad] *= win[:pad]
    data[..., n - pad :] *= win[ntaps - pad :]
    rows = data.reshape(-1, n)
    if fir.numel() == ntaps:
        fir = fir.reshape(1, ntaps)  # one filter for every row
    else:
        fir = torch.broadcast_to(fir, (*lead, ntaps)).reshape(-1, ntaps)
    out = _fftconvolve_same(rows, fir)
    norm = math.sqrt(2.0 / rate)
    out = out * norm if inverse else out / norm
    return out.reshape(*lead, n).to(x.dtype)


def whiten(
    x,
    psd,
    sample_rate: float,
    fduration: float = 2.0,
    highpass: float | None = None,
    *,
    detrend: str | None = "constant",
    window="hann",
    nfft: int | None = None,
) -> torch.Tensor:
    """Whiten ``x`` with a ``fduration``-second FIR built from ``1 / ASD`` (gwpy's method).

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray, shape ``[..., time]``
        Samples (float32 or float64, CPU or GPU), e.g. strain.
    psd : PSD, ``(freqs, values)`` pair, or values ``[..., freq]`` on ``0 .. sample_rate / 2``
        One-sided PSD of ``x``, ``unit**2 / Hz``: one for all rows or one per row (broadcast
        against the leading dims of ``x``).  Its grid must end at the Nyquist frequency of ``x``.
    sample_rate : float
        Rate of ``x``, Hz.
    fduration : float
        Length of the whitening filter, seconds (default 2 s, gwpy's).
    highpass : float, optional
        Corner, Hz, below which the filter's transfer function is zeroed.
    detrend : {"constant", None}
        Remove the mean of each row first (gwpy's default).
    window : str, tuple or array
        Window truncating the filter and tapering the data edges (default Hann).
    nfft : int, optional
        rfft grid the ASD is interpolated onto; default the data length (as gwpy).  Give a fixed
        value for a filter that does not depend on the length of the chunk.

    Returns
    -------
    torch.Tensor, shape and dtype of ``x``
        Whitened data, dimensionless, unit variance for Gaussian noise with that PSD.  The first
        and last :func:`whiten_edge_size` samples are corrupted (see the module notes).
    """
    return _apply_fir(x, psd, sample_rate, fduration, highpass, window, nfft, True, detrend, "x")


def colour(
    x,
    psd,
    sample_rate: float,
    fduration: float = 2.0,
    highpass: float | None = None,
    *,
    detrend: str | None = None,
    window="hann",
    nfft: int | None = None,
) -> torch.Tensor:
    """Inverse of :func:`whiten`: filter whitened data with an FIR built from the ASD and divide
    by ``sqrt(2 / sample_rate)``, giving data in the PSD's units (e.g. strain).

    Same parameters, edges and conventions as :func:`whiten` (no detrending by default).
    """
    return _apply_fir(x, psd, sample_rate, fduration, highpass, window, nfft, False, detrend, "x")


def _block_psd(block: Block, psd, what: str):
    """PSD rows in the Block's channel order (by name when given a :class:`PSD`)."""
    if isinstance(psd, PSD):
        missing = [c for c in block.channels if c not in psd.channels]
        if missing:
            raise GwtwinError(
                f"the PSD has no estimate for channel(s) {missing} needed to {what}; it holds "
                f"{list(psd.channels)}"
            )
        return psd.select(block.channels)
    return psd


def whiten_block(
    block: Block,
    psd: PSD | None = None,
    fftlength: float = 4.0,
    overlap: float | None = None,
    average: str = "median",
    fduration: float = 2.0,
    highpass: float | None = None,
    *,
    crop: bool = False,
    nfft: int | None = None,
) -> Block:
    """Whiten every channel of a Block (see :func:`whiten`).

    Parameters
    ----------
    psd : PSD, optional
        PSD per channel (matched by channel name); default: estimated from the Block itself with
        :func:`~gwtwin.signal.spectral.psd_block` (``fftlength``, ``overlap``, ``average``).
    crop : bool
        Drop the :func:`whiten_edge_size` corrupted samples at each end (GPS start moved).

    Returns
    -------
    Block
        Dimensionless whitened data (units ``""``), history extended.
    """
    _check_finite(block.data, "block data", block.channels)
    if psd is None:
        psd = psd_block(block, fftlength, overlap, average)
        source = f"PSD {average} fftlength={float(fftlength):g} s from the data"
    else:
        source = f"PSD {getattr(psd, 'average', 'given')}"
    values = _block_psd(block, psd, "whiten")
    out = whiten(block.data, values, block.sample_rate, fduration, highpass, nfft=nfft)
    step = f"whiten fduration={float(fduration):g} s" + (
        f" highpass={float(highpass):g} Hz" if highpass else ""
    )
    result = block.replace(
        data=out, units=("",) * len(block.channels), history=(*block.history, f"{step} ({source})")
    )
    if crop:
        edge = whiten_edge_size(block.sample_rate, fduration)
        result = result.isel(edge, block.size - edge)
    return result


def colour_block(
    block: Block,
    psd: PSD,
    fduration: float = 2.0,
    highpass: float | None = None,
    *,
    crop: bool = False,
    nfft: int | None = None,
) -> Block:
    """Colour every channel of a whitened Block with the ASD of ``psd`` (see :func:`colour`).

    Units become the PSD's data units (e.g. ``"strain"``).
    """
    if not isinstance(psd, PSD):
        raise GwtwinError(f"psd must be a gwtwin.signal.PSD, found {type(psd).__name__}")
    _check_finite(block.data, "block data", block.channels)
    matched = _block_psd(block, psd, "colour")
    out = colour(block.data, matched, block.sample_rate, fduration, highpass, nfft=nfft)
    result = block.replace(
        data=out,
        units=matched.units,
        history=(*block.history, f"colour fduration={float(fduration):g} s"),
    )
    if crop:
        edge = whiten_edge_size(block.sample_rate, fduration)
        result = result.isel(edge, block.size - edge)
    return result


@dataclass(frozen=True)
class Whitener:
    """A fixed whitening filter (reference PSD, rate, filter length, high-pass corner) applied to
    float64 arrays: the one whitening that veto and evaluation compare raw and cleaned strain in.

    ``psd`` is a :class:`~gwtwin.signal.spectral.PSD` or ``(freqs, values)``; ``sample_rate``
    Hz; ``fduration`` s (the filter length); ``highpass`` Hz or None. ``edge_size`` samples at
    each end are corrupted by the filter (:func:`whiten_edge_size`).
    """

    psd: object  # gwtwin.signal.spectral.PSD or (freqs, values)
    sample_rate: float
    fduration: float = 2.0
    highpass: float | None = 10.0

    def __call__(self, x) -> np.ndarray:
        x = torch.as_tensor(np.asarray(x, dtype=np.float64))
        out = whiten(
            x, self.psd, self.sample_rate, self.fduration, self.highpass, detrend=None
        ).numpy()
        return out

    @property
    def edge_size(self) -> int:
        return whiten_edge_size(self.sample_rate, self.fduration)
