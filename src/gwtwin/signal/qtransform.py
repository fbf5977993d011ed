"""Exact, batched multi-Q transform on torch FFTs (the Omega/gwpy tiling, without interpolation).

The tiling is gwpy's (:mod:`gwpy.signal.qtransform`, itself Omega's): log-spaced Q planes,
log-spaced frequency rows per plane (rounded down to multiples of ``1 / duration``), a power of two
of tiles per row (its own time resolution), and a bisquare window in the frequency domain. Each row
is one inverse FFT of the windowed slice of the data's spectrum at the row's own length, batched
over channels and over rows of equal length, in memory-bounded chunks.

Normalised energy and SNR
-------------------------
A tile's raw energy is ``|c|**2`` for its complex coefficient ``c`` (gwpy's normalisation of the
window, so raw energies equal gwpy's). For Gaussian noise ``|c|**2`` is exponentially distributed,
so each row is normalised by an estimate of its noise *mean*:

- ``norm="median"`` (default, Omega's convention): ``Z = E / (median(E) / ln 2)``, robust to loud
  glitches; ``Z`` has mean 1 for Gaussian noise.
- ``norm="mean"``: ``Z = E / mean(E)``.
- ``norm="gwpy"``: ``E / median(E)``, exactly gwpy's ``q_scan``/``q_transform`` energies
  (``= Z / ln 2``, mean 1.44 for noise) — for comparison with gwpy only.
- ``norm=None``: the raw energy ``E`` in the input's units squared (float64).

For a signal of matched-filter SNR ``rho`` (against the one-sided noise PSD) that a tile matches,
``E[Z] = 1 + rho**2 / 2`` (the tile is a complex, i.e. two-quadrature, filter), hence the SNR
convention used throughout gwtwin::

    snr = sqrt(2 * (Z - 1))          (0 when Z < 1)

gwpy's ``QGram.peak``/``QGram.table`` use ``snr = sqrt(2 * E_gwpy)``: no ``- 1`` and, because its
``E`` is median- not mean-normalised, an SNR ``1 / sqrt(ln 2) = 1.20`` times too high for loud
signals. :func:`snr_from_energy` and :func:`energy_from_snr` convert.

Input conditioning (float32 safety)
-----------------------------------
The transform is meant for whitened data. Every channel is internally centred and scaled to unit
variance (statistics taken in float64) before the FFT; normalised energies are ratios of energies
of the same row, so this changes them not at all, and it keeps float32 arithmetic far from
underflow for strain-scale input (``|h| ~ 1e-21`` squares to ``1e-42``, below float32's smallest
normal number: that is where other implementations return NaN). Raw energies (``norm=None``) are
scaled back. The FFTs run in float32 for float32/float16 input and float64 for float64 input
(``dtype=`` overrides). Data that are not whitened still transform, but their energies are then
dominated by the PSD's shape: whiten first (:func:`gwtwin.signal.whitening.whiten`).

Modules
-------
The tiling is :mod:`gwtwin.signal.qtiling`, the row kernel (conditioning, windowed inverse FFTs,
normalisation) :mod:`gwtwin.signal.qkernel`, the regular image :mod:`gwtwin.signal.qimage`; their
public names (and the kernel helpers :mod:`gwtwin.signal.triggers` uses) are importable from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gwtwin.errors import GwtwinError
from gwtwin.signal.qimage import QImage, qtransform_image
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
from gwtwin.signal.qkernel import LN2 as LN2  # re-exported
from gwtwin.signal.qtiling import (
    DEFAULT_FRANGE,
    DEFAULT_MISMATCH,
    DEFAULT_QRANGE,
    QPlane,
    QTiling,
    qtiling,
)
from gwtwin.signal.qtiling import MIN_INDEPENDENT_TILES as MIN_INDEPENDENT_TILES  # re-exported
from gwtwin.signal.qtiling import SQRT11 as SQRT11  # re-exported

__all__ = [
    "DEFAULT_FRANGE",
    "DEFAULT_MISMATCH",
    "DEFAULT_QRANGE",
    "QImage",
    "QPlane",
    "QPlaneTiles",
    "QScan",
    "QTiling",
    "energy_from_snr",
    "qtiling",
    "qtransform",
    "qtransform_image",
    "snr_from_energy",
]


def snr_from_energy(z):
    """SNR of a tile from its mean-normalised energy: ``sqrt(2 * (Z - 1))``, 0 below ``Z = 1``."""
    if isinstance(z, torch.Tensor):
        return torch.sqrt(torch.clamp(2.0 * (z - 1.0), min=0.0))
    return np.sqrt(np.clip(2.0 * (np.asarray(z, dtype=float) - 1.0), 0.0, None))


def energy_from_snr(snr):
    """Mean-normalised tile energy of an SNR: ``1 + snr**2 / 2``."""
    return 1.0 + np.asarray(snr, dtype=float) ** 2 / 2.0


# -- raw tiles ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QPlaneTiles:
    """The exact tiles of one Q plane.

    ``energies[i]`` is row ``i``'s normalised energy, shape ``[..., ntiles[i]]`` (the input's
    leading dimensions); tile ``m`` of row ``i`` is centred at ``t0 + m * duration / ntiles[i]``.
    ``coefficients`` (if asked for) holds the complex tile values in gwpy's layout.
    """

    plane: QPlane
    energies: list[torch.Tensor]
    coefficients: list[torch.Tensor] | None = None

    @property
    def q(self) -> float:
        return self.plane.q

    @property
    def frequencies(self) -> np.ndarray:
        return self.plane.frequencies

    def peak(self, t0: float, duration: float, search=None) -> tuple[torch.Tensor, np.ndarray]:
        """Peak energy per batch element (within ``search``, GPS s) and its (time, frequency)."""
        best = None
        for i, e in enumerate(self.energies):
            n = e.shape[-1]
            times = t0 + np.arange(n) * (duration / n)
            if search is not None:
                keep = (times >= search[0]) & (times < search[1])
                if not keep.any():
                    continue
                e = e[..., torch.from_numpy(keep).to(e.device)]
                times = times[keep]
            val, arg = e.max(dim=-1)
            row = (val, times[arg.cpu().numpy()], np.full(arg.shape, self.frequencies[i]))
            if best is None:
                best = row
            else:
                better = (row[0] > best[0]).cpu().numpy()
                best = (
                    torch.maximum(best[0], row[0]),
                    np.where(better, row[1], best[1]),
                    np.where(better, row[2], best[2]),
                )
        if best is None:
            raise GwtwinError(f"search segment {search} holds no tiles")
        return best[0], np.stack([best[1], best[2]], axis=-1)


@dataclass(frozen=True)
class QScan:
    """All planes' exact tiles for one stretch of data (see :func:`qtransform`)."""

    tiling: QTiling
    planes: list[QPlaneTiles]
    t0: float
    norm: str | None
    channels: list[str] | None = None

    @property
    def duration(self) -> float:
        return self.tiling.duration

    def best_plane(self, search=None) -> np.ndarray:
        """Index of the plane with the loudest tile, per batch element (gwpy's ``q_scan``)."""
        peaks = torch.stack([p.peak(self.t0, self.duration, search)[0] for p in self.planes])
        return peaks.argmax(dim=0).cpu().numpy()


