"""``gwtwin evaluate``: score a cleaning against the truth of simulated data, and from the data
alone (:func:`gwtwin.evaluate.run.evaluate_run`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    evl = subparsers.add_parser(
        "evaluate",
        help="score a cleaning (against the truth of simulated data, and from the data alone)",
        description="With a simulation: fraction of witnessed excess power removed per family, "
        "residual SNRs, ASD ratio over glitch-free stretches and overall, flag "
        "efficiency/deadtime and injection SNR loss. Always (real data too): the ASD ratio over "
        "quiet and all time and each glitch's trigger SNR before/after (improved, worsened, "
        "untouched). evaluate.json, CSV tables and plots.",
    )
    evl.add_argument(
        "simulation",
        nargs="?",
        help="gwtwin simulate output directory (frames, truth); leave out for real data",
    )
    evl.add_argument("clean", help="gwtwin clean output directory")
    evl.add_argument("--output", "-o", required=True, help="output directory")
    evl.add_argument("--start", type=float, help="GPS start of the scored span (held-out time)")
    evl.add_argument("--end", type=float, help="GPS end of the scored span")
    evl.add_argument("--frames", help="raw frames the cleaning read (default: from clean.json)")
    evl.add_argument("--config", "-c", help="evaluate YAML (or a run YAML)")
    evl.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from gwtwin.evaluate.run import evaluate_run, load_evaluate_config

    config = load_evaluate_config(args.config, {"start": args.start, "end": args.end})
    console = Console()
    result = evaluate_run(
        args.simulation, args.clean, args.output, config, frames=args.frames, log=lambda s: None
    )
    if "criteria" not in result:  # real data: what the data say, and what needs truth
        table = Table(title=f"cleaning scored without truth over {result['seconds']:g} s")
        for col in ("measure", "value"):
            table.add_column(col)
        for name, value in result["headline"].items():
            table.add_row(name, str(value))
        console.print(table)
        console.print(
            "not computable without truth: " + "; ".join(result["not_computed_without_truth"])
        )
        console.print(f"wrote {Path(args.output) / 'evaluate.json'}")
        return 0
    table = Table(title=f"cleaning scored against truth over {result['seconds']:g} s")
    for col in ("criterion", "measured", "pass"):
        table.add_column(col)
    for name, c in result["criteria"].items():
        value = c["value"]
        text = (
            "n/a" if value is None else (f"{value:.3g}" if isinstance(value, float) else str(value))
        )
        table.add_row(name, text, {True: "yes", False: "no", None: "-"}[c["pass"]])
    console.print(table)
    console.print(f"wrote {Path(args.output) / 'evaluate.json'}")
    return 0
