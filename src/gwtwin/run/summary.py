"""What ``gwtwin run`` prints at the end: the steps that ran, their times, the headline numbers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gwtwin.pipeline import RunResult


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} {_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _headline(run_dir: Path, steps: Iterable[str]) -> list[str]:
    """Headline numbers of the train and evaluate steps among ``steps`` (when they are there)."""
    lines = []
    result = run_dir / "train" / "result.json"
    if "train" in steps and result.is_file():
        data = json.loads(result.read_text())
        removed = {k: v for k, v in data.get("metrics", {}).items() if k.startswith("removed")}
        lines.append(
            f"train: {data.get('model_uri') or 'no registered model'}, best validation loss "
            f"{_fmt(data.get('best_val_loss'))}"
            + (f"; witnessed excess power {_fmt(removed)}" if removed else "")
        )
    evaluation = run_dir / "evaluate" / "evaluate.json"
    if "evaluate" in steps and evaluation.is_file():
        headline = json.loads(evaluation.read_text()).get("headline")
        if isinstance(headline, dict) and headline:
            lines.append("evaluate:")
            lines += [f"  {key}: {_fmt(value)}" for key, value in headline.items()]
    index = run_dir / "report" / "index.html"
    if index.is_file():
        lines.append(f"report: {index.resolve()}")
    return lines


def summarize(result: RunResult, log: Callable[[str], None] = print, seconds: float = 0.0) -> None:
    """Log which steps ran (with their times) and which were up to date, and the headline
    numbers of training and evaluation when they were among the steps."""
    ran = ", ".join(f"{s.name} {s.seconds:.1f} s" for s in result.steps if s.ran) or "none"
    skipped = ", ".join(result.skipped) or "none"
    log(f"run {result.run_dir}: ran {ran}; up to date: {skipped}; {seconds:.1f} s in all")
    for line in _headline(Path(result.run_dir), [s.name for s in result.steps]):
        log(line)
