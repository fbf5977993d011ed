"""Per-channel triggers for selection: computed once, cached to HDF5, in parallel.

Each channel is one job (:func:`channel_triggers`): read the channel over the span, analyse
every contiguous piece with its method (Q-tiles or scattered-light fringes, see
:class:`~gwtwin.select.config.ChannelTriggerConfig`), and record the analysed segments and the
gaps.  :func:`compute_triggers` runs the jobs in a process pool (default), in this process
(``workers=1``) or on a Dask cluster (``dask.scheduler``), and caches each channel's result in
``<output>/triggers/<channel>.h5``: a later run re-uses the file when its job description (source,
span, method, options) is identical and recomputes it otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from gwtwin.errors import GwtwinError
from gwtwin.select.config import SelectConfig
from gwtwin.signal._threads import torch_threads

__all__ = ["ChannelJob", "channel_jobs", "channel_triggers", "compute_triggers"]

ChannelJob = dict  # {"channel", "source", "start", "end", "method", "options"}


_NAMED_UNITS = (
    "T",
    "V",
    "A",
    "W",
    "K",
    "Pa",
    "m",
    "mm",
    "um",
    "nm",
    "rad",
    "urad",
    "m/s",
    "um/s",
    "m/s2",
)


def _pretty_unit(unit: str) -> str:
    """``T`` rather than astropy's ``kg / (A s2)`` when the unit is one of the common ones."""
    from astropy import units as u

    try:
        parsed = u.Unit(unit)
    except (ValueError, TypeError):
        return unit
    for name in _NAMED_UNITS:
        if u.Unit(name) == parsed:
            return name
    return unit


def _qtransform_options(config: SelectConfig, rule) -> dict:
    base = config.triggers
    opts = {
        "snr_threshold": base.snr_threshold,
        "qrange": list(base.qrange),
        "cluster_window": base.cluster_window,
        "segment_duration": base.segment_duration,
        "fduration": base.fduration,
        "mismatch": base.mismatch,
    }
    if base.frange is not None:
        opts["frange"] = list(base.frange)
    if rule is not None:
        for key in ("qrange", "frange", "snr_threshold", "segment_duration", "fduration"):
            value = getattr(rule, key)
            if value is not None:
                opts[key] = list(value) if isinstance(value, tuple) else value
    return opts


def channel_rates(source, channels: Sequence[str]) -> dict[str, float]:
    """Native sample rate (Hz) of each channel, from one second of the first frame file."""
    from gwtwin.data import find_frames, read

    first = find_frames(source)[0]
    t0 = first.start_ns / 1e9
    return {c: read(first.path, [c], t0, t0 + 1).block.sample_rate for c in channels}


def channel_jobs(
    source,
    channels: Sequence[str],
    config: SelectConfig,
    strain: str | None = None,
    rates: dict[str, float] | None = None,
) -> list[ChannelJob]:
    """The job description of every channel (the strain channel gets the strain band).

    ``rates``: native sample rates (Hz) for the rules with a ``max_rate``; read from the frames
    when the config has such rules and they are not given."""
    from gwtwin.signal.scan import resolve_frames

    frames = str(Path(resolve_frames(source)).resolve())
    if rates is None and any(r.max_rate is not None for r in config.channel_triggers):
        rates = channel_rates(frames, channels)
    rates = rates or {}
    jobs = []
    for name in channels:
        rule = config.rule_for(name, rates.get(name))
        method = rule.method if rule is not None else "auto"
        opts = _qtransform_options(config, rule)
        if name == strain and config.strain_band is not None:
            opts["frange"] = list(config.strain_band)
        jobs.append(
            {
                "channel": name,
                "source": frames,
                "start": config.start,
                "end": config.end,
                "method": method,
                "options": opts,
                "fringe": config.fringe.model_dump(mode="json"),
            }
        )
    return jobs


