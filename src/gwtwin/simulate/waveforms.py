"""Analytic glitch waveforms and the random draws of their parameters.

Waveforms are plain functions of time (s, relative to the event's centre or onset), unit
amplitude; the families scale them to a drawn SNR.  :func:`add_local` evaluates a compact shape
only on the samples it covers, so rendering a frame costs in proportion to its events.
"""

from __future__ import annotations

import math

import numpy as np

from gwtwin.simulate.config import Distribution


def draw(dist: Distribution, rng: np.random.Generator, size=None):
    """Draw from a :class:`Distribution`."""
    lo, hi = dist.min, dist.max
    u = rng.uniform(size=size)
    if dist.kind == "uniform" or lo == hi:
        return lo + (hi - lo) * u
    if dist.kind == "loguniform":
        return np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * u)
    a = dist.index + 1.0
    if abs(a) < 1e-12:
        return np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * u)
    return (lo**a + (hi**a - lo**a) * u) ** (1.0 / a)


def poisson_count(rate_per_hour: float, duration: float, rng: np.random.Generator) -> int:
    """Number of events in ``duration`` seconds at ``rate_per_hour`` (a Poisson draw)."""
    return int(rng.poisson(rate_per_hour * duration / 3600.0))


def tukey_envelope(t: np.ndarray, duration: float, taper: float = 0.5) -> np.ndarray:
    """Tukey window of total length ``duration`` centred on t = 0 (compact, smooth).

    ``taper`` is the fraction of the window inside the two cosine ramps.
    """
    half = duration / 2.0
    ramp = taper * duration / 2.0
    a = np.abs(t)
    out = np.zeros_like(t, dtype=float)
    flat = a <= half - ramp
    out[flat] = 1.0
    edge = (a > half - ramp) & (a < half)
    out[edge] = 0.5 * (1.0 + np.cos(np.pi * (a[edge] - (half - ramp)) / ramp))
    return out


def sine_gaussian(t: np.ndarray, frequency: float, q: float, phase: float = 0.0) -> np.ndarray:
    """Unit sine-Gaussian ``exp(-t^2/tau^2) sin(2 pi f t + phase)``, ``tau = Q / (sqrt2 pi f)``."""
    tau = q / (math.sqrt(2.0) * math.pi * frequency)
    return np.exp(-((t / tau) ** 2)) * np.sin(2.0 * math.pi * frequency * t + phase)


def sine_gaussian_halfwidth(frequency: float, q: float) -> float:
    """Half-length (s) outside which a sine-Gaussian is below exp(-16) of its peak."""
    return 4.0 * q / (math.sqrt(2.0) * math.pi * frequency)


def ringdown(t: np.ndarray, frequency: float, q: float, phase: float = 0.0) -> np.ndarray:
    """Damped sinusoid starting at t = 0 with decay time Q/(pi f), smooth onset over 1/(4 f)."""
    decay = q / (math.pi * frequency)
    onset = 1.0 / (4.0 * frequency)
    rise = np.clip(t / onset, 0.0, 1.0)
    rise = np.sin(0.5 * math.pi * rise) ** 2
    return np.where(t >= 0, rise * np.exp(-np.maximum(t, 0) / decay), 0.0) * np.sin(
        2.0 * math.pi * frequency * t + phase
    )


def add_local(out: np.ndarray, t: np.ndarray, centre: float, before: float, after: float, shape):
    """``out += shape(t - centre)`` on the samples with ``-before < t - centre < after``.

    ``t`` is sorted, so the window is found by bisection and only its samples are evaluated.
    """
    i0 = int(np.searchsorted(t, centre - before, side="right"))
    i1 = int(np.searchsorted(t, centre + after, side="left"))
    if i1 > i0:
        out[i0:i1] += shape(t[i0:i1] - centre)
