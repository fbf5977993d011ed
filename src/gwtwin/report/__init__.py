"""Plots and the static HTML report of a run."""
