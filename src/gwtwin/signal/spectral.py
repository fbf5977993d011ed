"""Power spectral density by Welch's method, batched over channels, in torch.

:func:`welch` reproduces :func:`scipy.signal.welch` (and so gwpy's ``TimeSeries.psd``): segments of
``fftlength`` seconds overlapping by ``overlap`` seconds, each detrended by its mean ("constant",
scipy's default), multiplied by a window (periodic Hann by default, as
:func:`scipy.signal.get_window` builds it), one-sided density scaling (``unit**2 / Hz``, the
periodogram doubled except at DC and, for an even segment, Nyquist), then the mean or the median of
the periodograms.  The median is divided by scipy's ``_median_bias`` (arXiv:gr-qc/0509116, as
scipy and gwpy do) so that it estimates the mean for Gaussian noise.

Arithmetic is float64 by default whatever the input dtype: a strain PSD (~1e-46 / Hz) is below
the smallest normal float32 (~1e-38), so PSD values are returned in float64 unless ``dtype`` says
otherwise.

The module also holds the input checks shared by :mod:`gwtwin.signal.whitening` and
:mod:`gwtwin.signal.filters` (private helpers prefixed with ``_``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gwtwin.data import Block
from gwtwin.data._quiet import quiet_gwpy
from gwtwin.errors import GwtwinError

AVERAGES = ("mean", "median")

# Work on at most this many float64 samples at once (segments x rows x fftlength) so that a long
# multi-channel span does not hold every windowed segment in memory: 2**24 values = 128 MiB.
_CHUNK_VALUES = 2**24


# -- shared input checks ------------------------------------------------------------------------
def _as_tensor(x, name: str = "x") -> torch.Tensor:
    """A real floating tensor ``[..., time]`` from a tensor, numpy array or sequence (no copy when
    possible).  Integer input becomes float64."""
    if isinstance(x, Block):
        raise GwtwinError(
            f"{name} is a Block; pass block.data here, or use the *_block function for Blocks"
        )
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(x))
    else:
        t = torch.as_tensor(np.asarray(x))
    if t.is_complex():
        raise GwtwinError(f"{name} must be real, found dtype {t.dtype}")
    if t.ndim == 0:
        raise GwtwinError(f"{name} must have shape [..., time], found a scalar")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    return t


def _check_rate(sample_rate, name: str = "sample_rate") -> float:
    try:
        rate = float(getattr(sample_rate, "value", sample_rate))
    except (TypeError, ValueError) as exc:
        raise GwtwinError(f"{name} must be a number of Hz, found {sample_rate!r}") from exc
    if not math.isfinite(rate) or rate <= 0:
        raise GwtwinError(f"{name} must be a positive number of Hz, found {sample_rate!r}")
    return rate


def _check_finite(x: torch.Tensor, name: str = "x", channels: Sequence[str] | None = None):
    """Raise naming the rows (or channels) that hold NaN or inf."""
    bad = ~torch.isfinite(x)
    if not bool(bad.any()):
        return
    counts = bad.reshape(-1, x.shape[-1]).sum(dim=-1).tolist()
    rows = [(i, n) for i, n in enumerate(counts) if n]
    if channels is not None and len(channels) == len(counts):
        where = ", ".join(f"{channels[i]} ({n} samples)" for i, n in rows[:10])
        raise GwtwinError(
            f"{name} must be finite: NaN or inf found in channel(s) {where}"
            + (f" and {len(rows) - 10} more channels" if len(rows) > 10 else "")
        )
    where = ", ".join(f"row {i} ({n} samples)" for i, n in rows[:10])
    raise GwtwinError(
        f"{name} must be finite: NaN or inf found in {where} of data shaped "
        f"{tuple(x.shape)} [..., time]"
    )


def _seconds_to_size(
    seconds, rate: float, name: str, *, allow_zero: bool = False, tol: float = 1e-6
) -> int:
    """An exact number of samples for a duration in seconds, or an error naming both."""
    try:
        value = float(seconds)
    except (TypeError, ValueError) as exc:
        raise GwtwinError(f"{name} must be a number of seconds, found {seconds!r}") from exc
    size = value * rate
    nearest = round(size)
    if not math.isfinite(value) or value < 0 or (nearest == 0 and not allow_zero):
        raise GwtwinError(f"{name} must be a positive number of seconds, found {seconds!r}")
    if abs(size - nearest) > tol * max(1.0, abs(size)):
        raise GwtwinError(
            f"{name}={value:g} s is not a whole number of samples at {rate:g} Hz ({size:g} samples)"
        )
    return int(nearest)


def _get_window(window, size: int, dtype: torch.dtype, device) -> torch.Tensor:
    """A window as :func:`scipy.signal.get_window` builds it (periodic), as a tensor."""
    from scipy.signal import get_window

    if isinstance(window, (str, tuple)):
        try:
            arr = get_window(window, size)
        except ValueError as exc:
            raise GwtwinError(f"unknown window {window!r}: {exc}") from exc
        return torch.as_tensor(arr, dtype=dtype, device=device)
    win = _as_tensor(window, "window")
    if win.ndim != 1 or win.shape[0] != size:
        raise GwtwinError(
            f"window array must have shape [{size}] (one value per sample), found "
            f"{tuple(win.shape)}"
        )
    return win.to(dtype=dtype, device=device)


def _median_bias(n: int) -> float:
    """Ratio of the median to the mean of ``n`` chi^2_2 periodograms (scipy's ``_median_bias``)."""
    ii_2 = 2 * np.arange(1.0, (n - 1) // 2 + 1)
    return float(1 + np.sum(1.0 / (ii_2 + 1) - 1.0 / ii_2))


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Linear interpolation like :func:`numpy.interp`, batched over the leading dims of ``fp``.

    ``xp`` is increasing ``[n]``; ``fp`` is ``[..., n]``; ``x`` is ``[m]``; values outside
    ``xp`` take the end values.
    """
    idx = torch.searchsorted(xp, x, right=True).clamp(1, xp.shape[0] - 1)
    x0, x1 = xp[idx - 1], xp[idx]
    w = ((x - x0) / (x1 - x0)).clamp(0.0, 1.0)
    f0, f1 = fp[..., idx - 1], fp[..., idx]
    return f0 + (f1 - f0) * w


def _fftconvolve_same(x: torch.Tensor, fir: torch.Tensor) -> torch.Tensor:
    """``scipy.signal.fftconvolve(x, fir, mode="same")`` along the last dim, batched: ``x``
    ``[B, n]``, ``fir`` ``[B or 1, ntaps]``.  Overlap-save in blocks so a long span never needs one
    FFT of its whole length."""
    n, ntaps = x.shape[-1], fir.shape[-1]
    start = (ntaps - 1) // 2  # "same" keeps full[start : start + n]
    nfft = 1 << max(12, math.ceil(math.log2(8 * ntaps)))
    nfft = min(nfft, 1 << math.ceil(math.log2(n + ntaps - 1)))
    step = nfft - ntaps + 1
    nblocks = math.ceil((start + n) / step)
    total = (nblocks - 1) * step + nfft
    xp = torch.nn.functional.pad(x, (ntaps - 1, total - (ntaps - 1) - n))
    frames = xp.unfold(-1, nfft, step)  # [B, nblocks, nfft]
    spec = torch.fft.rfft(frames, dim=-1) * torch.fft.rfft(fir, n=nfft, dim=-1).unsqueeze(-2)
    valid = torch.fft.irfft(spec, n=nfft, dim=-1)[..., ntaps - 1 :]  # full[j*step + i]
    full = valid.reshape(*x.shape[:-1], nblocks * step)
    return full[..., start : start + n]


# -- Welch -----------------------------------------------------------------------------------
def welch(
    x,
    sample_rate: float,
    fftlength: float,
    overlap: float | None = None,
    average: str = "median",
    window="hann",
    *,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One-sided power spectral density of ``x`` by Welch's method.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray, shape ``[..., time]``
        Samples; any leading (batch/channel) dims; float32 or float64, CPU or GPU.
    sample_rate : float
        Sampling rate of ``x``, Hz.
    fftlength : float
        Length of each segment, seconds (a whole number of samples).
    overlap : float, optional
        Overlap of consecutive segments, seconds; default ``fftlength / 2`` (scipy's default).
    average : {"median", "mean"}
        How periodograms are averaged; the median is bias-corrected like scipy and gwpy.
    window : str, tuple or array
        Window for each segment (:func:`scipy.signal.get_window` spelling); default Hann.
    dtype : torch.dtype
        Arithmetic and output dtype (default float64, see the module notes).

    Returns
    -------
    freqs : torch.Tensor, shape ``[fftlength * sample_rate // 2 + 1]``
        Frequencies, Hz (``0 .. sample_rate / 2``).
    psd : torch.Tensor, shape ``[..., freq]``
        PSD, ``unit(x)**2 / Hz``.

    Raises
    ------
    GwtwinError
        For data shorter than one segment, NaN/inf in ``x``, overlap not shorter than fftlength,
        an unknown ``average``.
    """
    x = _as_tensor(x)
    rate = _check_rate(sample_rate)
    nperseg, noverlap = _welch_sizes(rate, fftlength, overlap)
    _check_average(average)
    _check_length(x.shape[-1], rate, fftlength, nperseg)
    _check_finite(x)
    return _welch(x, rate, nperseg, noverlap, average, window, dtype)


def _welch_sizes(rate: float, fftlength, overlap) -> tuple[int, int]:
    nperseg = _seconds_to_size(fftlength, rate, "fftlength")
    if overlap is None:
        noverlap = nperseg // 2
    else:
        noverlap = _seconds_to_size(overlap, rate, "overlap", allow_zero=True)
    if noverlap >= nperseg:
        raise GwtwinError(
            f"overlap must be shorter than fftlength={float(fftlength):g} s, "
            f"found overlap={float(overlap):g} s"
        )
    return nperseg, noverlap


def _check_average(average: str) -> None:
    if average not in AVERAGES:
        raise GwtwinError(f"average must be one of {list(AVERAGES)}, found {average!r}")


def _check_length(n: int, rate: float, fftlength, nperseg: int) -> None:
    if n < nperseg:
        raise GwtwinError(
            f"expected at least {nperseg / rate:g} s ({nperseg} samples at {rate:g} Hz) of data "
            f"for fftlength={float(fftlength):g} s, got {n / rate:g} s ({n} samples)"
        )


def _welch(x, rate, nperseg, noverlap, average, window, dtype):
    device = x.device
    lead = x.shape[:-1]
    rows = x.reshape(-1, x.shape[-1])
    step = nperseg - noverlap
    nseg = (rows.shape[-1] - noverlap) // step
    win = _get_window(window, nperseg, dtype, device)
    scale = 1.0 / (rate * float((win * win).sum()))
    nfreq = nperseg // 2 + 1
    periodograms = torch.empty(
        (rows.shape[0], nseg, nfreq) if average == "median" else (rows.shape[0], nfreq),
        dtype=dtype,
        device=device,
    )
    if average == "mean":
        periodograms.zero_()
    per_chunk = max(1, _CHUNK_VALUES // max(1, rows.shape[0] * nperseg))
    for s0 in range(0, nseg, per_chunk):
        s1 = min(nseg, s0 + per_chunk)
        seg = rows[:, s0 * step : (s1 - 1) * step + nperseg].to(dtype).unfold(-1, nperseg, step)
        seg = seg - seg.mean(dim=-1, keepdim=True)
        spec = torch.fft.rfft(seg * win, dim=-1)
        power = spec.real.square() + spec.imag.square()
        if average == "median":
            periodograms[:, s0:s1] = power
        else:
            periodograms += power.sum(dim=1)
    if average == "mean":
        psd = periodograms / nseg
    else:
        psd = _median(periodograms.transpose(1, 2)) / _median_bias(nseg)
    psd = psd * scale
    # one-sided: double every bin but DC and (even segments) Nyquist
    last = nfreq - 1 if nperseg % 2 == 0 else nfreq
    psd[:, 1:last] *= 2.0
    freqs = torch.arange(nfreq, dtype=dtype, device=device) * (rate / nperseg)
    return freqs, psd.reshape(*lead, nfreq)


def _median(values: torch.Tensor) -> torch.Tensor:
    """Median over the last dim, averaging the two middle values for an even count (numpy's
    definition; :func:`torch.median` returns the lower one)."""
    n = values.shape[-1]
    if n % 2:
        return values.median(dim=-1).values
    lower = values.kthvalue(n // 2, dim=-1).values
    upper = values.kthvalue(n // 2 + 1, dim=-1).values
    return 0.5 * (lower + upper)


# -- the PSD object ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PSD:
    """A one-sided PSD per channel, with its frequency grid and provenance.

    Parameters
    ----------
    freqs : torch.Tensor, shape ``[freq]``
        Increasing frequencies, Hz (for a Welch estimate ``0 .. sample_rate / 2``).
    values : torch.Tensor, shape ``[channel, freq]``
        PSD, ``unit**2 / Hz`` (float64 by default).
    channels : tuple of str
        One name per row of ``values``.
    sample_rate : float
        Rate of the data the PSD describes, Hz (Nyquist is ``sample_rate / 2``).
    fftlength : float
        Welch segment length, seconds (the resolution is ``1 / fftlength`` Hz).
    units : tuple of str
        Unit of each channel's *data* (the PSD is in ``unit**2 / Hz``); empty when unknown.
    average : str
        How it was estimated ("median", "mean", or e.g. "model" for a design curve).
    """

    freqs: torch.Tensor
    values: torch.Tensor
    channels: tuple[str, ...]
    sample_rate: float
    fftlength: float
    units: tuple[str, ...] = ()
    average: str = "median"

    def __post_init__(self) -> None:
        freqs = _as_tensor(self.freqs, "freqs")
        values = _as_tensor(self.values, "values")
        if values.ndim == 1:
            values = values.unsqueeze(0)
        channels = (self.channels,) if isinstance(self.channels, str) else tuple(self.channels)
        if freqs.ndim != 1 or values.ndim != 2 or values.shape[-1] != freqs.shape[0]:
            raise GwtwinError(
                f"PSD values must have shape [channel, {freqs.shape[-1]}] to match freqs "
                f"[{freqs.shape[-1]}], found values {tuple(values.shape)} and freqs "
                f"{tuple(freqs.shape)}"
            )
        if len(channels) != values.shape[0]:
            raise GwtwinError(
                f"PSD has {values.shape[0]} rows of values but {len(channels)} channel names"
            )
        units = tuple(self.units) if self.units else ("",) * len(channels)
        object.__setattr__(self, "freqs", freqs)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "sample_rate", _check_rate(self.sample_rate))
        object.__setattr__(self, "fftlength", float(self.fftlength))

    @property
    def asd(self) -> torch.Tensor:
        """Amplitude spectral density ``[channel, freq]``, ``unit / sqrt(Hz)``."""
        return self.values.sqrt()

    @property
    def df(self) -> float:
        """Frequency spacing, Hz (of the first two bins)."""
        return float(self.freqs[1] - self.freqs[0])

    def __getitem__(self, channel: str) -> torch.Tensor:
        """The PSD of one channel, by name."""
        return self.values[self._index(channel)]

    def _index(self, channel: str) -> int:
        try:
            return self.channels.index(channel)
        except ValueError:
            raise GwtwinError(
                f"channel {channel!r} is not in this PSD; it holds {list(self.channels)}"
            ) from None

    def select(self, channels: Sequence[str]) -> PSD:
        """A PSD with only the given channels, in the given order."""
        channels = [channels] if isinstance(channels, str) else list(channels)
        idx = [self._index(c) for c in channels]
        return PSD(
            self.freqs,
            self.values[idx],
            tuple(channels),
            self.sample_rate,
            self.fftlength,
            tuple(self.units[i] for i in idx),
            self.average,
        )

    def interpolate(self, freqs) -> PSD:
        """The PSD linearly interpolated (in PSD, like :func:`numpy.interp`) onto ``freqs`` (Hz).

        Frequencies outside this PSD's grid take its end values.
        """
        target = _as_tensor(freqs, "freqs").to(self.freqs.dtype).to(self.freqs.device)
        if target.ndim != 1:
            raise GwtwinError(f"freqs must be 1-D, found shape {tuple(target.shape)}")
        values = _interp(target, self.freqs, self.values)
        return PSD(
            target,
            values,
            self.channels,
            self.sample_rate,
            self.fftlength,
            self.units,
            self.average,
        )

    def to(self, *args, **kwargs) -> PSD:
        """Move or cast freqs and values like :meth:`torch.Tensor.to`."""
        return PSD(
            self.freqs.to(*args, **kwargs),
            self.values.to(*args, **kwargs),
            self.channels,
            self.sample_rate,
            self.fftlength,
            self.units,
            self.average,
        )

    def to_frequencyseries(self, channel: str | None = None, *, asd: bool = False):
        """One channel as a :class:`gwpy.frequencyseries.FrequencySeries` (PSD, or ASD).

        ``channel`` may be omitted for a single-channel PSD.  gwpy needs a uniform grid.
        """
        with quiet_gwpy():  # gwpy restyles matplotlib on first import
            from gwpy.frequencyseries import FrequencySeries

        if channel is None:
            if len(self.channels) != 1:
                raise GwtwinError(
                    f"this PSD holds {len(self.channels)} channels; name one of "
                    f"{list(self.channels)}"
                )
            channel = self.channels[0]
        i = self._index(channel)
        values = self.values[i].detach().cpu().double().numpy()
        unit = self.units[i] or ""
        if asd:
            values = np.sqrt(values)
            unit = f"{unit} / Hz(1/2)" if unit else "1 / Hz(1/2)"
        else:
            unit = f"{unit}^2 / Hz" if unit else "1 / Hz"
        try:
            from astropy.units import Unit

            Unit(unit)
        except ValueError:
            unit = None  # an unknown unit name is dropped rather than failing the conversion
        freqs = self.freqs.detach().cpu().double().numpy()
        return FrequencySeries(
            values,
            f0=float(freqs[0]),
            df=float(freqs[1] - freqs[0]),
            unit=unit,
            name=channel,
            channel=channel,
        )

    def __repr__(self) -> str:
        return (
            f"PSD({len(self.channels)} channels x {self.freqs.shape[0]} freqs, "
            f"{self.sample_rate:g} Hz, fftlength={self.fftlength:g} s, {self.average})"
        )


def psd_block(
    block: Block,
    fftlength: float,
    overlap: float | None = None,
    average: str = "median",
    window="hann",
    *,
    dtype: torch.dtype = torch.float64,
) -> PSD:
    """The Welch PSD of every channel of a :class:`~gwtwin.data.Block` (see :func:`welch`).

    Raises
    ------
    GwtwinError
        As :func:`welch`; NaN/inf are reported by channel name.
    """
    rate = block.sample_rate
    nperseg, noverlap = _welch_sizes(rate, fftlength, overlap)
    _check_average(average)
    _check_length(block.size, rate, fftlength, nperseg)
    _check_finite(block.data, "block data", block.channels)
    freqs, values = _welch(block.data, rate, nperseg, noverlap, average, window, dtype)
    return PSD(freqs, values, block.channels, rate, float(fftlength), block.units, average)
