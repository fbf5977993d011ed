"""``gwtwin scan``: the auxiliary channels that witness strain glitches
(:func:`gwtwin.select.select_channels`)."""

from __future__ import annotations

import argparse

from gwtwin.cli._common import add_quiet


def add_parser(subparsers) -> None:
    scn = subparsers.add_parser(
        "scan",
        help="select the auxiliary channels that witness strain glitches (hveto rounds + scores)",
        description="Triggers for every channel (cached, in parallel), hveto's hierarchical "
        "rounds with Poisson significance, time slides, coincidence scores; writes the ranked "
        "channel table, rounds, veto flags, plots and selected_channels.json.",
    )
    scn.add_argument("source", help="frame file or directory, or a gwtwin simulate output dir")
    scn.add_argument("--output", "-o", required=True, help="output directory")
    scn.add_argument("--config", help="selection YAML (default: built-in, hveto's grids)")
    scn.add_argument("--channels", "-c", nargs="+", help="auxiliary channels (default: all)")
    scn.add_argument("--strain", help="strain channel (default: from the config)")
    add_quiet(scn)
    scn.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gwtwin.progress import progress_bar
    from gwtwin.select import select_channels
    from gwtwin.select.report import print_selection

    console = Console()
    bar = progress_bar(console, args.quiet)
    with bar:
        task = bar.add_task("triggers", total=None)
        selection = select_channels(
            args.source,
            args.config,
            args.output,
            channels=args.channels,
            strain_channel=args.strain,
            on_channels=lambda n: bar.update(task, total=n),
            progress=lambda name, cached: bar.update(
                task, advance=1, description=f"{name} ({'cached' if cached else 'computed'})"
            ),
        )
    print_selection(selection, console)
    console.print(f"wrote {args.output}")
    return 0