def qtransform(
    x,
    sample_rate: float | None = None,
    *,
    qrange: Sequence[float] = DEFAULT_QRANGE,
    frange: Sequence[float] = DEFAULT_FRANGE,
    mismatch: float = DEFAULT_MISMATCH,
    norm: str | None = "median",
    t0: float = 0.0,
    return_complex: bool = False,
    dtype: torch.dtype | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> QScan:
    """The exact multi-Q transform: every tile of every plane, no interpolation.

    Parameters
    ----------
    x : torch.Tensor, numpy.ndarray or gwtwin.data.Block
        Whitened data, shape ``[..., time]`` (a Block gives its rate, GPS start and names).
    sample_rate : float
        Sample rate, Hz (not needed for a Block).
    qrange, frange, mismatch
        The tiling, see :func:`qtiling` (Q, Hz, fractional energy).
    norm : {"median", "mean", "gwpy", None}
        Energy normalisation, see the module docstring; ``"median"``: mean 1 for noise.
    t0 : float
        GPS start of the data, s (for tile times).
    return_complex : bool
        Also keep the complex tile coefficients (in gwpy's layout, scaled to unit-variance input).
    dtype : torch.dtype, optional
        Real dtype of the FFTs (default: float64 for float64 input, else float32).
    max_memory : int
        Working-memory budget per chunk of rows, bytes.

    Returns
    -------
    QScan
        ``planes[p].energies[i]`` has shape ``[..., ntiles]``. Holds ~30x the input in memory for
        the default tiling: for long data use :func:`qtransform_image` or the trigger finder.
    """
    norm = _check_norm(norm)
    x, sample_rate, t0, names = _unpack(x, sample_rate, t0)
    n = x.shape[-1]
    tiling = qtiling(n / sample_rate, sample_rate, qrange, frange, mismatch)
    xc, scale, lead = _condition(x, dtype)
    spec = _spectrum(xc)
    energies = [[None] * len(p) for p in tiling.planes]
    coeffs = [[None] * len(p) for p in tiling.planes] if return_complex else None
    for chunk in _plan(tiling, spec.shape[0], 1, spec.real.element_size(), max_memory):
        c = _compute(chunk, spec, tiling)  # n == ntiles here
        e = _energy(c)
        if norm is None:
            e = e.to(torch.float64) * scale.to(e.device)[:, None, None] ** 2
        else:
            e /= _noise_level(e, norm)
        for j, r in enumerate(chunk.rows):
            energies[chunk.plane][r] = e[:, j].reshape(*lead, chunk.ntiles)
            if coeffs is not None:
                coeffs[chunk.plane][r] = c[:, j].reshape(*lead, chunk.ntiles)
    planes = [
        QPlaneTiles(p, energies[i], None if coeffs is None else coeffs[i])
        for i, p in enumerate(tiling.planes)
    ]
    return QScan(tiling, planes, t0, norm, names)
