"""Omicron-like Q-tile triggers: tiles above an SNR threshold, clustered in time, per channel.

Pipeline, per channel (channels are batched through every FFT):

1. the Block is cut into analysis windows of ``segment_duration`` s plus padding on each side
   (memory is bounded by the window, not the Block); each window is whitened
   (:func:`gwtwin.signal.whitening.whiten_block`) unless ``whiten=False``;
2. every tile of the exact multi-Q transform (:mod:`gwtwin.signal.qtransform`, gwpy's tiling) with
   ``snr >= snr_threshold`` whose centre falls in the window's core is kept;
3. tiles are clustered in time as Omicron does: sorted by start time, a tile joins the current
   cluster when it starts at most ``cluster_window`` s after the latest end of the cluster so far;
4. each cluster becomes one trigger: the loudest tile, with its time, frequency and Q refined by
   maximising the exact tile energy over continuous (time, frequency, Q) around it (the tile is a
   band-limited function of these, so this evaluates it rather than interpolating), and the
   cluster's extent ``tstart..tend``, ``fstart..fend`` over all member tiles.

Columns (float64, one structured numpy array per channel, ``TRIGGER_DTYPE``):

- ``time`` (GPS s), ``frequency`` (Hz), ``q``: the refined peak;
- ``snr``: ``sqrt(2 * (Z - 1))`` for the peak's mean-normalised energy ``Z`` (see
  :mod:`gwtwin.signal.qtransform`): the matched-filter SNR of a signal the tile matches;
- ``amplitude``: ``snr * sqrt(S(f) / 2)`` with ``S`` the one-sided PSD of the input (before
  whitening) at the peak frequency, in input units * sqrt(s) (strain/sqrt(Hz) for strain): the
  root-sum-square amplitude ``h_rss`` of a sine-Gaussian of that SNR at that frequency, since
  ``snr**2 = 2 h_rss**2 / S(f)``. With ``whiten=False`` and no ``psd`` given, ``S(f)`` is the
  noise level of the trigger's own row (its median tile energy, the same estimate that
  normalises the SNR): for white input of variance ``v``, ``S = 2 v / sample_rate``;
- ``phase``: the angle of the complex tile at the peak, rad, such that the data near the trigger
  look like ``amplitude_envelope * cos(2 pi frequency (t - time) + phase)``;
- ``tstart, tend`` (GPS s), ``fstart, fend`` (Hz): cluster extent; a tile spans its centre
  ``+- duration / ntiles / 2`` and ``frequency +- bandwidth / 2`` (bandwidth ``2 sqrt(pi) f / q``).

Files: :func:`write_triggers` writes one HDF5 dataset per channel (named by the channel) that
``gwpy.table.EventTable.read(path, path=channel, format="hdf5")`` reads.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from gwtwin.errors import GwtwinError
from gwtwin.signal.qtransform import (
    DEFAULT_FRANGE,
    DEFAULT_MAX_MEMORY,
    DEFAULT_MISMATCH,
    DEFAULT_QRANGE,
    SQRT11,
    QTiling,
    _compute,
    _condition,
    _energy,
    _noise_level,
    _plan,
    _spectrum,
    energy_from_snr,
    qtiling,
    snr_from_energy,
)

__all__ = [
    "TRIGGER_COLUMNS",
    "TRIGGER_DTYPE",
    "Triggers",
    "cluster_tiles",
    "find_triggers",
    "read_triggers",
    "write_triggers",
]

TRIGGER_COLUMNS = (
    "time",
    "frequency",
    "q",
    "snr",
    "amplitude",
    "phase",
    "tstart",
    "tend",
    "fstart",
    "fend",
)
TRIGGER_DTYPE = np.dtype([(name, "<f8") for name in TRIGGER_COLUMNS])
_FORMAT = "gwtwin-triggers-1"


@dataclass(frozen=True)
class Triggers:
    """Triggers of several channels: ``tables[channel]`` is a ``TRIGGER_DTYPE`` array.

    ``segment`` is the GPS ``[start, end)`` that was analysed (the input minus the edges that
    whitening corrupts); ``params`` records how the triggers were made.
    """

    tables: dict[str, np.ndarray]
    segment: tuple[float, float]
    params: dict = field(default_factory=dict)

    @property
    def channels(self) -> list[str]:
        return list(self.tables)

    def __getitem__(self, channel: str) -> np.ndarray:
        try:
            return self.tables[channel]
        except KeyError:
            raise GwtwinError(
                f"no triggers for channel {channel!r}; channels: {self.channels}"
            ) from None

    def __len__(self) -> int:
        return len(self.tables)

    def to_eventtable(self, channel: str):
        """One channel's table as a :class:`gwpy.table.EventTable` (``meta`` holds the segment)."""
        from gwpy.table import EventTable

        out = EventTable(self[channel])
        out.meta.update({"channel": channel, "segment": self.segment})
        return out


