"""``gwtwin models list|promote``: the MLflow model registry
(:func:`gwtwin.train.tracking.list_models`, :func:`~gwtwin.train.tracking.promote`)."""

from __future__ import annotations

import argparse

from gwtwin.cli._common import workdir_tracking_uri
from gwtwin.errors import GwtwinError


def add_parser(subparsers) -> None:
    mdl = subparsers.add_parser(
        "models",
        help="list registered twin models, move an alias (promote) or move it back (rollback)",
        description="List the MLflow registry (versions, aliases, validation metrics), point "
        "an alias of a registered model at a version, or point it back at the version it held "
        "before the last promotion.",
    )
    mdl_sub = mdl.add_subparsers(dest="action", required=True)
    for action in ("list", "promote", "rollback"):
        p = mdl_sub.add_parser(action, help=f"{action} registered models")
        p.add_argument("--workdir", "-w", help="a gwtwin train workdir (embedded MLflow)")
        p.add_argument("--tracking-uri", help="MLflow tracking/registry URI")
        if action == "list":
            p.add_argument("--name", help="only this registered model")
        elif action == "rollback":
            p.add_argument("name", help="registered model name")
            p.add_argument("--alias", default="production", help="alias to move back")
        else:
            p.add_argument("name", help="registered model name")
            p.add_argument("version", type=int, help="model version")
            p.add_argument("alias", help="alias to set, e.g. production")
        p.set_defaults(func=run)


def _tracking_uri(args: argparse.Namespace) -> str:
    if args.tracking_uri:
        return args.tracking_uri
    if args.workdir is None:
        raise GwtwinError("give --workdir DIR (embedded MLflow in DIR/mlflow.db) or --tracking-uri")
    return workdir_tracking_uri(args.workdir)


def run(args: argparse.Namespace) -> int:
    uri = _tracking_uri(args)

    from rich.console import Console

    from gwtwin.train.report import print_models
    from gwtwin.train.tracking import list_models, promote, rollback

    console = Console()
    if args.action == "rollback":
        old, new = rollback(args.name, args.alias, uri)
        console.print(f"{args.name}@{args.alias}: version {old} -> {new} (rolled back)")
        return 0
    if args.action == "promote":
        promote(args.name, args.version, args.alias, uri)
        console.print(f"{args.name} version {args.version} is now @{args.alias}")
        return 0
    print_models(list_models(uri, args.name), uri, console)
    return 0
