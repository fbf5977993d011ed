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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gwtwin.errors import GwtwinError

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

DEFAULT_QRANGE = (4.0, 64.0)
DEFAULT_FRANGE = (0.0, math.inf)
DEFAULT_MISMATCH = 0.2
#: Omega's minimum number of statistically independent tiles per row, which sets the lowest
#: frequency a duration allows: ``fmin = 50 * qmax / (2 * pi * duration)``.
MIN_INDEPENDENT_TILES = 50
LN2 = math.log(2.0)
SQRT11 = 11 ** (1 / 2.0)
_NORMS = ("median", "mean", "gwpy", None)
#: default working-memory budget of one chunk of rows, bytes
DEFAULT_MAX_MEMORY = 256 * 2**20


def snr_from_energy(z):
    """SNR of a tile from its mean-normalised energy: ``sqrt(2 * (Z - 1))``, 0 below ``Z = 1``."""
    if isinstance(z, torch.Tensor):
        return torch.sqrt(torch.clamp(2.0 * (z - 1.0), min=0.0))
    return np.sqrt(np.clip(2.0 * (np.asarray(z, dtype=float) - 1.0), 0.0, None))


def energy_from_snr(snr):
    """Mean-normalised tile energy of an SNR: ``1 + snr**2 / 2``."""
    return 1.0 + np.asarray(snr, dtype=float) ** 2 / 2.0


# -- tiling (a port of gwpy's QTiling/QPlane/QTile arithmetic, operation for operation) ----------


def _pow2_upper(x: float) -> int:
    # gwpy.utils.round_to_power(x, base=2, which="upper"), same float ops
    return int(2 ** math.ceil(math.log(x, 2)))


@dataclass(frozen=True)
class QPlane:
    """One plane of constant Q: its frequency rows and their tiling.

    Attributes
    ----------
    q : float
        Quality factor of the plane.
    frequencies : numpy.ndarray
        Centre frequency of each row, Hz (gwpy's ``QPlane.frequencies``).
    ntiles : numpy.ndarray
        Number of tiles in each row (a power of two); row ``i`` has time resolution
        ``duration / ntiles[i]`` s.
    windowsize : numpy.ndarray
        Number of frequency bins in each row's bisquare window.
    """

    q: float
    frequencies: np.ndarray
    ntiles: np.ndarray
    windowsize: np.ndarray

    @property
    def qprime(self) -> float:
        return self.q / SQRT11

    @property
    def bandwidths(self) -> np.ndarray:
        """Bandwidth of each row, Hz: ``2 sqrt(pi) f / q`` (gwpy's ``QTile.bandwidth``)."""
        return 2 * math.pi ** (1 / 2.0) * self.frequencies / self.q

    def __len__(self) -> int:
        return len(self.frequencies)


@dataclass(frozen=True)
class QTiling:
    """The tiles of a multi-Q transform of ``duration`` s of data at ``sample_rate`` Hz."""

    duration: float
    sample_rate: float
    qrange: tuple[float, float]
    frange: tuple[float, float]
    mismatch: float
    planes: tuple[QPlane, ...]

    @property
    def qs(self) -> np.ndarray:
        return np.array([p.q for p in self.planes])

    @property
    def deltam(self) -> float:
        return 2 * (self.mismatch / 3.0) ** (1 / 2.0)

    @property
    def ntiles_total(self) -> int:
        return int(sum(int(p.ntiles.sum()) for p in self.planes))


