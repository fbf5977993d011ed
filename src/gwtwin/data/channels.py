"""Names that gwtwin derives from its input: detector prefix, output channels, flag names.

Nothing in the pipeline carries a detector's name as a default: the strain channel comes from
the run config (or is discovered in the frames with a pattern, :func:`resolve_channel`), and
every name gwtwin writes is built here from it, following the field's conventions:

- channels are ``<IFO>:<NAME>`` (``H1:GDS-CALIB_STRAIN``, ``V1:Hrec_hoft_16384Hz``);
- the cleaned strain is ``<IFO>:<STRAIN>_CLEANED`` and the subtracted prediction
  ``<IFO>:<STRAIN>_PREDICTION`` (:func:`cleaned_channel`, :func:`prediction_channel`);
- data-quality flags are ``<IFO>:<GROUP>-<NAME>:<VERSION>`` as in DQSEGDB
  (``H1:DMT-ANALYSIS_READY:1``); gwtwin's group is ``GWTWIN`` (:func:`flag_name`);
- frame files are ``<OBS>-<TAG>-<GPS>-<DUR>.<ext>`` with the observatory letter(s) of the
  prefix (``H1`` -> ``H``; :func:`observatory`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

from gwtwin.errors import GwtwinError

__all__ = [
    "CLEANED_SUFFIX",
    "FLAG_GROUP",
    "PREDICTION_SUFFIX",
    "cleaned_channel",
    "flag_name",
    "ifo",
    "observatory",
    "prediction_channel",
    "resolve_channel",
]

CLEANED_SUFFIX = "_CLEANED"
PREDICTION_SUFFIX = "_PREDICTION"
FLAG_GROUP = "GWTWIN"

_IFO = re.compile(r"^[A-Z][A-Z0-9]$")


def ifo(channel: str) -> str:
    """The detector prefix of a full channel name (``"H1:GDS-CALIB_STRAIN"`` -> ``"H1"``).

    Raises :class:`~gwtwin.errors.GwtwinError` when the name has no ``<IFO>:`` prefix of one
    letter and one letter or digit (the field's convention: ``H1``, ``L1``, ``V1``, ``K1``).
    """
    prefix, sep, rest = str(channel).partition(":")
    if not sep or not rest or not _IFO.match(prefix):
        raise GwtwinError(
            "expected a full channel name <IFO>:<NAME> (a detector prefix of a letter and a "
            f"letter or digit, a colon, the name), found {channel!r}"
        )
    return prefix


def observatory(channel: str) -> str:
    """The observatory letter of a channel's detector, for frame-file names (``H1`` -> ``H``)."""
    return ifo(channel)[0]


def cleaned_channel(strain_channel: str, suffix: str = CLEANED_SUFFIX) -> str:
    """``<IFO>:<STRAIN><suffix>``: the cleaned strain's channel name."""
    ifo(strain_channel)
    if not suffix:
        raise GwtwinError("the cleaned-channel suffix must not be empty: it needs its own name")
    return f"{strain_channel}{suffix}"


def prediction_channel(strain_channel: str) -> str:
    """``<IFO>:<STRAIN>_PREDICTION``: the predicted (subtracted) noise's channel name."""
    ifo(strain_channel)
    return f"{strain_channel}{PREDICTION_SUFFIX}"


def flag_name(detector: str, name: str, version: int | None = 1) -> str:
    """``<IFO>:GWTWIN-<NAME>:<VERSION>`` (``version=None`` leaves the version off).

    ``detector`` is a prefix (``H1``) or a full channel name; ``name`` is upper case letters,
    digits and underscores (``WITNESSED``, ``HVETO_ROUND_2``).
    """
    prefix = ifo(detector) if ":" in detector else detector
    if not _IFO.match(prefix):
        raise GwtwinError(f"expected a detector prefix such as 'H1' or 'V1', found {detector!r}")
    if not re.fullmatch(r"[A-Z0-9_]+", name):
        raise GwtwinError(f"flag names are upper case letters, digits and '_', found {name!r}")
    full = f"{prefix}:{FLAG_GROUP}-{name}"
    return full if version is None else f"{full}:{int(version)}"


def resolve_channel(pattern: str, channels: Iterable[str], what: str = "strain channel") -> str:
    """The one channel of ``channels`` that ``pattern`` names: the name itself, or a glob
    (``*:GDS-CALIB_STRAIN*``, ``?1:*STRAIN*``) that must match exactly one channel.

    Errors name the pattern and what was found (no match: the closest channel names; several:
    all of them), so a user can fix the config in one go.
    """
    channels = list(channels)
    if pattern in channels:
        return pattern
    if not any(c in pattern for c in "*?["):
        close = fnmatch.filter(channels, f"*{pattern.split(':')[-1]}*")[:5]
        hint = f"; similar: {', '.join(close)}" if close else ""
        raise GwtwinError(
            f"{what} {pattern!r} is not in the frames ({len(channels)} channels{hint})"
        )
    found = sorted(fnmatch.filter(channels, pattern))
    if len(found) == 1:
        return found[0]
    if not found:
        raise GwtwinError(
            f"{what} pattern {pattern!r} matches none of the {len(channels)} channels in the "
            f"frames (e.g. {', '.join(sorted(channels)[:5])})"
        )
    raise GwtwinError(
        f"{what} pattern {pattern!r} matches {len(found)} channels, expected one: "
        f"{', '.join(found)}"
    )
