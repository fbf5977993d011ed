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

Steps 2-4 for one window are :mod:`gwtwin.signal.triggers_tiles`; the table and its file are
:mod:`gwtwin.signal.triggers_table`. This module is the driver: windows, padding, the checks on
the segment's length, and the merge across windows.

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

Every trigger lies in the analysed segment (``Triggers.segment``): a tile whose centre is in the
segment but near its edge extends past it by up to half its duration, and refinement may move
the peak time by up to ~1.7 tile durations, into data that were not analysed (the whitening
edges, or no data at all); ``time``, ``tstart`` and ``tend`` are clipped to the segment.

Segment length: a Block shorter than one analysis window is transformed as one window of its own
length ``T``, which allows frequencies from ``50 q_max / (2 pi T)`` Hz
(:func:`gwtwin.signal.qtiling.frequency_limits`); with whitening it must also be longer than
``fduration`` and at least ``fftlength``. A Block that cannot meet ``frange`` raises
:class:`SegmentTooShortError`, whose message gives the range it does support.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from gwtwin.errors import GwtwinError
from gwtwin.signal.qtiling import frequency_limits, plane_qs
from gwtwin.signal.qtransform import (
    DEFAULT_FRANGE,
    DEFAULT_MAX_MEMORY,
    DEFAULT_MISMATCH,
    DEFAULT_QRANGE,
    energy_from_snr,
    qtiling,
)
from gwtwin.signal.triggers_table import (
    TRIGGER_COLUMNS,
    TRIGGER_DTYPE,
    Triggers,
    read_triggers,
    write_triggers,
)
from gwtwin.signal.triggers_tiles import analyse_window, cluster_tiles, reduce_clusters

__all__ = [
    "TRIGGER_COLUMNS",
    "TRIGGER_DTYPE",
    "SegmentTooShortError",
    "Triggers",
    "cluster_tiles",
    "find_triggers",
    "read_triggers",
    "segment_too_short",
    "write_triggers",
]

_NS = 1_000_000_000


class SegmentTooShortError(GwtwinError):
    """A segment of data is too short for the Q-transform and whitening settings asked for.

    The message names the segment, the settings, and the frequency range (and Q) that a segment
    of that length does support.
    """


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
    q_max = float(max(plane_qs(qrange, mismatch)))
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


def _gps_text(ns: int) -> str:
    whole, frac = divmod(int(ns), _NS)
    return str(whole) if frac == 0 else f"{whole}.{frac:09d}".rstrip("0")


