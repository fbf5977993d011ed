"""The steps of a run config (inputs, outputs, config sections) and running them in order."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.pipeline import Pipeline, RunResult, Step
from gwtwin.run.steps import REPORT_SOURCES, SIMULATOR_ONLY, STEPS, RunSteps, strain_triggers_path
from gwtwin.run.summary import summarize

if TYPE_CHECKING:  # gwtwin.config imports every step's config (torch, lightning): not at start-up
    from gwtwin.config import RunConfig


def build_pipeline(
    config: RunConfig, run_dir: str | os.PathLike, *, progress: bool = True
) -> Pipeline:
    """The :class:`~gwtwin.pipeline.Pipeline` of a run (every step its source allows)."""
    run_dir = Path(run_dir)
    fn = RunSteps(config, run_dir, progress)
    simulated = config.source.kind == "simulator"
    source = {"source": config.section("source")}
    frames_in = ("simulation",) if simulated else ()
    triggers = strain_triggers_path(config)
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
    steps.append(
        Step(
            "evaluate",
            fn.evaluate,
            ("evaluate",),
            (*frames_in, "clean"),
            config={**source, "evaluate": config.section("evaluate", for_hash=True)},
        )
    )
    steps.append(
        Step(
            "stream",
            fn.stream,
            ("stream/summary.json",),
            (*frames_in, "clean", *(("train/result.json",) if config.stream.model is None else ())),
            config={**source, "stream": config.section("stream", for_hash=True)},
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
    names = [s for s in STEPS if config.source.kind == "simulator" or s not in SIMULATOR_ONLY]
    if not config.report.enabled:
        names.remove("report")
    if not config.stream.enabled:
        names.remove("stream")
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
        refused = [n for n in names if n in SIMULATOR_ONLY]
        if refused:
            why = "; ".join(f"{n}: {SIMULATOR_ONLY[n]}" for n in refused)
            raise ConfigError(
                f"step(s) {refused} need source.kind 'simulator', but this run reads frames "
                f"from {config.source.path} ({why})"
            )
    return [s for s in STEPS if s in names]


def _resolved(config: RunConfig) -> RunConfig:
    """The config with an absolute frames path (the run's config.yaml must not depend on the
    directory it was started from) and, for frames, the strain channel found in them: a glob
    (``*:GDS-CALIB_STRAIN*``) becomes the one channel it matches."""
    if config.source.kind != "frames":
        return config
    from gwtwin.data import list_channels
    from gwtwin.data.channels import resolve_channel
    from gwtwin.signal.scan import resolve_frames

    path = Path(config.source.path).expanduser()
    if not path.exists():
        raise GwtwinError(f"source.path {path} does not exist (expected a frame directory)")
    pattern = config.source.strain_channel
    if not pattern:
        raise ConfigError(
            "source.strain_channel is required for kind 'frames': the strain channel's full name "
            "(<IFO>:<NAME>) or a glob matching exactly one channel of the frames "
            "(*:GDS-CALIB_STRAIN*)"
        )
    channels = list(list_channels(resolve_frames(path)))
    try:
        strain = resolve_channel(pattern, channels, what="source.strain_channel")
    except GwtwinError as exc:
        raise ConfigError(f"{exc} (frames {path})") from None
    source = config.source.model_copy(
        update={"path": str(path.resolve()), "strain_channel": strain}
    )
    scan = config.scan.model_copy(update={"strain_channel": strain})
    return config.model_copy(update={"source": source, "scan": scan})


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
