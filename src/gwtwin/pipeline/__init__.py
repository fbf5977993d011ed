"""Step runner of ``gwtwin run``: ordered steps in a run directory, a manifest, freshness checks."""

from gwtwin.pipeline.manifest import Manifest, code_version, config_hash, fingerprint
from gwtwin.pipeline.runner import Pipeline, RunResult, Step, StepContext, StepResult

__all__ = [
    "Manifest",
    "Pipeline",
    "RunResult",
    "Step",
    "StepContext",
    "StepResult",
    "code_version",
    "config_hash",
    "fingerprint",
]
