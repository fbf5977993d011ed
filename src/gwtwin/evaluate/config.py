"""The configuration of ``gwtwin evaluate`` (:class:`EvaluateConfig`) and its loader."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EVALUATE_FILE", "EvaluateConfig", "load_evaluate_config"]

EVALUATE_FILE = "evaluate.json"


class EvaluateConfig(BaseModel):
    """How ``gwtwin evaluate`` scores a cleaning (unknown keys are refused)."""

    model_config = ConfigDict(extra="forbid")

    start: float | None = None
    end: float | None = None
    pad: float = Field(0.25, ge=0)  # s added to each catalogue glitch window
    quiet_pad: float = Field(2.0, ge=0)  # glitch-free = this far from any strain event
    fftlength: float = Field(4.0, gt=0)  # ASD-ratio Welch segments
    band: tuple[float, float] = (10.0, 1000.0)
    #: Hz each side of a witnessed power line; None: the largest continuous modulation frequency
    #: of the simulated coupling (its sidebands) plus two Welch bins
    line_width: float | None = Field(None, ge=0)
    snr_max: float = Field(50.0, gt=0)  # residual criterion population: SNR <= snr_max
    residual_limit: float = Field(5.0, gt=0)
    flag_snr: float = Field(8.0, ge=0)
    #: truth-free per-glitch verdicts: a strain trigger whose SNR falls (rises) by more than this
    #: after cleaning is improved (worsened), else untouched. 1 is the standard deviation of a
    #: tile SNR in Gaussian noise; raw and cleaned share their noise, so a change beyond it is the
    #: subtraction's (a conservative margin)
    snr_margin: float = Field(1.0, gt=0)
    chunk_duration: float = Field(512.0, gt=0)
    psd_fftlength: float = Field(4.0, gt=0)
    fduration: float = Field(2.0, gt=0)


def load_evaluate_config(source=None, overrides: dict | None = None) -> EvaluateConfig:
    """An :class:`EvaluateConfig` from YAML (whole file or its ``evaluate:`` section), a mapping
    or defaults; errors name the key and the value."""
    from gwtwin.configio import load_section

    return load_section(EvaluateConfig, "evaluate", source, overrides)