def qtiling(
    duration: float,
    sample_rate: float,
    qrange: Sequence[float] = DEFAULT_QRANGE,
    frange: Sequence[float] = DEFAULT_FRANGE,
    mismatch: float = DEFAULT_MISMATCH,
) -> QTiling:
    """Build gwpy's tiling for ``duration`` s at ``sample_rate`` Hz, validating every limit.

    Parameters
    ----------
    duration : float
        Length of the data to transform, s.
    sample_rate : float
        Sample rate, Hz.
    qrange : (float, float)
        Lowest and highest Q. The lowest must be at least ``sqrt(11) = 3.317`` (below it the
        bisquare window reaches negative frequencies).
    frange : (float, float)
        Lowest and highest frequency, Hz. ``0`` picks the lowest allowed by the duration,
        ``50 q_max / (2 pi duration)`` (Omega's 50 independent tiles per row; ``q_max`` is the
        highest plane's Q); ``inf`` the highest allowed by the sample rate,
        ``(sample_rate / 2) / (1 + sqrt(11) / q_min)`` (``q_min`` the lowest plane's Q). A value
        given outside these limits is an error, not silently clipped.
    mismatch : float
        Maximum fractional energy mismatch between neighbouring tiles, in ``(0, 0.5]``.
    """
    duration, sample_rate = float(duration), float(sample_rate)
    qlo, qhi = (float(v) for v in qrange)
    mismatch = float(mismatch)
    if not (0 < mismatch <= 0.5):
        raise GwtwinError(f"mismatch must be in (0, 0.5], found {mismatch}")
    if not (math.isfinite(qlo) and math.isfinite(qhi)) or qlo > qhi:
        raise GwtwinError(f"qrange must be finite (low, high) with low <= high, found {qrange}")
    if qlo < SQRT11:
        raise GwtwinError(
            f"qrange low end must be >= sqrt(11) = {SQRT11:.4f} (the bisquare window would reach "
            f"negative frequencies), found {qlo}"
        )
    if not (duration > 0 and sample_rate > 0):
        raise GwtwinError(
            f"duration (s) and sample_rate (Hz) must be positive, found {duration}, {sample_rate}"
        )
    deltam = 2 * (mismatch / 3.0) ** (1 / 2.0)
    # gwpy QTiling._iter_qs
    cumum = math.log(qhi / qlo) / 2 ** (1 / 2.0)
    nplanes = int(max(math.ceil(cumum / deltam), 1))
    delta_q = cumum / nplanes
    qs = [qlo * math.exp(2 ** (1 / 2.0) * delta_q * (i + 0.5)) for i in range(nplanes)]
    # frequency limits (gwpy QTiling.__init__)
    fmin_allowed = MIN_INDEPENDENT_TILES * max(qs) / (2 * math.pi * duration)
    fmax_allowed = sample_rate / 2 / (1 + SQRT11 / min(qs))
    fmin, fmax = (float(v) for v in frange)
    nyq = sample_rate / 2
    if fmin_allowed >= fmax_allowed:
        raise GwtwinError(
            f"data too short: {duration:g} s at {sample_rate:g} Hz allows frequencies from "
            f"{fmin_allowed:.4g} Hz (50 * q_max / (2 pi duration), q_max = {max(qs):.4g}) to "
            f"{fmax_allowed:.4g} Hz, an empty range; give at least "
            f"{MIN_INDEPENDENT_TILES * max(qs) / (2 * math.pi * fmax_allowed):.4g} s or lower "
            "the Q range"
        )
    if fmin == 0:
        fmin = fmin_allowed
    elif fmin < fmin_allowed * (1 - 1e-9):
        raise GwtwinError(
            f"frange low end {fmin:g} Hz is below the lowest frequency {fmin_allowed:.4g} Hz that "
            f"{duration:g} s of data allow at q_max = {max(qs):.4g} (50 * q_max / (2 pi "
            "duration)); give more data, a lower Q, or a higher frange low end"
        )
    if math.isinf(fmax):
        fmax = fmax_allowed
    elif fmax > fmax_allowed * (1 + 1e-9):
        raise GwtwinError(
            f"frange high end {fmax:g} Hz is above the highest frequency {fmax_allowed:.4g} Hz "
            f"allowed at {sample_rate:g} Hz for q_min = {min(qs):.4g} (Nyquist {nyq:g} Hz / "
            f"(1 + sqrt(11) / q_min)); lower it or raise the sample rate"
        )
    if not (fmin < fmax):
        raise GwtwinError(f"frange must be (low, high) with low < high, found ({fmin}, {fmax}) Hz")

    planes = []
    for q in qs:
        # gwpy QPlane._iter_frequencies
        fcum_mismatch = math.log(fmax / fmin) * (2 + q**2) ** (1 / 2.0) / 2.0
        nfreq = int(max(1, math.ceil(fcum_mismatch / deltam)))
        fstep = fcum_mismatch / nfreq
        fstepmin = 1 / duration
        freqs: list[float] = []
        last = None
        for i in range(nfreq):
            this = (
                fmin
                * math.exp(2 / (2 + q**2) ** (1 / 2.0) * (i + 0.5) * fstep)
                // fstepmin
                * fstepmin
            )
            if this != last:
                freqs.append(this)
            last = this
        qprime = q / SQRT11
        ntiles = [_pow2_upper(duration * 2 * math.pi * f / q / deltam) for f in freqs]
        wsize = [2 * int(f / qprime * duration) + 1 for f in freqs]
        for f, n, w in zip(freqs, ntiles, wsize, strict=True):
            if w > n or f <= 0:
                raise GwtwinError(
                    f"mismatch {mismatch} is too coarse for Q = {q:.4g} at {f:.4g} Hz: the window "
                    f"({w} bins) does not fit the row's {n} tiles; lower the mismatch"
                )
        planes.append(
            QPlane(
                q=q,
                frequencies=np.array(freqs, dtype=np.float64),
                ntiles=np.array(ntiles, dtype=np.int64),
                windowsize=np.array(wsize, dtype=np.int64),
            )
        )
    return QTiling(duration, sample_rate, (qlo, qhi), (fmin, fmax), mismatch, tuple(planes))


