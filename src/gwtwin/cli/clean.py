"""``gwtwin clean``: clean strain frames with a registered twin model
(:func:`gwtwin.infer.clean.clean_frames`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gwtwin.cli._common import add_quiet, workdir_tracking_uri


def add_parser(subparsers) -> None:
    cln = subparsers.add_parser(
        "clean",
        help="clean strain frames with a registered twin model; flags and glitch metadata",
        description="Read strain and the model's witnesses from frames, predict the witnessed "
        "noise on the global window grid, subtract it and write cleaned strain frames (same "
        "channel + suffix) with the predicted noise (<STRAIN>_PREDICTION); then Q-tile "
        "triggers of raw and cleaned strain, per-glitch metadata, the <IFO>:GWTWIN-* flags "
        "(XML, HDF5, JSON), accuracy curves and "
        "glitch images.",
    )
    cln.add_argument("source", help="frame directory (strain + witness channels)")
    cln.add_argument("--output", "-o", required=True, help="output directory")
    cln.add_argument("--model", "-m", help="model URI, e.g. models:/gwtwin-witness-td@candidate")
    cln.add_argument("--workdir", "-w", help="gwtwin train workdir holding the MLflow registry")
    cln.add_argument("--tracking-uri", help="MLflow tracking/registry URI")
    cln.add_argument("--start", type=float, help="GPS start (default: first frame)")
    cln.add_argument("--end", type=float, help="GPS end (default: last frame)")
    cln.add_argument("--chunk-duration", type=int, help="seconds cleaned at once (default 256)")
    cln.add_argument("--format", choices=["gwf", "hdf5"], help="output frame format")
    cln.add_argument("--suffix", help="cleaned channel suffix (default _CLEANED)")
    cln.add_argument("--config", "-c", help="clean YAML (or a run YAML with a clean: section)")
    add_quiet(cln)
    cln.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gwtwin.infer.clean import clean_frames, load_clean_config
    from gwtwin.progress import progress_bar, stage_callback

    overrides = {
        "model": args.model,
        "start": args.start,
        "end": args.end,
        "chunk_duration": args.chunk_duration,
        "format": args.format,
        "suffix": args.suffix,
    }
    config = load_clean_config(args.config, overrides)
    tracking = args.tracking_uri
    if tracking is None and args.workdir:
        tracking = workdir_tracking_uri(args.workdir)
    console = Console()
    bar = progress_bar(console, args.quiet)
    with bar:
        summary = clean_frames(
            args.source,
            args.output,
            config,
            tracking_uri=tracking,
            progress=stage_callback(bar),
            log=console.print,
        )
    v = summary["veto"]
    console.print(
        f"wrote {len(summary['frames'])} frame file(s) of {summary['cleaned_channel']} and "
        f"{summary['prediction_channel']} into {Path(args.output) / 'frames'}; cleaning applied "
        f"over {summary['cleaning_applied_seconds']:g} of {summary['seconds']:g} s "
        f"({summary['speed_x_real_time']:.0f}x real time)"
    )
    for name, fig in v["flags"].items():
        console.print(
            f"{name}: {fig['active_seconds']:.1f} s active, efficiency/deadtime "
            f"{fig.get('efficiency_over_deadtime', float('nan')):.1f}"
        )
    console.print(f"metadata: {Path(args.output) / 'metadata.csv'}")
    return 0
