"""The ground-truth catalogue: the events of a scenario, where they are placed, and their pieces.

Every glitch is an :class:`Event` with exact GPS times (integer ns), its family, the channel that
witnesses it (empty for blips and injections), its SNR in strain against the design PSD, the SNR
of its witness against that sensor's noise, and its physical parameters.  Strain glitches of all
families are placed by one :class:`Scheduler` so that none overlaps another (with a guard of
``min_separation``), so the truth of each glitch is unambiguous; injections and decoy glitches are
placed independently.

Each family draws its own events (with its own random stream) in its own module:
``scatter.py`` (scattered light), ``powerline.py`` (power-line modulation), ``magnetic.py``
(electromagnetic transients), ``transients.py`` (blips, decoy glitches) and ``injections.py``
(compact binaries).  The analytic shapes and parameter draws are in ``waveforms.py``, the SNR
integrals in ``psd.py``.  Waveforms are analytic functions of GPS time wherever the physics
allows, so any frame can be rendered exactly and independently; the two couplings with memory
(the magnetometer's transfer function, compact-binary waveforms) are rendered once per event on
the strain sample grid (a :class:`Piece`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gwtwin.data import NS
from gwtwin.simulate.config import SimulationConfig
from gwtwin.simulate.injections import draw_injections
from gwtwin.simulate.magnetic import MagneticTransients
from gwtwin.simulate.powerline import PowerLine
from gwtwin.simulate.psd import CachedPSD
from gwtwin.simulate.scatter import ScatteredLight
from gwtwin.simulate.transients import decoy_signal, draw_blips, draw_decoys
from gwtwin.simulate.waveforms import (  # noqa: F401 - importable from here, as before the split
    draw,
    ringdown,
    sine_gaussian,
    sine_gaussian_halfwidth,
    tukey_envelope,
)

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


def _to_ns(t: float) -> int:
    return int(round(t * NS))


class Catalogue:
    """Draws every event of a scenario and renders their waveforms.

    The families draw in a fixed order (scattered light first: its episodes are the longest),
    all placing their strain glitches with the one :attr:`scheduler`.

    Attributes
    ----------
    events : list of Event
    strain_pieces : dict family -> list of Piece on the strain grid (em, blip, injection)
    scatter, powerline, em : the family objects (None when the family is disabled)
    decoy_glitches : dict full channel name -> list of glitch dicts
    """

    def __init__(self, config: SimulationConfig):
        self.config = config
        self.rate = config.strain.sample_rate
        cfg = config.strain
        self.psd = CachedPSD(cfg.design_curve, cfg.noise_floor_frequency)
        self.f_low = cfg.f_low
        self.events: list[Event] = []
        self.strain_pieces: dict[str, list[Piece]] = {f: [] for f in FAMILIES}
        self.decoy_glitches: dict[str, list[dict]] = {}
        self.scheduler = Scheduler(config)
        self.scatter = ScatteredLight(config) if config.scatter.enabled else None
        self.powerline = PowerLine(config) if config.powerline.enabled else None
        self.em = MagneticTransients(config) if config.em.enabled else None
        for family in (self.scatter, self.powerline, self.em):
            if family is not None:
                family.draw(self)
        if config.blip.enabled:
            draw_blips(self)
        if config.injections.enabled and config.injections.count:
            draw_injections(self)
        if config.decoys.enabled:
            self.decoy_glitches = draw_decoys(self)
        self.events.sort(key=lambda e: (e.peak_ns, e.family))
        for i, event in enumerate(self.events):
            event.id = i

    # -- what the families call -------------------------------------------------------------
    def grid(self, t_start: float, t_end: float, rate: float) -> tuple[int, np.ndarray]:
        """Global sample indices covering [t_start, t_end] and their times relative to start."""
        i0 = math.floor((t_start - self.config.start) * rate)
        i1 = math.ceil((t_end - self.config.start) * rate) + 1
        return i0, np.arange(i0, i1) / rate

    def add(self, family: str, t_peak: float, t0: float, t1: float, **kw) -> Event:
        """Append an event (GPS peak, start and end in s; other columns by keyword)."""
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

    def add_piece(self, family: str, index: int, data: np.ndarray) -> None:
        """Record a waveform rendered on the strain grid, starting at global sample ``index``."""
        self.strain_pieces[family].append(Piece(index, data))

    # -- rendering (what the engine calls) --------------------------------------------------
    def scatter_background(self) -> list[tuple[float, float, float]]:
        """(amplitude um, frequency Hz, phase) of the micro-seismic background components."""
        return self.scatter.background

    def scatter_motion(self, t: np.ndarray) -> np.ndarray:
        """Optic displacement x(t) in um at times t (s from the scenario start)."""
        return self.scatter.motion(t)

    def scatter_strain(self, x: np.ndarray) -> np.ndarray:
        """The fringe coupling of a displacement ``x`` (um), strain."""
        return self.scatter.strain(x)

    def mains(self, t: np.ndarray) -> np.ndarray:
        """Mains voltage normalised to unit fundamental amplitude, at t (s from start)."""
        return self.powerline.mains(t)

    def angular(self, t: np.ndarray, episodes: bool = True) -> np.ndarray:
        """Angular motion a(t) in urad: continuous modulation plus (optionally) episodes."""
        return self.powerline.angular(t, episodes)

    def powerline_strain(self, t: np.ndarray) -> np.ndarray:
        """The coupled, modulated mains line in strain at t (s from start)."""
        return self.powerline.strain(t)

    def em_sos(self) -> np.ndarray:
        """The magnetic coupling filter (second-order sections on the strain grid)."""
        return self.em.sos()

    def em_field(self, t: np.ndarray) -> np.ndarray:
        """Magnetic field (T) of all bursts at t (s from start)."""
        return self.em.field(t)

    def decoy_signal(self, name: str, t: np.ndarray) -> np.ndarray:
        """The glitches of decoy channel ``name`` (full name) at t (s from start)."""
        return decoy_signal(self.decoy_glitches.get(name, ()), t)

    @property
    def scatter_episodes(self) -> list[dict]:
        return self.scatter.episodes if self.scatter is not None else []

    @property
    def powerline_episodes(self) -> list[dict]:
        return self.powerline.episodes if self.powerline is not None else []

    @property
    def em_bursts(self) -> list[dict]:
        return self.em.bursts if self.em is not None else []

    # -- summaries --------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        out = {f: 0 for f in FAMILIES}
        for e in self.events:
            out[e.family] += 1
        return out


__all__ = [
    "FAMILIES",
    "STRAIN_FAMILIES",
    "Catalogue",
    "Event",
    "Piece",
    "Scheduler",
    "draw",
    "ringdown",
    "sine_gaussian",
    "sine_gaussian_halfwidth",
    "tukey_envelope",
]
