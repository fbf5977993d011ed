"""One YAML per run: the schema of ``gwtwin run`` (:class:`RunConfig`), loading and validation.

A run configuration composes the configuration models of the steps, each under its own key; no
field is repeated here::

    source:      where the frames come from (simulator | frames)
    simulate:    gwtwin.simulate.config.SimulationConfig   (source.kind: simulator)
    scan:        gwtwin.select.config.SelectConfig
    dataset:     gwtwin.dataset.config.DatasetConfig
    train:       gwtwin.train.config.TrainConfig             (MLflow tracking: train.tracking)
    clean:       gwtwin.infer.clean.CleanConfig
    evaluate:    gwtwin.evaluate.config.EvaluateConfig       (truth metrics: simulator sources)
    stream:      gwtwin.stream.config.StreamStepConfig       (the online service on the run's
                 frames, replayed; off unless stream.enabled)
    report:      {enabled}
    parallelism: {workers, torch_threads, dask_scheduler}, copied onto the sections with such keys

Every key has a default: an empty file (or none) is a run on the built-in simulated scenario.
Unknown keys and bad values raise :class:`~gwtwin.errors.ConfigError` naming the dotted key path,
the value found and what is allowed::

    scan.coincidence.windw: unknown key; allowed: delay_bins, tolerance
    train.scheduler.name: 'cosin' is not one of 'cosine', 'plateau', 'none'

:meth:`RunConfig.dump` is the fully resolved YAML (``gwtwin config show``); loading it again gives
the same configuration.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gwtwin.dataset.config import DatasetConfig
from gwtwin.errors import ConfigError
from gwtwin.evaluate.config import EvaluateConfig
from gwtwin.infer.clean import CleanConfig
from gwtwin.lifecycle import LifecycleConfig
from gwtwin.select.config import SelectConfig
from gwtwin.simulate.config import SimulationConfig
from gwtwin.stream.config import StreamStepConfig
from gwtwin.train.config import TrainConfig

__all__ = [
    "EXECUTION_KEYS",
    "ParallelismConfig",
    "ReportConfig",
    "RunConfig",
    "SourceConfig",
    "config_kind",
    "load_any_config",
    "load_run_config",
    "parse_overrides",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Model):
    """Where the run's frames come from.

    ``simulator``: the ``simulate`` section is rendered into ``<run_dir>/simulation``.
    ``frames``: an existing frame directory (or file) at ``path``; the frames are not copied
    and not fingerprinted (they are assumed not to change; a new ``path`` re-runs every step).
    ``strain_channel`` (full name, ``V1:Hrec_hoft_4096Hz``) defaults to the simulator's strain
    channel or, for frames, to ``scan.strain_channel``; it is copied onto ``scan``.
    """

    kind: Literal["simulator", "frames"] = "simulator"
    path: str | None = None
    strain_channel: str | None = None

    @model_validator(mode="after")
    def _path(self):
        if self.kind == "frames" and not self.path:
            raise ValueError("kind 'frames' needs a path (the frame directory)")
        if self.kind == "simulator" and self.path is not None:
            raise ValueError(
                f"path is only for kind 'frames' (found path={self.path!r} with kind "
                "'simulator', which writes its frames into <run_dir>/simulation)"
            )
        return self


class ReportConfig(_Model):
    """The run's static HTML report (``<run_dir>/report/index.html``)."""

    enabled: bool = True


class ParallelismConfig(_Model):
    """Execution settings, copied onto every section that has the corresponding key.

    ``workers``: processes of the simulator and of the per-channel triggers (0: all cores,
    1: in this process); ``torch_threads``: torch intra-op threads (training, cleaning);
    ``dask_scheduler``: address of a running Dask scheduler for the triggers. ``null`` leaves the
    sections' own values. None of them changes results, so none re-runs a step.
    """

    workers: int | None = Field(None, ge=0)
    torch_threads: int | None = Field(None, ge=1)
    dask_scheduler: str | None = None


#: keys of the step sections that say how to compute, not what: left out of the config hashes
EXECUTION_KEYS = frozenset({"workers", "torch_threads", "num_workers", "dask", "progress"})