def segment_too_short(
    block,
    *,
    qrange: Sequence[float] = DEFAULT_QRANGE,
    frange: Sequence[float] = DEFAULT_FRANGE,
    mismatch: float = DEFAULT_MISMATCH,
    whiten: bool = True,
    fftlength: float = 2.0,
    fduration: float = 2.0,
    window_duration: float | None = None,
) -> str | None:
    """Why :func:`find_triggers` cannot analyse ``block`` with these settings, or None if it can.

    The rules are those :func:`find_triggers` applies: whitening discards ``fduration / 2`` s at
    each end and estimates its PSD from ``fftlength``-s FFTs of the window; a Block shorter than
    one analysis window is transformed as one window of its own length ``T``, whose tiling
    allows ``f >= 50 q_max / (2 pi T)`` at the highest plane's Q
    (:func:`gwtwin.signal.qtiling.frequency_limits`). ``window_duration`` (s) is the analysis
    window when the Block is longer than one (then only the ``fduration`` rule depends on the
    Block; the tiling is the settings' own business and :func:`qtiling` checks it).
    """
    fs = float(block.sample_rate)
    duration = block.size / fs
    if block.size == 0:
        return f"segment at GPS {_gps_text(block.t0_ns)} holds no samples"
    lo, hi = (float(v) for v in frange)
    q_lo, q_hi = (float(v) for v in qrange)
    q_max = float(max(plane_qs(qrange, mismatch)))
    settings = f"frange ({lo:g}, {hi:g}) Hz with qrange ({q_lo:g}, {q_hi:g})"
    settings += f", fftlength {fftlength:g} s and fduration {fduration:g} s" if whiten else ""
    head = (
        f"segment {_gps_text(block.t0_ns)}-{_gps_text(block.end_ns)} ({duration:g} s) is too "
        f"short for {settings}"
    )
    shrunk = window_duration is None or duration <= window_duration
    T = duration if shrunk else float(window_duration)
    fmin, fmax = frequency_limits(T, fs, qrange, mismatch)
    top = min(fmax, hi)
    if fmin < top:
        band = (
            f"a {T:g} s window supports f >= {fmin:.4g} Hz at Q {q_max:.4g} "
            f"(50 q_max / (2 pi {T:g} s))"
        )
        q_fit = 2 * math.pi * T * lo / 50  # the highest plane Q whose tiling reaches lo
        if 0 < lo < fmin and q_fit >= q_lo:
            band += f", or down to {lo:g} Hz at Q <= {q_fit:.4g}"
    else:
        band = (
            f"a {T:g} s window supports no frequency at Q {q_max:.4g}: its lowest, "
            f"50 q_max / (2 pi {T:g} s) = {fmin:.4g} Hz, is not below the highest, {top:.4g} Hz"
        )
    if whiten and block.size <= 2 * round(fduration / 2 * fs):
        return (
            f"{head}: whitening discards fduration / 2 = {fduration / 2:g} s at each end, leaving "
            f"no data to analyse; it needs more than {fduration:g} s (unwhitened, {band})"
        )
    if not shrunk:
        return None
    if whiten and T < fftlength:
        return (
            f"{head}: whitening estimates the PSD from {fftlength:g} s FFTs, longer than the "
            f"segment; give at least {fftlength:g} s or a shorter fftlength (then {band})"
        )
    f_need = lo if lo > 0 else top
    need = 50 * q_max / (2 * math.pi * f_need)
    if fmin >= top or (lo > 0 and lo < fmin * (1 - 1e-9)):
        return f"{head}: {band}; {f_need:.4g} Hz at Q {q_max:.4g} needs at least {need:.4g} s"
    return None


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
        One table per channel (``TRIGGER_DTYPE``), sorted by time; every ``time``, ``tstart``
        and ``tend`` lies in ``Triggers.segment``.

    Raises
    ------
    SegmentTooShortError
        The Block is too short for these settings (:func:`segment_too_short` says why, and what
        frequency range it does support).
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
    if pad_duration is None:
        pad_duration = _pad_duration(segment_duration, edge, fs, qrange, frange, mismatch)
    seg_size = int(round(segment_duration * fs))
    pad_size = int(round(pad_duration * fs))
    win_size = seg_size + 2 * (pad_size + edge_size)
    short = n_total - 2 * edge_size <= 0 or n_total <= win_size
    reason = segment_too_short(
        block,
        qrange=qrange,
        frange=frange,
        mismatch=mismatch,
        whiten=whiten,
        fftlength=fftlength,
        fduration=fduration,
        window_duration=None if short else win_size / fs,
    )
    if reason is not None:
        raise SegmentTooShortError(reason)
    if n_total <= win_size:
        win_size, seg_size = n_total, n_total - 2 * edge_size
    tiling = qtiling(win_size / fs, fs, qrange, frange, mismatch)
    zthr = float(energy_from_snr(snr_threshold))
    t0_whole, t0_frac = divmod(block.t0_ns, _NS)
    t0_frac = t0_frac / 1e9

    nchan = len(block.channels)
    found: list[list[dict]] = [[] for _ in range(nchan)]
    dead: set[int] = set()
    core_start = edge_size
    while core_start < n_total - edge_size:
        core_end = min(core_start + seg_size, n_total - edge_size)
        w0 = min(max(core_start - pad_size - edge_size, 0), n_total - win_size)
        window = block.isel(w0, w0 + win_size)
        spectra = analyse_window(
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
    # the analysed segment, exact to the ns, then as float GPS s (int / int rounds once)
    seg0_ns = block.t0_ns + round(edge_size * _NS / fs)
    seg1_ns = block.t0_ns + round((n_total - edge_size) * _NS / fs)
    segment = (seg0_ns / _NS, seg1_ns / _NS)
    tables = {}
    for ci, name in enumerate(block.channels):
        tables[name] = _merge(found[ci], cluster_window, t0_whole, segment)
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


def _merge(rows: list[dict], window: float, t0_whole: int, segment) -> np.ndarray:
    """Merge per-window clusters across window boundaries; add the whole GPS seconds.

    ``time``, ``tstart`` and ``tend`` are clipped to the analysed ``segment`` (GPS s): an edge
    tile reaches half its duration past it, and refinement can move the peak past it.
    """
    out = np.zeros(0, dtype=TRIGGER_DTYPE)
    if not rows:
        return out
    tiles = {c: np.array([r[c] for r in rows], dtype=np.float64) for c in TRIGGER_COLUMNS}
    ids = cluster_tiles(tiles["tstart"], tiles["tend"], window)
    loudest, ext = reduce_clusters(tiles, ids, "snr")
    out = np.zeros(len(loudest), dtype=TRIGGER_DTYPE)
    for c in TRIGGER_COLUMNS:
        out[c] = tiles[c][loudest]
    for c in ("tstart", "tend", "fstart", "fend"):
        out[c] = ext[c]
    for c in ("time", "tstart", "tend"):
        out[c] = np.clip(out[c] + t0_whole, segment[0], segment[1])
    return out[np.argsort(out["time"], kind="stable")]
