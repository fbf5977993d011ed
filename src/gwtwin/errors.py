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
