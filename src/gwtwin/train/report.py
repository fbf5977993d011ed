"""Rich console summaries of a training run and of the model registry (used by the CLI)."""

from __future__ import annotations

import datetime

from rich.console import Console
from rich.table import Table

_LABELS = {
    "loss": "validation loss (whitened MSE)",
    "removed_glitch": "witnessed excess power removed, glitch windows",
    "removed_glitch_median": "  per glitch window, median",
    "removed": "witnessed excess power removed, all windows",
    "residual_snr_median": "residual SNR, median glitch window",
    "truth_snr_median": "witnessed SNR before cleaning, median glitch window",
}


def print_result(result, console: Console | None = None) -> None:
    """Summary table of a :class:`~gwtwin.train.TrainResult` and how to look at it."""
    console = console or Console()
    table = Table(title=f"training run {result.run_id}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("registered model", str(result.model_uri))
    table.add_row("parameters", f"{result.n_parameters:,}")
    table.add_row("epochs", str(result.epochs))
    table.add_row("time", f"{result.train_seconds:.1f} s ({result.seconds_per_epoch:.1f} s/epoch)")
    table.add_row("training throughput", f"{result.windows_per_second:.1f} windows/s")
    table.add_row("best checkpoint", result.best_checkpoint)
    for key, value in result.metrics.items():
        if key.startswith("n_"):
            continue
        label = _LABELS.get(key, key.replace("_", " "))
        fmt = f"{100 * value:.1f} %" if key.startswith("removed") else f"{value:.4g}"
        if key.startswith("veto_accuracy"):
            fmt = f"{100 * value:.1f} %"
        table.add_row(label, fmt)
    console.print(table)
    if result.tracking_uri.startswith("sqlite:///"):
        console.print(
            f"MLflow UI:   mlflow ui --backend-store-uri {result.tracking_uri} "
            f"--default-artifact-root {result.workdir}/mlartifacts",
            soft_wrap=True,  # one copy-pasteable line
        )
    if result.tensorboard_dir:
        console.print(
            f"TensorBoard: tensorboard --logdir {result.workdir}/tensorboard", soft_wrap=True
        )


def print_models(rows: list[dict], tracking_uri: str, console: Console | None = None) -> None:
    """Table of registered model versions (:func:`~gwtwin.train.tracking.list_models`)."""
    console = console or Console()
    table = Table(title=f"registered models at {tracking_uri}")
    for col in ("name", "version", "aliases", "created", "val loss", "excess power removed"):
        table.add_column(col, no_wrap=col in ("name", "aliases"))
    for r in rows:
        created = datetime.datetime.fromtimestamp(r["created_ms"] / 1000).isoformat(
            sep=" ", timespec="seconds"
        )
        m = r["metrics"]
        loss = m.get("best_val_loss")
        removed = m.get("best_val_removed_glitch")
        table.add_row(
            r["name"],
            str(r["version"]),
            ", ".join(f"@{a}" for a in r["aliases"]) or "-",
            created,
            "-" if loss is None else f"{loss:.4f}",
            "-" if removed is None else f"{100 * removed:.1f} %",
        )
    if not rows:
        console.print(f"no registered models at {tracking_uri}")
        return
    console.print(table)
