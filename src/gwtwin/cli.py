"""The ``gwtwin`` command: a thin layer over the library (every command is a library call)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gwtwin.errors import GwtwinError
from gwtwin.progress import progress_bar as _progress_bar
from gwtwin.progress import stage_callback


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
    bar = _progress_bar(console, args.quiet)
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


def _cmd_scan(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gwtwin.select import select_channels
    from gwtwin.select.report import print_selection

    console = Console()
    bar = _progress_bar(console, args.quiet)
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


def _cmd_dataset(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from gwtwin.dataset import build_dataset, load_dataset_config

    console = Console()
    config = load_dataset_config(args.config, kind=args.kind, triggers_file=args.triggers)
    bar = _progress_bar(console, args.quiet)
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


def _cmd_report(args: argparse.Namespace) -> int:
    from gwtwin.report.run import build_report

    index = build_report(args.run_dir, args.output)
    print(f"report: {index.resolve()} (open it in a browser; no server needed)")
    return 0


def _tracking_uri(args: argparse.Namespace) -> str:
    from gwtwin.train.tracking import tracking_uri_for

    if args.tracking_uri:
        return args.tracking_uri
    if args.workdir is None:
        raise GwtwinError("give --workdir DIR (embedded MLflow in DIR/mlflow.db) or --tracking-uri")
    if not (Path(args.workdir) / "mlflow.db").is_file():
        raise GwtwinError(f"{args.workdir} holds no mlflow.db: is it a `gwtwin train` workdir?")
    return tracking_uri_for(args.workdir)


def _cmd_train(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gwtwin.train import load_train_config, train
    from gwtwin.train.report import print_result

    overrides = {"progress": not args.quiet}
    if args.max_epochs is not None:
        overrides["max_epochs"] = args.max_epochs
    config = load_train_config(args.config, overrides)
    result = train(args.dataset, args.workdir, config, model=args.model, resume=args.resume)
    print_result(result, Console())
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gwtwin.train.report import print_models
    from gwtwin.train.tracking import list_models, promote

    uri = _tracking_uri(args)
    console = Console()
    if args.action == "promote":
        promote(args.name, args.version, args.alias, uri)
        console.print(f"{args.name} version {args.version} is now @{args.alias}")
        return 0
    print_models(list_models(uri, args.name), uri, console)
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

    scn = sub.add_parser(
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
    scn.add_argument("--quiet", action="store_true", help="no progress bar")
    scn.set_defaults(func=_cmd_scan)

    dst = sub.add_parser(
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
    dst.add_argument("--quiet", action="store_true", help="no progress bar")
    dst.set_defaults(func=_cmd_dataset)

    trn = sub.add_parser(
        "train",
        help="train a twin model on a dataset; log, register and alias it in MLflow",
        description="Train the time-domain (witness_td, default) or Q-image (qimage_unet) model "
        "with Lightning: best checkpoint on validation loss, early stopping, TensorBoard panels; "
        "log params, metrics, dataset provenance and the model to MLflow (embedded in "
        "WORKDIR/mlflow.db unless the config names a tracking URI), register it and set an alias.",
    )
    trn.add_argument("dataset", help="dataset HDF5 file (gwtwin dataset)")
    trn.add_argument("--workdir", "-w", required=True, help="MLflow, TensorBoard, checkpoints")
    trn.add_argument("--config", "-c", help="training YAML (default: built-in defaults)")
    trn.add_argument("--model", "-m", help="model name (witness_td, qimage_unet)")
    trn.add_argument("--resume", help="checkpoint to resume from (e.g. .../last.ckpt)")
    trn.add_argument("--max-epochs", type=int, help="override max_epochs")
    trn.add_argument("--quiet", action="store_true", help="no progress bar")
    trn.set_defaults(func=_cmd_train)

    rep = sub.add_parser(
        "report",
        help="write the static HTML report of a run directory",
        description="One HTML page (index.html + assets/) with a section per step found in the "
        "run directory.",
    )
    rep.add_argument("run_dir", help="run directory (e.g. demo-run)")
    rep.add_argument("--output", "-o", help="report directory (default RUN_DIR/report)")
    rep.set_defaults(func=_cmd_report)

    mdl = sub.add_parser(
        "models",
        help="list registered twin models, or move an alias (promote)",
        description="List the MLflow registry (versions, aliases, validation metrics) or point "
        "an alias of a registered model at a version.",
    )
    mdl_sub = mdl.add_subparsers(dest="action", required=True)
    for action in ("list", "promote"):
        p = mdl_sub.add_parser(action, help=f"{action} registered models")
        p.add_argument("--workdir", "-w", help="a gwtwin train workdir (embedded MLflow)")
        p.add_argument("--tracking-uri", help="MLflow tracking/registry URI")
        if action == "list":
            p.add_argument("--name", help="only this registered model")
        else:
            p.add_argument("name", help="registered model name")
            p.add_argument("version", type=int, help="model version")
            p.add_argument("alias", help="alias to set, e.g. production")
        p.set_defaults(func=_cmd_models)

    from gwtwin.cli_clean import add_parsers as add_clean_parsers  # gwtwin clean, evaluate
    from gwtwin.cli_run import add_parsers as add_run_parsers  # gwtwin config, gwtwin run

    add_clean_parsers(sub)

    add_run_parsers(sub)
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
