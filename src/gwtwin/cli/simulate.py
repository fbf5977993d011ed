"""``gwtwin simulate``: frames of the simulated interferometer
(:class:`gwtwin.simulate.Simulator`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gwtwin.cli._common import add_quiet
from gwtwin.errors import GwtwinError


def add_parser(subparsers) -> None:
    sim = subparsers.add_parser(
        "simulate",
        help="write frames of the simulated interferometer with its truth catalogue",
        description="Simulate strain, witness and decoy channels with glitches of every "
        "coupling family; write GWF/HDF5 frames, truth frames and the truth catalogue.",
    )
    sim.add_argument("config", nargs="?", help="YAML scenario (default: built-in scenario)")
    sim.add_argument("--output", "-o", help="output directory")
    sim.add_argument("--quicklook", metavar="PNG", help="also draw example glitches to PNG")
    sim.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    sim.add_argument("--duration", type=int, help="override the duration (s)")
    sim.add_argument("--seed", type=int, help="override the seed")
    sim.add_argument("--start", type=int, help="override the GPS start (s)")
    sim.add_argument("--frame-length", dest="frame_length", type=int, help="seconds per file")
    sim.add_argument("--format", choices=["gwf", "hdf5"], help="frame format")
    sim.add_argument(
        "--show-config", action="store_true", help="print the resolved config and exit"
    )
    add_quiet(sim)
    sim.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gwtwin.simulate import Simulator, load_config
    from gwtwin.simulate.quicklook import print_summary, quicklook

    overrides = {}
    for key in ("duration", "seed", "start", "frame_length", "format"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    config = load_config(args.config, overrides)
    console = Console(stderr=False)
    if args.show_config:
        console.print(config.dump(), markup=False, highlight=False)
        return 0
    if args.output is None:
        raise GwtwinError("gwtwin simulate needs --output DIR (where frames and truth go)")
    output = Path(args.output)
    console.print(
        f"simulating {config.duration} s of {config.prefix} from GPS {config.start} "
        f"(seed {config.seed}) into {output}"
    )
    result = Simulator(config).run(output, workers=args.workers, progress=not args.quiet)
    print_summary(result, console)
    if args.quicklook:
        png = quicklook(output, args.quicklook, config)
        console.print(f"quick look: {png}")
    return 0
