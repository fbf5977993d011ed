"""The step functions of ``gwtwin run``: each calls the library function its own ``gwtwin``
command calls, with the run's config section, reading and writing inside the run directory."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gwtwin.errors import GwtwinError
from gwtwin.pipeline import StepContext, fingerprint
from gwtwin.progress import stage_callback

if TYPE_CHECKING:  # gwtwin.config imports every step's config (torch, lightning): not at start-up
    from gwtwin.config import RunConfig


#: every step, in run order
STEPS = ("simulate", "scan", "dataset", "train", "clean", "evaluate", "stream", "report")
#: what the report reads (when present): its inputs, so it is rewritten when one changes
REPORT_SOURCES = (
    "simulation",
    "quicklook.png",
    "scan",
    "train/result.json",
    "clean",
    "evaluate",
    "stream/summary.json",
)
SIMULATOR_ONLY = {
    "simulate": "it renders the simulated scenario",
}


def strain_triggers_path(config: RunConfig) -> str:
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


class RunSteps:
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
            triggers = ctx.path(strain_triggers_path(self.config))
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

    def _model(self, section: str = "clean") -> tuple[str | None, str | None]:
        """``(model URI, tracking URI)`` for the cleaning (or the stream): by default the model
        the train step registered (``train/result.json``); ``None`` leaves ``<section>.model`` /
        ``<section>.tracking_uri`` in charge."""
        from gwtwin.train.tracking import tracking_uri_for

        clean = getattr(self.config, section)
        train_dir = self.run_dir / "train"
        if clean.model is not None:
            if clean.tracking_uri is not None:
                return None, None
            return None, tracking_uri_for(train_dir, self.config.train.tracking.tracking_uri)
        result = json.loads((train_dir / "result.json").read_text())
        if not result.get("model_uri"):
            raise GwtwinError(
                f"{train_dir / 'result.json'} names no registered model (train.tracking.log_model "
                f"is false?): set {section}.model to a model URI"
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
        # frames without truth (real data): the truth-free metrics, and what needs truth
        truth = ctx.path("simulation") if self.simulated else None
        evaluate_run(
            truth,
            ctx.path("clean"),
            output,
            self.config.evaluate,
            frames=self.frames,
            log=ctx.log,
        )

    def stream(self, ctx: StepContext) -> None:
        from gwtwin.stream.run import stream_frames

        output = ctx.path("stream")
        _clear(output)
        model, tracking_uri = self._model("stream")
        stream_frames(
            self.frames,
            output,
            self.config.stream,
            model=model,
            tracking_uri=tracking_uri,
            offline=ctx.path("clean"),
            log=ctx.log,
        )

    def report(self, ctx: StepContext) -> None:
        from gwtwin.report.run import build_report

        _clear(ctx.path("report"))
        index = build_report(self.run_dir)
        ctx.log(f"[report] {index.resolve()} (open it in a browser; no server needed)")
