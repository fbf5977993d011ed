"""The ``gwtwin`` command: a thin layer over the library (every command is a library call)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gwtwin.errors import GwtwinError


def _cmd_simulate(args: argparse.Namespace) -> int:
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


def _cmd_triggers(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from gwtwin.data import list_channels
    from gwtwin.signal.scan import resolve_frames, triggers_from_frames
    from gwtwin.signal.triggers import write_triggers

    console = Console()
    channels = args.channels
    if channels is None:
        channels = [c for c in list_channels(resolve_frames(args.source)) if "TRUTH_" not in c]
    kwargs = {
        "snr_threshold": args.snr_threshold,
        "cluster_window": args.cluster_window,
        "segment_duration": args.segment_duration,
        "whiten": not args.no_whiten,
        "fduration": args.fduration,
    }
    if args.qrange:
        kwargs["qrange"] = tuple(args.qrange)
    if args.frange:
        kwargs["frange"] = tuple(args.frange)
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=args.quiet,
    )
    with bar:
        # one step per channel read, plus at most one per rate group
        task = bar.add_task("triggers", total=2 * len(channels))
        triggers = triggers_from_frames(
            args.source,
            channels,
            args.start,
            args.end,
            progress=lambda what: bar.update(task, advance=1, description=what),
            **kwargs,
        )
        bar.update(task, completed=2 * len(channels))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_triggers(output, triggers, overwrite=True)
    table = Table(
        title=f"triggers (SNR >= {args.snr_threshold:g}) in GPS "
        f"[{triggers.segment[0]:.1f}, {triggers.segment[1]:.1f})"
    )
    for col in ("channel", "triggers", "max SNR"):
        table.add_column(col)
    for name in triggers.channels:
        rows = triggers[name]
        table.add_row(name, str(len(rows)), f"{rows['snr'].max():.1f}" if len(rows) else "-")
    console.print(table)
    console.print(f"wrote {output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gwtwin",
        description="A digital twin of a gravitational-wave detector's noise.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser(
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
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.set_defaults(func=_cmd_simulate)

    trg = sub.add_parser(
        "triggers",
        help="Q-tile (Omicron-like) triggers of frame channels, written to HDF5",
        description="Whiten each channel, compute the exact multi-Q transform, keep tiles above "
        "the SNR threshold and cluster them in time; one HDF5 table per channel.",
    )
    trg.add_argument("source", help="frame file or directory, or a gwtwin simulate output dir")
    trg.add_argument("--output", "-o", required=True, help="HDF5 file to write")
    trg.add_argument("--channels", "-c", nargs="+", help="channels (default: all but truth)")
    trg.add_argument("--start", help="GPS start (default: start of the files)")
    trg.add_argument("--end", help="GPS end (default: end of the files)")
    trg.add_argument("--snr-threshold", type=float, default=5.5, help="tile SNR (default 5.5)")
    trg.add_argument("--qrange", type=float, nargs=2, metavar=("QMIN", "QMAX"))
    trg.add_argument("--frange", type=float, nargs=2, metavar=("FMIN", "FMAX"), help="Hz")
    trg.add_argument("--cluster-window", type=float, default=0.1, help="s (default 0.1)")
    trg.add_argument("--segment-duration", type=float, default=64.0, help="analysis window, s")
    trg.add_argument("--fduration", type=float, default=2.0, help="whitening filter length, s")
    trg.add_argument("--no-whiten", action="store_true", help="data are already whitened")
    trg.add_argument("--quiet", action="store_true", help="no progress bar")
    trg.set_defaults(func=_cmd_triggers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GwtwinError as exc:
        print(f"gwtwin {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
