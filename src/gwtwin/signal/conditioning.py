"""Witness and strain conditioning for the witness-to-strain models, fitted once and stored.

A :class:`ConditioningSpec` says exactly how raw frame data become model inputs and targets, so
training, offline cleaning and the online service condition identically and refuse data that do
not match (a missing channel, channels in another order, a channel at another sample rate):

- **strain** (the target): resampled to the model rate (``sample_rate``, default 1024 Hz), then
  whitened with gwpy's finite-duration FIR (:func:`gwtwin.signal.whiten`) built from the stored
  strain PSD (median Welch of the training span at the model rate) with a fixed ``nfft``, so the
  filter does not depend on the chunk length.  :func:`uncondition_strain` is the inverse: colour
  with the same PSD filter and resample back to the strain's native rate, giving a prediction in
  strain units that the cleaning step subtracts from raw strain.
- **witnesses** (the inputs) are *not* whitened: their low-frequency content (a slow optic
  motion, an angular drift) is what drives the coupling.  Each is resampled from its native rate
  to the model rate and standardised (mean and standard deviation fitted on training data).
  Channels whose unit is a length (m, um, nm...) also get the scattered-light fringe features
  ``sin(4 pi n x / lambda)``, ``cos(4 pi n x / lambda)``, ``n = 1 .. harmonics``, computed from
  ``x`` (in metres) *after* resampling to the model rate, where the fringe (up to
  ``2 n max|dx/dt| / lambda``, ~120 Hz) is still resolved.

Why the fringe features: scattered light recombining with the main beam adds a phase-modulated
term ``A sin(4 pi (x0 + x(t)) / lambda + phi)`` to strain (``n`` bounces multiply the phase by
``n``), with an unknown static path ``x0``.  Expanding,
``sin(4 pi (x0 + x) / lambda) = cos(4 pi x0 / lambda) sin(4 pi x / lambda)
+ sin(4 pi x0 / lambda) cos(4 pi x / lambda)``, so with the ``sin``/``cos`` pair as inputs the
unknown ``x0`` becomes a pair of *linear* weights; the network still learns the amplitudes, the
number of bounces that matter and the transfer to strain.  Everything else (magnetometers, mains
monitors, angular control) is standardised only: the network learns e.g. the mains x control
product (bilinear sidebands) itself.

Edges: the first and last :attr:`ConditioningSpec.condition_edge_duration` seconds of any
conditioned series feel the ends of the data (whitening FIR, resampling filters) and must be
dropped; :attr:`ConditioningSpec.edge_duration` (~``2 fduration``) also covers
:func:`uncondition_strain`.  Inside that margin the output depends only on the samples, not on
where the data were cut, so chunks conditioned separately agree with one long span to rounding.

Modules: :mod:`~gwtwin.signal.conditioning_spec` (the spec and shared helpers),
:mod:`~gwtwin.signal.conditioning_fit` (fitting), this one (applying); every public name is
importable from here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np
import torch
from scipy.signal import get_window

from gwtwin.data import Block, FrameData, MissingChannelError
from gwtwin.errors import GwtwinError
from gwtwin.signal.conditioning_fit import fit_conditioning, median_psd
from gwtwin.signal.conditioning_spec import (
    FORMAT,
    TRANSFORMS,
    WAVELENGTH,
    ChannelOrderError,
    ConditioningSpec,
    WitnessConditioning,
    _check_rate,
    _pieces,
    _raw_features,
    _to_model_rate,
    length_scale,
)
from gwtwin.signal.filters import resample
from gwtwin.signal.spectral import _fftconvolve_same
from gwtwin.signal.whitening import design_fir, fir_size, whiten

__all__ = [
    "FORMAT",
    "TRANSFORMS",
    "WAVELENGTH",
    "inverse_fir",
    "ChannelOrderError",
    "ConditioningSpec",
    "WitnessConditioning",
    "condition_strain",
    "condition_witnesses",
    "fit_conditioning",
    "length_scale",
    "median_psd",
    "uncondition_strain",
    "whitening_kernel",
]


# -- applying -----------------------------------------------------------------------------------
def _witness_rows(data, spec: ConditioningSpec) -> list[Block]:
    """The spec's witnesses as one-row Blocks, checked for presence, order, rate and span."""
    pieces = _pieces(data)
    given = [name for name, _ in pieces]
    if len(set(given)) != len(given):
        dupes = sorted({c for c in given if given.count(c) > 1})
        raise GwtwinError(
            f"channel(s) {dupes} given more than once; condition one contiguous span at a time"
        )
    wanted = spec.witness_channels
    missing = [c for c in wanted if c not in given]
    if missing:
        raise MissingChannelError(
            f"witness channel(s) {missing} are missing: the conditioning expects {wanted} "
            f"(in that order), found {given}"
        )
    if not isinstance(data, Mapping):
        order = [c for c in given if c in wanted]
        if order != wanted:
            raise ChannelOrderError(
                f"witness channels are in the wrong order: expected {wanted}, found {order}"
            )
    by_name = dict(pieces)
    rows = []
    for w in spec.witnesses:
        b = by_name[w.name]
        _check_rate(w.name, b.sample_rate, w.sample_rate)
        rows.append(b)
    spans = {(b.t0_ns, b.end_ns) for b in rows}
    if len(spans) > 1:
        listing = ", ".join(f"{b.channels[0]} [{b.span[0]}, {b.span[1]})" for b in rows)
        raise GwtwinError(f"witness channels must cover the same GPS span, found {listing}")
    return rows


