"""The ground-truth catalogue: drawing glitches and injections, and their waveforms.

Every glitch is an :class:`Event` with exact GPS times (integer ns), its family, the channel that
witnesses it (empty for blips and injections), its SNR in strain against the design PSD, the SNR
of its witness against that sensor's noise, and its physical parameters.  Strain glitches of all
families are placed so that none overlaps another (with a guard of ``min_separation``), so the
truth of each glitch is unambiguous; injections and decoy glitches are placed independently.

Waveforms are analytic functions of GPS time wherever the physics allows, so any frame can be
rendered exactly and independently; the two couplings with memory (the magnetometer's transfer
function, compact-binary waveforms) are rendered once per event on the strain sample grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import butter, sosfilt

from gwtwin.data import NS
from gwtwin.simulate.config import Distribution, SimulationConfig
from gwtwin.simulate.noise import rng_for
from gwtwin.simulate.psd import design_psd, fft_size, powerlaw_psd, snr, white_psd

STRAIN_FAMILIES = ("scatter", "em", "powerline", "blip")
FAMILIES = (*STRAIN_FAMILIES, "injection", "decoy")


@dataclass
class Event:
    """One simulated glitch or injection (a row of the truth catalogue)."""

    id: int
    family: str
    peak_ns: int
    start_ns: int
    end_ns: int
    channel: str = ""  # the witness (or decoy) channel; "" when none
    snr: float = 0.0  # in strain, against the design PSD, from f_low
    witness_snr: float = 0.0  # in the witness channel, against its sensor noise
    frequency: float = 0.0  # Hz, where the SNR density 4|h(f)|^2/S(f) peaks
    delay: float = 0.0  # s, witness -> strain
    params: dict = field(default_factory=dict)

    @property
    def peak(self) -> float:
        return self.peak_ns / NS

    @property
    def start(self) -> float:
        return self.start_ns / NS

    @property
    def end(self) -> float:
        return self.end_ns / NS

    @property
    def duration(self) -> float:
        return (self.end_ns - self.start_ns) / NS


@dataclass
class Piece:
    """A waveform on a channel's sample grid: ``data`` starts at global sample ``index``."""

    index: int
    data: np.ndarray

    def add_into(self, out: np.ndarray, frame_index0: int) -> None:
        """Add the overlap of this piece with ``out`` (which starts at ``frame_index0``)."""
        lo = max(self.index, frame_index0)
        hi = min(self.index + self.data.size, frame_index0 + out.size)
        if hi > lo:
            out[lo - frame_index0 : hi - frame_index0] += self.data[
                lo - self.index : hi - self.index
            ]


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


# -- analytic waveforms --------------------------------------------------------------------------
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


def _peak_frequency(waveform: np.ndarray, rate: float, psd, f_low: float) -> float:
    n = fft_size(waveform.size)
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    density = np.abs(np.fft.rfft(waveform, n=n)) ** 2 / psd(freqs)
    density[freqs < f_low] = 0.0
    return float(freqs[int(np.argmax(density))])


class _CachedPSD:
    """The design PSD as a callable, memoised per rfft grid (SNRs reuse a few grid lengths)."""

    def __init__(self, curve: str, floor_frequency: float):
        self.curve, self.floor = curve, floor_frequency
        self._cache: dict[tuple[int, float], np.ndarray] = {}

    def __call__(self, freqs) -> np.ndarray:
        freqs = np.asarray(freqs, dtype=float)
        if freqs.ndim != 1 or freqs.size < 2 or freqs[0] != 0:
            return design_psd(freqs, self.curve, self.floor)
        key = (freqs.size, float(freqs[1]))
        if key not in self._cache:
            self._cache[key] = design_psd(freqs, self.curve, self.floor)
        return self._cache[key]


def _add_local(out: np.ndarray, t: np.ndarray, centre: float, before: float, after: float, shape):
    """``out += shape(t - centre)`` on the samples with ``-before < t - centre < after``.

    ``t`` is sorted, so the window is found by bisection and only its samples are evaluated.
    """
    i0 = int(np.searchsorted(t, centre - before, side="right"))
    i1 = int(np.searchsorted(t, centre + after, side="left"))
    if i1 > i0:
        out[i0:i1] += shape(t[i0:i1] - centre)


