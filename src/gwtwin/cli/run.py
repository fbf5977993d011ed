"""``gwtwin run``: the pipeline of a run config in a run directory
(:func:`gwtwin.run.run_pipeline`, :func:`~gwtwin.run.run_status`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gwtwin.cli._common import add_quiet, load_run
from gwtwin.errors import GwtwinError


def add_parser(subparsers) -> None:
    # gwtwin.run imports only gwtwin.pipeline (standard library) at module level; the steps
    # import their libraries when they run, so STEPS is cheap to read here.
    from gwtwin.run import STEPS

    run_ = subparsers.add_parser(
        "run",
        help="run the pipeline of a run config in a run directory (skipping up-to-date steps)",
        description="Run the chosen steps in order in the run directory; each step records its "
        "config hash, code version and the fingerprints of its inputs and outputs in "
        "manifest.json, and is skipped when up to date. An interrupted run resumes. Without "
        "CONFIG, the run directory's recorded config.yaml (or the defaults) is used.",
    )
    run_.add_argument("config", nargs="?", help="run YAML (see gwtwin config show)")
    run_.add_argument("--run-dir", "-d", help="run directory (created)")
    run_.add_argument(
        "--steps",
        "-s",
        help=f"comma-separated steps among {','.join(STEPS)} (default: all that apply)",
    )
    run_.add_argument("--force", action="store_true", help="re-run the chosen steps")
    run_.add_argument(
        "--set", action="append", metavar="KEY.PATH=VALUE", help="override a config key"
    )
    run_.add_argument("--status", action="store_true", help="list each step's state and exit")
    add_quiet(run_, help="no progress bars")
    run_.set_defaults(func=run)


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
    return load_run(config, args.set)


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


def run(args: argparse.Namespace) -> int:
    if args.run_dir is None:
        raise GwtwinError("gwtwin run needs --run-dir DIR (where every step writes its outputs)")
    from gwtwin.run import run_pipeline

    config = _run_config(args)
    run_dir = Path(args.run_dir)
    if args.status:
        _print_status(config, run_dir)
        return 0
    run_pipeline(config, run_dir, steps=args.steps, force=args.force, progress=not args.quiet)
    return 0
