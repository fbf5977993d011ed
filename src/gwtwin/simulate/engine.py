"""The mock interferometer: renders frames of strain, witnesses, decoys and truth.

:class:`Simulator` draws the truth catalogue once, then renders each frame independently (so
frames are rendered in parallel across processes and a frame is the same however the span is
cut): coloured design-curve noise, unwitnessed lines, the coupled contribution of every family,
witness channels at their native rates with their own sensor noise, and decoy channels.  It writes

``OUTPUT/frames/``     ``V-GWTWIN-GPS-64.gwf``: strain and every auxiliary channel, each with its
                       configured unit (the file name starts with the observatory letter of
                       ``prefix``: ``H-GWTWIN-...`` for ``H1``);
``OUTPUT/truth/``      ``V-GWTWIN_TRUTH-GPS-64.gwf``: the noise-free contribution of each family
                       to strain (``V1:TRUTH_SCATTER``, ``_EM``, ``_POWERLINE``, ``_BLIP``,
                       ``_INJECTION``, ``_LINES``), so strain = noise + sum of these exactly;
``OUTPUT/catalogue.csv|.h5``  one row per glitch/injection (see :class:`~events.Event`);
``OUTPUT/config.yaml`` the resolved config; ``OUTPUT/summary.json`` channels, counts, files.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from gwtwin.data import NS, Block
from gwtwin.simulate import drift
from gwtwin.simulate.config import SimulationConfig
from gwtwin.simulate.events import FAMILIES, STRAIN_FAMILIES, Catalogue
from gwtwin.simulate.noise import ColouredNoise, rng_for
from gwtwin.simulate.psd import powerlaw_psd

TRUTH_FAMILIES = (*STRAIN_FAMILIES, "injection", "lines")


@dataclass(frozen=True)
class ChannelSpec:
    """A simulated channel: full name, native rate (Hz), unit, role and what it witnesses."""

    name: str
    rate: float
    unit: str
    role: str  # strain | witness | redundant | decoy | truth
    family: str = ""  # the coupling family it witnesses (or whose truth it holds)
    dtype: str = "float32"


def truth_channel(prefix: str, family: str) -> str:
    return f"{prefix}:TRUTH_{family.upper()}"


@dataclass
class SimulationResult:
    """What a simulation wrote."""

    output: Path
    frames: list[Path]
    truth_frames: list[Path]
    catalogue: Path
    channels: list[ChannelSpec]
    counts: dict[str, int]
    elapsed: float
    duration: float
    extra: dict = field(default_factory=dict)

    @property
    def speed(self) -> float:
        """Simulated seconds per wall-clock second."""
        return self.duration / self.elapsed if self.elapsed > 0 else math.inf


class Simulator:
    """Renders a :class:`SimulationConfig` scenario frame by frame.

    Parameters
    ----------
    config : SimulationConfig
        The scenario (``SimulationConfig()`` is the built-in default).
    """

    def __init__(self, config: SimulationConfig | None = None):
        self.config = config or SimulationConfig()
        self.catalogue = Catalogue(self.config)
        drift.apply_to_catalogue(self.catalogue, self.config)
        self.channels = self._channel_specs()
        self._noise = self._noise_models()
        rng = rng_for(self.config.seed, "lines")
        self._line_phases = rng.uniform(0, 2 * np.pi, size=len(self.config.strain.lines))

    # -- layout -------------------------------------------------------------------------------
    def _channel_specs(self) -> list[ChannelSpec]:
        c = self.config
        ch = c.channel
        specs = [
            ChannelSpec(
                ch(c.strain.channel), c.strain.sample_rate, "strain", "strain", "", "float64"
            )
        ]
        if c.scatter.enabled:
            specs.append(
                ChannelSpec(
                    ch(c.scatter.witness),
                    c.scatter.witness_rate,
                    c.scatter.witness_unit,
                    "witness",
                    "scatter",
                )
            )
            if c.scatter.redundant_witness:
                specs.append(
                    ChannelSpec(
                        ch(c.scatter.redundant_witness),
                        c.scatter.witness_rate,
                        c.scatter.witness_unit,
                        "redundant",
                        "scatter",
                    )
                )
        if c.em.enabled:
            specs.append(
                ChannelSpec(ch(c.em.witness), c.em.witness_rate, c.em.witness_unit, "witness", "em")
            )
        if c.powerline.enabled:
            pl = c.powerline
            specs.append(
                ChannelSpec(
                    ch(pl.mains_channel), pl.mains_rate, pl.mains_unit, "witness", "powerline"
                )
            )
            specs.append(
                ChannelSpec(
                    ch(pl.control_channel), pl.control_rate, pl.control_unit, "witness", "powerline"
                )
            )
        if c.decoys.enabled:
            specs += [ChannelSpec(ch(d.name), d.rate, d.unit, "decoy") for d in c.decoys.channels]
        names = [s.name for s in specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            from gwtwin.errors import ConfigError

            raise ConfigError(f"simulated channel names must be unique, found duplicates {dupes}")
        return specs

    def truth_specs(self) -> list[ChannelSpec]:
        rate = self.config.strain.sample_rate
        return [
            ChannelSpec(truth_channel(self.config.prefix, f), rate, "strain", "truth", f, "float32")
            for f in TRUTH_FAMILIES
        ]

    def _noise_models(self) -> dict[str, ColouredNoise]:
        c = self.config
        seed, frame = c.seed, c.frame_length
        models = {}
        s = c.strain
        models[c.channel(s.channel)] = ColouredNoise(
            seed,
            c.channel(s.channel),
            s.sample_rate,
            int(frame * s.sample_rate),
            psd=self.catalogue.psd,
            filter_duration=s.filter_duration,
        )

        def white(name, rate, asd):
            models[c.channel(name)] = ColouredNoise(
                seed, c.channel(name), rate, int(frame * rate), white_asd=asd
            )

        if c.scatter.enabled:
            white(c.scatter.witness, c.scatter.witness_rate, c.scatter.witness_noise_asd)
            if c.scatter.redundant_witness:
                white(
                    c.scatter.redundant_witness,
                    c.scatter.witness_rate,
                    c.scatter.redundant_noise_asd,
                )
        if c.em.enabled:
            white(c.em.witness, c.em.witness_rate, c.em.witness_noise_asd)
        if c.powerline.enabled:
            white(c.powerline.mains_channel, c.powerline.mains_rate, c.powerline.mains_noise_asd)
            white(
                c.powerline.control_channel, c.powerline.control_rate, c.powerline.control_noise_asd
            )
        if c.decoys.enabled:
            for d in c.decoys.channels:
                if d.noise_slope == 0:
                    white(d.name, d.rate, d.noise_asd)
                else:
                    models[c.channel(d.name)] = ColouredNoise(
                        seed,
                        c.channel(d.name),
                        d.rate,
                        int(frame * d.rate),
                        psd=powerlaw_psd(d.noise_asd, d.noise_slope),
                        filter_duration=min(8.0, float(frame)),
                    )
        return models

    @property
    def n_frames(self) -> int:
        return self.config.duration // self.config.frame_length

    def frame_start(self, index: int) -> int:
        """GPS start (s) of frame ``index``."""
        return self.config.start + index * self.config.frame_length

    # -- rendering ----------------------------------------------------------------------------
    def _times(self, index: int, rate: float) -> tuple[int, np.ndarray]:
        size = int(round(self.config.frame_length * rate))
        i0 = index * size
        return i0, np.arange(i0, i0 + size) / rate

    def render_truth(self, index: int) -> dict[str, np.ndarray]:
        """The noise-free contribution of each family to strain in frame ``index``."""
        c = self.config
        cat = self.catalogue
        rate = c.strain.sample_rate
        i0, t = self._times(index, rate)
        out = {f: np.zeros(t.size) for f in TRUTH_FAMILIES}
        if c.scatter.enabled:
            out["scatter"] = cat.scatter_strain(cat.scatter_motion(t))
        if c.powerline.enabled:
            out["powerline"] = cat.powerline_strain(t)
        for family in ("em", "blip", "injection"):
            for piece in cat.strain_pieces[family]:
                piece.add_into(out[family], i0)
        for line, phase in zip(c.strain.lines, self._line_phases, strict=True):
            out["lines"] += line.amplitude * np.sin(2 * np.pi * line.frequency * t + phase)
        for family in ("scatter", "em", "powerline"):
            gain = drift.coupling_gain(c.drift, family, t)
            if gain is not None:
                out[family] *= gain
        return out

    def render_channel(self, spec: ChannelSpec, index: int) -> np.ndarray:
        """Samples of one auxiliary channel (physical signal + sensor noise) in frame ``index``."""
        c = self.config
        cat = self.catalogue
        _, t = self._times(index, spec.rate)
        noise = self._noise[spec.name].frame(index)
        if spec.family == "scatter":
            signal = cat.scatter_motion(t)
        elif spec.family == "em":
            signal = cat.em_field(t)
        elif spec.name == c.channel(c.powerline.mains_channel):
            signal = c.powerline.mains_amplitude * cat.mains(t)
        elif spec.family == "powerline":
            signal = cat.angular(t)
        else:
            signal = cat.decoy_signal(spec.name, t)
        return signal + noise

    def render_frame(self, index: int) -> tuple[list[Block], Block]:
        """Data Blocks (one per rate and dtype) and the truth Block of frame ``index``."""
        c = self.config
        t0_ns = self.frame_start(index) * NS
        truth = self.render_truth(index)
        strain_spec = self.channels[0]
        strain = self._noise[strain_spec.name].frame(index) + sum(truth.values())
        groups: dict[tuple[float, str], list[tuple[ChannelSpec, np.ndarray]]] = {}
        groups[(strain_spec.rate, "float64")] = [(strain_spec, strain)]
        for spec in self.channels[1:]:
            groups.setdefault((spec.rate, spec.dtype), []).append(
                (spec, self.render_channel(spec, index))
            )
        blocks = []
        for (rate, dtype), items in groups.items():
            data = torch.from_numpy(np.stack([x for _, x in items]).astype(dtype))
            blocks.append(
                Block(
                    data,
                    t0_ns,
                    rate,
                    tuple(s.name for s, _ in items),
                    tuple(s.unit for s, _ in items),
                )
            )
        tspecs = self.truth_specs()
        # truth is rendered in float64 and stored in float32 (half the writing time): a relative
        # precision of 6e-8, ~1e-28 strain on a 1e-21 glitch, eight orders below the noise.
        # Compute spectra of it in float64 (gwtwin.data.read returns float64 by default).
        truth_block = Block(
            torch.from_numpy(np.stack([truth[s.family] for s in tspecs]).astype(np.float32)),
            t0_ns,
            c.strain.sample_rate,
            tuple(s.name for s in tspecs),
            tuple(s.unit for s in tspecs),
        )
        return blocks, truth_block

    # -- output -------------------------------------------------------------------------------
    def frame_paths(self, output: Path, index: int) -> tuple[Path, Path]:
        from gwtwin.data import frame_name

        c = self.config
        start = self.frame_start(index)
        data = output / "frames" / frame_name(c.observatory, c.tag, start, c.frame_length, c.format)
        truth = (
            output
            / "truth"
            / frame_name(c.observatory, f"{c.tag}_TRUTH", start, c.frame_length, c.format)
        )
        return data, truth

    def write_frame_files(self, output: Path, index: int) -> tuple[Path, Path, set[str]]:
        """Render frame ``index`` and write its data and truth files.

        Returns the two paths and the writer's notes (e.g. units GWF cannot store), with the
        file name stripped so that a run reports each note once rather than once per file.
        """
        from gwtwin.data import write_frame

        data_path, truth_path = self.frame_paths(output, index)
        blocks, truth = self.render_frame(index)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            write_frame(data_path, blocks)
            write_frame(truth_path, truth)
        notes = {str(w.message).split("; written")[0] for w in caught}
        return data_path, truth_path, notes

    def run(
        self, output: str | Path, *, workers: int | None = None, progress: bool = True
    ) -> SimulationResult:
        """Render and write every frame, the catalogue, the config echo and a summary."""
        output = Path(output)
        (output / "frames").mkdir(parents=True, exist_ok=True)
        (output / "truth").mkdir(parents=True, exist_ok=True)
        begin = time.perf_counter()
        workers = workers if workers is not None else self.config.workers
        workers = workers or os.cpu_count() or 1
        workers = max(1, min(workers, self.n_frames))
        indices = range(self.n_frames)
        results: list[tuple[Path, Path, set[str]]] = []
        with _progress(progress, self.n_frames, "simulating frames") as advance:
            if workers == 1:
                for i in indices:
                    results.append(self.write_frame_files(output, i))
                    advance()
            else:
                ctx = get_context("fork") if "fork" in _start_methods() else get_context("spawn")
                with ProcessPoolExecutor(
                    workers, mp_context=ctx, initializer=_init_worker, initargs=(self,)
                ) as pool:
                    for res in pool.map(_worker_frame, [(str(output), i) for i in indices]):
                        results.append(res)
                        advance()
        notes = sorted(set().union(*(r[2] for r in results)))
        for note in notes:
            warnings.warn(f"{note} (in every frame file)", stacklevel=2)
        catalogue = write_catalogue(self.catalogue.events, output)
        (output / "config.yaml").write_text(self.config.dump())
        elapsed = time.perf_counter() - begin
        result = SimulationResult(
            output=output,
            frames=[r[0] for r in results],
            truth_frames=[r[1] for r in results],
            catalogue=catalogue,
            channels=self.channels + self.truth_specs(),
            counts=self.catalogue.counts(),
            elapsed=elapsed,
            duration=float(self.config.duration),
            extra={"notes": notes, "drift": drift.describe(self.config)},
        )
        (output / "summary.json").write_text(json.dumps(summary_dict(result), indent=2))
        return result


# -- worker plumbing (module level so it pickles) -------------------------------------------------
_WORKER: Simulator | None = None


def _init_worker(sim: Simulator) -> None:
    global _WORKER
    _WORKER = sim
    torch.set_num_threads(1)  # a pool initializer: runs in the worker processes only


def _worker_frame(args: tuple[str, int]) -> tuple[Path, Path, set[str]]:
    output, index = args
    assert _WORKER is not None
    return _WORKER.write_frame_files(Path(output), index)


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()


class _progress:
    """A rich progress bar (or nothing), used as ``with _progress(...) as advance``."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.enabled, self.total, self.label = enabled, total, label
        self._bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=False,
        )
        self._bar.start()
        task = self._bar.add_task(self.label, total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.stop()
        return False


# -- catalogue files -----------------------------------------------------------------------------
CATALOGUE_COLUMNS = (
    "id",
    "family",
    "gps_peak",
    "gps_start",
    "gps_end",
    "peak_ns",
    "start_ns",
    "end_ns",
    "duration",
    "channel",
    "snr",
    "witness_snr",
    "frequency",
    "delay",
    "params",
)


def catalogue_table(events):
    """The truth catalogue as an :class:`astropy.table.Table` (one row per event)."""
    from astropy.table import Table

    rows = {
        "id": [e.id for e in events],
        "family": [e.family for e in events],
        "gps_peak": [e.peak for e in events],
        "gps_start": [e.start for e in events],
        "gps_end": [e.end for e in events],
        "peak_ns": np.array([e.peak_ns for e in events], dtype=np.int64),
        "start_ns": np.array([e.start_ns for e in events], dtype=np.int64),
        "end_ns": np.array([e.end_ns for e in events], dtype=np.int64),
        "duration": [e.duration for e in events],
        "channel": [e.channel for e in events],
        "snr": [e.snr for e in events],
        "witness_snr": [e.witness_snr for e in events],
        "frequency": [e.frequency for e in events],
        "delay": [e.delay for e in events],
        "params": [json.dumps(e.params, sort_keys=True) for e in events],
    }
    table = Table({k: rows[k] for k in CATALOGUE_COLUMNS})
    table["gps_peak"].unit = table["gps_start"].unit = table["gps_end"].unit = "s"
    table["duration"].unit = table["delay"].unit = "s"
    table["frequency"].unit = "Hz"
    table["gps_peak"].info.format = table["gps_start"].info.format = "{:.6f}"
    table["gps_end"].info.format = "{:.6f}"
    return table


def write_catalogue(events, output: Path) -> Path:
    """Write ``catalogue.csv`` and ``catalogue.h5``; returns the HDF5 path."""
    table = catalogue_table(events)
    table.write(output / "catalogue.csv", format="csv", overwrite=True)
    h5 = output / "catalogue.h5"
    table.write(h5, path="catalogue", format="hdf5", overwrite=True, serialize_meta=True)
    return h5


def read_catalogue(path: str | Path):
    """Read a truth catalogue (``.h5`` or ``.csv``) back as an astropy Table."""
    from astropy.table import Table

    path = Path(path)
    if path.is_dir():
        path = path / "catalogue.h5"
    if path.suffix in (".h5", ".hdf5"):
        return Table.read(path, path="catalogue")
    return Table.read(path, format="csv")


def summary_dict(result: SimulationResult) -> dict:
    return {
        "output": str(result.output),
        "duration": result.duration,
        "elapsed": round(result.elapsed, 3),
        "speed_x_real_time": round(result.speed, 2),
        "channels": [
            {"name": s.name, "rate": s.rate, "unit": s.unit, "role": s.role, "family": s.family}
            for s in result.channels
        ],
        "counts": result.counts,
        "frames": [str(p) for p in result.frames],
        "truth_frames": [str(p) for p in result.truth_frames],
        "catalogue": str(result.catalogue),
        "families": list(FAMILIES),
        "notes": result.extra.get("notes", []),
        "drift": result.extra.get("drift", []),
    }
