"""Tiles of one analysis window: threshold, Omicron's time clustering, peak refinement.

:func:`analyse_window` is the per-window step of :func:`gwtwin.signal.triggers.find_triggers`:
whiten the window, keep every tile of the exact multi-Q transform with ``snr >= threshold`` whose
centre falls in the window's core, cluster them in time (:func:`cluster_tiles`) and turn each
cluster into one trigger row (the loudest tile, refined by :func:`refine_peak`, with the
cluster's extent).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from gwtwin.errors import GwtwinError
from gwtwin.signal.qtransform import (
    SQRT11,
    QTiling,
    _compute,
    _condition,
    _energy,
    _noise_level,
    _plan,
    _spectrum,
    snr_from_energy,
)

__all__ = ["analyse_window", "cluster_tiles", "reduce_clusters", "refine_peak"]


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


def reduce_clusters(tiles: dict[str, np.ndarray], ids: np.ndarray, key: str):
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


def refine_peak(spec, tiling: QTiling, t, f, q, dt, level):
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


def _psd_at(psd, freqs_query, channel_index):
    """Interpolate a ``(frequencies, psd)`` pair (psd [F] or [channel, F]) at ``freqs_query``."""
    f, p = psd
    f = np.asarray(f.cpu() if isinstance(f, torch.Tensor) else f, dtype=np.float64)
    p = np.asarray(p.cpu() if isinstance(p, torch.Tensor) else p, dtype=np.float64)
    if p.ndim == 2:
        p = p[channel_index]
    return np.interp(freqs_query, f, p)


# -- one window ---------------------------------------------------------------------------------


def analyse_window(
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
        loudest, ext = reduce_clusters(ch, ids, "z")
        rows = []
        for k, i in enumerate(loudest):
            # gwpy's row "f" is centred one bin higher, at f + 1 / T
            t, f, q, z = ch["t"][i], ch["f"][i] + 1 / T, ch["q"][i], ch["z"][i]
            phase = math.nan
            if refine:
                t, f, q, z_ref, phase = refine_peak(
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