def condition_witnesses(data, spec: ConditioningSpec, *, dtype=torch.float32) -> torch.Tensor:
    """Model input rows ``[n_features, time]`` at the model rate.

    Parameters
    ----------
    data : Block, sequence of Blocks, FrameData, or mapping channel -> Block
        The witnesses over one contiguous span, each at its native rate.  In a Block or sequence
        they must come in the spec's order (other channels in between are ignored); a mapping is
        matched by name.
    spec : ConditioningSpec
    dtype : torch.dtype
        Output dtype (float32 by default, the models' dtype).

    Returns
    -------
    torch.Tensor ``[spec.n_features, duration * spec.sample_rate]``; the first and last
    ``spec.condition_edge_duration`` seconds feel the ends of the data.

    Raises
    ------
    MissingChannelError, ChannelOrderError, SampleRateMismatchError
    """
    rows = _witness_rows(data, spec)
    out = []
    for w, b in zip(spec.witnesses, rows, strict=True):
        if not torch.isfinite(b.data).all():
            raise GwtwinError(
                f"channel {w.name} has NaN/inf samples in GPS [{b.span[0]}, {b.span[1]})"
            )
        x = _to_model_rate(b.data[0], b.sample_rate, spec.sample_rate)
        feats = _raw_features(x, w, spec)
        mean = torch.tensor(w.mean, dtype=torch.float64)[:, None]
        std = torch.tensor(w.std, dtype=torch.float64)[:, None]
        out.append((feats - mean) / std)
    return torch.cat(out).to(dtype)


def _strain_series(data, spec: ConditioningSpec) -> Block:
    if isinstance(data, FrameData):
        data = data.block
    if not isinstance(data, Block):
        raise GwtwinError(f"expected a gwtwin Block holding {spec.strain_channel}, found {data!r}")
    if spec.strain_channel not in data.channels:
        raise MissingChannelError(
            f"strain channel {spec.strain_channel} is not in the data; found {list(data.channels)}"
        )
    block = data.select([spec.strain_channel])
    _check_rate(spec.strain_channel, block.sample_rate, spec.strain_rate)
    return block


