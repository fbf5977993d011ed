"""The ``gwtwin`` command: one module per sub-command, each a thin layer over a library call.

Every command module has ``add_parser(subparsers)`` (argparse only, no heavy import) and
``run(args)``, which validates the arguments, imports the library code it needs and calls it.
Building the parser (``gwtwin --help``, ``gwtwin CMD --help``) therefore imports none of torch,
Lightning, MLflow, gwpy, matplotlib, scipy or dask; a command imports only its own library code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gwtwin.errors import GwtwinError

#: The sub-commands, in the order ``gwtwin --help`` lists them (module ``gwtwin.cli.<name>``).
COMMANDS = (
    "simulate",
    "triggers",
    "glitches",
    "scan",
    "dataset",
    "train",
    "report",
    "models",
    "retrain",
    "clean",
    "stream",
    "evaluate",
    "config",
    "run",
)

__all__ = ["COMMANDS", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``gwtwin`` argument parser with every sub-command (imports no library code)."""
    parser = argparse.ArgumentParser(
        prog="gwtwin",
        description="A digital twin of a gravitational-wave detector's noise.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"gwtwin.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``gwtwin`` on ``argv`` (default ``sys.argv[1:]``); 2 on a :class:`GwtwinError`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GwtwinError as exc:
        print(f"gwtwin {args.command}: error: {exc}", file=sys.stderr)
        return 2
