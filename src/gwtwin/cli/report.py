"""``gwtwin report``: the static HTML report of a run directory
(:func:`gwtwin.report.run.build_report`)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    rep = subparsers.add_parser(
        "report",
        help="write the static HTML report of a run directory",
        description="One HTML page (index.html + assets/) with a section per step found in the "
        "run directory.",
    )
    rep.add_argument("run_dir", help="run directory (e.g. demo-run)")
    rep.add_argument("--output", "-o", help="report directory (default RUN_DIR/report)")
    rep.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gwtwin.report.run import build_report

    index = build_report(args.run_dir, args.output)
    print(f"report: {index.resolve()} (open it in a browser; no server needed)")
    return 0
