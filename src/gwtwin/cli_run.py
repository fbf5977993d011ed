"""The ``gwtwin config`` and ``gwtwin run`` commands (one YAML per run; see :mod:`gwtwin.run`).

Kept apart from :mod:`gwtwin.cli`, which calls :func:`add_parsers` from ``build_parser``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gwtwin.errors import GwtwinError


def _load(config: str | None, sets: list[str] | None):
    from gwtwin.config import load_run_config, parse_overrides

    return load_run_config(config, parse_overrides(sets or []))


def _cmd_config_show(args: argparse.Namespace) -> int:
    print(_load(args.config, args.set).dump(), end="")
    return 0


def _cmd_config_validate(args: argparse.Namespace) -> int:
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


def _run_config(args: argparse.Namespace):
    """The config of ``gwtwin run``: CONFIG, else the run directory's config.yaml, else the
    defaults; ``--set`` on top."""
    config = args.config
    recorded = Path(args.run_dir) / "config.yaml"
    if config is None and recorded.is_file():
        print(f"using the run's recorded config {recorded}")
        config = recorded
    elif config is None:
        print("no CONFIG given: the built-in defaults (the default simulated scenario)")
    return _load(config, args.set)


def _print_status(config, run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from gwtwin.pipeline import Manifest
    from gwtwin.run import run_status

    manifest = Manifest(run_dir)
    table = Table(title=f"steps of the run in {run_dir}")
    for col in ("step", "state", "last run"):
        table.add_column(col)
    for name, reason in run_status(config, run_dir):
        entry = manifest.steps.get(name, {})
        last = (
            f"{entry.get('finished', entry.get('started', ''))} ({entry['seconds']:.1f} s)"
            if "seconds" in entry
            else entry.get("started", "-")
        )
        if reason is None:
            state = "up to date"
        else:
            state = reason if reason.startswith("waits on") else f"to run: {reason}"
        table.add_row(name, state, last)
    Console().print(table)


def _cmd_run(args: argparse.Namespace) -> int:
    from gwtwin.run import run_pipeline

    if args.run_dir is None:
        raise GwtwinError("gwtwin run needs --run-dir DIR (where every step writes its outputs)")
    config = _run_config(args)
    run_dir = Path(args.run_dir)
    if args.status:
        _print_status(config, run_dir)
        return 0
    run_pipeline(config, run_dir, steps=args.steps, force=args.force, progress=not args.quiet)
    return 0


def add_parsers(sub) -> None:
    """Add ``config`` and ``run`` to the ``gwtwin`` subcommands."""
    from gwtwin.run import STEPS

    cfg = sub.add_parser(
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
    show.set_defaults(func=_cmd_config_show)
    val = cfg_sub.add_parser(
        "validate",
        help="validate config files (run configs, or per-command ones by file name)",
        description="Run configs are checked as such; files named simulate-*, select-*, "
        "*-dataset*, train-* with the loader of that command (or give --kind).",
    )
    val.add_argument("configs", nargs="+", metavar="CONFIG", help="YAML files")
    val.add_argument("--kind", choices=["run", "simulate", "select", "dataset", "train"])
    val.set_defaults(func=_cmd_config_validate)

    run = sub.add_parser(
        "run",
        help="run the pipeline of a run config in a run directory (skipping up-to-date steps)",
        description="Run the chosen steps in order in the run directory; each step records its "
        "config hash, code version and the fingerprints of its inputs and outputs in "
        "manifest.json, and is skipped when up to date. An interrupted run resumes. Without "
        "CONFIG, the run directory's recorded config.yaml (or the defaults) is used.",
    )
    run.add_argument("config", nargs="?", help="run YAML (see gwtwin config show)")
    run.add_argument("--run-dir", "-d", help="run directory (created)")
    run.add_argument(
        "--steps",
        "-s",
        help=f"comma-separated steps among {','.join(STEPS)} (default: all that apply)",
    )
    run.add_argument("--force", action="store_true", help="re-run the chosen steps")
    run.add_argument(
        "--set", action="append", metavar="KEY.PATH=VALUE", help="override a config key"
    )
    run.add_argument("--status", action="store_true", help="list each step's state and exit")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.set_defaults(func=_cmd_run)
