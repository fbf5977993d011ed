"""A regular (time x frequency) image of the exact multi-Q transform that keeps short bursts.

See :func:`qtransform_image`; the tiles themselves are :func:`gwtwin.signal.qtransform.qtransform`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gwtwin.errors import GwtwinError
from gwtwin.signal.qkernel import (
    DEFAULT_MAX_MEMORY,
    _check_norm,
    _compute,
    _condition,
    _energy,
    _noise_level,
    _plan,
    _spectrum,
    _unpack,
)
from gwtwin.signal.qtiling import (
    DEFAULT_FRANGE,
    DEFAULT_MISMATCH,
    DEFAULT_QRANGE,
    QPlane,
    _pow2_upper,
    qtiling,
)

__all__ = ["QImage", "qtransform_image"]


@dataclass(frozen=True)
class QImage:
    """A Q-transform on a regular (time x frequency) grid.

    ``energy`` has shape ``[..., time, frequency]``: pixel ``(i, j)`` is the largest normalised
    energy of the tiles of the chosen plane(s) centred in ``[times[i], times[i] + tres)`` in the
    row nearest (in log frequency) to ``frequencies[j]``, or of any row centred in that pixel's
    frequency cell. ``q`` is the plane Q per batch element (``nan`` for ``plane="max"``).
    """

    energy: torch.Tensor
    times: np.ndarray
    frequencies: np.ndarray
    tres: float
    q: np.ndarray
    peak: torch.Tensor
    norm: str | None
    channels: list[str] | None = None

    def to_spectrogram(self, index: int = 0):
        """The image of one batch element as a :class:`gwpy.spectrogram.Spectrogram`."""
        from gwtwin.data._quiet import quiet_gwpy

        with quiet_gwpy():  # gwpy restyles matplotlib on first import
            from gwpy.spectrogram import Spectrogram

        data = self.energy.reshape(-1, *self.energy.shape[-2:])[index].cpu().numpy()
        name = self.channels[index] if self.channels else None
        out = Spectrogram(
            data, t0=self.times[0], dt=self.tres, frequencies=self.frequencies, name=name
        )
        out.q = float(np.asarray(self.q).reshape(-1)[index])
        return out


def _freq_maps(plane: QPlane, fout: np.ndarray, logf: bool):
    """(nearest row per output frequency, output cell per row or -1)."""
    lf = np.log(plane.frequencies)
    nearest = np.abs(np.log(fout)[:, None] - lf[None, :]).argmin(axis=1)
    axis = np.log(fout) if logf else fout
    mids = (axis[1:] + axis[:-1]) / 2
    cell = np.searchsorted(mids, lf if logf else plane.frequencies, side="right")
    lo = axis[0] - (axis[1] - axis[0]) / 2 if len(axis) > 1 else -np.inf
    hi = axis[-1] + (axis[-1] - axis[-2]) / 2 if len(axis) > 1 else np.inf
    rowax = lf if logf else plane.frequencies
    cell[(rowax < lo) | (rowax >= hi)] = -1
    return nearest, cell


def qtransform_image(
    x,
    sample_rate: float | None = None,
    *,
    qrange: Sequence[float] = DEFAULT_QRANGE,
    frange: Sequence[float] = DEFAULT_FRANGE,
    mismatch: float = DEFAULT_MISMATCH,
    norm: str | None = "median",
    t0: float = 0.0,
    outseg: Sequence[float] | None = None,
    tres: float | None = None,
    fres: float | None = None,
    nfreq: int | None = None,
    logf: bool = False,
    plane: str | float = "best",
    search: Sequence[float] | None = None,
    dtype: torch.dtype | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> QImage:
    """A regular time-frequency image of the multi-Q transform that keeps short bursts.

    Every row is computed at a time resolution at least as fine as ``tres`` (exactly, by a longer
    inverse FFT of the same windowed spectrum: tiles are band-limited, so this evaluates them
    between their centres rather than interpolating), and reduced to the output bins by MAX, so
    a 10 ms burst in 64 s keeps its peak energy. Memory is linear in the data length (rows are
    processed in chunks of at most ``max_memory`` bytes).

    Parameters
    ----------
    x, sample_rate, qrange, frange, mismatch, norm, t0, dtype, max_memory
        As for :func:`qtransform`.
    outseg : (float, float), optional
        GPS ``[start, end)`` of the image, s; default the whole input.
    tres : float, optional
        Time bin, s; default ``|outseg| / 1000`` (gwpy's).
    fres : float, optional
        Linear frequency step, Hz (default 0.5 Hz, gwpy's); ignored if ``logf``.
    nfreq : int, optional
        Number of frequency bins (default 500 with ``logf``; overrides ``fres`` when given).
    logf : bool
        Log-spaced frequency axis.
    plane : "best", "max" or float
        ``"best"``: per batch element the plane with the loudest tile (within ``search``), like
        gwpy's ``q_scan``; ``"max"``: the pixel-wise maximum over all planes; a number: the plane
        with the nearest Q.
    search : (float, float), optional
        GPS segment in which the loudest tile picks the best plane; default the whole input.
    """
    norm = _check_norm(norm)
    if norm is None:
        raise GwtwinError("qtransform_image needs a normalised energy; norm=None is not allowed")
    x, sample_rate, t0, names = _unpack(x, sample_rate, t0)
    n_samp = x.shape[-1]
    duration = n_samp / sample_rate
    tiling = qtiling(duration, sample_rate, qrange, frange, mismatch)
    outseg = (t0, t0 + duration) if outseg is None else (float(outseg[0]), float(outseg[1]))
    if not outseg[1] > outseg[0]:
        raise GwtwinError(f"outseg must be (start, end) with end > start, found {outseg} s")
    tres = abs(outseg[1] - outseg[0]) / 1000.0 if tres is None else float(tres)
    if not tres > 0:
        raise GwtwinError(f"tres must be a positive number of seconds, found {tres}")
    fmin, fmax = tiling.frange
    if logf or nfreq is not None:
        count = 500 if nfreq is None else int(nfreq)
        fout = np.geomspace(fmin, fmax, count) if logf else np.linspace(fmin, fmax, count)
    else:
        fout = np.arange(fmin, fmax, 0.5 if fres is None else float(fres))
    times = np.arange(outseg[0], outseg[1], tres)
    nt, nf = len(times), len(fout)
    if plane not in ("best", "max"):
        try:
            target = float(plane)
        except (TypeError, ValueError):
            raise GwtwinError(f"plane must be 'best', 'max' or a Q, found {plane!r}") from None
        planes_wanted = {int(np.abs(np.log(tiling.qs / target)).argmin())}
    else:
        planes_wanted = set(range(len(tiling.planes)))

    xc, _, lead = _condition(x, dtype)
    spec = _spectrum(xc)
    b, dev = spec.shape[0], spec.device
    n_min = _pow2_upper(max(duration / tres, 1.0))
    real = spec.real.dtype
    offset = outseg[0] - t0
    rowimgs: dict[int, torch.Tensor] = {}  # per plane [b, rows, nt], normalised
    peaks: dict[int, torch.Tensor] = {}  # per plane [b], loudest raw tile (within search)
    bin_cache: dict[int, torch.Tensor] = {}
    for chunk in _plan(tiling, b, n_min, spec.real.element_size(), max_memory):
        ip = chunk.plane
        if ip not in planes_wanted:
            continue
        if ip not in rowimgs:
            rowimgs[ip] = torch.zeros((b, len(tiling.planes[ip]), nt), dtype=real, device=dev)
            peaks[ip] = torch.zeros(b, dtype=real, device=dev)
        energy = _energy(_compute(chunk, spec, tiling))  # [b, r, n], not yet normalised
        raw = energy[..., :: chunk.step]  # the tiles themselves
        level = _noise_level(raw, norm)  # [b, r, 1]
        if search is not None:
            tt = t0 + np.arange(chunk.ntiles) * (duration / chunk.ntiles)
            keep = (tt >= search[0]) & (tt < search[1])
            raw = raw[..., torch.from_numpy(keep).to(dev)]
        if raw.shape[-1]:
            loudest = (raw.amax(dim=-1, keepdim=True) / level).amax(dim=(1, 2))
            peaks[ip] = torch.maximum(peaks[ip], loudest)
        if chunk.n not in bin_cache:
            tt = np.arange(chunk.n) * (duration / chunk.n) - offset
            bins = np.floor(tt / tres).astype(np.int64)
            bins[(bins < 0) | (bins >= nt)] = nt  # a dump bin, dropped below
            bin_cache[chunk.n] = torch.from_numpy(bins).to(dev)
        bins = bin_cache[chunk.n]
        r = len(chunk.rows)
        red = torch.zeros((b, r, nt + 1), dtype=real, device=dev)
        red.scatter_reduce_(-1, bins.expand(b, r, -1), energy, "amax", include_self=True)
        rowimgs[ip][:, chunk.rows[0] : chunk.rows[-1] + 1, :] = red[..., :nt] / level
        del energy, red

    def plane_image(ip, sel):
        """[len(sel), nt, nf] image of plane ``ip`` for batch elements ``sel``."""
        rows = rowimgs[ip][sel]
        nearest, cell = _freq_maps(tiling.planes[ip], fout, logf)
        img = rows[:, torch.from_numpy(nearest).to(dev), :]  # [s, nf, nt]
        ok = cell >= 0
        if ok.any():
            idx = torch.from_numpy(cell[ok]).to(dev)[None, :, None].expand(len(sel), -1, nt)
            img.scatter_reduce_(1, idx, rows[:, torch.from_numpy(ok).to(dev), :], "amax")
        return img.transpose(1, 2)

    order = sorted(rowimgs)
    peak_all = torch.stack([peaks[ip] for ip in order])  # [planes, b]
    everyone = torch.arange(b, device=dev)
    if plane == "max":
        image = plane_image(order[0], everyone)
        for ip in order[1:]:
            image = torch.maximum(image, plane_image(ip, everyone))
        best_peak, best_q = peak_all.amax(dim=0), np.full(b, np.nan)
    else:
        best_peak, which = peak_all.max(dim=0)
        which = which.cpu().numpy()
        best_q = np.array([tiling.planes[order[w]].q for w in which])
        image = torch.empty((b, nt, nf), dtype=real, device=dev)
        for w in np.unique(which):
            sel = torch.from_numpy(np.flatnonzero(which == w)).to(dev)
            image[sel] = plane_image(order[w], sel)
    return QImage(
        energy=image.reshape(*lead, nt, nf),
        times=times,
        frequencies=fout,
        tres=tres,
        q=best_q.reshape(lead) if lead else best_q[0],
        peak=best_peak.reshape(lead),
        norm=norm,
        channels=names,
    )