# -- input conditioning ---------------------------------------------------------------------------


def _unpack(x, sample_rate, t0):
    """Accept a tensor ``[..., time]`` or a Block; return (tensor, rate, t0 s, channel names)."""
    names = None
    if hasattr(x, "channels") and hasattr(x, "t0_ns"):  # gwtwin.data.Block
        if sample_rate is not None and float(sample_rate) != float(x.sample_rate):
            raise GwtwinError(
                f"sample_rate {sample_rate} Hz disagrees with the Block's {x.sample_rate} Hz"
            )
        sample_rate, names = x.sample_rate, list(x.channels)
        t0 = x.t0_ns // 1_000_000_000 + (x.t0_ns % 1_000_000_000) / 1e9
        x = x.data
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if sample_rate is None:
        raise GwtwinError("sample_rate (Hz) is required for a tensor input")
    if x.ndim < 1 or x.shape[-1] < 2:
        raise GwtwinError(f"expected data shaped [..., time] with >= 2 samples, found {x.shape}")
    if not (x.is_floating_point()):
        x = x.to(torch.float64)
    return x, float(sample_rate), float(t0), names


def _condition(x: torch.Tensor, dtype: torch.dtype | None):
    """Flatten to [batch, time], check finiteness, centre and scale each row to unit variance.

    Returns (conditioned tensor in the compute dtype, float64 scale per row).
    """
    lead = tuple(x.shape[:-1])
    x2 = x.reshape(-1, x.shape[-1])
    finite = torch.isfinite(x2)
    if not bool(finite.all()):
        bad = (~finite).sum(dim=-1)
        rows = torch.nonzero(bad).flatten().tolist()
        raise GwtwinError(
            f"input contains {int(bad.sum())} non-finite (NaN/inf) samples, in batch rows "
            f"{rows[:10]}{' ...' if len(rows) > 10 else ''}; fill or gate gaps first"
        )
    if dtype is None:
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    x64 = x2.to(torch.float64)
    mean = x64.mean(dim=-1, keepdim=True)
    scale = (x64 - mean).square().mean(dim=-1, keepdim=True).sqrt()
    if bool((scale == 0).any()):
        rows = torch.nonzero(scale.flatten() == 0).flatten().tolist()
        raise GwtwinError(f"input has zero variance (constant data) in batch rows {rows[:10]}")
    xc = ((x64 - mean) / scale).to(dtype)
    return xc, scale.flatten(), lead


