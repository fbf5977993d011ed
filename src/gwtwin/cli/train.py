"""``gwtwin train``: train, log and register a twin model (:func:`gwtwin.train.train`)."""

from __future__ import annotations

import argparse

from gwtwin.cli._common import add_quiet


def add_parser(subparsers) -> None:
    trn = subparsers.add_parser(
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
    add_quiet(trn)
    trn.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