def condition_strain(data, spec: ConditioningSpec) -> torch.Tensor:
    """Whitened strain at the model rate (the target), float64 ``[time]``.

    ``data`` is a Block (or gap-free FrameData) holding ``spec.strain_channel`` at its native
    rate.  The first and last ``spec.condition_edge_duration`` seconds feel the ends of the data.
    """
    block = _strain_series(data, spec)
    x = _to_model_rate(block.data[0], block.sample_rate, spec.sample_rate)
    return _whiten_target(x, spec)


def _whiten_target(x: torch.Tensor, spec: ConditioningSpec) -> torch.Tensor:
    """The whitening of the training target: the spec's PSD, FIR length, high-pass and rfft
    grid, no detrending."""
    return whiten(
        x,
        spec.psd,
        spec.sample_rate,
        spec.fduration,
        spec.highpass,
        detrend=None,
        nfft=spec.nfft,
    )


def whitening_kernel(spec: ConditioningSpec) -> torch.Tensor:
    """The whitening of :func:`condition_strain` as centred correlation taps, unit peak.

    Returns float64 taps ``k`` of odd length ``2 c + 1`` such that, away from the data's ends,
    ``condition_strain``'s whitening of ``x`` is ``s * sum_j k[j] x[t + j - c]`` for one
    constant ``s`` (the taps are normalised to ``max |k| = 1``): the form the models' FFT
    correlation (:func:`gwtwin.models.witness_td.fft_conv_same`) applies.  Taken from the
    impulse response of the very same whitening call, so its centring and truncation match the
    target's to rounding.
    """
    size = fir_size(spec.sample_rate, spec.fduration)
    c = size // 2 + 1  # half-length covering every lag of an even or odd FIR
    n = max(spec.nfft, 4 * (2 * c + 1))
    n0 = n // 2
    impulse = torch.zeros(n, dtype=torch.float64)
    impulse[n0] = 1.0
    response = _whiten_target(impulse, spec)
    # y[t] = sum_i response[n0 + i] x[t - i]  ->  correlation taps k[j] = response[n0 + c - j]
    taps = response[n0 - c : n0 + c + 1].flip(0)
    peak = float(taps.abs().max())
    if not np.isfinite(peak) or peak == 0.0:
        raise GwtwinError("the conditioning's whitening filter is zero or not finite")
    return taps / peak


def uncondition_strain(prediction, spec: ConditioningSpec) -> torch.Tensor:
    """Put a prediction in whitened units back into strain at the strain's native rate.

    Parameters
    ----------
    prediction : torch.Tensor ``[..., time]`` at ``spec.sample_rate``, or a Block at that rate
        Whitened strain (e.g. the model output over a contiguous span).

    Returns
    -------
    torch.Tensor float64 ``[..., time * strain_rate / sample_rate]``: colour with the same PSD
    filter, then resample to ``spec.strain_rate``.  Drop ``spec.edge_duration`` s at each end.
    """
    if isinstance(prediction, Block):
        _check_rate(
            "prediction " + ",".join(prediction.channels), prediction.sample_rate, spec.sample_rate
        )
        prediction = prediction.data
    x = torch.as_tensor(prediction).to(torch.float64)
    if x.shape[-1] < inverse_fir(spec).shape[-1]:
        raise GwtwinError(
            f"expected at least {inverse_fir(spec).shape[-1] / spec.sample_rate:g} s of prediction "
            f"at {spec.sample_rate:g} Hz, got {x.shape[-1]} samples"
        )
    coloured = _apply(x, inverse_fir(spec)) / math.sqrt(2.0 / spec.sample_rate)
    if spec.strain_rate == spec.sample_rate:
        return coloured
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return resample(coloured, spec.sample_rate, spec.strain_rate)


_REGULARISE = 1e-4  # inverse gain limited to 1 / (2e-4) of the whitening filter's peak gain


