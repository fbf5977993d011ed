"""``gwtwin dataset``: training and validation windows (:func:`gwtwin.dataset.build_dataset`)."""

from __future__ import annotations

import argparse

from gwtwin.cli._common import add_quiet


def add_parser(subparsers) -> None:
    dst = subparsers.add_parser(
        "dataset",
        help="training/validation windows (witnesses in, whitened strain out) to HDF5",
        description="Cut time-split training and validation windows from frames for the "
        "selected witness channels: conditioned witnesses in, whitened strain target out (or "
        "Q-image tiles), glitch and quiet windows, full provenance; one HDF5 file.",
    )
    dst.add_argument("source", help="frame directory, or a gwtwin simulate output dir")
    dst.add_argument(
        "--selected", "-s", required=True, help="selected_channels.json (witnesses in order)"
    )
    dst.add_argument("--output", "-o", required=True, help="HDF5 file to write")
    dst.add_argument("--config", "-c", help="dataset YAML (default: built-in defaults)")
    dst.add_argument("--kind", choices=["timeseries", "qimage"], help="override the config kind")
    dst.add_argument(
        "--triggers",
        metavar="H5",
        help="strain triggers to label glitch windows (gwtwin triggers, or a gwtwin scan cache "
        "file OUT/triggers/<IFO>-<CHANNEL>.h5); default: computed",
    )
    add_quiet(dst)
    dst.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from gwtwin.dataset import build_dataset, load_dataset_config
    from gwtwin.progress import progress_bar, stage_callback

    console = Console()
    config = load_dataset_config(args.config, kind=args.kind, triggers_file=args.triggers)
    bar = progress_bar(console, args.quiet)
    with bar:
        summary = build_dataset(
            args.source, args.selected, args.output, config, progress=stage_callback(bar)
        )
    table = Table(title=f"{config.kind} dataset {summary.path}")
    for col in ("split", "windows", "glitch", "quiet"):
        table.add_column(col)
    for split, c in summary.counts.items():
        table.add_row(split, str(c["windows"]), str(c["glitch"]), str(c["quiet"]))
    console.print(table)
    skipped = ", ".join(f"{k}: {v}" for k, v in summary.n_skipped.items()) or "none"
    console.print(f"skipped windows: {skipped}")
    console.print(f"features: {len(summary.spec.feature_names)}; took {summary.elapsed:.1f} s")
    return 0
