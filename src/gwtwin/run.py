"""``gwtwin run``: every step of a run from one :class:`~gwtwin.config.RunConfig`, in one folder.

The steps and what they write in the run directory (each calls the library function its own
``gwtwin`` command calls)::

    simulate  -> simulation/, quicklook.png      gwtwin.simulate.Simulator      (simulator source)
    scan      -> scan/                           gwtwin.select.select_channels
    dataset   -> dataset.h5                      gwtwin.dataset.build_dataset
    train     -> train/ (result.json, MLflow)    gwtwin.train.train
    clean     -> clean/                          gwtwin.infer.clean.clean_frames
    evaluate  -> evaluate/                       gwtwin.evaluate.run.evaluate_run (simulator source)
    report    -> report/index.html               gwtwin.report.run.build_report

:class:`~gwtwin.pipeline.Pipeline` does the bookkeeping (``manifest.json``): a step runs when it
never ran, was interrupted (training then resumes from its ``last.ckpt``), its section of the
config changed, or its inputs or outputs changed. A step's config is its own section (and the
``source`` section for the steps that read frames) without the execution keys
(:data:`~gwtwin.config.EXECUTION_KEYS`), so changing ``train.max_epochs`` re-runs train and,
through their inputs, clean, evaluate and report, but not simulate, scan or dataset.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.pipeline import Pipeline, RunResult, Step, StepContext, fingerprint
from gwtwin.progress import stage_callback

if TYPE_CHECKING:  # gwtwin.config imports every step's config (torch, lightning): not at start-up
    from gwtwin.config import RunConfig

__all__ = ["STEPS", "build_pipeline", "default_steps", "run_pipeline", "run_status", "summarize"]

#: every step, in run order
STEPS = ("simulate", "scan", "dataset", "train", "clean", "evaluate", "report")
#: what the report reads (when present): its inputs, so it is rewritten when one changes
REPORT_SOURCES = ("simulation", "quicklook.png", "scan", "train/result.json", "clean", "evaluate")
_SIMULATOR_ONLY = {
    "simulate": "it renders the simulated scenario",
    "evaluate": "it needs ground truth (the simulator's truth/ frames and catalogue)",
}


def _strain_triggers(config: RunConfig) -> str:
    """The strain channel's trigger file in the scan's cache, relative to the run directory."""
    from gwtwin.select.triggers import _cache_path  # the scan's own naming rule

    return str(_cache_path(Path("scan/triggers"), config.strain_channel))


@contextmanager
def _bar(enabled: bool):
    """The rich progress bar of the ``gwtwin`` commands (or nothing)."""
    from gwtwin.progress import progress_bar

    bar = progress_bar(quiet=not enabled)
    with bar:
        yield bar


def _console():
    from rich.console import Console

    return Console()


def _clear(path: Path) -> None:
    """Remove a previous run's output, so no stale file survives a re-run."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


