"""Scattered-light fringe triggers from an optic's displacement channel.

Q-tile triggers cannot see a 0.1-0.5 Hz displacement: its motion is far below any detector-band
tile.  What reaches strain is the fringe it drives: light scattered off an optic moving with
velocity ``v`` is phase-modulated and puts arches in strain up to ``f = 2 n |v| / wavelength``
(``n`` bounces).  The standard detchar tool therefore triggers on the *predicted fringe
frequency*: every span where ``f`` exceeds the lower edge of the detector band is a trigger.

Steps per contiguous piece of data: zero-phase low-pass at ``lowpass`` Hz (a sensor's white
displacement noise differentiated to velocity grows as ``f``, so it must be cut first), central
differences for ``v``, ``f = 2 n |v| / wavelength`` with the channel's length unit converted to
metres, spans of ``f >= threshold`` merged when closer than ``cluster_window`` s, one trigger per
span (Omicron columns, see :mod:`gwtwin.signal.triggers`):

- ``time``: the sample of largest ``f``; ``tstart``, ``tend``: the span;
- ``frequency``, ``fend``: the peak ``f`` (Hz); ``fstart``: the threshold (Hz);
- ``snr``: peak ``|v|`` over the channel's velocity noise ``1.4826 * median(|v - median v|)``
  over the whole piece (robust against the episodes themselves), so a quieter sensor of the same
  motion gets larger SNRs; ``amplitude``: peak ``|v|`` in the channel's unit per second;
- ``q``: the number of fringe cycles in the span (``integral of f dt``); ``phase``: 0.
"""

from __future__ import annotations

import math

import numpy as np

from gwtwin.errors import GwtwinError
from gwtwin.signal.triggers import TRIGGER_DTYPE, cluster_tiles

__all__ = ["fringe_frequency", "fringe_triggers", "length_scale"]


def length_scale(unit: str) -> float | None:
    """Metres per ``unit`` (astropy syntax: ``um``, ``1e-06 m``, ``nm``), None if not a length."""
    from astropy import units as u

    try:
        parsed = u.Unit((unit or "").strip().replace("µ", "u"))
        return float(parsed.to(u.m))
    except (ValueError, TypeError, u.UnitsError):
        return None


def _unit_scale(unit: str) -> float:
    scale = length_scale(unit)
    if scale is None:
        raise GwtwinError(
            f"fringe triggers need a channel in a length unit (m, um, nm, ...), found {unit!r}"
        )
    return scale


def fringe_frequency(
    x,
    sample_rate: float,
    unit: str,
    *,
    wavelength: float = 1.064e-6,
    bounces: int = 1,
    lowpass: float = 2.0,
) -> np.ndarray:
    """Predicted fringe frequency ``2 n |dx/dt| / wavelength`` (Hz) of a displacement series.

    Parameters
    ----------
    x : array [time]
        Displacement in ``unit`` (a length unit: m, mm, um, nm).
    sample_rate : float
        Hz.
    wavelength : float
        Laser wavelength, m.
    bounces : int
        Number of reflections ``n``.
    lowpass : float
        Zero-phase Butterworth low-pass corner applied before differentiating, Hz.
    """
    from gwtwin.signal.filters import lowpass as _lowpass

    scale = _unit_scale(unit)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size < 3:
        raise GwtwinError(f"expected a 1-D displacement series of >= 3 samples, found {x.shape}")
    if not 0 < lowpass < sample_rate / 2:
        raise GwtwinError(
            f"fringe lowpass must be in (0, {sample_rate / 2:g}) Hz for a {sample_rate:g} Hz "
            f"channel, found {lowpass:g} Hz"
        )
    xs = np.asarray(_lowpass(x, sample_rate, lowpass, order=4)).astype(np.float64)
    v = np.gradient(xs, 1.0 / sample_rate) * scale  # m/s
    return 2 * bounces * np.abs(v) / wavelength


def fringe_triggers(
    block,
    *,
    wavelength: float = 1.064e-6,
    bounces: int = 1,
    threshold: float = 10.0,
    lowpass: float = 2.0,
    cluster_window: float = 0.1,
):
    """Fringe triggers of every channel of a Block of displacement channels.

    Returns a :class:`gwtwin.signal.Triggers` whose segment is the Block's span (the low-pass
    settles within a few ``1 / lowpass`` s; no data are dropped, the filter is forward-backward
    with scipy's padding).  See the module docstring for the columns.
    """
    from gwtwin.signal.triggers import Triggers

    fs = float(block.sample_rate)
    t0 = block.t0_ns / 1e9
    tables = {}
    data = np.asarray(block.data.cpu() if hasattr(block.data, "cpu") else block.data)
    for i, (name, unit) in enumerate(zip(block.channels, block.units, strict=True)):
        scale = _unit_scale(unit)
        f = fringe_frequency(
            data[i], fs, unit, wavelength=wavelength, bounces=bounces, lowpass=lowpass
        )
        v = f * wavelength / (2 * bounces) / scale  # |v| in the channel's unit per s
        sigma = 1.4826 * float(np.median(np.abs(v - np.median(v))))
        tables[name] = _spans(f, v, sigma, fs, t0, threshold, cluster_window)
    span = (t0, t0 + data.shape[-1] / fs)
    params = {
        "method": "fringe",
        "wavelength": float(wavelength),
        "bounces": int(bounces),
        "threshold": float(threshold),
        "lowpass": float(lowpass),
        "cluster_window": float(cluster_window),
        "sample_rate": fs,
    }
    return Triggers(tables, span, params)


def _spans(f, v, sigma, fs, t0, threshold, cluster_window) -> np.ndarray:
    above = f >= threshold
    if not above.any():
        return np.zeros(0, dtype=TRIGGER_DTYPE)
    edges = np.diff(above.astype(np.int8), prepend=0, append=0)
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)  # exclusive
    ids = cluster_tiles(starts / fs, stops / fs, cluster_window)
    out = np.zeros(int(ids.max()) + 1, dtype=TRIGGER_DTYPE)
    for k in range(len(out)):
        members = np.flatnonzero(ids == k)
        a, b = int(starts[members].min()), int(stops[members].max())
        j = a + int(np.argmax(f[a:b]))
        peak_v = float(v[j])
        out[k] = (
            t0 + j / fs,
            float(f[j]),
            float(np.sum(f[a:b]) / fs),
            peak_v / sigma if sigma > 0 else math.inf,
            peak_v,
            0.0,
            t0 + a / fs,
            t0 + b / fs,
            float(threshold),
            float(f[j]),
        )
    return out
