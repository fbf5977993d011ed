"""Electromagnetic transients: magnetometer bursts that reach strain through a filter and a delay.

A burst is a sine-Gaussian or a ring-down in the magnetic field B(t) (T).  Strain sees
``coupling * H(f)`` applied to ``B(t - delay)``, with ``H`` a Butterworth filter; the filter has
memory, so each burst's strain is rendered once on the strain grid (a :class:`~events.Piece`),
while the field itself is analytic and rendered at any rate.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.signal import butter, sosfilt

from gwtwin.simulate.noise import rng_for
from gwtwin.simulate.psd import peak_frequency, snr, white_psd
from gwtwin.simulate.waveforms import (
    add_local,
    draw,
    poisson_count,
    ringdown,
    sine_gaussian,
    sine_gaussian_halfwidth,
)

if TYPE_CHECKING:
    from gwtwin.simulate.config import SimulationConfig
    from gwtwin.simulate.events import Catalogue


class MagneticTransients:
    """The electromagnetic family of one scenario: its bursts and the coupling filter.

    Attributes
    ----------
    bursts : list of dict
        ``t`` (s from the scenario start), ``frequency`` (Hz), ``q``, ``phase`` (rad), ``shape``
        (``sine-gaussian`` or ``ringdown``), ``before``/``after`` (s of support around ``t``),
        ``amplitude`` (T).
    """

    def __init__(self, config: SimulationConfig):
        self.config = config
        self.rate = config.strain.sample_rate
        self.bursts: list[dict] = []

    def sos(self) -> np.ndarray:
        """The coupling filter as second-order sections on the strain grid."""
        f = self.config.em.filter
        freqs = f.frequencies if f.kind == "bandpass" else f.frequencies[0]
        return butter(f.order, freqs, btype=f.kind, fs=self.rate, output="sos")

    def field(self, t: np.ndarray) -> np.ndarray:
        """Magnetic field (T) of all bursts at t (s from start)."""
        b = np.zeros_like(t)
        for burst in self.bursts:
            add_local(
                b,
                t,
                burst["t"],
                burst["before"],
                burst["after"],
                lambda r, bu=burst: bu["amplitude"] * self.burst_shape(bu, r),
            )
        return b

    @staticmethod
    def burst_shape(burst: dict, rel: np.ndarray) -> np.ndarray:
        """Unit-amplitude field of one burst at ``rel`` (s from its centre or onset)."""
        if burst["shape"] == "ringdown":
            return ringdown(rel, burst["frequency"], burst["q"], burst["phase"])
        return sine_gaussian(rel, burst["frequency"], burst["q"], burst["phase"])

    def draw(self, cat: Catalogue) -> None:
        """Place the bursts, render their strain and add one catalogue event per burst."""
        cfg = self.config
        em = cfg.em
        rate, psd, f_low = cat.rate, cat.psd, cat.f_low
        rng = rng_for(cfg.seed, "catalogue", "em")
        sos = self.sos()
        # ring-down of the coupling filter: time for its impulse response to fall below 1e-6
        impulse = sosfilt(sos, np.r_[1.0, np.zeros(int(4 * rate) - 1)])
        above = np.nonzero(np.abs(impulse) > 1e-6 * np.abs(impulse).max())[0]
        ring = (above[-1] + 1) / rate
        mag_psd = white_psd(em.witness_noise_asd)
        for _ in range(poisson_count(em.rate, cfg.duration, rng)):
            f0 = float(draw(em.frequency, rng))
            q = float(draw(em.q, rng))
            shape = "ringdown" if rng.uniform() < em.ringdown_fraction else "sine-gaussian"
            phase = float(rng.uniform(0, 2 * math.pi))
            target = float(draw(em.snr, rng))
            if shape == "ringdown":
                before, after = 0.0, 14.0 * q / (math.pi * f0)  # 14 decay times: e^-14
            else:
                before = after = sine_gaussian_halfwidth(f0, q)
            t = cat.scheduler.place(rng, before, after + em.delay + ring)
            if t is None:
                continue
            burst = {
                "t": t - cfg.start,
                "frequency": f0,
                "q": q,
                "phase": phase,
                "shape": shape,
                "before": before,
                "after": after,
                "amplitude": 1.0,
            }
            # strain: k * H(f) applied to B(t - delay); rendered once on the strain grid
            i0, tt = cat.grid(t - before, t + after + em.delay + ring, rate)
            unit_field = self.burst_shape(burst, tt - burst["t"] - em.delay)
            unit_strain = em.coupling * sosfilt(sos, unit_field)
            amplitude = target / snr(unit_strain, rate, psd, f_low)
            burst["amplitude"] = amplitude
            self.bursts.append(burst)
            h = amplitude * unit_strain
            cat.add_piece("em", i0, h)
            _, tw = cat.grid(t - before, t + after, em.witness_rate)
            field_w = amplitude * self.burst_shape(burst, tw - burst["t"])
            cat.add(
                "em",
                t,
                t - before,
                t + after + em.delay + ring,
                channel=cfg.channel(em.witness),
                snr=snr(h, rate, psd, f_low),
                witness_snr=snr(field_w, em.witness_rate, mag_psd, 0.0),
                frequency=peak_frequency(h, rate, psd, f_low),
                delay=em.delay,
                params={
                    "shape": shape,
                    "burst_frequency": f0,
                    "q": q,
                    "field_amplitude_T": amplitude,
                },
            )