# one channel per job, one thread per job: the pool supplies the parallelism.  With workers=1
# (or Dask threads) the job runs in the caller's process, whose thread count is then restored.
@torch_threads(1)
def channel_triggers(job: ChannelJob):
    """Triggers of one channel (a :class:`gwtwin.signal.Triggers` with one table).

    ``params`` holds ``method`` (the one used), ``segments`` (analysed GPS ``[start, end]``
    pieces), ``gaps`` and ``job`` (the JSON job description, the cache key).
    """
    from gwtwin.data import read
    from gwtwin.select.fringe import fringe_triggers, length_scale
    from gwtwin.signal.triggers import TRIGGER_DTYPE, Triggers, find_triggers

    name = job["channel"]
    data = read(job["source"], [name], job["start"], job["end"])
    if data.nonfinite:
        spans = ", ".join(f"[{s[0]}, {s[1]})" for s in list(data.nonfinite[name])[:5])
        raise GwtwinError(f"channel {name} has NaN/inf samples at GPS {spans}: crop them out")
    unit = _pretty_unit(data.units[0]) if data.units else ""
    method = job["method"]
    if method == "auto":
        lengthy = length_scale(unit) is not None
        method = "fringe" if lengthy and unit.strip() not in ("", "1") else "qtransform"
    parts, segments, params = [], [], {}
    fr = job["fringe"]
    for block in data.segments:
        if method == "fringe":
            found = fringe_triggers(
                block,
                wavelength=fr["wavelength"],
                bounces=fr["bounces"],
                threshold=fr["threshold"],
                lowpass=fr["lowpass"],
                cluster_window=fr["cluster_window"],
            )
        else:
            opts = dict(job["options"])
            for key in ("qrange", "frange"):
                if key in opts:
                    opts[key] = tuple(opts[key])
            found = find_triggers(block, **opts)
        parts.append(found[name])
        segments.append([float(found.segment[0]), float(found.segment[1])])
        params = dict(found.params)
    if not segments:
        raise GwtwinError(
            f"no data for {name} in {job['source']} between {job['start']} and {job['end']}"
        )
    table = np.sort(np.concatenate(parts), order="time") if parts else np.zeros(0, TRIGGER_DTYPE)
    params.update(
        {
            "method": method,
            "unit": unit,
            "segments": segments,
            "gaps": [[float(g[0]), float(g[1])] for g in data.gaps],
            "job": json.dumps(job, sort_keys=True),
        }
    )
    span = (segments[0][0], segments[-1][1])
    return Triggers({name: table}, span, params)


def _cache_path(cache_dir: Path, channel: str) -> Path:
    return cache_dir / (channel.replace(":", "-").replace("/", "_") + ".h5")


def _cached(path: Path, job: ChannelJob):
    from gwtwin.signal.triggers import read_triggers

    if not path.is_file():
        return None
    try:
        found = read_triggers(path)
    except (OSError, ValueError, KeyError):
        return None
    if found.params.get("job") != json.dumps(job, sort_keys=True):
        return None
    return found


def _run_local(jobs, workers, done):
    if workers == 1 or len(jobs) == 1:
        for job in jobs:
            done(job, channel_triggers(job))
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # torch and fork do not mix
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
        futures = {pool.submit(channel_triggers, job): job for job in jobs}
        for fut in as_completed(futures):
            done(futures[fut], fut.result())


def _run_dask(jobs, address, done):
    from dask.distributed import Client
    from dask.distributed import as_completed as dask_completed

    client = address if hasattr(address, "submit") else Client(address)
    try:
        futures = {client.submit(channel_triggers, job, pure=False): job for job in jobs}
        for fut in dask_completed(list(futures)):
            done(futures[fut], fut.result())
    finally:
        if client is not address:
            client.close()


def compute_triggers(
    jobs: Sequence[ChannelJob],
    cache_dir: str | os.PathLike | None,
    *,
    workers: int = 0,
    scheduler=None,
    progress: Callable[[str, bool], None] | None = None,
) -> dict:
    """Triggers of every job's channel: ``{channel: Triggers}``, re-using the cache.

    Parameters
    ----------
    jobs : sequence of dict
        From :func:`channel_jobs`.
    cache_dir : path or None
        Directory of per-channel HDF5 files (None: no cache).
    workers : int
        Processes (0: number of cores; 1: this process).
    scheduler : str or dask.distributed.Client, optional
        A Dask scheduler address (or client): run the jobs there instead.
    progress : callable, optional
        Called as ``progress(channel, cached)`` when a channel is ready.
    """
    from gwtwin.signal.triggers import write_triggers

    out: dict = {}
    todo = []
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        found = _cached(_cache_path(cache, job["channel"]), job) if cache is not None else None
        if found is not None:
            out[job["channel"]] = found
            if progress:
                progress(job["channel"], True)
        else:
            todo.append(job)

    def done(job, found):
        out[job["channel"]] = found
        if cache is not None:
            write_triggers(_cache_path(cache, job["channel"]), found, overwrite=True)
        if progress:
            progress(job["channel"], False)

    if todo:
        if scheduler is not None:
            _run_dask(todo, scheduler, done)
        else:
            _run_local(todo, workers or os.cpu_count() or 1, done)
    return {job["channel"]: out[job["channel"]] for job in jobs}
