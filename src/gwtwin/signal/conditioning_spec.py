"""The :class:`ConditioningSpec` and the helpers shared by fitting and applying it.

See :mod:`gwtwin.signal.conditioning` for what conditioning does and why.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from gwtwin.data import Block, FrameData, SampleRateMismatchError
from gwtwin.errors import GwtwinError
from gwtwin.signal.filters import resample, resample_settle
from gwtwin.signal.spectral import PSD
from gwtwin.signal.whitening import fir_size, whiten_edge_size

FORMAT = "gwtwin-conditioning/1"
WAVELENGTH = 1.064e-6  #: Nd:YAG laser wavelength, m
TRANSFORMS = ("standardise", "fringe")


class ChannelOrderError(GwtwinError):
    """Witness channels are given in another order than the conditioning (and model) expect."""


def length_scale(unit: str) -> float | None:
    """Metres per unit if ``unit`` is a length (``"m"``, ``"um"``, ``"1e-06 m"``...), else None."""
    if not unit:
        return None
    try:
        from astropy import units as u

        parsed = u.Unit(unit)
        return float(parsed.to(u.m)) if parsed.physical_type == "length" else None
    except (ValueError, TypeError, u.UnitConversionError):
        return None


@dataclass
class WitnessConditioning:
    """How one witness channel becomes model input rows.

    Attributes
    ----------
    name : str
        Full channel name.
    sample_rate : float
        Native rate, Hz; data at any other rate are refused.
    unit : str
        Unit as read from the frames.
    transform : {"standardise", "fringe"}
        ``"fringe"`` adds the scattered-light ``sin``/``cos`` features (length units only).
    features : list of str
        Row names: the channel name, then ``name:sin<n>``, ``name:cos<n>`` for fringe channels.
    mean, std : list of float
        Standardisation of each row (fitted on training data), in the row's units (the channel's
        unit for the first row, dimensionless for fringe rows).
    metres : float or None
        Metres per unit of the channel (fringe channels).
    """

    name: str
    sample_rate: float
    unit: str
    transform: str
    features: list[str]
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    metres: float | None = None


@dataclass
class ConditioningSpec:
    """Everything needed to condition witnesses and strain exactly as at training time.

    Attributes
    ----------
    strain_channel : str
        Strain channel name; ``strain_rate`` (Hz) its native rate, ``strain_unit`` its unit.
    witnesses : list of WitnessConditioning
        Witness channels IN MODEL ORDER.
    sample_rate : float
        Model rate, Hz (default 1024).
    psd_frequencies, psd_values : list of float
        Strain PSD at the model rate (Hz, strain**2/Hz) that whitens the target.
    fftlength : float
        Welch segment length of the PSD, s; the whitening FIR is built on an
        ``fftlength * sample_rate`` grid whatever the chunk length.
    fduration : float
        Whitening filter length, s.
    highpass : float or None
        Whitening transfer function zeroed below this frequency, Hz.
    wavelength : float
        Laser wavelength for the fringe features, m.
    harmonics : int
        Fringe harmonics ``n = 1 .. harmonics``.
    fringe_lowpass : float or None
        Low-pass corner (Hz) applied to a length witness before its fringe phase is computed
        (see :func:`fringe_lowpass_taps`); None: the raw displacement.
    fitted_on : dict
        Provenance of the fit (GPS span, seconds of data).
    """

    strain_channel: str
    strain_rate: float
    strain_unit: str
    witnesses: list[WitnessConditioning]
    psd_frequencies: list[float]
    psd_values: list[float]
    sample_rate: float = 1024.0
    fftlength: float = 4.0
    fduration: float = 2.0
    highpass: float | None = 10.0
    wavelength: float = WAVELENGTH
    harmonics: int = 2
    fitted_on: dict = field(default_factory=dict)
    fringe_lowpass: float | None = None
    format: str = FORMAT

    # -- views --------------------------------------------------------------------------------
    @property
    def witness_channels(self) -> list[str]:
        """Witness names in model order."""
        return [w.name for w in self.witnesses]

    @property
    def feature_names(self) -> list[str]:
        """One name per conditioned input row, in order."""
        return [f for w in self.witnesses for f in w.features]

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def nfft(self) -> int:
        """Size of the grid the whitening filter is built on (samples at the model rate)."""
        return int(round(self.fftlength * self.sample_rate))

    @property
    def psd(self) -> PSD:
        """The strain PSD as a :class:`~gwtwin.signal.PSD` at the model rate."""
        return PSD(
            torch.tensor(self.psd_frequencies, dtype=torch.float64),
            torch.tensor(self.psd_values, dtype=torch.float64),
            (self.strain_channel,),
            self.sample_rate,
            self.fftlength,
            (self.strain_unit,),
            "median",
        )

    @property
    def condition_edge_duration(self) -> float:
        """Seconds at each end of :func:`condition_witnesses` / :func:`condition_strain` output
        that feel the ends of the data: the whitening FIR's exact edge (``~fduration``) plus the
        longest resampling filter half-length of any channel."""
        fir = whiten_edge_size(self.sample_rate, self.fduration, exact=True) / self.sample_rate
        return fir + self._settle() + self._fringe_edge()

    def _fringe_edge(self) -> float:
        if not self.fringe_lowpass or not any(w.transform == "fringe" for w in self.witnesses):
            return 0.0
        return fringe_lowpass_edge(self.sample_rate)

    @property
    def edge_duration(self) -> float:
        """Seconds to drop at each end of anything conditioned *or* unconditioned, s.

        The larger of :attr:`condition_edge_duration` and the edge of
        :func:`uncondition_strain`, whose inverse filter is ``2 fduration`` long (so ~``2
        fduration`` plus the resampling filter).
        """
        size = min(fir_size(self.sample_rate, 2 * self.fduration), self.nfft)
        inverse = (math.ceil(size / 2) + size // 2 - 1) / self.sample_rate + self._settle()
        return max(self.condition_edge_duration, inverse)

    def _settle(self) -> float:
        rates = [self.strain_rate] + [w.sample_rate for w in self.witnesses]
        return max(
            (resample_settle(r, self.sample_rate).duration for r in rates if r != self.sample_rate),
            default=0.0,
        )

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (:meth:`from_dict` gives the spec back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConditioningSpec:
        """Rebuild a spec from :meth:`to_dict` output (or its JSON)."""
        if isinstance(data, (str, bytes)):
            data = json.loads(data)
        data = dict(data)
        if data.get("format", FORMAT) != FORMAT:
            raise GwtwinError(
                f"conditioning format {data.get('format')!r} is not supported; expected {FORMAT!r}"
            )
        try:
            witnesses = [WitnessConditioning(**w) for w in data.pop("witnesses")]
            return cls(witnesses=witnesses, **data)
        except (KeyError, TypeError) as exc:
            raise GwtwinError(f"not a conditioning spec: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> ConditioningSpec:
        return cls.from_dict(json.loads(text))


# -- gathering channels from the many shapes data come in ---------------------------------------
def _pieces(data) -> list[tuple[str, Block]]:
    """``(channel, one-row Block)`` pairs in the order given."""
    if isinstance(data, FrameData):
        data = data.segments
    if isinstance(data, Block):
        data = [data]
    out: list[tuple[str, Block]] = []
    if isinstance(data, Mapping):
        for name, value in data.items():
            blocks = [value] if isinstance(value, Block) else list(value)
            for b in blocks:
                if not isinstance(b, Block):
                    raise GwtwinError(f"expected Blocks for channel {name}, found {type(b)}")
                out.append((name, b.select([name]) if len(b.channels) > 1 else b))
        return out
    for item in data:
        if isinstance(item, FrameData):
            out.extend(_pieces(item))
            continue
        if not isinstance(item, Block):
            raise GwtwinError(
                f"expected gwtwin Blocks (or FrameData / a mapping channel -> Block), found "
                f"{type(item).__name__}"
            )
        out.extend((c, item.select([c])) for c in item.channels)
    return out


def _check_rate(name: str, found: float, expected: float) -> None:
    if abs(found - expected) > 1e-9 * expected:
        raise SampleRateMismatchError(
            f"sample rates do not match: channel {name} is at {found:g} Hz, the conditioning "
            f"expects its native rate {expected:g} Hz"
        )


def _to_model_rate(x: torch.Tensor, rate: float, model_rate: float) -> torch.Tensor:
    if rate == model_rate:
        return x.to(torch.float64)
    return resample(x.to(torch.float64), rate, model_rate)


FRINGE_LOWPASS_DURATION = 2.0  #: length of the fringe low-pass FIR, s
FRINGE_LOWPASS_WINDOW = ("kaiser", 8.0)  #: its window (flat passband: the motion is ~10 um)


def fringe_lowpass_taps(sample_rate: float, cutoff: float) -> torch.Tensor:
    """Linear-phase low-pass FIR (Kaiser-windowed sinc, beta 8, ``FRINGE_LOWPASS_DURATION`` long).

    Why: the fringe phase ``4 pi x / lambda`` turns a displacement sensor's white noise into
    phase noise (2 nm/sqrt(Hz) up to 128 Hz is 0.27 rad rms at 1064 nm), and the noise sits
    inside the sine where no later linear filter can remove it.  The motion of a scattering
    optic is slow (micro-seismic, < 1 Hz; the fast arches come from the phase, not from fast
    motion), so low-passing ``x`` at a few Hz before the phase keeps the motion and drops most of
    the noise.  The passband must be flat to ~1e-4 (a 10 um motion must keep its phase to
    ~0.01 rad), hence the Kaiser window.  On the default scenario's held-out 300 s, the share of
    the scattered-light truth that the n = 1, 2 fringe features explain linearly is 62 % from the
    raw displacement, 98.8 % after a 1 s Hamming low-pass at 10 Hz and 99.67 % after this one at
    5 Hz (2 Hz cuts the motion: 98.4 %).
    """
    ntaps = int(round(FRINGE_LOWPASS_DURATION * sample_rate)) | 1
    if not 0 < cutoff < sample_rate / 2:
        raise GwtwinError(
            f"fringe_lowpass must be in (0, {sample_rate / 2:g}) Hz at the model rate "
            f"{sample_rate:g} Hz, found {cutoff:g}"
        )
    from scipy.signal import firwin

    return torch.as_tensor(
        firwin(ntaps, cutoff, fs=sample_rate, window=FRINGE_LOWPASS_WINDOW), dtype=torch.float64
    )


def fringe_lowpass_edge(sample_rate: float) -> float:
    """Seconds the fringe low-pass corrupts at each end of the data."""
    return (int(round(FRINGE_LOWPASS_DURATION * sample_rate)) | 1) // 2 / sample_rate


def _raw_features(x: torch.Tensor, w: WitnessConditioning, spec_like) -> torch.Tensor:
    """Unstandardised feature rows ``[F, T]`` of one witness already at the model rate."""
    rows = [x]
    if w.transform == "fringe":
        cutoff = getattr(spec_like, "fringe_lowpass", None)
        xf = x
        if cutoff:
            from gwtwin.signal.spectral import _fftconvolve_same

            taps = fringe_lowpass_taps(spec_like.sample_rate, cutoff)
            xf = _fftconvolve_same(x.reshape(1, -1), taps.reshape(1, -1)).reshape(x.shape)
            rows = [xf]  # the motion itself, without the sensor noise and resampling images
        phase = (4 * math.pi / spec_like.wavelength) * (xf * w.metres)
        for n in range(1, spec_like.harmonics + 1):
            rows.append(torch.sin(n * phase))
            rows.append(torch.cos(n * phase))
    return torch.stack(rows)


def _features_of(name: str, transform: str, harmonics: int) -> list[str]:
    out = [name]
    if transform == "fringe":
        for n in range(1, harmonics + 1):
            out += [f"{name}:sin{n}", f"{name}:cos{n}"]
    return out


@dataclass
class _Opts:
    wavelength: float
    harmonics: int
    sample_rate: float = 1024.0
    fringe_lowpass: float | None = None


def _trimmed(block: Block, model_rate: float) -> torch.Tensor:
    """One channel at the model rate with the resampling edges dropped (for fitting)."""
    x = _to_model_rate(block.data[0], block.sample_rate, model_rate)
    if block.sample_rate == model_rate:
        return x
    edge = resample_settle(block.sample_rate, model_rate).size_out
    return x[edge : x.shape[-1] - edge]
