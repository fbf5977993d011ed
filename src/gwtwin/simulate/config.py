"""Configuration of the simulated interferometer (YAML, validated).

Every key has a default, so ``SimulationConfig()`` is the built-in scenario: a Virgo-like detector
(``V1``) with 2048 s of data (32 frames of 64 s), Advanced Virgo design noise, tens of witnessed
glitches of each coupling family with strain SNR from 6 to 100, unwitnessed blips, 20 decoy
channels, a redundant witness and a few compact-binary injections.

``detector: ligo`` makes it LIGO-like instead (``H1``, ``GDS-CALIB_STRAIN``, LIGO channel names,
60 Hz mains, the aLIGO design curve): the style fills every key of its table (``styles.py``) that
the user's config does not set, so explicit keys always win.

Channel names in the config are given without the detector prefix (``ENV_CEB_MAG_N``); the
simulator writes full names (``V1:ENV_CEB_MAG_N``).  Rates are Hz, durations seconds, ASDs in the
channel's unit per square-root hertz.  Units are recorded as the channels' units in the frames
(gwpy ``TimeSeries.unit``; GWF keeps only units LAL can represent, HDF5 any); ``""`` writes a
channel without a unit, as for channels in counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gwtwin.configio import load_section
from gwtwin.simulate.styles import STYLES, VIRGO_DECOYS, decoy_dicts, fill_unset, style_defaults

PositiveFloat = Annotated[float, Field(gt=0)]
Range = tuple[float, float]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _check_range(value: Range, name: str = "range") -> Range:
    lo, hi = value
    if not lo <= hi:
        raise ValueError(f"{name} must be [low, high] with low <= high, found [{lo}, {hi}]")
    return value


class Distribution(_Model):
    """A one-dimensional random draw: log-uniform (default), uniform or power law.

    ``powerlaw`` draws p(x) ~ x**index on ``[min, max]`` (index -2 gives the steep glitch-SNR
    distributions seen in Omicron triggers).
    """

    kind: Literal["loguniform", "uniform", "powerlaw"] = "loguniform"
    min: PositiveFloat
    max: PositiveFloat
    index: float = -2.0

    @model_validator(mode="after")
    def _ordered(self):
        if self.min > self.max:
            raise ValueError(f"min must not exceed max, found min={self.min}, max={self.max}")
        return self


def _dist(lo: float, hi: float, kind: str = "loguniform") -> Distribution:
    return Distribution(kind=kind, min=lo, max=hi)


class Line(_Model):
    """A narrow spectral line in strain that no witness explains (calibration, violin mode)."""

    frequency: PositiveFloat
    amplitude: PositiveFloat  # strain
    name: str = ""


class StrainConfig(_Model):
    channel: str = "Hrec_hoft_4096Hz"
    sample_rate: PositiveFloat = 4096.0
    design_curve: Literal["advirgo", "aligo"] = "advirgo"
    #: below this frequency (Hz) the noise ASD is held at its value here (see psd.py)
    noise_floor_frequency: PositiveFloat = 8.0
    #: low-frequency end (Hz) of every SNR integral
    f_low: PositiveFloat = 10.0
    #: length (s) of the FIR filter that colours white noise; sets the frequency resolution
    filter_duration: PositiveFloat = 4.0
    #: calibration lines at 36.5, 61.3 and 1083.7 Hz and a violin mode at 445.2 Hz (Virgo style)
    lines: list[Line] = Field(
        default_factory=lambda: [Line(**x) for x in STYLES["virgo"]["strain"]["lines"]]
    )


class ScatterConfig(_Model):
    """Scattered light: phase modulation by the displacement x(t) of a scattering optic.

    h(t) = coupling * sum_n a_n sin(4 pi n (x0 + x(t)) / wavelength + phase_n), with arches at
    f = 2 n |dx/dt| / wavelength.  x(t) is a slow micro-seismic background plus high-motion
    episodes (the glitches), each a tapered oscillation whose peak velocity puts the arches at the
    drawn ``max_arch_frequency``.
    """

    enabled: bool = True
    witness: str = "SBE_SDB1_DISP_X"
    witness_rate: PositiveFloat = 256.0
    witness_unit: str = "um"  # of the witness and the redundant witness; "" for none
    witness_noise_asd: PositiveFloat = 0.002  # um / sqrt(Hz), white
    redundant_witness: str | None = "SBE_SDB1_LVDT_X"
    redundant_noise_asd: PositiveFloat = 0.02  # um / sqrt(Hz): a noisier sensor of the same motion
    wavelength: PositiveFloat = 1.064e-6  # m
    coupling: PositiveFloat = 2.5e-22  # strain amplitude of the fringe term
    bounce_amplitudes: list[PositiveFloat] = Field(default_factory=lambda: [1.0, 0.3])
    x0: float = 0.13  # um, static path offset
    background_rms: PositiveFloat = 0.05  # um, micro-seismic motion
    background_band: Range = (0.1, 0.4)  # Hz
    background_components: Annotated[int, Field(ge=1, le=256)] = 12
    rate: Annotated[float, Field(ge=0)] = 60.0  # episodes per hour
    duration: Distribution = Field(default_factory=lambda: _dist(4.0, 10.0, "uniform"))
    motion_frequency: Distribution = Field(default_factory=lambda: _dist(0.15, 0.35, "uniform"))
    max_arch_frequency: Distribution = Field(default_factory=lambda: _dist(15.0, 60.0, "uniform"))

    @field_validator("background_band")
    @classmethod
    def _band(cls, v: Range) -> Range:
        return _check_range(v, "background_band")


class FilterConfig(_Model):
    """A Butterworth filter in second-order sections (the physical coupling path)."""

    kind: Literal["bandpass", "lowpass", "highpass"] = "bandpass"
    order: Annotated[int, Field(ge=1, le=8)] = 2
    frequencies: list[PositiveFloat] = Field(default_factory=lambda: [15.0, 600.0])

    @model_validator(mode="after")
    def _corners(self):
        want = 2 if self.kind == "bandpass" else 1
        if len(self.frequencies) != want:
            raise ValueError(
                f"a {self.kind} filter needs {want} corner frequencies (Hz), "
                f"found {self.frequencies}"
            )
        if want == 2 and not self.frequencies[0] < self.frequencies[1]:
            raise ValueError(f"bandpass corners must be [low, high], found {self.frequencies}")
        return self


class EMConfig(_Model):
    """Electromagnetic transients: magnetometer bursts coupled linearly with a delay."""

    enabled: bool = True
    witness: str = "ENV_CEB_MAG_N"
    witness_rate: PositiveFloat = 4096.0
    witness_unit: str = "T"  # "" for none
    #: T / sqrt(Hz), white: a search-coil magnetometer (~10 fT/sqrt(Hz) above 10 Hz); its noise
    #: times the coupling (1e-25 / sqrt(Hz)) stays ~50x below the strain noise, as for the
    #: magnetometers used to clean or veto magnetic glitches (a noisier sensor would see the
    #: glitches at a lower SNR than strain does and could not clean them)
    witness_noise_asd: PositiveFloat = 1e-14
    coupling: PositiveFloat = 1e-11  # strain per tesla in the pass band
    delay: float = 0.004  # s, witness -> strain
    filter: FilterConfig = Field(default_factory=FilterConfig)
    rate: Annotated[float, Field(ge=0)] = 100.0  # bursts per hour
    frequency: Distribution = Field(default_factory=lambda: _dist(20.0, 300.0))
    q: Distribution = Field(default_factory=lambda: _dist(3.0, 20.0, "uniform"))
    snr: Distribution = Field(default_factory=lambda: _dist(6.0, 100.0))
    #: fraction of bursts that are ringdowns (damped sinusoids) instead of sine-Gaussians
    ringdown_fraction: Annotated[float, Field(ge=0, le=1)] = 0.3


class PowerlineConfig(_Model):
    """Power-line modulation: the mains line amplitude-modulated by a slow angular channel.

    h(t) = carrier_amplitude * v(t) * (1 + modulation_depth * a(t)), with v the mains voltage
    normalised to unit amplitude and a(t) the angular motion (urad).  a(t) holds a continuous
    part (sinusoids at ``modulation_frequencies``) and episodes of larger motion (the glitches),
    which put transient sidebands at mains +/- episode frequency.
    """

    enabled: bool = True
    mains_channel: str = "ENV_CEB_UPS_VOLT_R"
    mains_unit: str = "V"  # "" for none
    mains_rate: PositiveFloat = 1024.0
    mains_frequency: PositiveFloat = 50.0
    mains_amplitude: PositiveFloat = 325.0  # V (230 V rms)
    #: relative amplitudes of the odd harmonics 3f, 5f of the mains voltage
    harmonics: list[float] = Field(default_factory=lambda: [0.04, 0.02])
    mains_noise_asd: PositiveFloat = 0.05  # V / sqrt(Hz)
    control_channel: str = "ASC_NE_TX_CORR"
    control_rate: PositiveFloat = 128.0
    control_unit: str = "urad"  # "" for none (counts)
    control_noise_asd: PositiveFloat = 0.001  # urad / sqrt(Hz)
    modulation_frequencies: list[PositiveFloat] = Field(default_factory=lambda: [0.9, 2.3])
    modulation_amplitudes: list[float] = Field(default_factory=lambda: [0.3, 0.15])  # urad
    carrier_amplitude: PositiveFloat = 1.5e-22  # strain of the coupled mains line
    modulation_depth: PositiveFloat = 0.5  # per urad
    rate: Annotated[float, Field(ge=0)] = 60.0  # episodes per hour
    duration: Distribution = Field(default_factory=lambda: _dist(2.0, 6.0, "uniform"))
    episode_frequency: Distribution = Field(default_factory=lambda: _dist(3.0, 9.0, "uniform"))
    snr: Distribution = Field(default_factory=lambda: _dist(6.0, 100.0))

    @model_validator(mode="after")
    def _paired(self):
        if len(self.modulation_frequencies) != len(self.modulation_amplitudes):
            raise ValueError(
                "modulation_frequencies and modulation_amplitudes must have the same length, "
                f"found {len(self.modulation_frequencies)} and {len(self.modulation_amplitudes)}"
            )
        return self


class BlipConfig(_Model):
    """Blips: short broadband bursts in strain with no witness."""

    enabled: bool = True
    rate: Annotated[float, Field(ge=0)] = 70.0  # per hour
    frequency: Distribution = Field(default_factory=lambda: _dist(40.0, 250.0))
    q: Distribution = Field(default_factory=lambda: _dist(2.0, 6.0, "uniform"))
    snr: Distribution = Field(default_factory=lambda: _dist(6.0, 100.0))


class DecoyChannel(_Model):
    name: str
    rate: PositiveFloat
    unit: str = ""  # "" for none (counts)
    noise_asd: PositiveFloat = 1.0  # unit / sqrt(Hz) at 1 Hz
    noise_slope: float = 0.0  # ASD ~ f**-slope above 1 Hz


def _default_decoys() -> list[DecoyChannel]:
    return [DecoyChannel(**d) for d in decoy_dicts(VIRGO_DECOYS)]


class DecoyConfig(_Model):
    """Auxiliary channels with glitches of their own that never reach strain."""

    enabled: bool = True
    channels: list[DecoyChannel] = Field(default_factory=_default_decoys)
    rate: Annotated[float, Field(ge=0)] = 60.0  # glitches per hour per channel
    snr: Distribution = Field(default_factory=lambda: _dist(6.0, 100.0))
    q: Distribution = Field(default_factory=lambda: _dist(3.0, 15.0, "uniform"))


class InjectionConfig(_Model):
    """Compact-binary injections made with lalsimulation (recorded in the truth catalogue)."""

    enabled: bool = True
    count: Annotated[int, Field(ge=0)] = 6
    approximant: str = "IMRPhenomD"
    mass1: Distribution = Field(default_factory=lambda: _dist(10.0, 50.0, "uniform"))
    mass2: Distribution = Field(default_factory=lambda: _dist(10.0, 50.0, "uniform"))
    spin_z: Range = (-0.5, 0.5)
    snr: Distribution = Field(default_factory=lambda: _dist(8.0, 30.0))
    f_min: PositiveFloat = 15.0  # Hz, waveform start frequency

    @field_validator("spin_z")
    @classmethod
    def _spin(cls, v: Range) -> Range:
        return _check_range(v, "spin_z")


class DriftConfig(_Model):
    """A coupling that changes during the scenario (couplings drift with the interferometer's
    state): a step at ``start`` (no ``end``) or a linear ramp from ``start`` to ``end``, in s
    from the scenario start.

    ``parameter: coupling`` multiplies the family's coupling into strain by ``before`` up to the
    change and ``after`` once it is over (``before: 0`` is a witness that starts to couple);
    ``parameter: delay`` (``em`` only) adds ``before`` / ``after`` seconds to the witness ->
    strain delay (rounded to the strain's sample grid per burst).  Several drifts of one family
    and parameter multiply (coupling) or add (delay).  Applied to the truth channels, hence to
    strain, and recorded in the catalogue (``snr`` scaled by the gain at the peak, ``delay``
    shifted, ``drift_gain`` / ``drift_delay`` in the params) and in ``summary.json``.
    """

    family: Literal["scatter", "em", "powerline"]
    parameter: Literal["coupling", "delay"] = "coupling"
    start: Annotated[float, Field(ge=0)]
    end: Annotated[float, Field(ge=0)] | None = None
    before: float | None = Field(None, description="default 1 (coupling) or 0 s (delay)")
    after: float

    @model_validator(mode="after")
    def _consistent(self):
        if self.end is not None and self.end <= self.start:
            raise ValueError(
                f"drift end must be after its start ({self.start:g} s), found {self.end:g} s"
            )
        if self.parameter == "delay" and self.family != "em":
            raise ValueError(
                f"a delay drift needs a family with a witness -> strain delay (em), found "
                f"{self.family!r}"
            )
        if self.before is None:
            object.__setattr__(self, "before", 1.0 if self.parameter == "coupling" else 0.0)
        if self.parameter == "coupling" and min(self.before, self.after) < 0:
            raise ValueError(
                f"coupling factors must be >= 0, found before={self.before:g}, after={self.after:g}"
            )
        if self.parameter == "delay" and max(abs(self.before), abs(self.after)) > 0.5:
            raise ValueError(
                f"delay shifts must be within +-0.5 s, found before={self.before:g} s, "
                f"after={self.after:g} s"
            )
        return self


class SimulationConfig(_Model):
    """The whole simulated scenario."""

    #: detector style: the defaults of names, mains frequency and design curve (see styles.py);
    #: frozen, because changing it after construction would not change the keys it filled
    detector: Literal["virgo", "ligo"] = Field("virgo", frozen=True)
    prefix: str = "V1"
    start: Annotated[int, Field(ge=0)] = 1_400_000_000  # GPS s
    duration: Annotated[int, Field(gt=0)] = 2048  # s
    frame_length: Annotated[int, Field(gt=0)] = 64  # s per file
    seed: Annotated[int, Field(ge=0)] = 1
    #: seed of the instrument's hidden constants (the scattered-light fringe phases, which no
    #: witness shows); None: ``seed``.  Give two scenarios the same instrument_seed and different
    #: seeds for other stretches of the same detector (held-out tests of a trained model)
    instrument_seed: Annotated[int, Field(ge=0)] | None = None
    format: Literal["gwf", "hdf5"] = "gwf"
    tag: str = "GWTWIN"
    #: guard time (s) kept free around every strain glitch, so truth is per glitch
    min_separation: Annotated[float, Field(ge=0)] = 1.0
    #: events are kept this far (s) from the ends of the span
    edge_margin: Annotated[float, Field(ge=0)] = 4.0
    workers: Annotated[int, Field(ge=0)] = 0  # processes; 0 = number of cores
    strain: StrainConfig = Field(default_factory=StrainConfig)
    scatter: ScatterConfig = Field(default_factory=ScatterConfig)
    em: EMConfig = Field(default_factory=EMConfig)
    powerline: PowerlineConfig = Field(default_factory=PowerlineConfig)
    blip: BlipConfig = Field(default_factory=BlipConfig)
    decoys: DecoyConfig = Field(default_factory=DecoyConfig)
    injections: InjectionConfig = Field(default_factory=InjectionConfig)
    #: couplings that change during the scenario (none by default)
    drift: list[DriftConfig] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _style(cls, data):
        """Fill the keys the detector style sets and the user did not."""
        if not isinstance(data, dict):
            return data
        detector = data.get("detector", "virgo")
        if not isinstance(detector, str) or detector not in STYLES:
            return data  # the detector field reports the bad value
        return fill_unset(data, style_defaults(detector, data))

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if len(v) != 2 or not v[0].isalpha() or not v[1].isdigit():
            raise ValueError(f"detector prefix must look like 'V1' or 'H1', found {v!r}")
        return v

    @model_validator(mode="after")
    def _nyquist(self):
        nyquist = self.strain.sample_rate / 2
        if max(self.em.filter.frequencies) >= nyquist:
            raise ValueError(
                f"em.filter.frequencies must be below the strain Nyquist frequency "
                f"({nyquist:g} Hz), found {self.em.filter.frequencies}"
            )
        return self

    @model_validator(mode="after")
    def _drift_in_span(self):
        for i, d in enumerate(self.drift):
            last = d.end if d.end is not None else d.start
            if last > self.duration:
                raise ValueError(
                    f"drift[{i}] ({d.family} {d.parameter}) must lie within the scenario's "
                    f"{self.duration} s, found it ending at {last:g} s"
                )
            if d.parameter == "delay" and self.em.delay + min(d.before, d.after) < 0:
                raise ValueError(
                    f"drift[{i}]: em.delay ({self.em.delay:g} s) + the shift must stay >= 0 "
                    f"(causal), found a shift down to {min(d.before, d.after):g} s"
                )
        return self

    @model_validator(mode="after")
    def _frames(self):
        if self.duration % self.frame_length:
            raise ValueError(
                f"duration ({self.duration} s) must be a whole number of frame_length "
                f"({self.frame_length} s)"
            )
        return self

    # -- derived ------------------------------------------------------------------------------
    def channel(self, name: str) -> str:
        """Full channel name with the detector prefix."""
        return f"{self.prefix}:{name}"

    @property
    def observatory(self) -> str:
        return self.prefix[0]

    def dump(self) -> str:
        """The fully resolved config as YAML."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> SimulationConfig:
    """Read a simulation YAML (the whole file, or its ``simulate:`` section).

    ``None`` gives the built-in defaults.  ``overrides`` are merged on top (nested dicts merge).
    """
    return load_section(SimulationConfig, "simulate", path, overrides, "simulation")
