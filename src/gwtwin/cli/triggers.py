"""``gwtwin triggers``: Q-tile triggers of frame channels
(:func:`gwtwin.signal.scan.triggers_from_frames`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gwtwin.cli._common import add_dq_bits, add_quiet


def add_parser(subparsers) -> None:
    trg = subparsers.add_parser(
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
    add_dq_bits(trg)
    add_quiet(trg)
    trg.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from gwtwin.progress import progress_bar
    from gwtwin.signal.scan import default_channels, triggers_from_frames
    from gwtwin.signal.triggers import write_triggers

    console = Console()
    channels = args.channels
    if channels is None:  # all but the simulator's truth and GWOSC's bitmask channels
        channels = default_channels(args.source)
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
    bar = progress_bar(console, args.quiet)
    with bar:
        # one step per channel read, plus at most one per rate group
        task = bar.add_task("triggers", total=2 * len(channels))
        triggers = triggers_from_frames(
            args.source,
            channels,
            args.start,
            args.end,
            dq_bits=args.dq_bits,
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
