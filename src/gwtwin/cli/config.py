"""``gwtwin config show|validate``: the resolved run config, or validation of config files
(:func:`gwtwin.config.load_run_config`, :func:`~gwtwin.config.load_any_config`).

:mod:`gwtwin.config` composes every step's config model, among them
:class:`gwtwin.infer.clean.CleanConfig` (whose module imports torch) and
:class:`gwtwin.train.config.TrainConfig` (whose package imports Lightning), so these commands
pay for those imports until the config models live apart from the code they configure.
"""

from __future__ import annotations

import argparse

from gwtwin.cli._common import load_run
from gwtwin.errors import GwtwinError


def add_parser(subparsers) -> None:
    cfg = subparsers.add_parser(
        "config",
        help="show the fully resolved run config, or validate config files",
        description="A run config is one YAML with a section per step (source, simulate, scan, "
        "dataset, train, clean, evaluate, report, parallelism); every key has a default.",
    )
    cfg_sub = cfg.add_subparsers(dest="action", required=True)
    show = cfg_sub.add_parser("show", help="print the fully resolved run config as YAML")
    show.add_argument("config", nargs="?", help="run YAML (default: the built-in defaults)")
    show.add_argument(
        "--set",
        action="append",
        metavar="KEY.PATH=VALUE",
        help="override a key (value parsed as YAML), e.g. --set train.max_epochs=5; repeatable",
    )
    show.set_defaults(func=run)
    val = cfg_sub.add_parser(
        "validate",
        help="validate config files (run configs, or per-command ones by file name)",
        description="Run configs are checked as such; files named simulate-*, select-*, "
        "*-dataset*, train-* with the loader of that command (or give --kind).",
    )
    val.add_argument("configs", nargs="+", metavar="CONFIG", help="YAML files")
    val.add_argument("--kind", choices=["run", "simulate", "select", "dataset", "train"])
    val.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "show":
        return show(args)
    return validate(args)


def show(args: argparse.Namespace) -> int:
    print(load_run(args.config, args.set).dump(), end="")
    return 0


def validate(args: argparse.Namespace) -> int:
    from gwtwin.config import config_kind, load_any_config
    from gwtwin.errors import ConfigError

    failed = 0
    for path in args.configs:
        kind = args.kind or config_kind(path)
        try:
            load_any_config(path, kind)
        except ConfigError as err:
            failed += 1
            print(f"{path} ({kind} config): {err}")
        else:
            print(f"{path}: valid {kind} config")
    if failed:
        raise GwtwinError(f"{failed} of {len(args.configs)} config file(s) are not valid")
    return 0
