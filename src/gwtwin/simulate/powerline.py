"""Power-line modulation: the mains line in strain, amplitude-modulated by an angular motion.

``h(t) = carrier_amplitude * v(t) * (1 + modulation_depth * a(t))``: ``v`` is the mains voltage
normalised to a unit fundamental (at ``mains_frequency``, with odd harmonics), ``a`` the angular
motion (urad) seen by the control channel: a continuous part and episodes of larger motion (the
glitches), which put transient sidebands at mains +/- episode frequency.
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


class PowerLine:
    """The power-line family of one scenario: mains phases, modulation phases and episodes.

    Attributes
    ----------
    mains_phases : list of float
        Phase (rad) of the fundamental, then of each harmonic.
    modulation_phases : list of float
        Phase (rad) of each continuous modulation component.
    episodes : list of dict
        ``t`` (s from the scenario start), ``duration`` (s), ``frequency`` (Hz), ``phase`` (rad),
        ``amplitude`` (urad).
    """

    def __init__(self, config: SimulationConfig):
        self.config = config
        self.mains_phases: list[float] = []
        self.modulation_phases: list[float] = []
        self.episodes: list[dict] = []

    def mains(self, t: np.ndarray) -> np.ndarray:
        """Mains voltage normalised to unit fundamental amplitude, at t (s from start)."""
        pl = self.config.powerline
        v = np.sin(2 * math.pi * pl.mains_frequency * t + self.mains_phases[0])
        for k, rel in enumerate(pl.harmonics, 1):
            v += rel * np.sin(
                2 * math.pi * (2 * k + 1) * pl.mains_frequency * t + self.mains_phases[k]
            )
        return v

    def angular(self, t: np.ndarray, episodes: bool = True) -> np.ndarray:
        """Angular motion a(t) in urad: continuous modulation plus (optionally) episodes."""
        pl = self.config.powerline
        a = np.zeros_like(t)
        for f, amp, ph in zip(
            pl.modulation_frequencies, pl.modulation_amplitudes, self.modulation_phases, strict=True
        ):
            a += amp * np.sin(2 * math.pi * f * t + ph)
        if episodes:
            for ep in self.episodes:
                half = ep["duration"] / 2
                add_local(
                    a,
                    t,
                    ep["t"],
                    half,
                    half,
                    lambda r, ep=ep: ep["amplitude"] * self.episode_shape(ep, r),
                )
        return a

    @staticmethod
    def episode_shape(ep: dict, rel: np.ndarray) -> np.ndarray:
        """Unit-amplitude angular motion of one episode at ``rel`` (s from its centre)."""
        return tukey_envelope(rel, ep["duration"]) * np.sin(
            2 * math.pi * ep["frequency"] * rel + ep["phase"]
        )

    def strain(self, t: np.ndarray) -> np.ndarray:
        """The coupled mains line in strain at t (s from start)."""
        pl = self.config.powerline
        return pl.carrier_amplitude * self.mains(t) * (1.0 + pl.modulation_depth * self.angular(t))

    def draw(self, cat: Catalogue) -> None:
        """Draw the phases, place the episodes and add one catalogue event per episode."""
        cfg = self.config
        pl = cfg.powerline
        rate, psd, f_low = cat.rate, cat.psd, cat.f_low
        rng = rng_for(cfg.seed, "catalogue", "powerline")
        self.mains_phases = rng.uniform(0, 2 * math.pi, size=1 + len(pl.harmonics)).tolist()
        self.modulation_phases = rng.uniform(
            0, 2 * math.pi, size=len(pl.modulation_frequencies)
        ).tolist()
        control = white_psd(pl.control_noise_asd)
        for _ in range(poisson_count(pl.rate, cfg.duration, rng)):
            duration = float(draw(pl.duration, rng))
            ep = {
                "duration": duration,
                "frequency": float(draw(pl.episode_frequency, rng)),
                "phase": float(rng.uniform(0, 2 * math.pi)),
                "amplitude": 1.0,
            }
            target = float(draw(pl.snr, rng))
            t = cat.scheduler.place(rng, duration / 2, duration / 2)
            if t is None:
                continue
            ep["t"] = t - cfg.start
            i0, tt = cat.grid(t - duration / 2, t + duration / 2, rate)
            shape = self.episode_shape(ep, tt - ep["t"])
            unit = pl.carrier_amplitude * pl.modulation_depth * self.mains(tt) * shape
            ep["amplitude"] = target / snr(unit, rate, psd, f_low)
            h = unit * ep["amplitude"]
            self.episodes.append(ep)
            _, tw = cat.grid(t - duration / 2, t + duration / 2, pl.control_rate)
            cat.add(
                "powerline",
                t,
                t - duration / 2,
                t + duration / 2,
                channel=cfg.channel(pl.control_channel),
                snr=snr(h, rate, psd, f_low),
                witness_snr=snr(
                    ep["amplitude"] * self.episode_shape(ep, tw - ep["t"]),
                    pl.control_rate,
                    control,
                    0.0,
                ),
                frequency=peak_frequency(h, rate, psd, f_low),
                params={
                    "episode_frequency": ep["frequency"],
                    "angular_amplitude_urad": ep["amplitude"],
                    "mains_channel": cfg.channel(pl.mains_channel),
                    "sidebands_hz": [
                        pl.mains_frequency - ep["frequency"],
                        pl.mains_frequency + ep["frequency"],
                    ],
                },
            )
