"""Scattered light: the motion of a scattering optic and the fringe it puts in strain.

The optic's displacement x(t) (um) is a slow micro-seismic background (a sum of sinusoids) plus
high-motion episodes, each a Tukey-tapered oscillation.  Strain sees
``G sum_n a_n sin(4 pi n (x0 + x) / lambda + phi_n)``, whose arches sit at
``f = 2 n |dx/dt| / lambda``.  The fringe phases ``phi_n`` are hidden constants of the instrument
(no witness shows them), drawn from ``instrument_seed`` when one is given.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from gwtwin.simulate.noise import rng_for
from gwtwin.simulate.psd import peak_frequency, snr, white_psd
from gwtwin.simulate.waveforms import add_local, draw, poisson_count, tukey_envelope

if TYPE_CHECKING:
    from gwtwin.simulate.config import SimulationConfig
    from gwtwin.simulate.events import Catalogue


def scatter_background(config: SimulationConfig) -> list[tuple[float, float, float]]:
    """(amplitude um, frequency Hz, phase) of the micro-seismic background components."""
    sc = config.scatter
    rng = rng_for(config.seed, "scatter-background")
    n = sc.background_components
    freqs = rng.uniform(*sc.background_band, size=n)
    amps = rng.rayleigh(1.0, size=n)
    amps *= sc.background_rms * math.sqrt(2.0) / math.sqrt(np.sum(amps**2))
    phases = rng.uniform(0, 2 * math.pi, size=n)
    return list(zip(amps.tolist(), freqs.tolist(), phases.tolist(), strict=True))


class ScatteredLight:
    """The scattered-light family of one scenario: its episodes and its two rendering functions.

    Attributes
    ----------
    background : list of (amplitude um, frequency Hz, phase rad)
    phases : list of float
        Fringe phase (rad) of each bounce.
    episodes : list of dict
        ``t`` (s from the scenario start), ``duration`` (s), ``motion_frequency`` (Hz),
        ``amplitude`` (um), ``phase`` (rad), ``max_arch_frequency`` (Hz).
    """

    def __init__(self, config: SimulationConfig):
        self.config = config
        self.background = scatter_background(config)
        self.phases: list[float] = []
        self.episodes: list[dict] = []

    def motion(self, t: np.ndarray) -> np.ndarray:
        """Optic displacement x(t) in um at times t (s from the scenario start)."""
        x = np.zeros_like(t)
        for amp, freq, phase in self.background:
            x += amp * np.sin(2 * math.pi * freq * t + phase)
        for ep in self.episodes:
            half = ep["duration"] / 2
            add_local(
                x, t, ep["t"], half, half, lambda r, ep=ep: self.episode_motion(ep, r + ep["t"])
            )
        return x

    def strain(self, x: np.ndarray) -> np.ndarray:
        """The fringe coupling G sum_n a_n sin(4 pi n (x0 + x) / lambda + phi_n), strain."""
        sc = self.config.scatter
        k = 4 * math.pi / (sc.wavelength * 1e6)  # x in um
        h = np.zeros_like(x)
        for n, (a_n, phi) in enumerate(zip(sc.bounce_amplitudes, self.phases, strict=False), 1):
            h += a_n * np.sin(k * n * (sc.x0 + x) + phi)
        return sc.coupling * h

    def episode_motion(self, ep: dict, t: np.ndarray) -> np.ndarray:
        """Displacement (um) of one episode alone at t (s from the scenario start)."""
        rel = t - ep["t"]
        return (
            ep["amplitude"]
            * tukey_envelope(rel, ep["duration"])
            * np.sin(2 * math.pi * ep["motion_frequency"] * rel + ep["phase"])
        )

    def draw(self, cat: Catalogue) -> None:
        """Place the episodes and add one catalogue event per episode."""
        cfg = self.config
        sc = cfg.scatter
        rng = rng_for(cfg.seed, "catalogue", "scatter")
        phases = rng.uniform(0, 2 * math.pi, size=len(sc.bounce_amplitudes))
        if cfg.instrument_seed is not None:  # the instrument's own constants, not the events'
            inst = rng_for(cfg.instrument_seed, "instrument", "scatter")
            phases = inst.uniform(0, 2 * math.pi, size=len(sc.bounce_amplitudes))
        self.phases = phases.tolist()
        lam_um = sc.wavelength * 1e6
        witness = cfg.channel(sc.witness)
        for _ in range(poisson_count(sc.rate, cfg.duration, rng)):
            duration = float(draw(sc.duration, rng))
            fm = float(draw(sc.motion_frequency, rng))
            fmax = float(draw(sc.max_arch_frequency, rng))
            # peak velocity 2 pi fm A gives the n=1 arch at 2 |v| / lambda = fmax
            amplitude = fmax * lam_um / (2 * 2 * math.pi * fm)
            phase = float(rng.uniform(0, 2 * math.pi))
            t = cat.scheduler.place(rng, duration / 2, duration / 2)
            if t is None:
                continue
            ep = {
                "t": t - cfg.start,
                "duration": duration,
                "motion_frequency": fm,
                "amplitude": amplitude,
                "phase": phase,
                "max_arch_frequency": fmax,
            }
            self.episodes.append(ep)
        # SNRs need the whole motion model: compute once all episodes exist
        rate, psd, f_low = cat.rate, cat.psd, cat.f_low
        for ep in self.episodes:
            i0, tt = cat.grid(
                ep["t"] + cfg.start - ep["duration"] / 2 - 1.0,
                ep["t"] + cfg.start + ep["duration"] / 2 + 1.0,
                rate,
            )
            x_all = self.motion(tt)
            bg = x_all - self.episode_motion(ep, tt)
            h_ep = self.strain(x_all) - self.strain(bg)
            # peak: the sample of maximum velocity inside the episode
            v = np.gradient(x_all, 1.0 / rate)
            inside = np.abs(tt - ep["t"]) < ep["duration"] / 2
            t_peak = float(tt[inside][np.argmax(np.abs(v[inside]))]) + cfg.start
            w_snr = snr(
                self.episode_motion(ep, tt),
                rate,
                white_psd(sc.witness_noise_asd),
                f_low=0.0,
            )
            cat.add(
                "scatter",
                t_peak,
                ep["t"] + cfg.start - ep["duration"] / 2,
                ep["t"] + cfg.start + ep["duration"] / 2,
                channel=witness,
                snr=snr(h_ep, rate, psd, f_low),
                witness_snr=w_snr,
                frequency=peak_frequency(h_ep, rate, psd, f_low),
                params={
                    "motion_amplitude_um": ep["amplitude"],
                    "motion_frequency": ep["motion_frequency"],
                    "max_arch_frequency": ep["max_arch_frequency"],
                    "bounces": len(sc.bounce_amplitudes),
                    "redundant_witness": cfg.channel(sc.redundant_witness)
                    if sc.redundant_witness
                    else "",
                },
            )