# -- clustering -----------------------------------------------------------------------------------


def cluster_tiles(tstart: np.ndarray, tend: np.ndarray, window: float) -> np.ndarray:
    """Omicron's time clustering: cluster id per tile.

    Tiles sorted by start time join the current cluster while they start no more than ``window``
    seconds after the latest end seen in it. Returns ids ``0..n_clusters-1`` in input order,
    numbered by time.
    """
    tstart = np.asarray(tstart, dtype=np.float64)
    tend = np.asarray(tend, dtype=np.float64)
    if window < 0:
        raise GwtwinError(f"cluster_window must be >= 0 s, found {window}")
    if tstart.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(tstart, kind="stable")
    ts, te = tstart[order], np.maximum.accumulate(tend[order])
    new = np.empty(ts.size, dtype=bool)
    new[0] = True
    new[1:] = ts[1:] - te[:-1] > window
    ids = np.empty(ts.size, dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids


def _reduce_clusters(tiles: dict[str, np.ndarray], ids: np.ndarray, key: str):
    """(index of the member with the largest ``key`` per cluster, extents per cluster)."""
    n = int(ids.max()) + 1
    order = np.lexsort((-tiles[key], ids))
    first = np.ones(len(order), dtype=bool)
    first[1:] = ids[order][1:] != ids[order][:-1]
    loudest = np.empty(n, dtype=np.int64)
    loudest[ids[order][first]] = order[first]
    ext = {}
    for col, fn in (("tstart", np.minimum), ("fstart", np.minimum)):
        ext[col] = np.full(n, np.inf)
        fn.at(ext[col], ids, tiles[col])
    for col, fn in (("tend", np.maximum), ("fend", np.maximum)):
        ext[col] = np.full(n, -np.inf)
        fn.at(ext[col], ids, tiles[col])
    return loudest, ext


# -- peak refinement ------------------------------------------------------------------------------


def _tile_coefficients(spec, T, fs, freqs, qs, times):
    """Complex tile values [ncand, ntimes] for (freqs[i], qs[i]) at relative times (s).

    Same window and normalisation as gwpy's tiles, centred exactly on ``freqs`` (gwpy centres
    each row one frequency bin above its nominal frequency); ``spec`` is the gwpy-normalised
    one-sided spectrum (length ``N // 2 + 1`` or more).
    """
    qprime = qs / SQRT11
    half = freqs / qprime
    kmin = max(1, int(math.floor(float(((freqs - half) * T).min()))))
    kmax = min(spec.shape[-1] - 1, int(math.ceil(float(((freqs + half) * T).max()))))
    k = torch.arange(kmin, kmax + 1, dtype=torch.float64, device=spec.device)
    fr = torch.as_tensor(freqs, dtype=torch.float64, device=spec.device)[:, None]
    qp = torch.as_tensor(qprime, dtype=torch.float64, device=spec.device)[:, None]
    x = (k[None, :] / T - fr) * qp / fr
    w = (
        torch.where(x.abs() < 1, (1 - x**2) ** 2, 0.0)
        * torch.sqrt(315 * qp / (128 * fr))
        / (T * fs)
    )
    tt = torch.as_tensor(times, dtype=torch.float64, device=spec.device)
    cycles = torch.remainder(k[:, None] * (tt[None, :] / T), 1.0)
    phasor = torch.polar(torch.ones_like(cycles), 2 * math.pi * cycles)
    xs = spec[kmin : kmax + 1].to(torch.complex128)
    return (w.to(torch.complex128) * xs[None, :]) @ phasor


def _refine(spec, tiling: QTiling, t, f, q, dt, level):
    """Maximise the exact tile energy around (t s, f Hz, q); returns (t, f, q, Z, phase)."""
    T, fs = tiling.duration, tiling.sample_rate
    qlo, qhi = tiling.qrange
    fmin, fmax_all = tiling.frange
    dlnf = 2 * tiling.deltam / math.sqrt(2 + q**2)  # row spacing in ln f
    nplanes = len(tiling.planes)
    dlnq = math.log(qhi / qlo) / nplanes if nplanes > 1 or qhi > qlo else 0.0
    grid7 = np.linspace(-1, 1, 7)
    grid9 = np.linspace(-1, 1, 9)
    best_c = None
    for _ in range(4):
        qs = np.clip(q * np.exp(grid7 * dlnq), qlo, qhi)
        ff = f * np.exp(grid7 * dlnf)
        qq, fff = np.meshgrid(qs, ff, indexing="ij")
        qq, fff = qq.ravel(), fff.ravel()
        fff = np.clip(fff, fmin, np.minimum(fs / 2 / (1 + SQRT11 / qq), fmax_all))
        c = _tile_coefficients(spec, T, fs, fff, qq, [t])[:, 0]
        i = int((c.real**2 + c.imag**2).argmax())
        f, q = float(fff[i]), float(qq[i])
        tt = t + grid9 * dt
        c = _tile_coefficients(spec, T, fs, np.array([f]), np.array([q]), tt)[0]
        j = int((c.real**2 + c.imag**2).argmax())
        t, best_c = float(tt[j]), c[j]
        dlnf, dlnq, dt = dlnf / 2.5, dlnq / 2.5, dt / 2.5
    energy = float(best_c.real**2 + best_c.imag**2)
    return t, f, q, energy / level, float(torch.angle(best_c))


# -- the finder -----------------------------------------------------------------------------------


def _as_block(block):
    if not (hasattr(block, "data") and hasattr(block, "t0_ns") and hasattr(block, "channels")):
        raise GwtwinError(
            f"find_triggers expects a gwtwin.data.Block, found {type(block).__name__}"
        )
    bad = block.nonfinite() if hasattr(block, "nonfinite") else {}
    if bad:
        raise GwtwinError(
            f"input contains non-finite (NaN/inf) samples: {bad} (samples per channel); fill or "
            "gate gaps first"
        )
    return block


def _pad_duration(seg, edge, fs, qrange, frange, mismatch):
    """Padding (s) each side of a window so the longest tile (``q_max / (2 f_min)``) fits."""
    q_max = max(qtiling(1e6, 1e6, qrange, (0, math.inf), mismatch).qs)  # Qs need no duration
    if float(frange[0]) > 0:
        return float(math.ceil(q_max / (2 * float(frange[0]))))
    pad = 0.0
    for _ in range(8):  # default f_min = 50 q_max / (2 pi L) depends on the window length L
        length = seg + 2 * (pad + edge)
        need = float(math.ceil(q_max / (2 * 50 * q_max / (2 * math.pi * length))))
        if need <= pad:
            break
        pad = need
    return pad


def _psd_at(psd, freqs_query, channel_index):
    """Interpolate a ``(frequencies, psd)`` pair (psd [F] or [channel, F]) at ``freqs_query``."""
    f, p = psd
    f = np.asarray(f.cpu() if isinstance(f, torch.Tensor) else f, dtype=np.float64)
    p = np.asarray(p.cpu() if isinstance(p, torch.Tensor) else p, dtype=np.float64)
    if p.ndim == 2:
        p = p[channel_index]
    return np.interp(freqs_query, f, p)


def find_triggers(
    block,
    *,
    qrange: Sequence[float] = DEFAULT_QRANGE,
    frange: Sequence[float] = DEFAULT_FRANGE,
    mismatch: float = DEFAULT_MISMATCH,
    snr_threshold: float = 5.5,
    cluster_window: float = 0.1,
    whiten: bool = True,
    fftlength: float = 2.0,
    fduration: float = 2.0,
    psd=None,
    segment_duration: float = 64.0,
    pad_duration: float | None = None,
    refine: bool = True,
    dtype: torch.dtype | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> Triggers:
    """Find clustered Q-tile triggers in every channel of a Block.

    Parameters
    ----------
    block : gwtwin.data.Block
        Data ``[channel, time]`` (raw if ``whiten=True``, already whitened otherwise).
    qrange, frange, mismatch
        The Q tiling (see :func:`gwtwin.signal.qtransform.qtiling`; Q, Hz, fractional energy).
        The duration that sets the default lowest frequency is the analysis window's.
    snr_threshold : float
        Lowest tile SNR kept (``sqrt(2 (Z - 1))``), default 5.5.
    cluster_window : float
        Largest gap between tiles of one cluster, s (default 0.1, Omicron's).
    whiten : bool
        Whiten each window with :func:`gwtwin.signal.whitening.whiten_block` first.
    fftlength, fduration : float
        Whitening PSD FFT length and filter duration, s. With whitening, ``fduration / 2`` s at
        each end of the Block are not analysed (``Triggers.segment`` says what was).
    psd : (frequencies, psd), optional
        One-sided PSD of the input (``[F]`` or ``[channel, F]``, units**2/Hz) used only for the
        ``amplitude`` column when ``whiten=False`` (default: each row's own noise level).
    segment_duration : float
        Core length of one analysis window, s; memory scales with it, not with the Block.
    pad_duration : float, optional
        Data each side of a core that is transformed but not reported, s; default
        ``ceil(q_max / (2 f_min))`` (gwpy's ``whitening_duration``, the longest tile).
    refine : bool
        Refine each trigger's time, frequency and Q (see the module docstring).

    Returns
    -------
    Triggers
        One table per channel (``TRIGGER_DTYPE``), sorted by time.
    """
    block = _as_block(block)
    fs = float(block.sample_rate)
    n_total = int(block.data.shape[-1])
    if snr_threshold <= 0:
        raise GwtwinError(f"snr_threshold must be > 0, found {snr_threshold}")
    if segment_duration <= 0:
        raise GwtwinError(f"segment_duration must be > 0 s, found {segment_duration}")
    edge = fduration / 2 if whiten else 0.0
    edge_size = int(round(edge * fs))
    if n_total - 2 * edge_size <= 0:
        raise GwtwinError(
            f"block of {n_total / fs:g} s is too short: whitening with fduration={fduration:g} s "
            f"discards {edge:g} s at each end"
        )
    if pad_duration is None:
        pad_duration = _pad_duration(segment_duration, edge, fs, qrange, frange, mismatch)
    seg_size = int(round(segment_duration * fs))
    pad_size = int(round(pad_duration * fs))
    win_size = seg_size + 2 * (pad_size + edge_size)
    if n_total <= win_size:
        win_size, seg_size = n_total, n_total - 2 * edge_size
    tiling = qtiling(win_size / fs, fs, qrange, frange, mismatch)
    zthr = float(energy_from_snr(snr_threshold))
    t0_whole, t0_frac = divmod(block.t0_ns, 1_000_000_000)
    t0_frac = t0_frac / 1e9

    nchan = len(block.channels)
    found: list[list[dict]] = [[] for _ in range(nchan)]
    dead: set[int] = set()
    core_start = edge_size
    while core_start < n_total - edge_size:
        core_end = min(core_start + seg_size, n_total - edge_size)
        w0 = min(max(core_start - pad_size - edge_size, 0), n_total - win_size)
        window = block.isel(w0, w0 + win_size)
        spectra = _analyse_window(
            window,
            tiling,
            whiten,
            fftlength,
            fduration,
            psd,
            dtype,
            max_memory,
            zthr,
            (core_start - w0) / fs,
            (core_end - w0) / fs,
            cluster_window,
            refine,
            dead,
        )
        for ci, rows in spectra.items():
            offset = (w0 / fs) + t0_frac
            for r in rows:
                for col in ("time", "tstart", "tend"):
                    r[col] = r[col] + offset
            found[ci].extend(rows)
        core_start = core_end

    for ci in sorted(dead):
        warnings.warn(
            f"channel {block.channels[ci]} is constant (zero variance) in part of the data; no "
            "triggers there",
            stacklevel=2,
        )
    tables = {}
    for ci, name in enumerate(block.channels):
        tables[name] = _merge(found[ci], cluster_window, t0_whole)
    span0 = block.t0_ns / 1e9
    segment = (span0 + edge_size / fs, span0 + (n_total - edge_size) / fs)
    params = {
        "qrange": [float(v) for v in qrange],
        "frange": [float(v) for v in tiling.frange],
        "mismatch": float(mismatch),
        "snr_threshold": float(snr_threshold),
        "cluster_window": float(cluster_window),
        "whiten": bool(whiten),
        "fftlength": float(fftlength),
        "fduration": float(fduration),
        "segment_duration": win_size / fs,
        "pad_duration": float(pad_duration),
        "sample_rate": fs,
    }
    return Triggers(tables, segment, params)


def _merge(rows: list[dict], window: float, t0_whole: int) -> np.ndarray:
    """Merge per-window clusters across window boundaries; add the whole GPS seconds."""
    out = np.zeros(0, dtype=TRIGGER_DTYPE)
    if not rows:
        return out
    tiles = {c: np.array([r[c] for r in rows], dtype=np.float64) for c in TRIGGER_COLUMNS}
    ids = cluster_tiles(tiles["tstart"], tiles["tend"], window)
    loudest, ext = _reduce_clusters(tiles, ids, "snr")
    out = np.zeros(len(loudest), dtype=TRIGGER_DTYPE)
    for c in TRIGGER_COLUMNS:
        out[c] = tiles[c][loudest]
    for c in ("tstart", "tend", "fstart", "fend"):
        out[c] = ext[c]
    for c in ("time", "tstart", "tend"):
        out[c] += t0_whole
    return out[np.argsort(out["time"], kind="stable")]


def _analyse_window(
    window,
    tiling,
    whiten,
    fftlength,
    fduration,
    psd,
    dtype,
    max_memory,
    zthr,
    core0,
    core1,
    cluster_window,
    refine,
    dead,
):
    """Clusters (as dicts, times relative to the window start) per channel index."""
    fs, T = tiling.sample_rate, tiling.duration
    raw = window.data
    if whiten:
        from gwtwin.signal.spectral import psd_block
        from gwtwin.signal.whitening import whiten_block

        # one PSD per window, for the whitening and for the amplitude column
        est = psd_block(window, fftlength)
        data = whiten_block(window, psd=est, fduration=fduration).data
        psd_pair = (est.freqs, est.values)
    else:
        data = raw
        psd_pair = psd
    data = torch.as_tensor(data)
    sd = data.to(torch.float64).std(dim=-1)
    live = [i for i in range(data.shape[0]) if float(sd[i]) > 0]
    dead.update(i for i in range(data.shape[0]) if float(sd[i]) <= 0)
    if not live:
        return {}
    xc, scale, _ = _condition(data[live], dtype)
    spec = _spectrum(xc)

    # 1. tiles above threshold, with centres in the core
    cols = {k: [] for k in ("b", "t", "f", "q", "z", "dt", "level")}
    for chunk in _plan(tiling, len(live), 1, spec.real.element_size(), max_memory):
        e = _energy(_compute(chunk, spec, tiling))
        level = _noise_level(e, "median")  # [b, r, 1]: noise mean of the raw energies
        hit = torch.nonzero(e >= level * zthr)
        if hit.numel() == 0:
            continue
        b, j, m = (hit[:, i].cpu().numpy() for i in range(3))
        dt = T / chunk.ntiles
        t = m * dt
        keep = (t >= core0) & (t < core1)
        if not keep.any():
            continue
        b, j, m, t = b[keep], j[keep], m[keep], t[keep]
        plane = tiling.planes[chunk.plane]
        lv = level[b, j, 0].cpu().numpy().astype(np.float64)
        cols["b"].append(b)
        cols["t"].append(t)
        cols["f"].append(plane.frequencies[chunk.rows[j]])
        cols["q"].append(np.full(b.size, plane.q))
        cols["z"].append(e[b, j, m].cpu().numpy().astype(np.float64) / lv)
        cols["dt"].append(np.full(b.size, dt))
        cols["level"].append(lv)
    if not cols["b"]:
        return {}
    tiles = {k: np.concatenate(v) for k, v in cols.items()}
    bw = 2 * math.sqrt(math.pi) * tiles["f"] / tiles["q"]
    tiles["tstart"] = tiles["t"] - tiles["dt"] / 2
    tiles["tend"] = tiles["t"] + tiles["dt"] / 2
    tiles["fstart"] = tiles["f"] - bw / 2
    tiles["fend"] = tiles["f"] + bw / 2

    # 2. cluster per channel, refine the loudest tile of each cluster
    out: dict[int, list[dict]] = {}
    spec64 = spec.to(torch.complex128)
    for bi, ci in enumerate(live):
        sel = tiles["b"] == bi
        if not sel.any():
            continue
        ch = {k: v[sel] for k, v in tiles.items()}
        ids = cluster_tiles(ch["tstart"], ch["tend"], cluster_window)
        loudest, ext = _reduce_clusters(ch, ids, "z")
        rows = []
        for k, i in enumerate(loudest):
            # gwpy's row "f" is centred one bin higher, at f + 1 / T
            t, f, q, z = ch["t"][i], ch["f"][i] + 1 / T, ch["q"][i], ch["z"][i]
            phase = math.nan
            if refine:
                t, f, q, z_ref, phase = _refine(
                    spec64[bi], tiling, t, f, q, ch["dt"][i], ch["level"][i]
                )
                z = max(z, z_ref)
            snr = float(snr_from_energy(z))
            if psd_pair is not None:
                s_f = float(_psd_at(psd_pair, f, ci))
            else:
                # the row's own noise level: white noise of variance v gives a mean raw tile
                # energy of 8 v / (N^2 fs) (window normalisation), i.e. S = 2 v / fs = level N^2 / 4
                s_f = ch["level"][i] * (T * fs) ** 2 / 4 * float(scale[bi]) ** 2
            rows.append(
                {
                    "time": t,
                    "frequency": f,
                    "q": q,
                    "snr": snr,
                    "amplitude": snr * math.sqrt(max(s_f, 0.0) / 2),
                    "phase": phase,
                    "tstart": min(ext["tstart"][k], t),
                    "tend": max(ext["tend"][k], t),
                    "fstart": min(ext["fstart"][k], f),
                    "fend": max(ext["fend"][k], f),
                }
            )
        out[ci] = rows
    return out


# -- files ----------------------------------------------------------------------------------------


def write_triggers(path: str | os.PathLike, triggers: Triggers, *, overwrite: bool = False):
    """Write triggers to HDF5: one dataset per channel, named by the channel, at the root.

    Each dataset is a compound table with the ``TRIGGER_COLUMNS`` (float64) and attributes
    ``channel``, ``segment`` (GPS s); the file holds ``format`` and ``params`` (JSON). Readable by
    :func:`read_triggers` and by ``EventTable.read(path, path=channel, format="hdf5")``.
    """
    import h5py

    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise GwtwinError(f"{path} exists; pass overwrite=True to replace it")
    with h5py.File(path, "w") as h5:
        h5.attrs["format"] = _FORMAT
        h5.attrs["segment"] = np.asarray(triggers.segment, dtype=np.float64)
        h5.attrs["params"] = json.dumps(triggers.params)
        for channel, table in triggers.tables.items():
            if "/" in channel:
                raise GwtwinError(f"channel name {channel!r} contains '/', not a valid HDF5 name")
            arr = np.asarray(table, dtype=TRIGGER_DTYPE)
            ds = h5.create_dataset(channel, data=arr, maxshape=(None,))
            ds.attrs["channel"] = channel


def read_triggers(path: str | os.PathLike, channels: Sequence[str] | None = None) -> Triggers:
    """Read a file written by :func:`write_triggers` (all channels, or those named)."""
    import h5py

    path = os.fspath(path)
    with h5py.File(path, "r") as h5:
        if h5.attrs.get("format") != _FORMAT:
            raise GwtwinError(
                f"{path} is not a gwtwin triggers file (format attribute "
                f"{h5.attrs.get('format')!r}, expected {_FORMAT!r})"
            )
        names = list(h5.keys()) if channels is None else list(channels)
        tables = {}
        for name in names:
            if name not in h5:
                raise GwtwinError(f"{path} has no triggers for {name!r}; it has {list(h5.keys())}")
            tables[name] = np.asarray(h5[name][()], dtype=TRIGGER_DTYPE)
        segment = tuple(float(v) for v in h5.attrs["segment"])
        params = json.loads(h5.attrs["params"])
    return Triggers(tables, segment, params)
