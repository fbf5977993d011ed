"""Sine-Gaussian transients without a coupling: blips in strain, glitches of decoy channels.

Blips are short broadband bursts in strain that no witness sees; decoy glitches are bursts in
auxiliary channels that never reach strain.  Both are scaled to an SNR drawn against the noise of
the channel they are in (the design PSD for blips, the decoy's own power-law noise for decoys).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from gwtwin.simulate.noise import rng_for
from gwtwin.simulate.psd import peak_frequency, powerlaw_psd, snr
from gwtwin.simulate.waveforms import (
    add_local,
    draw,
    poisson_count,
    sine_gaussian,
    sine_gaussian_halfwidth,
)

if TYPE_CHECKING:
    from gwtwin.simulate.events import Catalogue


def draw_blips(cat: Catalogue) -> None:
    """Place the blips, render them on the strain grid and add them to the catalogue."""
    cfg = cat.config
    bl = cfg.blip
    rate, psd, f_low = cat.rate, cat.psd, cat.f_low
    rng = rng_for(cfg.seed, "catalogue", "blip")
    for _ in range(poisson_count(bl.rate, cfg.duration, rng)):
        f0 = float(draw(bl.frequency, rng))
        q = float(draw(bl.q, rng))
        phase = float(rng.uniform(0, 2 * math.pi))
        target = float(draw(bl.snr, rng))
        half = sine_gaussian_halfwidth(f0, q)
        t = cat.scheduler.place(rng, half, half)
        if t is None:
            continue
        i0, tt = cat.grid(t - half, t + half, rate)
        unit = sine_gaussian(tt - (t - cfg.start), f0, q, phase)
        h = unit * target / snr(unit, rate, psd, f_low)
        cat.add_piece("blip", i0, h)
        cat.add(
            "blip",
            t,
            t - half,
            t + half,
            snr=snr(h, rate, psd, f_low),
            frequency=peak_frequency(h, rate, psd, f_low),
            params={"central_frequency": f0, "q": q, "amplitude": float(np.abs(h).max())},
        )


def draw_decoys(cat: Catalogue) -> dict[str, list[dict]]:
    """Draw each decoy channel's glitches (placed independently of the strain glitches).

    Returns
    -------
    dict
        Full channel name -> glitches, each with ``t`` (s from the scenario start),
        ``frequency`` (Hz), ``q``, ``phase`` (rad), ``amplitude`` (channel unit) and ``half``
        (s, half-length).
    """
    cfg = cat.config
    dc = cfg.decoys
    out: dict[str, list[dict]] = {}
    for ch in dc.channels:
        name = cfg.channel(ch.name)
        rng = rng_for(cfg.seed, "catalogue", "decoy", name)
        psd = powerlaw_psd(ch.noise_asd, ch.noise_slope)
        glitches = []
        fmin, fmax = max(1.0, ch.rate / 256.0), 0.35 * ch.rate
        for _ in range(poisson_count(dc.rate, cfg.duration, rng)):
            f0 = float(np.exp(rng.uniform(np.log(fmin), np.log(fmax))))
            q = float(draw(dc.q, rng))
            half = sine_gaussian_halfwidth(f0, q)
            t = float(
                rng.uniform(
                    cfg.start + cfg.edge_margin + half,
                    cfg.start + cfg.duration - cfg.edge_margin - half,
                )
            )
            phase = float(rng.uniform(0, 2 * math.pi))
            target = float(draw(dc.snr, rng))
            _, tt = cat.grid(t - half, t + half, ch.rate)
            unit = sine_gaussian(tt - (t - cfg.start), f0, q, phase)
            amplitude = target / snr(unit, ch.rate, psd, 0.0)
            glitches.append(
                {
                    "t": t - cfg.start,
                    "frequency": f0,
                    "q": q,
                    "phase": phase,
                    "amplitude": amplitude,
                    "half": half,
                }
            )
            cat.add(
                "decoy",
                t,
                t - half,
                t + half,
                channel=name,
                witness_snr=snr(amplitude * unit, ch.rate, psd, 0.0),
                frequency=f0,
                params={"central_frequency": f0, "q": q, "amplitude": amplitude},
            )
        out[name] = glitches
    return out


def decoy_signal(glitches: list[dict], t: np.ndarray) -> np.ndarray:
    """The sum of a decoy channel's glitches at t (s from the scenario start)."""
    out = np.zeros_like(t)
    for g in glitches:
        add_local(
            out,
            t,
            g["t"],
            g["half"],
            g["half"],
            lambda r, g=g: g["amplitude"] * sine_gaussian(r, g["frequency"], g["q"], g["phase"]),
        )
    return out