class RunConfig(_Model):
    """A whole ``gwtwin run``: the data source and every step's section."""

    source: SourceConfig = Field(default_factory=SourceConfig)
    simulate: SimulationConfig = Field(default_factory=SimulationConfig)
    scan: SelectConfig = Field(default_factory=SelectConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    clean: CleanConfig = Field(default_factory=CleanConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    stream: StreamStepConfig = Field(default_factory=StreamStepConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    parallelism: ParallelismConfig = Field(default_factory=ParallelismConfig)

    @model_validator(mode="after")
    def _resolve(self):
        self._resolve_strain_channel()
        self._apply_parallelism()
        return self

    def _resolve_strain_channel(self) -> None:
        src = self.source
        explicit_scan = "strain_channel" in self.scan.model_fields_set
        if src.kind == "simulator":
            simulated = self.simulate.channel(self.simulate.strain.channel)
            if src.strain_channel is not None and src.strain_channel != simulated:
                raise ValueError(
                    f"source.strain_channel {src.strain_channel!r} is not the simulated strain "
                    f"channel {simulated!r} (simulate.prefix + simulate.strain.channel)"
                )
            channel = simulated
        else:
            channel = src.strain_channel or self.scan.strain_channel
        if explicit_scan and self.scan.strain_channel != channel:
            raise ValueError(
                f"scan.strain_channel {self.scan.strain_channel!r} differs from the run's strain "
                f"channel {channel!r} (source.strain_channel, or the simulator's); give it once, "
                "under source.strain_channel"
            )
        self.source = src.model_copy(update={"strain_channel": channel})
        self.scan = self.scan.model_copy(update={"strain_channel": channel})

    def _apply_parallelism(self) -> None:
        par = self.parallelism
        for name in ("simulate", "scan", "dataset", "train", "clean", "evaluate"):
            section = getattr(self, name)
            fields = type(section).model_fields
            update: dict[str, Any] = {}
            for key in ("workers", "torch_threads"):
                value = getattr(par, key)
                if value is None or key not in fields:
                    continue
                mine = getattr(section, key)
                if key in section.model_fields_set and mine is not None and mine != value:
                    raise ValueError(
                        f"parallelism.{key} ({value}) and {name}.{key} ({mine}) disagree; "
                        f"set one of them"
                    )
                update[key] = value
            if par.dask_scheduler is not None and "dask" in fields:
                dask = section.dask
                mine = dask.scheduler
                if "scheduler" in dask.model_fields_set and mine not in (None, par.dask_scheduler):
                    raise ValueError(
                        f"parallelism.dask_scheduler ({par.dask_scheduler!r}) and "
                        f"{name}.dask.scheduler ({mine!r}) disagree; set one of them"
                    )
                update["dask"] = dask.model_copy(update={"scheduler": par.dask_scheduler})
            if update:
                setattr(self, name, section.model_copy(update=update))

    # -- views -----------------------------------------------------------------------------------
    def section(self, name: str, *, for_hash: bool = False) -> dict[str, Any]:
        """One section as JSON-able data; ``for_hash`` drops :data:`EXECUTION_KEYS`."""
        data = getattr(self, name).model_dump(mode="json")
        if for_hash:
            data = {k: v for k, v in data.items() if k not in EXECUTION_KEYS}
        return data

    @property
    def strain_channel(self) -> str:
        """The run's strain channel (full name)."""
        return self.source.strain_channel or self.scan.strain_channel

    def dump(self) -> str:
        """The fully resolved configuration as YAML (loads back to an equal :class:`RunConfig`)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# -- errors that name the key path ---------------------------------------------------------------


def _unwrap(annotation: Any) -> list[Any]:
    """The member types of ``X | None``, ``list[X]``, ``dict[str, X]``, ``tuple[X, ...]``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    return [annotation]


def _submodel(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """``(model, container)``: the BaseModel inside an annotation and whether it is in a list or
    dict (so the next location part is an index or key)."""
    for member in _unwrap(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member, False
        origin = typing.get_origin(member)
        if origin in (list, tuple, dict, set, frozenset):
            for arg in typing.get_args(member):
                inner, _ = _submodel(arg)
                if inner is not None:
                    return inner, True
    members = [m for m in _unwrap(annotation) if m is not type(None)]
    plain_container = len(members) == 1 and typing.get_origin(members[0]) in (list, tuple, dict)
    return None, plain_container  # a list or mapping of plain values: show its index or key


def _walk(root: type[BaseModel], loc: tuple) -> tuple[str, type[BaseModel] | None, Any]:
    """``(dotted key, model holding the last named field, that field's annotation)`` of an error
    location. List indices show as ``[i]``; pydantic's union-member tags are dropped."""
    shown: list[str] = []
    model: type[BaseModel] | None = root  # the model whose fields the next part names
    holder: type[BaseModel] | None = None
    annotation: Any = None
    expect_index = False
    for part in loc:
        if expect_index:
            shown.append(f"[{part}]" if isinstance(part, int) else f"[{part!r}]")
            expect_index = False
        elif model is None:  # inside a leaf value: keep tuple indices, drop union tags
            if isinstance(part, int):
                shown.append(f"[{part}]")
        else:
            holder = model
            shown.append(str(part))
            field = model.model_fields.get(str(part))
            annotation = field.annotation if field is not None else None
            model, expect_index = _submodel(annotation) if field is not None else (None, False)
    key = ".".join(shown).replace(".[", "[") or "(top level)"
    return key, holder, annotation


def _literal_values(annotation: Any) -> list[Any] | None:
    for member in _unwrap(annotation):
        if typing.get_origin(member) is Literal:
            return list(typing.get_args(member))
    return None


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(exc: ValidationError, root: type[BaseModel], where: str) -> ConfigError:
    lines: dict[str, str] = {}
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        key, holder, annotation = _walk(root, loc)
        found = _short(err.get("input"))
        if err.get("type") == "extra_forbidden":
            allowed = sorted(holder.model_fields) if holder is not None else []
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            text = f"{key}: unknown key{hint}; allowed: {', '.join(allowed)}"
        elif err.get("type") == "literal_error":
            values = _literal_values(annotation)
            allowed = (
                ", ".join(repr(v) for v in values)
                if values
                else err.get("ctx", {}).get("expected", "")
            )
            text = f"{key}: {found} is not one of {allowed}"
        elif err.get("type") == "value_error":
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            text = f"{key}: {msg}" if loc else msg
        else:
            text = f"{key}: {err.get('msg')} (found {found})"
        if key not in lines:
            lines[key] = text
        elif err.get("msg") not in lines[key]:  # each member of a union complains: one line
            lines[key] += f"; or {err.get('msg')}"
    body = "\n".join(f"  {line}" for line in lines.values())
    return ConfigError(f"invalid run config {where}:\n{body}")


# -- loading -------------------------------------------------------------------------------------


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["train.max_epochs=2", "scan.plots=false"]`` -> nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects KEY.PATH=VALUE, found {item!r}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({err})") from None
        _merge_into(out, _nest(key, value))
    return out


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    parts = [p for p in dotted.split(".")]
    if any(not p for p in parts):
        raise ConfigError(f"bad key path {dotted!r}: empty part between dots")
    for part in reversed(parts[1:]):
        value = {part: value}
    return {parts[0]: value}


def _merge_into(base: dict, extra: Mapping) -> dict:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge_into(base[key], value)
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value
    return base


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} {path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a mapping of keys, found {type(data).__name__}")
    return data


def load_run_config(
    source: str | os.PathLike | Mapping[str, Any] | RunConfig | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RunConfig:
    """A :class:`RunConfig` from a YAML path, a mapping, or the defaults, with ``overrides``.

    ``overrides`` is a nested mapping, or a flat one with dotted keys
    (``{"train.max_epochs": 2}``); it is merged into the file's values (nested mappings merge).
    Raises :class:`ConfigError` naming every bad key path, its value and what is allowed.
    """
    if isinstance(source, RunConfig):
        data, where = source.model_dump(mode="json"), "(object)"
    elif source is None:
        data, where = {}, "(defaults)"
    elif isinstance(source, Mapping):
        data, where = _merge_into({}, source), "(mapping)"
    else:
        path = Path(source)
        data, where = _read_yaml(path, "run config"), str(path)
    for key, value in (overrides or {}).items():
        _merge_into(data, _nest(key, value) if "." in key else {key: value})
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise _describe(exc, RunConfig, where) from None


# -- every config file in configs/ ---------------------------------------------------------------

#: per-command configs, told apart by a word of the file name (``simulate-tiny.yaml``)
_COMMAND_WORDS = ("simulate", "select", "dataset", "train", "stream")


def config_kind(path: str | os.PathLike) -> str:
    """``simulate``, ``select``, ``dataset``, ``train``, ``stream`` (per-command configs: a word
    of the file name, e.g. ``demo-dataset.yaml``) or ``run`` (anything else)."""
    words = Path(path).stem.split("-")
    return next((w for w in words if w in _COMMAND_WORDS), "run")


def load_any_config(path: str | os.PathLike, kind: str | None = None) -> BaseModel:
    """Validate a config file with the loader of its kind (:func:`config_kind` by default)."""
    kind = kind or config_kind(path)
    if kind == "run":
        return load_run_config(path)
    if kind == "simulate":
        from gwtwin.simulate.config import load_config

        return load_config(path)
    if kind == "select":
        from gwtwin.select.config import load_config

        return load_config(path)
    if kind == "dataset":
        from gwtwin.dataset.config import load_dataset_config

        return load_dataset_config(path)
    if kind == "train":
        from gwtwin.train.config import load_train_config

        return load_train_config(path)
    if kind == "stream":  # the service's section and, when present, the replay's
        from gwtwin.stream.config import load_stream_config
        from gwtwin.stream.replay import load_replay_config

        load_replay_config(path)
        return load_stream_config(path)
    raise ConfigError(f"unknown config kind {kind!r}: expected run, {', '.join(_COMMAND_WORDS)}")
