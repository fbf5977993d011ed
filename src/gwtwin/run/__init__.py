"""``gwtwin run``: every step of a run from one :class:`~gwtwin.config.RunConfig`, in one folder.

The steps and what they write in the run directory (each calls the library function its own
``gwtwin`` command calls)::

    simulate  -> simulation/, quicklook.png      gwtwin.simulate.Simulator      (simulator source)
    scan      -> scan/                           gwtwin.select.select_channels
    dataset   -> dataset.h5                      gwtwin.dataset.build_dataset
    train     -> train/ (result.json, MLflow)    gwtwin.train.train
    clean     -> clean/                          gwtwin.infer.clean.clean_frames
    evaluate  -> evaluate/                       gwtwin.evaluate.run.evaluate_run (no truth: frames)
    report    -> report/index.html               gwtwin.report.run.build_report

:class:`~gwtwin.pipeline.Pipeline` does the bookkeeping (``manifest.json``): a step runs when it
never ran, was interrupted (training then resumes from its ``last.ckpt``), its section of the
config changed, or its inputs or outputs changed. A step's config is its own section (and the
``source`` section for the steps that read frames) without the execution keys
(:data:`~gwtwin.config.EXECUTION_KEYS`), so changing ``train.max_epochs`` re-runs train and,
through their inputs, clean, evaluate and report, but not simulate, scan or dataset.

Modules: :mod:`gwtwin.run.steps` (what each step does), :mod:`gwtwin.run.pipeline` (the steps
of a config, their inputs/outputs, and running them), :mod:`gwtwin.run.summary` (what a run
prints at the end).
"""

from gwtwin.run.pipeline import (
    STEPS,
    build_pipeline,
    default_steps,
    run_pipeline,
    run_status,
)
from gwtwin.run.summary import summarize

__all__ = ["STEPS", "build_pipeline", "default_steps", "run_pipeline", "run_status", "summarize"]
