"""Shared fixtures: environment for headless plotting and MLflow, small simulated scenarios."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