def _spectrum(xc: torch.Tensor) -> torch.Tensor:
    """gwpy's ``TimeSeries.fft``: rfft / N with non-DC bins doubled; two zero bins appended so
    window indices that reach one past Nyquist (gwpy would raise) read zero."""
    n = xc.shape[-1]
    spec = torch.fft.rfft(xc, dim=-1) / n
    spec[..., 1:] *= 2
    return torch.nn.functional.pad(spec, (0, 2))


def _median(e: torch.Tensor) -> torch.Tensor:
    """numpy's median over the last dimension: the mean of the two middle values when even.

    (The upper middle value is taken as the smallest value above the lower one, so ties at the
    median, which continuous noise never has, are not treated as numpy would.)
    """
    n = e.shape[-1]
    lower = torch.median(e, dim=-1).values  # torch gives the lower middle value
    if n % 2:
        return lower
    upper = e.masked_fill(e <= lower.unsqueeze(-1), math.inf).amin(dim=-1)
    return 0.5 * (lower + torch.where(torch.isinf(upper), lower, upper))


def _noise_level(e_raw: torch.Tensor, norm) -> torch.Tensor:
    """Per-row divisor of the energies for ``norm`` (shape [..., 1])."""
    if norm == "median":
        return _median(e_raw).unsqueeze(-1) / LN2
    if norm == "gwpy":
        return _median(e_raw).unsqueeze(-1)
    if norm == "mean":
        return e_raw.mean(dim=-1, keepdim=True)
    return torch.ones_like(e_raw[..., :1])


def _check_norm(norm):
    if norm is False:
        return None
    if norm is True:
        return "median"
    if norm not in _NORMS:
        raise GwtwinError(f"norm must be one of {_NORMS}, found {norm!r}")
    return norm


# -- the row kernel -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Chunk:
    """Rows of one plane with equal ``ntiles``, computed together at inverse-FFT length ``n``.

    ``n >= ntiles``; the tiles are every ``n // ntiles``-th value of the length-``n`` row. Only
    per-row numbers are kept: the window tables (one entry per frequency bin of every window,
    as many as half the tiles) are built on the device when the chunk is computed, so memory
    stays within the chunk budget for any data length.
    """

    plane: int
    rows: np.ndarray  # row indices within the plane
    n: int
    ntiles: int
    qprime: float
    frequencies: np.ndarray  # [r] Hz
    windowsize: np.ndarray  # [r]

    @property
    def step(self) -> int:
        return self.n // self.ntiles

    def tables(self, duration, sample_rate, device, real_dtype):
        """(spectrum bin, window weight, flat destination in the [r, n] buffer) per entry.

        The vectorised form of gwpy's ``QTile.get_window``/``get_data_indices``/``padding``.
        """
        T, fs, n, nt = duration, sample_rate, self.n, float(self.ntiles)
        ws = torch.as_tensor(self.windowsize, device=device)
        half = (ws - 1) // 2
        which = torch.repeat_interleave(torch.arange(len(ws), device=device), ws)
        starts = torch.cumsum(ws, 0) - ws
        k = torch.arange(int(self.windowsize.sum()), device=device) - (starts + half)[which]
        f = torch.as_tensor(self.frequencies, dtype=torch.float64, device=device)[which]
        kf = k.to(torch.float64)
        xf = kf / T * self.qprime / f
        norm = nt / (T * fs) * torch.sqrt(315 * self.qprime / (128 * f))
        # gwpy's inverse FFT is at length ntiles; ours at n >= ntiles, hence the factor n / nt
        weight = ((1 - xf**2) ** 2 * norm * (n / nt)).to(real_dtype)
        idx = torch.round(kf + 1 + f * T).to(torch.int64)
        # gwpy pads the window to ntiles and ifftshifts it: window bin k lands at (k - 1) mod n
        dest = which * n + torch.remainder(k - 1, n)
        return idx, weight, dest


