"""Run pipeline steps in order in a run directory, skipping those whose outputs are up to date.

A :class:`Step` declares the files (relative to the run directory) it reads and writes, the config
section it depends on, and a function doing the work. :class:`Pipeline` runs the chosen steps in
the order they were declared; before each one it asks the run's manifest
(:class:`~gwtwin.pipeline.manifest.Manifest`) whether the step is up to date (same config hash,
same input and output fingerprints) and skips it if so. Deleting an output re-runs the step that
wrote it, and then only the steps whose inputs actually changed. A step whose input is missing is
refused with the name of the step that writes it. A step that was interrupted is marked
``started`` and runs again, with ``resume=True`` in its context, so long steps (training) can pick
up from their own checkpoints.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gwtwin.errors import GwtwinError
from gwtwin.pipeline.manifest import Manifest, config_hash


@dataclass(frozen=True)
class StepContext:
    """What a step's function gets: where to work, its config section, whether to resume."""

    run_dir: Path
    config: Any
    resume: bool
    log: Callable[[str], None]

    def path(self, relative: str | os.PathLike) -> Path:
        return self.run_dir / relative


@dataclass(frozen=True)
class Step:
    """One pipeline step.

    Parameters
    ----------
    name : str
        Name used on the command line (``--steps``).
    run : callable
        ``run(context: StepContext) -> None``; writes every path of ``outputs``.
    outputs : sequence of str
        Files or directories (relative to the run directory) the step writes.
    inputs : sequence of str
        Files or directories (relative to the run directory) the step reads.
    config : JSON-able
        The part of the run configuration the step depends on; a change re-runs the step.
    """

    name: str
    run: Callable[[StepContext], None]
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    config: Any = None

    def __post_init__(self):
        object.__setattr__(self, "outputs", tuple(str(p) for p in self.outputs))
        object.__setattr__(self, "inputs", tuple(str(p) for p in self.inputs))
        if not self.outputs:
            raise GwtwinError(f"step {self.name!r} declares no outputs: nothing to check it by")


@dataclass
class StepResult:
    name: str
    ran: bool
    reason: str | None
    seconds: float = 0.0


@dataclass
class RunResult:
    run_dir: Path
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ran(self) -> list[str]:
        return [s.name for s in self.steps if s.ran]

    @property
    def skipped(self) -> list[str]:
        return [s.name for s in self.steps if not s.ran]


class Pipeline:
    """An ordered list of steps over one run directory."""

    def __init__(self, steps: Sequence[Step], run_dir: str | os.PathLike):
        self.steps = list(steps)
        self.run_dir = Path(run_dir)
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise GwtwinError(f"step names must be unique, found {names}")
        self.producer: dict[str, str] = {}
        for step in self.steps:
            for out in step.outputs:
                if out in self.producer:
                    raise GwtwinError(
                        f"output {out} is declared by both step {self.producer[out]!r} and step "
                        f"{step.name!r}"
                    )
                self.producer[out] = step.name

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    def select(self, names: Iterable[str] | None) -> list[Step]:
        """The named steps in pipeline order (all when ``names`` is None)."""
        if names is None:
            return list(self.steps)
        names = list(names)
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise GwtwinError(
                f"unknown step(s) {unknown}: the steps of this pipeline are {self.names}"
            )
        return [s for s in self.steps if s.name in names]

    def _check_inputs(self, step: Step) -> None:
        for path in step.inputs:
            if not (self.run_dir / path).exists():
                maker = self.producer.get(path)
                how = (
                    f"it is written by step {maker!r}: run that step first (--steps {maker})"
                    if maker
                    else "no step writes it: put it in the run directory"
                )
                raise GwtwinError(
                    f"step {step.name!r} needs {self.run_dir / path}, which does not exist; {how}"
                )

    def status(self, names: Iterable[str] | None = None) -> list[tuple[str, str | None]]:
        """``(step, why it would run or None if up to date)`` for the chosen steps."""
        manifest = Manifest(self.run_dir)
        return [
            (s.name, manifest.stale_reason(s.name, config_hash(s.config), s.inputs, s.outputs))
            for s in self.select(names)
        ]

    def run(
        self,
        names: Iterable[str] | None = None,
        *,
        force: bool | Iterable[str] = False,
        log: Callable[[str], None] = print,
    ) -> RunResult:
        """Run the chosen steps in order, skipping the up-to-date ones.

        ``force``: True re-runs every chosen step; a collection of names re-runs those.
        """
        chosen = self.select(names)
        forced = {s.name for s in chosen} if force is True else set(force or ())
        unknown = forced - set(self.names)
        if unknown:
            raise GwtwinError(f"cannot force unknown step(s) {sorted(unknown)}: {self.names}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        manifest = Manifest(self.run_dir)
        result = RunResult(self.run_dir)
        for step in chosen:
            chash = config_hash(step.config)
            reason = manifest.stale_reason(step.name, chash, step.inputs, step.outputs)
            if step.name in forced:
                reason = "forced"
            if reason is None:
                log(f"[{step.name}] up to date, skipped")
                result.steps.append(StepResult(step.name, False, None))
                continue
            self._check_inputs(step)
            previous = manifest.steps.get(step.name, {})
            resume = previous.get("status") == "started" and reason.startswith("interrupted")
            log(f"[{step.name}] running: {reason}")
            manifest.started(step.name, chash, step.inputs)
            t0 = time.perf_counter()
            step.run(StepContext(self.run_dir, step.config, resume, log))
            seconds = time.perf_counter() - t0
            missing = [p for p in step.outputs if not (self.run_dir / p).exists()]
            if missing:
                raise GwtwinError(
                    f"step {step.name!r} finished without writing its declared outputs {missing} "
                    f"in {self.run_dir}"
                )
            manifest.finished(step.name, step.outputs, seconds)
            log(f"[{step.name}] done in {seconds:.1f} s")
            result.steps.append(StepResult(step.name, True, reason, seconds))
        return result
