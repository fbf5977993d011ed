"""Couplings that drift during a scenario (:class:`~gwtwin.simulate.config.DriftConfig`).

A twin trained on one stretch of data meets another state of the interferometer later: a
coupling constant that steps or ramps (an optic's reflectivity, a magnetometer's distance to the
cable it witnesses), a transfer-function delay that moves, a witness that starts to couple.  The
simulator applies the drift to the truth channels (strain = noise + sum of truth, so strain
follows) and to the catalogue, so that a stale model's degradation is measured against truth.

:func:`coupling_gain` is the factor on a family's contribution at given times, applied in
:meth:`Simulator.render_truth <gwtwin.simulate.engine.Simulator.render_truth>`;
:func:`apply_to_catalogue` moves the em strain pieces by the delay shift and records, per event,
the gain at its peak (``snr`` scaled by it) and the delay shift; events whose family does not
couple at their peak (gain 0) are dropped from the catalogue, as they leave nothing in strain.
"""

from __future__ import annotations

import numpy as np

from gwtwin.data import NS


def profile(drift, t: np.ndarray) -> np.ndarray:
    """``before`` up to ``start``, ``after`` from ``end`` (or from ``start`` for a step), linear
    in between; ``t`` in s from the scenario start."""
    t = np.asarray(t, dtype=float)
    if drift.end is None:
        return np.where(t < drift.start, drift.before, drift.after)
    frac = np.clip((t - drift.start) / (drift.end - drift.start), 0.0, 1.0)
    return drift.before + (drift.after - drift.before) * frac


def coupling_gain(drifts, family: str, t: np.ndarray) -> np.ndarray | None:
    """Product of the ``coupling`` drifts of ``family`` at ``t``; None when it has none."""
    gain = None
    for d in drifts:
        if d.family == family and d.parameter == "coupling":
            g = profile(d, t)
            gain = g if gain is None else gain * g
    return gain


def delay_shift(drifts, family: str, t: np.ndarray) -> np.ndarray:
    """Sum of the ``delay`` drifts of ``family`` at ``t``, s (zeros when it has none)."""
    out = np.zeros(np.shape(t))
    for d in drifts:
        if d.family == family and d.parameter == "delay":
            out = out + profile(d, t)
    return out


def apply_to_catalogue(catalogue, config) -> None:
    """Shift the em strain pieces by the delay drift at each burst and record the drift on
    the events (in place); drop events of a family that does not couple at their peak."""
    drifts = config.drift
    if not drifts:
        return
    rate = config.strain.sample_rate
    start_ns = config.start * NS
    em_events = [e for e in catalogue.events if e.family == "em"]
    pieces = catalogue.strain_pieces.get("em", [])
    if any(d.parameter == "delay" for d in drifts) and len(em_events) == len(pieces):
        # one strain piece per burst, appended in the same order as the events (sorted by peak)
        order = np.argsort([p.index for p in pieces], kind="stable")
        for event, k in zip(sorted(em_events, key=lambda e: e.peak_ns), order, strict=True):
            shift = float(delay_shift(drifts, "em", (event.peak_ns - start_ns) / NS))
            n = round(shift * rate)
            if n:
                pieces[k].index += n
                event.end_ns += round(n / rate * NS)
                event.delay += n / rate
            event.params["drift_delay"] = n / rate
    keep = []
    for event in catalogue.events:
        gain = coupling_gain(drifts, event.family, (event.peak_ns - start_ns) / NS)
        if gain is not None:
            g = float(gain)
            if g == 0.0:
                continue  # nothing of it reaches strain: not a strain glitch
            event.snr *= g
            event.params["drift_gain"] = g
        keep.append(event)
    if len(keep) != len(catalogue.events):
        catalogue.events[:] = keep
        for i, event in enumerate(catalogue.events):
            event.id = i


def describe(config) -> list[dict]:
    """The drifts as JSON-able records (``summary.json``)."""
    return [d.model_dump(mode="json") for d in config.drift]


__all__ = ["apply_to_catalogue", "coupling_gain", "delay_shift", "describe", "profile"]