class _Steps:
    """The step functions of one run (they close over the config and the run directory)."""

    def __init__(self, config: RunConfig, run_dir: Path, progress: bool):
        self.config = config
        self.run_dir = run_dir
        self.progress = progress

    @property
    def simulated(self) -> bool:
        return self.config.source.kind == "simulator"

    @property
    def source(self) -> Path:
        """What scan and dataset read: the simulation directory or the frames."""
        if self.simulated:
            return self.run_dir / "simulation"
        return Path(self.config.source.path)

    @property
    def frames(self) -> Path:
        """The frame directory the cleaning reads (never the simulator's truth)."""
        return self.source / "frames" if self.simulated else self.source

    # -- steps -----------------------------------------------------------------------------------
    def simulate(self, ctx: StepContext) -> None:
        from gwtwin.simulate import Simulator
        from gwtwin.simulate.quicklook import print_summary, quicklook

        cfg = self.config.simulate
        output = ctx.path("simulation")
        _clear(output)  # a shorter scenario must not leave old frame files behind
        ctx.log(
            f"[simulate] {cfg.duration} s of {cfg.prefix} from GPS {cfg.start} (seed {cfg.seed})"
        )
        result = Simulator(cfg).run(output, progress=self.progress)
        print_summary(result, _console())
        quicklook(output, ctx.path("quicklook.png"), cfg)

    def scan(self, ctx: StepContext) -> None:
        from gwtwin.select import select_channels
        from gwtwin.select.report import print_selection

        output = ctx.path("scan")
        self._check_trigger_cache(output / "triggers", ctx.log)
        with _bar(self.progress) as bar:
            task = bar.add_task("triggers", total=None)
            selection = select_channels(
                self.source,
                self.config.scan,
                output,
                on_channels=lambda n: bar.update(task, total=n),
                progress=lambda name, cached: bar.update(
                    task, advance=1, description=f"{name} ({'cached' if cached else 'computed'})"
                ),
            )
        print_selection(selection, _console())

    def _check_trigger_cache(self, cache: Path, log: Callable[[str], None]) -> None:
        """The scan caches triggers by job description (path, channel, options), not by content:
        when the frames under the same path changed (a new simulation), drop the cache."""
        if self.simulated:
            stamp = {"frames": fingerprint(self.frames)}
        else:
            stamp = {"path": str(Path(self.config.source.path).resolve())}
        record = cache / "source.json"
        if cache.is_dir():
            try:
                same = json.loads(record.read_text()) == stamp
            except (OSError, json.JSONDecodeError):
                same = False
            if not same:
                log("[scan] the frames changed since the triggers were cached: recomputing")
                shutil.rmtree(cache)
        cache.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(stamp) + "\n")

    def dataset(self, ctx: StepContext) -> None:
        from rich.table import Table

        from gwtwin.dataset import build_dataset

        cfg = self.config.dataset
        if cfg.triggers_file is None:  # label windows with the strain triggers of the scan
            triggers = ctx.path(_strain_triggers(self.config))
            cfg = cfg.model_copy(update={"triggers_file": str(triggers)})
        with _bar(self.progress) as bar:
            summary = build_dataset(
                self.source,
                ctx.path("scan/selected_channels.json"),
                ctx.path("dataset.h5"),
                cfg,
                progress=stage_callback(bar),
            )
        table = Table(title=f"{cfg.kind} dataset {summary.path}")
        for col in ("split", "windows", "glitch", "quiet"):
            table.add_column(col)
        for split, c in summary.counts.items():
            table.add_row(split, str(c["windows"]), str(c["glitch"]), str(c["quiet"]))
        _console().print(table)

    def train(self, ctx: StepContext) -> None:
        from gwtwin.train import train
        from gwtwin.train.report import print_result

        workdir = ctx.path("train")
        checkpoint = None
        if ctx.resume:
            found = sorted(workdir.glob("checkpoints/*/last.ckpt"), key=lambda p: p.stat().st_mtime)
            if found:
                checkpoint = found[-1]
                ctx.log(f"[train] resuming the interrupted training from {checkpoint}")
            else:
                ctx.log("[train] interrupted before its first checkpoint: starting again")
        _clear(workdir / "result.json")
        cfg = self.config.train
        if not self.progress:
            cfg = cfg.model_copy(update={"progress": False})
        result = train(ctx.path("dataset.h5"), workdir, cfg, resume=checkpoint)
        print_result(result, _console())

    def _model(self) -> tuple[str | None, str | None]:
        """``(model URI, tracking URI)`` for the cleaning: by default the model the train step
        registered (``train/result.json``); ``None`` leaves ``clean.model`` /
        ``clean.tracking_uri`` in charge."""
        from gwtwin.train.tracking import tracking_uri_for

        clean = self.config.clean
        train_dir = self.run_dir / "train"
        if clean.model is not None:
            if clean.tracking_uri is not None:
                return None, None
            return None, tracking_uri_for(train_dir, self.config.train.tracking.tracking_uri)
        result = json.loads((train_dir / "result.json").read_text())
        if not result.get("model_uri"):
            raise GwtwinError(
                f"{train_dir / 'result.json'} names no registered model (train.tracking.log_model "
                "is false?): set clean.model to a model URI"
            )
        return result["model_uri"], clean.tracking_uri or result["tracking_uri"]

    def clean(self, ctx: StepContext) -> None:
        from gwtwin.infer.clean import clean_frames

        output = ctx.path("clean")
        _clear(output)
        model, tracking_uri = self._model()
        with _bar(self.progress) as bar:
            clean_frames(
                self.frames,
                output,
                self.config.clean,
                model=model,
                tracking_uri=tracking_uri,
                progress=stage_callback(bar),
                log=ctx.log,
            )

    def evaluate(self, ctx: StepContext) -> None:
        from gwtwin.evaluate.run import evaluate_run

        output = ctx.path("evaluate")
        _clear(output)
        evaluate_run(
            ctx.path("simulation"), ctx.path("clean"), output, self.config.evaluate, log=ctx.log
        )

    def report(self, ctx: StepContext) -> None:
        from gwtwin.report.run import build_report

        _clear(ctx.path("report"))
        index = build_report(self.run_dir)
        ctx.log(f"[report] {index.resolve()} (open it in a browser; no server needed)")


