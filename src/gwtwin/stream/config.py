"""Configuration of ``gwtwin stream`` (the ``stream:`` section of a YAML file) and its gate.

Every key has a default and unknown keys are refused with an error naming the key and the
allowed ones (:func:`load_stream_config`).  Names and rates come from the model and the data:
nothing here names a detector.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gwtwin.configio import validate_config
from gwtwin.data.channels import CLEANED_SUFFIX
from gwtwin.infer.decide import DecisionSettings

__all__ = ["GateConfig", "StreamConfig", "StreamStepConfig", "load_stream_config"]


class _GateFields(BaseModel):
    """The keys of :class:`GateConfig` and their checks (validated here without its __init__)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = True
    #: s, sliding window of the ASD comparison (ends with the current increment)
    window: float = Field(8.0, gt=0)
    #: s, Welch segments (Hann, 50 % overlap)
    fftlength: float = Field(1.0, gt=0)
    #: Hz, [lo, hi) per band; None: octave bands over the band the model acts on
    bands: list[tuple[float, float]] | None = None
    max_asd_ratio: float = Field(1.05, gt=0)
    resume_asd_ratio: float = Field(1.01, gt=0)
    resume_after: int = Field(4, ge=1)
    glitch_fraction: float = Field(0.1, gt=0)
    max_glitch_ratio: float = Field(1.0, gt=0)
    active_fraction: float = Field(1e-3, ge=0)
    #: s, half-Hann ramp of the gain at the start of an increment where the state changes
    taper: float = Field(0.1, ge=0)

    @field_validator("fftlength")
    @classmethod
    def _fftlength_in_window(cls, value: float, info) -> float:
        window = info.data.get("window")
        if window is not None and value > window:
            raise ValueError(
                f"fftlength={value} s is longer than window={window} s (the window must hold "
                "at least one Welch segment)"
            )
        return value

    @field_validator("bands")
    @classmethod
    def _bands_ordered(cls, value):
        if value is not None and not value:
            raise ValueError("bands is empty: give at least one (lo, hi) band in Hz, or null")
        for i, (lo, hi) in enumerate(value or ()):
            if not 0 <= lo < hi:
                raise ValueError(f"bands[{i}]=({lo}, {hi}) Hz: need 0 <= lo < hi")
        return value

    @field_validator("resume_asd_ratio")
    @classmethod
    def _resume_below_max(cls, value: float, info) -> float:
        top = info.data.get("max_asd_ratio")
        if top is not None and value > top:
            raise ValueError(
                f"resume_asd_ratio={value} is above max_asd_ratio={top}: re-enabling must need "
                "a ratio at or below the one that disables"
            )
        return value


class GateConfig(_GateFields):
    """Thresholds of the safety gate (every key has a default; unknown keys are refused).

    Constructing one with bad keys or values raises :class:`~gwtwin.errors.ConfigError` naming
    the key, the value and what is allowed (nested in another config model, the same message
    appears under that model's key). See the module docstring for what each threshold means.
    """

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError:
            validate_config(_GateFields, data, "gate config")  # raises ConfigError naming keys
            raise


class StreamConfig(BaseModel):
    """How ``gwtwin stream`` runs (see :mod:`gwtwin.stream.service`)."""

    model_config = ConfigDict(extra="forbid")

    #: the model to follow, e.g. ``models:/gwtwin-witness-td@production`` (or ``--model``)
    model: str | None = None
    tracking_uri: str | None = None
    #: s between checks of the registry alias (a moved alias is loaded in the background)
    model_poll: float = Field(30.0, gt=0)
    #: frame files of the watched directory to take, by the tag of their name (None: any)
    input_tag: str | None = None
    #: GPS to start at (None: the first file, or where a previous run stopped)
    start: int | None = None
    #: GPS to stop at (None: run until stopped or idle)
    end: int | None = None
    #: stop after this long without a new file, s (after flushing; None: wait for ever)
    idle_timeout: float | None = Field(None, gt=0)
    #: s to wait for the next file (or for a file that does not read yet) before moving on:
    #: a missing file becomes a gap, a file that still does not read is declared corrupt
    wait: float = Field(10.0, gt=0)
    #: s between looks at the watched directory
    poll: float = Field(0.05, gt=0)
    #: low-latency mode: emit a second once the data reach this many seconds past it
    #: (provisional predictions); None: exact offline output after the model's look-ahead
    lookahead: int | None = Field(None, ge=0)
    #: s per output frame file (whole seconds; files start at multiples of it)
    output_duration: int = Field(1, ge=1)
    format: Literal["gwf", "hdf5"] = "gwf"
    tag: str = "GWTWIN_CLEANED"
    suffix: str = CLEANED_SUFFIX
    write_prediction: bool = True
    #: s of output between rewrites of the flag files (and at the end)
    flags_every: int = Field(60, ge=1)
    taper: float = Field(1.0, ge=0)
    batch_size: int = Field(16, ge=1)
    #: arithmetic of the conditioning and the network: float64 keeps the stream equal to
    #: offline cleaning to float64 rounding; "auto": float64 in the exact mode, float32 in the
    #: low-latency mode (provisional anyway, and 2.4x cheaper: BENCHMARKS.md)
    precision: Literal["auto", "float64", "float32"] = "auto"
    #: torch threads of the service (1: the network of one window is too small to share, and
    #: threads fight with the rest of the machine; measured in BENCHMARKS.md)
    torch_threads: int = Field(1, ge=1)
    #: where to subtract, as offline cleaning (``clean.decision``): keep the same settings for
    #: the stream to equal offline cleaning
    decision: DecisionSettings = Field(default_factory=DecisionSettings)
    gate: GateConfig = Field(default_factory=GateConfig)

    @field_validator("suffix")
    @classmethod
    def _suffix(cls, value: str) -> str:
        if not value:
            raise ValueError("suffix must not be empty: the cleaned channel needs its own name")
        return value


def load_stream_config(source=None, overrides: dict | None = None) -> StreamConfig:
    """A :class:`StreamConfig` from a YAML file (whole file or its ``stream:`` section), a
    mapping, or defaults; errors name the key and the value."""
    from gwtwin.configio import load_section

    return load_section(StreamConfig, "stream", source, overrides)


class StreamStepConfig(StreamConfig):
    """The ``stream:`` section of a run config: the online service on the run's own frames,
    replayed into a watched directory (``gwtwin run`` step ``stream``; off by default)."""

    enabled: bool = False
    #: replay pace, x real time (0: as fast as the files can be written)
    replay_speed: float = Field(0.0, ge=0)
    #: s per replayed file
    replay_file_duration: int = Field(1, ge=1)
