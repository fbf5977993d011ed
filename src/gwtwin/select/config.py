"""Configuration of channel selection (``SelectConfig``, validated, loadable from YAML).

Every key has a default, so ``SelectConfig()`` runs hveto's method with hveto's grids on the
simulator's channels.  Times are GPS s, windows and tolerances s, frequencies Hz.  Unknown keys
and bad values are refused with the key named and what is allowed (:class:`ConfigError`), so the
one-YAML pipeline can embed this model under a ``select:`` key.
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gwtwin.configio import load_section

__all__ = [
    "ChannelTriggerConfig",
    "FringeConfig",
    "SelectConfig",
    "SlideConfig",
    "load_config",
]

PositiveFloat = Annotated[float, Field(gt=0)]
Band = tuple[float, float]

#: hveto's defaults (``hveto.config.HvetoConfigParser.HVETO_DEFAULTS``)
HVETO_THRESHOLDS = (8.0, 10.0, 12.0, 15.0, 20.0, 50.0, 100.0, 300.0)
HVETO_WINDOWS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _check_band(value: Band | None, name: str) -> Band | None:
    if value is not None and not (0 <= value[0] < value[1]):
        raise ValueError(f"{name} must be [low, high] Hz with 0 <= low < high, found {list(value)}")
    return value


class FringeConfig(_Model):
    """Scattered-light fringe triggers for displacement channels (the standard detchar tool).

    A scattering optic moving with velocity ``v`` puts fringes (arches) in strain at
    ``f = 2 n |v| / wavelength`` for ``n`` bounces.  The displacement is low-passed at
    ``lowpass`` Hz (sensor noise differentiated to velocity grows with frequency), differentiated,
    and every span where ``f`` (``n = bounces``) reaches ``threshold`` Hz is one trigger: time of
    the largest ``f``, ``frequency`` = that ``f``, ``fstart..fend`` = threshold..peak, ``snr`` =
    peak ``|v|`` over the channel's robust velocity noise (1.4826 * median absolute velocity),
    ``amplitude`` = peak ``|v|`` (channel unit / s).
    """

    #: channel units (as written in the frames) that select the fringe method in ``auto`` mode
    units: list[str] = Field(default_factory=lambda: ["m", "mm", "um", "nm", "micron", "meter"])
    wavelength: PositiveFloat = 1.064e-6  # m
    bounces: Annotated[int, Field(ge=1, le=8)] = 1
    threshold: PositiveFloat = 10.0  # Hz: the lower edge of the detector band
    lowpass: PositiveFloat = 2.0  # Hz
    #: spans closer than this (s) are one trigger
    cluster_window: Annotated[float, Field(ge=0)] = 0.1


class ChannelTriggerConfig(_Model):
    """Trigger options for the channels whose name matches ``match`` (a glob, e.g.
    ``H1:ASC-*``) and, when ``max_rate`` is given, whose native sample rate is at most
    ``max_rate`` Hz (a slow channel, whatever its name).

    ``method``: ``qtransform`` (Q-tile triggers, :func:`gwtwin.signal.find_triggers`), ``fringe``
    (:class:`FringeConfig`) or ``auto`` (fringe for length units, Q-tiles otherwise).  The other
    keys, when given, replace the defaults of :attr:`SelectConfig.triggers` for these channels.
    """

    match: str = "*"
    max_rate: PositiveFloat | None = None
    method: Literal["auto", "qtransform", "fringe"] = "auto"
    qrange: Band | None = None
    frange: Band | None = None
    snr_threshold: PositiveFloat | None = None
    segment_duration: PositiveFloat | None = None
    fduration: PositiveFloat | None = None
    #: strain-trigger frequency band (Hz) used for this channel's coincidence scores
    band: Band | None = None
    #: coincidence tolerance (s) for this channel's scores (default: see CoincidenceConfig)
    tolerance: PositiveFloat | None = None

    @field_validator("band")
    @classmethod
    def _band(cls, v):
        return _check_band(v, "band")


class TriggerConfig(_Model):
    """Default Q-tile trigger options (:func:`gwtwin.signal.find_triggers`) for every channel."""

    snr_threshold: PositiveFloat = 5.5
    qrange: Band = (4.0, 64.0)
    frange: Band | None = None
    cluster_window: Annotated[float, Field(ge=0)] = 0.1
    segment_duration: PositiveFloat = 64.0
    fduration: PositiveFloat = 2.0
    mismatch: PositiveFloat = 0.2


def _default_channel_rules() -> list[ChannelTriggerConfig]:
    # slow channels (native rate <= 128 Hz: control loops, angular and suspension signals, by
    # rate, not by any detector's naming): low Q and long windows reach their few-Hz episodes
    return [ChannelTriggerConfig(max_rate=128.0, qrange=(4.0, 16.0), segment_duration=128.0)]


class CoincidenceConfig(_Model):
    """Per-glitch coincidence scores (the ANNALISA idea, with a time tolerance)."""

    #: |t_strain - t_aux| <= tolerance counts as coincident, s; None: half the window that
    #: maximises the channel's first-round significance (hveto's own choice for that channel)
    tolerance: PositiveFloat | None = None
    #: bins of the delay histograms, s
    delay_bins: Annotated[int, Field(ge=2, le=1000)] = 40


class SlideConfig(_Model):
    """Time slides of the auxiliary triggers (circular within each live segment)."""

    count: Annotated[int, Field(ge=0, le=1000)] = 10
    #: shift of slide k is k * step s; must exceed the largest window many times over
    step: PositiveFloat = 97.0


class CoherenceConfig(_Model):
    """Continuous-coupling witnesses: coherence with strain (:mod:`gwtwin.select.coherence`)."""

    enabled: bool = True
    #: Welch segment length, s (the frequency resolution is 1 / fftlength)
    fftlength: PositiveFloat = 4.0
    frange: Band = (10.0, 1000.0)
    #: false-alarm probability per channel (Bonferroni over the frequency bins)
    alpha: Annotated[float, Field(gt=0, lt=1)] = 1e-4
    #: at most this much of the longest gap-free stretch is used, s (memory: strain in float64)
    max_duration: PositiveFloat = 4096.0


class DaskConfig(_Model):
    #: address of a running Dask scheduler (``tcp://host:8786``); None: local processes
    scheduler: str | None = None


class SelectConfig(_Model):
    """Channel selection: triggers, hveto rounds, coincidence scores, slides, outputs."""

    #: the strain channel: a full name (``H1:GDS-CALIB_STRAIN``) or a glob that matches exactly
    #: one channel of the frames (``*:GDS-CALIB_STRAIN*``); required (``gwtwin run`` sets it from
    #: ``source.strain_channel`` or the simulator's)
    strain_channel: str | None = None
    #: auxiliary channels (None: every channel in the frames that is not unsafe)
    channels: list[str] | None = None
    start: float | None = None  # GPS s
    end: float | None = None  # GPS s
    #: strain triggers at or above this SNR are the glitches to explain (hveto's primary cut)
    strain_snr: PositiveFloat = 8.0
    #: strain-trigger frequency band, Hz (None: all)
    strain_band: Band | None = None
    thresholds: list[PositiveFloat] = Field(default_factory=lambda: list(HVETO_THRESHOLDS))
    windows: list[PositiveFloat] = Field(default_factory=lambda: list(HVETO_WINDOWS))
    min_significance: PositiveFloat = 5.0
    #: a channel significant before a round and whose significance falls by at least this
    #: fraction when the round's winner is vetoed is reported redundant of that winner
    redundancy_drop: Annotated[float, Field(gt=0, le=1)] = 0.8
    #: channel-name substrings that mark channels containing strain (refused)
    #: (Virgo's h(t) is Hrec_*, LIGO's GDS-CALIB_STRAIN / CAL-DELTAL_*, DARM error/control
    #: signals carry DARM in both; the strain channel's own name is always unsafe)
    unsafe: list[str] = Field(
        default_factory=lambda: ["Hrec", "DARM", "TRUTH_", "STRAIN", "CAL-DELTAL"]
    )
    triggers: TriggerConfig = Field(default_factory=TriggerConfig)
    channel_triggers: list[ChannelTriggerConfig] = Field(default_factory=_default_channel_rules)
    fringe: FringeConfig = Field(default_factory=FringeConfig)
    coincidence: CoincidenceConfig = Field(default_factory=CoincidenceConfig)
    slides: SlideConfig = Field(default_factory=SlideConfig)
    coherence: CoherenceConfig = Field(default_factory=CoherenceConfig)
    #: processes for the per-channel triggers (0: number of cores, 1: in this process)
    workers: Annotated[int, Field(ge=0)] = 0
    dask: DaskConfig = Field(default_factory=DaskConfig)
    plots: bool = True

    @field_validator("thresholds", "windows")
    @classmethod
    def _grid(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("must hold at least one value")
        return sorted(set(float(x) for x in v))

    @field_validator("strain_band")
    @classmethod
    def _sband(cls, v):
        return _check_band(v, "strain_band")

    @model_validator(mode="after")
    def _span(self):
        if self.start is not None and self.end is not None and not self.start < self.end:
            raise ValueError(f"start must be before end, found start={self.start}, end={self.end}")
        if self.slides.count and self.slides.step < 10 * max(self.windows):
            raise ValueError(
                f"slides.step must be at least 10 x the largest window ({max(self.windows)} s), "
                f"found {self.slides.step} s"
            )
        return self

    # -- helpers ---------------------------------------------------------------------------------
    def rule_for(self, channel: str, rate: float | None = None) -> ChannelTriggerConfig | None:
        """The last ``channel_triggers`` entry whose glob matches ``channel`` and whose
        ``max_rate`` (if any) admits the channel's native ``rate`` (Hz; a rule with a
        ``max_rate`` never applies when the rate is unknown)."""
        found = None
        for rule in self.channel_triggers:
            if not fnmatch.fnmatchcase(channel, rule.match):
                continue
            if rule.max_rate is not None and (rate is None or rate > rule.max_rate):
                continue
            found = rule
        return found

    def is_unsafe(self, channel: str) -> bool:
        """Whether ``channel`` contains the strain channel's name (the strain itself, or
        products of it such as ``<STRAIN>_CLEANED``) or an unsafe pattern."""
        if self.strain_channel and self.strain_channel.split(":")[-1] in channel:
            return True
        return any(p in channel for p in self.unsafe)

    def dump(self) -> str:
        """The resolved config as YAML."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_config(source=None, overrides: dict | None = None) -> SelectConfig:
    """A :class:`SelectConfig` from a YAML path (the whole file, or its ``scan:`` section of a
    run config), a dict or None (defaults), plus overrides; errors name the key and the value."""
    return load_section(SelectConfig, "scan", source, overrides, "selection")