def build_pipeline(
    config: RunConfig, run_dir: str | os.PathLike, *, progress: bool = True
) -> Pipeline:
    """The :class:`~gwtwin.pipeline.Pipeline` of a run (every step its source allows)."""
    run_dir = Path(run_dir)
    fn = _Steps(config, run_dir, progress)
    simulated = config.source.kind == "simulator"
    source = {"source": config.section("source")}
    frames_in = ("simulation",) if simulated else ()
    triggers = _strain_triggers(config)
    steps: list[Step] = []
    if simulated:
        steps.append(
            Step(
                "simulate",
                fn.simulate,
                ("simulation", "quicklook.png"),
                config={"simulate": config.section("simulate", for_hash=True)},
            )
        )
    steps += [
        Step(
            "scan",
            fn.scan,
            ("scan", "scan/selected_channels.json", triggers),
            frames_in,
            config={**source, "scan": config.section("scan", for_hash=True)},
        ),
        Step(
            "dataset",
            fn.dataset,
            ("dataset.h5",),
            (*frames_in, "scan/selected_channels.json", triggers),
            config={**source, "dataset": config.section("dataset", for_hash=True)},
        ),
        Step(
            "train",
            fn.train,
            ("train/result.json",),
            ("dataset.h5",),
            config={"train": config.section("train", for_hash=True)},
        ),
        Step(
            "clean",
            fn.clean,
            ("clean",),
            (*frames_in, *(("train/result.json",) if config.clean.model is None else ())),
            config={**source, "clean": config.section("clean", for_hash=True)},
        ),
    ]
    if simulated:
        steps.append(
            Step(
                "evaluate",
                fn.evaluate,
                ("evaluate",),
                ("simulation", "clean"),
                config={"evaluate": config.section("evaluate", for_hash=True)},
            )
        )
    # the report reads whatever the other steps left: those files are its inputs
    present = tuple(p for p in REPORT_SOURCES if (run_dir / p).exists())
    steps.append(
        Step(
            "report",
            fn.report,
            ("report/index.html",),
            present,
            config={"report": config.section("report")},
        )
    )
    return Pipeline(steps, run_dir)


def default_steps(config: RunConfig) -> list[str]:
    """The steps ``gwtwin run`` runs without ``--steps``."""
    names = [s for s in STEPS if config.source.kind == "simulator" or s not in _SIMULATOR_ONLY]
    if not config.report.enabled:
        names.remove("report")
    return names


def _chosen(config: RunConfig, steps: Iterable[str] | str | None) -> list[str]:
    if steps is None:
        return default_steps(config)
    if isinstance(steps, str):
        steps = [s.strip() for s in steps.split(",") if s.strip()]
    names = list(steps)
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        raise GwtwinError(f"unknown step(s) {unknown}; the steps are {', '.join(STEPS)}")
    if config.source.kind != "simulator":
        refused = [n for n in names if n in _SIMULATOR_ONLY]
        if refused:
            why = "; ".join(f"{n}: {_SIMULATOR_ONLY[n]}" for n in refused)
            raise ConfigError(
                f"step(s) {refused} need source.kind 'simulator', but this run reads frames "
                f"from {config.source.path} ({why})"
            )
    return [s for s in STEPS if s in names]


def _resolved(config: RunConfig) -> RunConfig:
    """The config with an absolute frames path (the run's config.yaml must not depend on the
    directory it was started from)."""
    if config.source.kind != "frames":
        return config
    path = Path(config.source.path).expanduser()
    if not path.exists():
        raise GwtwinError(f"source.path {path} does not exist (expected a frame directory)")
    source = config.source.model_copy(update={"path": str(path.resolve())})
    return config.model_copy(update={"source": source})


def run_pipeline(
    config: RunConfig,
    run_dir: str | os.PathLike,
    steps: Iterable[str] | str | None = None,
    force: bool | Iterable[str] = False,
    log: Callable[[str], None] = print,
    *,
    progress: bool = True,
) -> RunResult:
    """Run the chosen steps (default: :func:`default_steps`) of a run in ``run_dir``.

    Writes ``<run_dir>/config.yaml`` (the resolved config) first; steps whose outputs are up to
    date are skipped. ``force``: True re-runs every chosen step, a collection the named ones.
    ``progress``: rich progress bars. Returns the :class:`~gwtwin.pipeline.RunResult`; the
    summary is logged (:func:`summarize`).
    """
    config = _resolved(config)
    run_dir = Path(run_dir)
    names = _chosen(config, steps)
    forced = set(names) if force is True else set(force or ())
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(config.dump())
    result = RunResult(run_dir)
    first = [n for n in names if n != "report"]
    t0 = time.perf_counter()
    if first:
        pipeline = build_pipeline(config, run_dir, progress=progress)
        part = pipeline.run(first, force=forced & set(first), log=log)
        result.steps += part.steps
    if "report" in names:  # built now, so that its inputs are what the steps above wrote
        pipeline = build_pipeline(config, run_dir, progress=progress)
        part = pipeline.run(["report"], force=forced & {"report"}, log=log)
        result.steps += part.steps
    summarize(result, log, seconds=time.perf_counter() - t0)
    return result


def run_status(config: RunConfig, run_dir: str | os.PathLike) -> list[tuple[str, str | None]]:
    """``(step, why it would run, or None when up to date)`` for every step of the run.

    A step that is up to date by itself but reads the outputs of a step that will run is
    reported as depending on it (it re-runs if those outputs change).
    """
    config = _resolved(config)
    pipeline = build_pipeline(config, run_dir, progress=False)
    inputs = {s.name: set(s.inputs) for s in pipeline.steps}
    rerun: dict[str, str] = {}  # output -> step that will rewrite it
    out = []
    for name, reason in pipeline.status(default_steps(config)):
        if reason is None:
            waits = sorted({rerun[p] for p in inputs[name] if p in rerun})
            if waits:
                reason = f"waits on {', '.join(waits)} (re-runs if its outputs change)"
        if reason is not None:
            step = next(s for s in pipeline.steps if s.name == name)
            rerun.update({p: name for p in step.outputs})
        out.append((name, reason))
    return out


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
