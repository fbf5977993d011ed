"""The dataset configuration (pydantic, unknown keys refused) and the selected-channel file."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gwtwin.errors import GwtwinError

SELECTED_FORMAT = "gwtwin-selected-channels/1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditioningConfig(_Model):
    """How strain and witnesses are conditioned (see :mod:`gwtwin.signal.conditioning`)."""

    sample_rate: float = Field(1024.0, gt=0, description="model rate, Hz")
    fftlength: float = Field(4.0, gt=0, description="Welch segment of the strain PSD, s")
    fduration: float = Field(2.0, gt=0, description="whitening filter length, s")
    highpass: float | None = Field(10.0, gt=0, description="whitening high-pass corner, Hz")
    harmonics: int = Field(2, ge=0, description="fringe harmonics of length channels")
    wavelength: float = Field(1.064e-6, gt=0, description="laser wavelength, m")
    fringe_lowpass: float | None = Field(
        5.0, gt=0, description="low-pass corner of length witnesses before the fringe phase, Hz"
    )
    transforms: dict[str, Literal["standardise", "fringe"]] = Field(default_factory=dict)
    fit_duration: float | None = Field(
        None,
        gt=0,
        description="seconds of training data the conditioning is fitted on "
        "(default: the whole training span)",
    )


class QImageConfig(_Model):
    """Q-image tiles for the spectrogram model (Glitchflow-like)."""

    nfreq: int = Field(64, gt=1)
    ntime: int = Field(256, gt=1)
    frange: tuple[float, float] = (8.0, 500.0)
    qrange: tuple[float, float] = (12.0, 12.0)
    context: float = Field(
        4.0, ge=0, description="data each side of the window that the transform sees, s"
    )


class DatasetConfig(_Model):
    """How a training set is cut from frames.

    Times are GPS seconds; durations seconds.  ``valid_span`` (GPS ``[start, end)``) takes
    precedence over ``valid_fraction`` (the last fraction of the span).
    """

    kind: Literal["timeseries", "qimage"] = "timeseries"
    strain_channel: str | None = None
    start: float | None = None
    end: float | None = None
    window_duration: float = Field(8.0, gt=0)
    target_duration: float = Field(4.0, gt=0)
    stride: float | None = Field(None, gt=0, description="default: target_duration")
    valid_fraction: float = Field(0.2, ge=0, lt=1)
    valid_span: tuple[float, float] | None = None
    snr_threshold: float = Field(8.0, gt=0, description="strain trigger SNR of a glitch window")
    quiet_fraction: float | None = Field(
        0.5, ge=0, lt=1, description="fraction of quiet windows kept (None: all of them)"
    )
    triggers_file: str | None = None
    trigger_options: dict[str, Any] = Field(
        default_factory=dict, description="passed to gwtwin.signal.find_triggers"
    )
    include_redundant: bool = False
    chunk_duration: float = Field(256.0, gt=0, description="data conditioned at once, s")
    seed: int = 0
    conditioning: ConditioningConfig = ConditioningConfig()
    qimage: QImageConfig = QImageConfig()

    @model_validator(mode="after")
    def _check(self) -> DatasetConfig:
        if self.target_duration > self.window_duration:
            raise ValueError(
                f"target_duration ({self.target_duration:g} s) must not exceed window_duration "
                f"({self.window_duration:g} s)"
            )
        if self.valid_span is not None and not self.valid_span[1] > self.valid_span[0]:
            raise ValueError(
                f"valid_span must be [start, end) with end > start, found {list(self.valid_span)}"
            )
        rate = self.conditioning.sample_rate
        for name in ("window_duration", "target_duration", "stride"):
            value = getattr(self, name)
            if value is not None and abs(value * rate - round(value * rate)) > 1e-9:
                raise ValueError(
                    f"{name}={value:g} s is not a whole number of samples at the model rate "
                    f"{rate:g} Hz"
                )
        return self

    @property
    def step(self) -> float:
        """Window stride, s."""
        return self.target_duration if self.stride is None else self.stride


def load_dataset_config(
    source: str | Path | Mapping | DatasetConfig | None = None, **overrides
) -> DatasetConfig:
    """A :class:`DatasetConfig` from a YAML file (the whole file, or its ``dataset:`` section of
    a run config), a mapping, or defaults, with overrides (``None`` values ignored); errors name
    the key and the value."""
    from gwtwin.configio import load_section

    if isinstance(source, Mapping):
        source = dict(source)
    return load_section(DatasetConfig, "dataset", source, overrides)


def read_selected(
    selected: str | Path | Mapping | Sequence[str], *, include_redundant: bool = False
) -> tuple[str | None, list[str], dict]:
    """``(strain_channel or None, witness names in order, the selection mapping)``.

    ``selected`` is a ``selected_channels.json`` path (format ``gwtwin-selected-channels/1``),
    its loaded mapping, or an explicit list of channel names.  Redundant witnesses are added
    (after the selected ones) only with ``include_redundant``.
    """
    if isinstance(selected, (str, Path)) and not (
        isinstance(selected, str) and ":" in selected and not Path(selected).exists()
    ):
        path = Path(selected)
        if not path.is_file():
            raise GwtwinError(f"selected channels file {path} does not exist")
        try:
            selected = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise GwtwinError(f"{path} is not JSON: {exc}") from None
    if isinstance(selected, str):
        selected = [selected]
    if isinstance(selected, Mapping):
        fmt = selected.get("format")
        if fmt != SELECTED_FORMAT:
            raise GwtwinError(
                f"selected channels must have format {SELECTED_FORMAT!r}, found {fmt!r}"
            )
        try:
            names = [str(c["name"]) for c in selected["channels"]]
        except (KeyError, TypeError):
            raise GwtwinError("selected channels need 'channels': [{'name': ...}, ...]") from None
        if include_redundant:
            for r in selected.get("redundant", []):
                name = str(r["name"] if isinstance(r, Mapping) else r)
                if name not in names:
                    names.append(name)
        meta = dict(selected)
        strain = selected.get("strain_channel")
    else:
        names, meta, strain = [str(c) for c in selected], {}, None
    if not names:
        raise GwtwinError("no witness channels selected; expected at least one")
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise GwtwinError(f"witness channels listed more than once: {dupes}")
    return strain, names, meta