# -- the catalogue -------------------------------------------------------------------------------
class Scheduler:
    """Places non-overlapping strain glitches in the simulated span."""

    def __init__(self, config: SimulationConfig):
        self.start = config.start + config.edge_margin
        self.end = config.start + config.duration - config.edge_margin
        self.guard = config.min_separation
        self.busy: list[tuple[float, float]] = []

    def place(self, rng: np.random.Generator, before: float, after: float) -> float | None:
        """A time t with ``[t - before, t + after]`` free (or None after many tries)."""
        lo, hi = self.start + before, self.end - after
        if hi <= lo:
            return None
        for _ in range(200):
            t = float(rng.uniform(lo, hi))
            a, b = t - before - self.guard, t + after + self.guard
            if all(b <= s or a >= e for s, e in self.busy):
                self.busy.append((t - before, t + after))
                return t
        return None


def _count(rate_per_hour: float, duration: float, rng: np.random.Generator) -> int:
    return int(rng.poisson(rate_per_hour * duration / 3600.0))


def _to_ns(t: float) -> int:
    return int(round(t * NS))


class Catalogue:
    """Draws every event of a scenario and renders their waveforms.

    Attributes
    ----------
    events : list of Event
    strain_pieces : dict family -> list of Piece on the strain grid (em, blip, injection)
    """

    def __init__(self, config: SimulationConfig):
        self.config = config
        self.rate = config.strain.sample_rate
        cfg = config.strain
        self.psd = _CachedPSD(cfg.design_curve, cfg.noise_floor_frequency)
        self.f_low = cfg.f_low
        self.events: list[Event] = []
        self.strain_pieces: dict[str, list[Piece]] = {f: [] for f in FAMILIES}
        self.scatter_episodes: list[dict] = []
        self.powerline_episodes: list[dict] = []
        self.em_bursts: list[dict] = []
        self.decoy_glitches: dict[str, list[dict]] = {}
        self._scheduler = Scheduler(config)
        # fixed order: scatter episodes are long, place them first
        if config.scatter.enabled:
            self._draw_scatter()
        if config.powerline.enabled:
            self._draw_powerline()
        if config.em.enabled:
            self._draw_em()
        if config.blip.enabled:
            self._draw_blips()
        if config.injections.enabled and config.injections.count:
            self._draw_injections()
        if config.decoys.enabled:
            self._draw_decoys()
        self.events.sort(key=lambda e: (e.peak_ns, e.family))
        for i, event in enumerate(self.events):
            event.id = i

    # -- helpers ----------------------------------------------------------------------------
    def _grid(self, t_start: float, t_end: float, rate: float) -> tuple[int, np.ndarray]:
        """Global sample indices covering [t_start, t_end] and their times relative to start."""
        i0 = math.floor((t_start - self.config.start) * rate)
        i1 = math.ceil((t_end - self.config.start) * rate) + 1
        return i0, np.arange(i0, i1) / rate

    def _add(self, family: str, t_peak: float, t0: float, t1: float, **kw) -> Event:
        event = Event(
            id=-1,
            family=family,
            peak_ns=_to_ns(t_peak),
            start_ns=_to_ns(t0),
            end_ns=_to_ns(t1),
            **kw,
        )
        self.events.append(event)
        return event

    # -- scattered light --------------------------------------------------------------------
    def scatter_background(self) -> list[tuple[float, float, float]]:
        """(amplitude um, frequency Hz, phase) of the micro-seismic background components."""
        sc = self.config.scatter
        rng = rng_for(self.config.seed, "scatter-background")
        n = sc.background_components
        freqs = rng.uniform(*sc.background_band, size=n)
        amps = rng.rayleigh(1.0, size=n)
        amps *= sc.background_rms * math.sqrt(2.0) / math.sqrt(np.sum(amps**2))
        phases = rng.uniform(0, 2 * math.pi, size=n)
        return list(zip(amps.tolist(), freqs.tolist(), phases.tolist(), strict=True))

    def scatter_motion(self, t: np.ndarray) -> np.ndarray:
        """Optic displacement x(t) in um at times t (s from the scenario start)."""
        x = np.zeros_like(t)
        for amp, freq, phase in self._scatter_bg:
            x += amp * np.sin(2 * math.pi * freq * t + phase)
        for ep in self.scatter_episodes:
            half = ep["duration"] / 2
            _add_local(
                x, t, ep["t"], half, half, lambda r, ep=ep: self._episode_motion(ep, r + ep["t"])
            )
        return x

    def scatter_strain(self, x: np.ndarray) -> np.ndarray:
        """The fringe coupling G sum_n a_n sin(4 pi n (x0 + x) / lambda + phi_n), strain."""
        sc = self.config.scatter
        k = 4 * math.pi / (sc.wavelength * 1e6)  # x in um
        h = np.zeros_like(x)
        for n, (a_n, phi) in enumerate(
            zip(sc.bounce_amplitudes, self._scatter_phases, strict=False), 1
        ):
            h += a_n * np.sin(k * n * (sc.x0 + x) + phi)
        return sc.coupling * h

    def _draw_scatter(self) -> None:
        cfg = self.config
        sc = cfg.scatter
        rng = rng_for(cfg.seed, "catalogue", "scatter")
        self._scatter_bg = self.scatter_background()
        phases = rng.uniform(0, 2 * math.pi, size=len(sc.bounce_amplitudes))
        if cfg.instrument_seed is not None:  # the instrument's own constants, not the events'
            inst = rng_for(cfg.instrument_seed, "instrument", "scatter")
            phases = inst.uniform(0, 2 * math.pi, size=len(sc.bounce_amplitudes))
        self._scatter_phases = phases.tolist()
        lam_um = sc.wavelength * 1e6
        witness = cfg.channel(sc.witness)
        for _ in range(_count(sc.rate, cfg.duration, rng)):
            duration = float(draw(sc.duration, rng))
            fm = float(draw(sc.motion_frequency, rng))
            fmax = float(draw(sc.max_arch_frequency, rng))
            # peak velocity 2 pi fm A gives the n=1 arch at 2 |v| / lambda = fmax
            amplitude = fmax * lam_um / (2 * 2 * math.pi * fm)
            phase = float(rng.uniform(0, 2 * math.pi))
            t = self._scheduler.place(rng, duration / 2, duration / 2)
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
            self.scatter_episodes.append(ep)
        # SNRs need the whole motion model: compute once all episodes exist
        for ep in self.scatter_episodes:
            i0, tt = self._grid(
                ep["t"] + cfg.start - ep["duration"] / 2 - 1.0,
                ep["t"] + cfg.start + ep["duration"] / 2 + 1.0,
                self.rate,
            )
            x_all = self.scatter_motion(tt)
            bg = x_all - self._episode_motion(ep, tt)
            h_ep = self.scatter_strain(x_all) - self.scatter_strain(bg)
            # peak: the sample of maximum velocity inside the episode
            v = np.gradient(x_all, 1.0 / self.rate)
            inside = np.abs(tt - ep["t"]) < ep["duration"] / 2
            t_peak = float(tt[inside][np.argmax(np.abs(v[inside]))]) + cfg.start
            w_snr = snr(
                self._episode_motion(ep, tt),
                self.rate,
                white_psd(sc.witness_noise_asd),
                f_low=0.0,
            )
            self._add(
                "scatter",
                t_peak,
                ep["t"] + cfg.start - ep["duration"] / 2,
                ep["t"] + cfg.start + ep["duration"] / 2,
                channel=witness,
                snr=snr(h_ep, self.rate, self.psd, self.f_low),
                witness_snr=w_snr,
                frequency=_peak_frequency(h_ep, self.rate, self.psd, self.f_low),
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

    def _episode_motion(self, ep: dict, t: np.ndarray) -> np.ndarray:
        rel = t - ep["t"]
        return (
            ep["amplitude"]
            * tukey_envelope(rel, ep["duration"])
            * np.sin(2 * math.pi * ep["motion_frequency"] * rel + ep["phase"])
        )

    # -- power-line modulation ---------------------------------------------------------------
    def mains(self, t: np.ndarray) -> np.ndarray:
        """Mains voltage normalised to unit fundamental amplitude, at t (s from start)."""
        pl = self.config.powerline
        v = np.sin(2 * math.pi * pl.mains_frequency * t + self._mains_phases[0])
        for k, rel in enumerate(pl.harmonics, 1):
            v += rel * np.sin(
                2 * math.pi * (2 * k + 1) * pl.mains_frequency * t + self._mains_phases[k]
            )
        return v

    def angular(self, t: np.ndarray, episodes: bool = True) -> np.ndarray:
        """Angular motion a(t) in urad: continuous modulation plus (optionally) episodes."""
        pl = self.config.powerline
        a = np.zeros_like(t)
        for f, amp, ph in zip(
            pl.modulation_frequencies, pl.modulation_amplitudes, self._mod_phases, strict=True
        ):
            a += amp * np.sin(2 * math.pi * f * t + ph)
        if episodes:
            for ep in self.powerline_episodes:
                half = ep["duration"] / 2
                _add_local(
                    a,
                    t,
                    ep["t"],
                    half,
                    half,
                    lambda r, ep=ep: ep["amplitude"] * self._pl_shape(ep, r),
                )
        return a

    def _pl_shape(self, ep: dict, rel: np.ndarray) -> np.ndarray:
        return tukey_envelope(rel, ep["duration"]) * np.sin(
            2 * math.pi * ep["frequency"] * rel + ep["phase"]
        )

    def powerline_strain(self, t: np.ndarray) -> np.ndarray:
        pl = self.config.powerline
        return pl.carrier_amplitude * self.mains(t) * (1.0 + pl.modulation_depth * self.angular(t))

    def _draw_powerline(self) -> None:
        cfg = self.config
        pl = cfg.powerline
        rng = rng_for(cfg.seed, "catalogue", "powerline")
        self._mains_phases = rng.uniform(0, 2 * math.pi, size=1 + len(pl.harmonics)).tolist()
        self._mod_phases = rng.uniform(0, 2 * math.pi, size=len(pl.modulation_frequencies)).tolist()
        control = white_psd(pl.control_noise_asd)
        for _ in range(_count(pl.rate, cfg.duration, rng)):
            duration = float(draw(pl.duration, rng))
            ep = {
                "duration": duration,
                "frequency": float(draw(pl.episode_frequency, rng)),
                "phase": float(rng.uniform(0, 2 * math.pi)),
                "amplitude": 1.0,
            }
            target = float(draw(pl.snr, rng))
            t = self._scheduler.place(rng, duration / 2, duration / 2)
            if t is None:
                continue
            ep["t"] = t - cfg.start
            i0, tt = self._grid(t - duration / 2, t + duration / 2, self.rate)
            shape = self._pl_shape(ep, tt - ep["t"])
            unit = pl.carrier_amplitude * pl.modulation_depth * self.mains(tt) * shape
            ep["amplitude"] = target / snr(unit, self.rate, self.psd, self.f_low)
            h = unit * ep["amplitude"]
            self.powerline_episodes.append(ep)
            _, tw = self._grid(t - duration / 2, t + duration / 2, pl.control_rate)
            self._add(
                "powerline",
                t,
                t - duration / 2,
                t + duration / 2,
                channel=cfg.channel(pl.control_channel),
                snr=snr(h, self.rate, self.psd, self.f_low),
                witness_snr=snr(
                    ep["amplitude"] * self._pl_shape(ep, tw - ep["t"]),
                    pl.control_rate,
                    control,
                    0.0,
                ),
                frequency=_peak_frequency(h, self.rate, self.psd, self.f_low),
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

    # -- electromagnetic transients ----------------------------------------------------------
    def em_sos(self) -> np.ndarray:
        f = self.config.em.filter
        freqs = f.frequencies if f.kind == "bandpass" else f.frequencies[0]
        return butter(f.order, freqs, btype=f.kind, fs=self.rate, output="sos")

    def em_field(self, t: np.ndarray) -> np.ndarray:
        """Magnetic field (T) of all bursts at t (s from start)."""
        b = np.zeros_like(t)
        for burst in self.em_bursts:
            _add_local(
                b,
                t,
                burst["t"],
                burst["before"],
                burst["after"],
                lambda r, bu=burst: bu["amplitude"] * self._burst_shape(bu, r),
            )
        return b

    @staticmethod
    def _burst_shape(burst: dict, rel: np.ndarray) -> np.ndarray:
        if burst["shape"] == "ringdown":
            return ringdown(rel, burst["frequency"], burst["q"], burst["phase"])
        return sine_gaussian(rel, burst["frequency"], burst["q"], burst["phase"])

    def _draw_em(self) -> None:
        cfg = self.config
        em = cfg.em
        rng = rng_for(cfg.seed, "catalogue", "em")
        sos = self.em_sos()
        # ring-down of the coupling filter: time for its impulse response to fall below 1e-6
        impulse = sosfilt(sos, np.r_[1.0, np.zeros(int(4 * self.rate) - 1)])
        above = np.nonzero(np.abs(impulse) > 1e-6 * np.abs(impulse).max())[0]
        ring = (above[-1] + 1) / self.rate
        mag_psd = white_psd(em.witness_noise_asd)
        for _ in range(_count(em.rate, cfg.duration, rng)):
            f0 = float(draw(em.frequency, rng))
            q = float(draw(em.q, rng))
            shape = "ringdown" if rng.uniform() < em.ringdown_fraction else "sine-gaussian"
            phase = float(rng.uniform(0, 2 * math.pi))
            target = float(draw(em.snr, rng))
            if shape == "ringdown":
                before, after = 0.0, 14.0 * q / (math.pi * f0)  # 14 decay times: e^-14
            else:
                before = after = sine_gaussian_halfwidth(f0, q)
            t = self._scheduler.place(rng, before, after + em.delay + ring)
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
            i0, tt = self._grid(t - before, t + after + em.delay + ring, self.rate)
            unit_field = self._burst_shape(burst, tt - burst["t"] - em.delay)
            unit_strain = em.coupling * sosfilt(sos, unit_field)
            amplitude = target / snr(unit_strain, self.rate, self.psd, self.f_low)
            burst["amplitude"] = amplitude
            self.em_bursts.append(burst)
            h = amplitude * unit_strain
            self.strain_pieces["em"].append(Piece(i0, h))
            _, tw = self._grid(t - before, t + after, em.witness_rate)
            field_w = amplitude * self._burst_shape(burst, tw - burst["t"])
            self._add(
                "em",
                t,
                t - before,
                t + after + em.delay + ring,
                channel=cfg.channel(em.witness),
                snr=snr(h, self.rate, self.psd, self.f_low),
                witness_snr=snr(field_w, em.witness_rate, mag_psd, 0.0),
                frequency=_peak_frequency(h, self.rate, self.psd, self.f_low),
                delay=em.delay,
                params={
                    "shape": shape,
                    "burst_frequency": f0,
                    "q": q,
                    "field_amplitude_T": amplitude,
                },
            )

    # -- blips -------------------------------------------------------------------------------
    def _draw_blips(self) -> None:
        cfg = self.config
        bl = cfg.blip
        rng = rng_for(cfg.seed, "catalogue", "blip")
        for _ in range(_count(bl.rate, cfg.duration, rng)):
            f0 = float(draw(bl.frequency, rng))
            q = float(draw(bl.q, rng))
            phase = float(rng.uniform(0, 2 * math.pi))
            target = float(draw(bl.snr, rng))
            half = sine_gaussian_halfwidth(f0, q)
            t = self._scheduler.place(rng, half, half)
            if t is None:
                continue
            i0, tt = self._grid(t - half, t + half, self.rate)
            unit = sine_gaussian(tt - (t - cfg.start), f0, q, phase)
            h = unit * target / snr(unit, self.rate, self.psd, self.f_low)
            self.strain_pieces["blip"].append(Piece(i0, h))
            self._add(
                "blip",
                t,
                t - half,
                t + half,
                snr=snr(h, self.rate, self.psd, self.f_low),
                frequency=_peak_frequency(h, self.rate, self.psd, self.f_low),
                params={"central_frequency": f0, "q": q, "amplitude": float(np.abs(h).max())},
            )

    # -- compact-binary injections -------------------------------------------------------------
    def _draw_injections(self) -> None:
        from gwtwin.simulate.injections import project_waveform

        cfg = self.config
        inj = cfg.injections
        rng = rng_for(cfg.seed, "catalogue", "injection")
        span = (cfg.start + cfg.edge_margin + 2.0, cfg.start + cfg.duration - cfg.edge_margin)
        for _ in range(inj.count):
            m1, m2 = float(draw(inj.mass1, rng)), float(draw(inj.mass2, rng))
            m1, m2 = max(m1, m2), min(m1, m2)
            params = {
                "mass1": m1,
                "mass2": m2,
                "spin1z": float(rng.uniform(*inj.spin_z)),
                "spin2z": float(rng.uniform(*inj.spin_z)),
                "ra": float(rng.uniform(0, 2 * math.pi)),
                "dec": float(np.arcsin(rng.uniform(-1, 1))),
                "psi": float(rng.uniform(0, math.pi)),
                "inclination": float(np.arccos(rng.uniform(-1, 1))),
                "coa_phase": float(rng.uniform(0, 2 * math.pi)),
                "distance_mpc": 100.0,
                "approximant": inj.approximant,
                "f_min": inj.f_min,
            }
            target = float(draw(inj.snr, rng))
            tc = float(rng.uniform(*span))
            params["geocent_end_time"] = tc
            i0, h = project_waveform(params, cfg.prefix, cfg.start, self.rate)
            scale = target / snr(h, self.rate, self.psd, self.f_low)
            params["distance_mpc"] = 100.0 / scale
            h = h * scale
            self.strain_pieces["injection"].append(Piece(i0, h))
            t0 = cfg.start + i0 / self.rate
            peak = t0 + int(np.argmax(np.abs(h))) / self.rate
            self._add(
                "injection",
                peak,
                t0,
                t0 + h.size / self.rate,
                snr=snr(h, self.rate, self.psd, self.f_low),
                frequency=_peak_frequency(h, self.rate, self.psd, self.f_low),
                params=params,
            )

    # -- decoys --------------------------------------------------------------------------------
    def _draw_decoys(self) -> None:
        cfg = self.config
        dc = cfg.decoys
        for ch in dc.channels:
            name = cfg.channel(ch.name)
            rng = rng_for(cfg.seed, "catalogue", "decoy", name)
            psd = powerlaw_psd(ch.noise_asd, ch.noise_slope)
            glitches = []
            fmin, fmax = max(1.0, ch.rate / 256.0), 0.35 * ch.rate
            for _ in range(_count(dc.rate, cfg.duration, rng)):
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
                _, tt = self._grid(t - half, t + half, ch.rate)
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
                self._add(
                    "decoy",
                    t,
                    t - half,
                    t + half,
                    channel=name,
                    witness_snr=snr(amplitude * unit, ch.rate, psd, 0.0),
                    frequency=f0,
                    params={"central_frequency": f0, "q": q, "amplitude": amplitude},
                )
            self.decoy_glitches[name] = glitches

    def decoy_signal(self, name: str, t: np.ndarray) -> np.ndarray:
        out = np.zeros_like(t)
        for g in self.decoy_glitches.get(name, ()):
            _add_local(
                out,
                t,
                g["t"],
                g["half"],
                g["half"],
                lambda r, g=g: (
                    g["amplitude"] * sine_gaussian(r, g["frequency"], g["q"], g["phase"])
                ),
            )
        return out

    # -- summaries -----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        out = {f: 0 for f in FAMILIES}
        for e in self.events:
            out[e.family] += 1
        return out