def _chunk(tiling: QTiling, ip: int, rows: np.ndarray, n: int) -> _Chunk:
    plane = tiling.planes[ip]
    return _Chunk(
        ip,
        rows,
        n,
        int(plane.ntiles[rows[0]]),
        plane.qprime,
        plane.frequencies[rows],
        plane.windowsize[rows],
    )


_PLAN_CACHE: dict = {}
_TABLE_CACHE: dict = {}
#: bytes of window tables kept between calls (enough for ~128 s at 4096 Hz, one device)
TABLE_CACHE_BYTES = 128 * 2**20


def _plan(tiling: QTiling, batch: int, n_min: int, itemsize: int, max_memory: int):
    """Chunks of rows (per plane, equal ``ntiles``) that fit in ``max_memory`` bytes."""
    key = (
        tiling.duration,
        tiling.sample_rate,
        tiling.qrange,
        tiling.frange,
        tiling.mismatch,
        batch,
        n_min,
        itemsize,
        max_memory,
    )
    if key in _PLAN_CACHE:
        return _PLAN_CACHE[key]
    chunks = []
    for ip, plane in enumerate(tiling.planes):
        start = 0
        while start < len(plane):
            nt = int(plane.ntiles[start])
            n = max(nt, n_min)
            # ~8 buffers of complex [batch, rows, n] (or their int64 tables) live at once
            cap = max(1, int(max_memory // (8 * batch * n * 2 * itemsize)))
            stop = start
            while stop < len(plane) and plane.ntiles[stop] == nt and stop - start < cap:
                stop += 1
            chunks.append(_chunk(tiling, ip, np.arange(start, stop), n))
            start = stop
    if len(_PLAN_CACHE) > 8:
        _PLAN_CACHE.clear()
    _PLAN_CACHE[key] = chunks
    return chunks


def _compute(chunk: _Chunk, spec: torch.Tensor, tiling: QTiling) -> torch.Tensor:
    """Complex row values [B, r, n]; the tiles are ``[..., :: chunk.step]`` (gwpy's values)."""
    b, r = spec.shape[0], len(chunk.rows)
    key = (
        tiling.duration,
        tiling.sample_rate,
        chunk.plane,
        chunk.n,
        int(chunk.rows[0]),
        len(chunk.rows),
        str(spec.device),
        spec.real.dtype,
    )
    tables = _TABLE_CACHE.get(key)
    if tables is None:
        tables = chunk.tables(tiling.duration, tiling.sample_rate, spec.device, spec.real.dtype)
        size = sum(t.numel() * t.element_size() for t in tables)
        if size <= TABLE_CACHE_BYTES:
            # keep the tables of short spans (the common, repeated case) up to a byte budget
            if _TABLE_CACHE.get("bytes", 0) + size > TABLE_CACHE_BYTES:
                _TABLE_CACHE.clear()
            _TABLE_CACHE[key] = tables
            _TABLE_CACHE["bytes"] = _TABLE_CACHE.get("bytes", 0) + size
    idx, w, dest = tables
    buf = torch.zeros((b, r * chunk.n), dtype=spec.dtype, device=spec.device)
    buf.index_copy_(-1, dest, spec.index_select(-1, idx) * w)
    return torch.fft.ifft(buf.view(b, r, chunk.n), dim=-1)


def _energy(c: torch.Tensor) -> torch.Tensor:
    return c.real.square() + c.imag.square()


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


# -- regular image --------------------------------------------------------------------------------


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
