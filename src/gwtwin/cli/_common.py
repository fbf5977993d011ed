"""Helpers shared by the command modules (argument checks only; no heavy import here)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gwtwin.errors import GwtwinError


def add_quiet(parser: argparse.ArgumentParser, help: str = "no progress bar") -> None:
    """The ``--quiet`` flag every long command has."""
    parser.add_argument("--quiet", action="store_true", help=help)


def add_dq_bits(parser: argparse.ArgumentParser) -> None:
    """``--dq-bits``: the GWOSC data-quality bits the analysed time must pass."""
    parser.add_argument(
        "--dq-bits",
        nargs="*",
        metavar="BIT",
        help="GWOSC DQ bits the analysed time must pass, e.g. DATA CBC_CAT1 (default: DATA when "
        "the files carry a GWOSC DQ mask; the flag with no names analyses all time)",
    )


def workdir_tracking_uri(workdir: str) -> str:
    """The tracking URI of the embedded MLflow of a ``gwtwin train`` work directory."""
    if not (Path(workdir) / "mlflow.db").is_file():
        raise GwtwinError(f"{workdir} holds no mlflow.db: is it a `gwtwin train` workdir?")
    from gwtwin.train.tracking import tracking_uri_for

    return tracking_uri_for(workdir)


def load_run(config, sets: list[str] | None):
    """The run config of ``gwtwin config show`` and ``gwtwin run``: CONFIG plus ``--set``."""
    from gwtwin.config import load_run_config, parse_overrides

    return load_run_config(config, parse_overrides(sets or []))
