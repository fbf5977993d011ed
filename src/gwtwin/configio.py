"""Loading and validating config models (YAML files, mappings), with errors that name the key.

Every command's config is a pydantic model with ``extra="forbid"``; :func:`validate_config` turns
pydantic's errors into one :class:`~gwtwin.errors.ConfigError` listing, per bad key, the dotted
path, what was wrong and what is allowed there. :func:`load_section` reads a command's section
from a run YAML (or a file holding only that section), so one file serves every command.
A leaf module: it imports nothing of gwtwin but the errors.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from gwtwin.errors import ConfigError

__all__ = ["load_section", "merge", "validate_config"]


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the sub-model that holds ``loc`` (for 'unknown key' messages)."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None or isinstance(part, int):
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        candidates = [ann, *args]
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return sorted(current.model_fields) if current is not None else []


def validate_config(model: type[BaseModel], data, source: str = "config"):
    """Validate a mapping against a config model, raising :class:`ConfigError` that names keys.

    Unknown keys are listed with the keys allowed at that level; bad values with the expectation
    and the value found.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys, found {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"invalid {source}:"]
        for err in exc.errors():
            loc = tuple(err.get("loc", ()))
            key = ".".join(str(p) for p in loc) or "<root>"
            if err.get("type") == "extra_forbidden":
                allowed = _allowed_keys(model, loc)
                lines.append(f"  {key}: unknown key (allowed here: {', '.join(allowed)})")
            else:
                found = err.get("input")
                lines.append(f"  {key}: {err.get('msg')} (found: {found!r})")
        raise ConfigError("\n".join(lines)) from None


def load_section(model: type[BaseModel], section: str, source=None, overrides=None, what=None):
    """A config model from a YAML file (the whole file, or its ``section:`` mapping, so one run
    YAML serves every command), a mapping, a model instance, or ``None`` (the defaults).

    ``overrides`` are merged on top (nested dicts merge; ``None`` values are ignored). Errors
    (:class:`ConfigError`) name the file, the key and the value.
    """
    what = what or section
    where = f"{what} config"
    if isinstance(source, BaseModel):
        data = source.model_dump()
    elif source is None:
        data, where = {}, f"built-in {what} config"
    elif isinstance(source, dict):
        data = dict(source)
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise ConfigError(f"{what} config {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
        if isinstance(data, dict) and isinstance(data.get(section), dict):
            data = data[section]
    if overrides:
        data = merge(data, {k: v for k, v in overrides.items() if v is not None})
    return validate_config(model, data, where)


def merge(base: dict, extra: dict) -> dict:
    """``base`` with ``extra`` merged on top (nested mappings merge, other values replace)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
