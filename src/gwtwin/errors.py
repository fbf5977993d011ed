"""Exceptions shared by every part of gwtwin.

Every error raised on bad input names what was expected (with units) and what was found, and,
where a file, channel or GPS time is involved, names it too.  All of them derive from
:class:`GwtwinError`, itself a :class:`ValueError`, so callers can catch either.
"""

from __future__ import annotations


class GwtwinError(ValueError):
    """Base class of every error gwtwin raises about its inputs."""


class ConfigError(GwtwinError):
    """A configuration file or mapping has an unknown key or a bad value."""


def format_validation_error(exc, source: str = "config") -> str:
    """Turn a :class:`pydantic.ValidationError` into one readable message.

    Each problem is printed as ``key.path: message (found: value)``, so that a mistyped key or a
    bad value is named with what was expected.
    """
    lines = [f"invalid {source}:"]
    for err in exc.errors():
        loc = ".".join(str(part) for part in err.get("loc", ())) or "<root>"
        msg = err.get("msg", "invalid value")
        found = err.get("input")
        if err.get("type") == "extra_forbidden":
            lines.append(f"  {loc}: unknown key")
        else:
            lines.append(f"  {loc}: {msg} (found: {found!r})")
    return "\n".join(lines)