def inverse_fir(spec: ConditioningSpec) -> torch.Tensor:
    """Taps of the filter that undoes :func:`condition_strain`'s whitening FIR (float64).

    Colouring with the ASD (:func:`gwtwin.signal.colour`) undoes whitening only where the ASD is
    smooth on the ``1 / fduration`` scale: next to a narrow line (the 50 Hz mains, where the
    power-line couplings are) both truncated filters blur the line and their product is far from
    one (measured: a factor 2.7 at 50 Hz on the simulated strain).  Instead this filter is
    designed from the *actual* response ``H(f)`` of the truncated whitening FIR (zero phase, and
    smooth on the ``1 / fduration`` scale by construction): transfer ``H / (H^2 + eps^2)`` with
    ``eps = 1e-4 max|H|`` (a Tikhonov-regularised inverse: exact to 1e-8 relative where
    ``|H| > 1e-2 max|H|``, bounded where the whitening filter has no gain), zero below the
    high-pass corner and above 90 % of the model's Nyquist frequency, then truncated to
    ``min(2 fduration, fftlength)`` seconds with Hann halves as gwpy truncates its filters.
    """
    key = (id(spec), spec.nfft, spec.fduration, spec.highpass, len(spec.psd_values))
    cached = _INVERSE_CACHE.get(key)
    if cached is not None and cached[0] is spec:
        return cached[1]
    rate, nfft = spec.sample_rate, spec.nfft
    w = design_fir(spec.psd, rate, spec.fduration, spec.highpass, nfft=nfft, inverse=True)[0]
    ntaps = w.shape[-1]
    centred = torch.zeros(nfft, dtype=torch.float64)
    centred[:ntaps] = w
    centred = torch.roll(centred, -int(ntaps / 2 - 1))  # lag 0 at index 0: zero phase
    response = torch.fft.rfft(centred).real
    eps = _REGULARISE * float(response.abs().max())
    transfer = response / (response**2 + eps**2)
    if spec.highpass:
        transfer[: int(spec.highpass / (rate / nfft))] = 0
    # nothing above 90 % of the model's Nyquist frequency: the network's output there is not
    # constrained by anything it learnt (the resamplings' transition bands), and colouring would
    # carry it into strain (measured: +8 % ASD at 512 Hz in glitch-free time without this cut)
    transfer[int(np.ceil(0.9 * (rate / 2) / (rate / nfft))) :] = 0
    impulse = torch.fft.irfft(transfer, n=nfft)
    size = min(fir_size(rate, 2 * spec.fduration), nfft)
    half = size // 2
    win = torch.as_tensor(get_window("hann", size), dtype=torch.float64)
    impulse[:half] *= win[half:size]
    impulse[nfft - half :] *= win[:half]
    impulse[half : nfft - half] = 0
    taps = torch.roll(impulse, int(size / 2 - 1))[:size]
    _INVERSE_CACHE.clear()
    _INVERSE_CACHE[key] = (spec, taps)
    return taps


_INVERSE_CACHE: dict = {}


def _apply(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """FIR ``taps`` applied as whitening does: Hann-tapered ends, "same" FFT convolution."""
    lead, n = x.shape[:-1], x.shape[-1]
    size = taps.shape[-1]
    pad = math.ceil(size / 2)
    win = torch.as_tensor(get_window("hann", size), dtype=torch.float64)
    data = x.to(torch.float64).clone()
    data[..., :pad] *= win[:pad]
    data[..., n - pad :] *= win[size - pad :]
    out = _fftconvolve_same(data.reshape(-1, n), taps.to(data.device).reshape(1, size))
    return out.reshape(*lead, n)


def spec_arrays(spec: ConditioningSpec) -> dict[str, np.ndarray]:
    """The stored PSD as numpy arrays (``frequencies``, ``strain``)."""
    return {
        "frequencies": np.asarray(spec.psd_frequencies, dtype=np.float64),
        "strain": np.asarray(spec.psd_values, dtype=np.float64),
    }
