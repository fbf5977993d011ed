"""``gwtwin retrain``: retrain on the newest data of a run, compare with the champion on fresh
data, promote when better (:func:`gwtwin.lifecycle.retrain`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gwtwin.cli._common import load_run
from gwtwin.errors import GwtwinError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "retrain",
        help="retrain on recent data, compare champion and challenger, promote if better",
        description="In a run directory where scan and train ran: train a challenger on the "
        "lifecycle.buffer seconds before the newest lifecycle.validation seconds (warm-started "
        "from the champion), score both models on those validation seconds, and move the "
        "champion alias (lifecycle.champion_alias) to the challenger only when it passes every "
        "safety criterion and wins by lifecycle.margin. Writes RUN/lifecycle/<stamp>/"
        "decision.json and an MLflow run; gwtwin models rollback undoes a promotion.",
    )
    p.add_argument("config", nargs="?", help="run YAML (default: the run's config.yaml)")
    p.add_argument("--run-dir", "-d", required=True, help="the run directory")
    p.add_argument("--end", type=float, help="GPS end of the data to use (default: newest frame)")
    p.add_argument("--no-promote", action="store_true", help="compare and record only")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config key")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    config = args.config
    if config is None:
        config = run_dir / "config.yaml"
        if not config.is_file():
            raise GwtwinError(f"give CONFIG: {config} does not exist")
    cfg = load_run(config, args.set)

    from gwtwin.lifecycle import retrain

    retrain(cfg, run_dir, end=args.end, promote=False if args.no_promote else None)
    return 0
