"""Fitting a :class:`~gwtwin.signal.conditioning_spec.ConditioningSpec` on training data: the
strain PSD (median Welch pooled over gap-free pieces) and the witness standardisation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from gwtwin.data import Block, MissingChannelError, SampleRateMismatchError
from gwtwin.errors import GwtwinError
from gwtwin.signal.conditioning_spec import (
    TRANSFORMS,
    WAVELENGTH,
    ConditioningSpec,
    WitnessConditioning,
    _features_of,
    _Opts,
    _pieces,
    _raw_features,
    _trimmed,
    length_scale,
)
from gwtwin.signal.spectral import _median, _median_bias, welch
from gwtwin.signal.whitening import fir_size


# -- PSD ----------------------------------------------------------------------------------------
def median_psd(pieces: Sequence[torch.Tensor], sample_rate: float, fftlength: float):
    """Median Welch PSD over several contiguous pieces of one channel.

    Every piece is cut into Hann-windowed ``fftlength`` segments overlapping by half (as
    :func:`~gwtwin.signal.welch`), and the bias-corrected median is taken over all segments of
    all pieces; for one piece this is exactly ``welch(x, ..., average="median")``.

    Returns
    -------
    freqs, psd : torch.Tensor (float64), Hz and ``unit**2 / Hz``.
    """
    nperseg = int(round(fftlength * sample_rate))
    step = nperseg - nperseg // 2
    segments = [
        torch.as_tensor(p, dtype=torch.float64).unfold(-1, nperseg, step)
        for p in pieces
        if p.shape[-1] >= nperseg
    ]
    if not segments:
        longest = max((p.shape[-1] for p in pieces), default=0) / sample_rate
        raise GwtwinError(
            f"expected at least fftlength={fftlength:g} s of contiguous data to estimate the "
            f"strain PSD, found at most {longest:g} s"
        )
    rows = torch.cat(segments)
    # each row is exactly one Welch segment: its "mean" PSD is its periodogram
    freqs, per = welch(rows, sample_rate, fftlength, average="mean")
    return freqs, _median(per.T) / _median_bias(rows.shape[0])


# -- fitting ------------------------------------------------------------------------------------
def _names_from_selected(selected) -> tuple[list[str], str | None]:
    if isinstance(selected, Mapping):
        try:
            names = [c["name"] if isinstance(c, Mapping) else str(c) for c in selected["channels"]]
        except (KeyError, TypeError):
            raise GwtwinError(
                "a selection mapping needs 'channels': [{'name': ...}, ...], found keys "
                f"{sorted(selected)}"
            ) from None
        return names, selected.get("strain_channel")
    if isinstance(selected, str):
        return [selected], None
    return [str(c) for c in selected], None


def fit_conditioning(
    data,
    selected,
    strain_channel: str | None = None,
    *,
    sample_rate: float = 1024.0,
    fftlength: float = 4.0,
    fduration: float = 2.0,
    highpass: float | None = 10.0,
    harmonics: int = 2,
    wavelength: float = WAVELENGTH,
    fringe_lowpass: float | None = 5.0,
    transforms: Mapping[str, str] | None = None,
) -> ConditioningSpec:
    """Fit the conditioning of strain and witnesses on training data.

    Parameters
    ----------
    data : FrameData, Block, sequence of Blocks/FrameData, or mapping channel -> Block(s)
        Training data at the channels' native rates; several contiguous pieces per channel are
        fine (gaps).  Every piece must be finite.
    selected : sequence of str, or a selection mapping (``{"channels": [{"name": ...}]}``)
        Witness channels in model order.
    strain_channel : str, optional
        Default: the selection mapping's ``strain_channel``.
    sample_rate : float
        Model rate, Hz; every native rate must be a power of two times it.
    fftlength : float
        Welch segment of the strain PSD, s (also the whitening filter's design grid).
    fduration : float
        Whitening filter length, s.
    highpass : float or None
        Whitening high-pass corner, Hz.
    harmonics : int
        Fringe harmonics for length channels.
    wavelength : float
        Laser wavelength, m.
    fringe_lowpass : float or None
        Low-pass corner (Hz) of length witnesses before the fringe phase (default 5 Hz; see
        :func:`~gwtwin.signal.conditioning_spec.fringe_lowpass_taps`); None: raw displacement.
    transforms : mapping channel -> {"standardise", "fringe"}, optional
        Override the choice made from units.

    Returns
    -------
    ConditioningSpec
    """
    names, from_selection = _names_from_selected(selected)
    strain_channel = strain_channel or from_selection
    if not strain_channel:
        raise GwtwinError("no strain channel given (and the selection does not name one)")
    if not names:
        raise GwtwinError("no witness channels selected; expected at least one")
    if strain_channel in names:
        raise GwtwinError(f"the strain channel {strain_channel} cannot be a witness (model input)")
    if harmonics < 0:
        raise GwtwinError(f"harmonics must be >= 0, found {harmonics}")
    fir_size(sample_rate, fduration)  # validates fduration
    if fftlength < fduration:
        raise GwtwinError(
            f"fftlength ({fftlength:g} s) must be at least fduration ({fduration:g} s): the "
            "whitening filter is designed on the PSD's grid"
        )
    pieces: dict[str, list[Block]] = {}
    for name, block in _pieces(data):
        pieces.setdefault(name, []).append(block)
    wanted = [strain_channel, *names]
    missing = [c for c in wanted if c not in pieces]
    if missing:
        raise MissingChannelError(
            f"channel(s) {missing} are not in the training data; it holds {sorted(pieces)}"
        )
    for name in wanted:
        rates = {b.sample_rate for b in pieces[name]}
        if len(rates) > 1:
            raise SampleRateMismatchError(f"channel {name} comes at several rates: {sorted(rates)}")
        for b in pieces[name]:
            bad = b.nonfinite()
            if bad:
                raise GwtwinError(
                    f"channel {name} has {bad[name]} NaN/inf samples in GPS "
                    f"[{b.span[0]}, {b.span[1]}); fit on finite data only"
                )
    transforms = dict(transforms or {})
    unknown = [c for c in transforms if c not in names]
    if unknown:
        raise GwtwinError(f"transforms names channels that are not selected: {unknown}")

    # strain PSD at the model rate, edges of the resampling dropped
    s_blocks = pieces[strain_channel]
    s_rate = s_blocks[0].sample_rate
    s_conv = [_trimmed(b, sample_rate) for b in s_blocks]
    freqs, psd = median_psd(s_conv, sample_rate, fftlength)

    witnesses = []
    for name in names:
        blocks = pieces[name]
        rate, unit = blocks[0].sample_rate, blocks[0].units[0]
        metres = length_scale(unit)
        transform = transforms.get(name, "fringe" if metres and harmonics else "standardise")
        if transform not in TRANSFORMS:
            raise GwtwinError(
                f"transform for {name} must be one of {TRANSFORMS}, found {transform!r}"
            )
        if transform == "fringe" and metres is None:
            raise GwtwinError(
                f"fringe features need a length unit (m, um, nm...): channel {name} has unit "
                f"{unit!r}"
            )
        w = WitnessConditioning(
            name, rate, unit, transform, _features_of(name, transform, harmonics), metres=metres
        )
        total = torch.zeros(len(w.features), dtype=torch.float64)
        square = torch.zeros(len(w.features), dtype=torch.float64)
        count = 0
        for b in blocks:
            x = _trimmed(b, sample_rate)
            if x.shape[-1] == 0:
                continue
            rows = _raw_features(x, w, _Opts(wavelength, harmonics, sample_rate, fringe_lowpass))
            mean = rows.mean(dim=-1)
            total += mean * rows.shape[-1]
            square += ((rows - mean[:, None]) ** 2).sum(dim=-1) + mean**2 * rows.shape[-1]
            count += rows.shape[-1]
        if count < 2:
            raise GwtwinError(f"not enough training data for channel {name} ({count} samples)")
        mean = total / count
        std = (square / count - mean**2).clamp_min(0).sqrt()
        flat = [f for f, s in zip(w.features, std.tolist(), strict=True) if not s > 0]
        if flat:
            raise GwtwinError(
                f"witness row(s) {flat} are constant over the training data (standard deviation "
                "0): a constant input carries no information; drop the channel"
            )
        w.mean, w.std = mean.tolist(), std.tolist()
        witnesses.append(w)
    span0 = min(b.t0_ns for b in s_blocks)
    span1 = max(b.end_ns for b in s_blocks)
    return ConditioningSpec(
        strain_channel=strain_channel,
        strain_rate=s_rate,
        strain_unit=s_blocks[0].units[0],
        witnesses=witnesses,
        psd_frequencies=freqs.tolist(),
        psd_values=psd.tolist(),
        sample_rate=float(sample_rate),
        fftlength=float(fftlength),
        fduration=float(fduration),
        highpass=None if highpass is None else float(highpass),
        wavelength=float(wavelength),
        harmonics=int(harmonics),
        fringe_lowpass=None if not fringe_lowpass else float(fringe_lowpass),
        fitted_on={
            "gps_start_ns": span0,
            "gps_end_ns": span1,
            "seconds": sum(b.duration for b in s_blocks),
            "pieces": len(s_blocks),
        },
    )
