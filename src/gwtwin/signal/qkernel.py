"""The row kernel of the exact multi-Q transform: input conditioning, the data's spectrum, the
windowed inverse FFTs of rows (batched over channels and over rows of equal length, in
memory-bounded chunks), and the per-row noise normalisation. See :mod:`gwtwin.signal.qtransform`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gwtwin.errors import GwtwinError
from gwtwin.signal.qtiling import QTiling

LN2 = math.log(2.0)
_NORMS = ("median", "mean", "gwpy", None)
#: default working-memory budget of one chunk of rows, bytes
DEFAULT_MAX_MEMORY = 256 * 2**20


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


#: rows at least this long find their median by first bracketing it (see _median_row)
_BRACKET_MIN = 2**15


def _median_row(row: np.ndarray, k: tuple[int, int]):
    """The sorted values at ``k`` of a long 1-d ``row``, exactly, at a quarter of numpy's cost.

    They lie, all but surely, between the 47.5 % and 52.5 % points of a strided sample of
    ~16k values (5 sigma of the sample quantile's scatter either side); only the values between
    are partitioned, after counting those below. When they do not bracket ``k`` (structured
    data), the whole row is partitioned: the result is numpy's in every case.
    """
    n = len(row)
    sample = row[:: n // 2**14]
    m = len(sample)
    d = int(0.025 * m) + 1
    s = np.partition(sample, [m // 2 - d, m // 2 + d])
    lo, hi = s[m // 2 - d], s[m // 2 + d]
    below = np.count_nonzero(row < lo)
    mask = row >= lo
    mask &= row <= hi
    inside = row[mask]  # every value of sorted positions below .. below + len - 1
    j = (k[0] - below, k[1] - below)
    if j[0] < 0 or j[1] >= len(inside):
        inside, j = row, k
    part = np.partition(inside, j)
    return part[j[0]], part[j[1]]


def _median(e: torch.Tensor) -> torch.Tensor:
    """numpy's median over the last dimension: the mean of the two middle values when even.

    On the CPU the two middle values are numpy's own selection (:func:`_median_row` for long
    rows), several times faster than ``torch.median`` and a second pass for the upper value.
    Elsewhere the upper middle value is taken as the smallest value above the lower one, so ties
    at the median, which continuous noise never has, are not treated as numpy would.
    """
    n = e.shape[-1]
    if e.device.type == "cpu":
        a, k = e.detach().numpy(), ((n - 1) // 2, n // 2)
        if n < _BRACKET_MIN:
            part = np.partition(a, k, axis=-1)
            return torch.from_numpy(0.5 * (part[..., k[0]] + part[..., k[1]]))
        rows = a.reshape(-1, n)
        mid = np.array([_median_row(row, k) for row in rows], dtype=a.dtype).reshape(-1, 2)
        return torch.from_numpy((0.5 * (mid[:, 0] + mid[:, 1])).reshape(a.shape[:-1]))
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
    per-row numbers are kept: each row's window covers a contiguous slice of the spectrum, so it
    is applied slice by slice, and only the window weights (half of each symmetric window, a
    quarter of the tiles at most) are built, on the device, when the chunk is computed.
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

    @property
    def half(self) -> np.ndarray:
        """Half-width of each row's window, bins: window bin ``k`` runs over ``-half..half``."""
        return (self.windowsize - 1) // 2

    def windows(self, duration, sample_rate, device, real_dtype):
        """Bisquare weights of window bins ``k = 0..half`` of every row, concatenated.

        gwpy's ``QTile.get_window`` (times ``n / ntiles``: gwpy's inverse FFT is at length
        ``ntiles``, ours at ``n``). The window is even in ``k`` (``xf**2`` is the same for
        ``-k``), so half of it is all there is to build. Each row is
        ``norm (1 - s**2 k**2)**2 = (sqrt(norm) - sqrt(norm) s**2 k**2)**2`` with per-row
        ``s = q' / (T f)`` and ``norm`` taken in float64: from a shared ramp of ``k**2`` that is
        one fused multiply-add and one square in place, in the output dtype, per row (for
        float32 output the weights differ from gwpy's float64 ones by a few float32 ulps, far
        below the 1e-3 agreement of the energies).
        """
        T, fs, n, nt = duration, sample_rate, self.n, float(self.ntiles)
        counts = (self.half + 1).tolist()
        s2 = (self.qprime / (T * self.frequencies)) ** 2
        root = np.sqrt(
            nt / (T * fs) * np.sqrt(315 * self.qprime / (128 * self.frequencies)) * (n / nt)
        )
        out = torch.empty(int(sum(counts)), dtype=real_dtype, device=device)
        ramp2 = torch.arange(max(counts), dtype=torch.float64, device=device).square_()
        ramp2 = ramp2.to(real_dtype)
        start = 0
        for j, size in enumerate(counts):
            row = out[start : start + size]
            torch.add(out.new_tensor(root[j]), ramp2[:size], alpha=-root[j] * s2[j], out=row)
            row.square_()
            start += size
        return out


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
_WINDOW_CACHE: dict = {}
#: bytes of window weights kept between calls (all of them up to ~1800 s at 4096 Hz, one device)
WINDOW_CACHE_BYTES = 128 * 2**20


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
            # ~8 buffers of complex [batch, rows, n] live at once
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


def _windows(chunk: _Chunk, spec: torch.Tensor, tiling: QTiling) -> torch.Tensor:
    """The chunk's half windows, from a cache of at most ``WINDOW_CACHE_BYTES``."""
    key = (  # the whole tiling: two tilings of one duration and rate differ in their planes
        tiling.duration,
        tiling.sample_rate,
        tiling.qrange,
        tiling.frange,
        tiling.mismatch,
        chunk.plane,
        chunk.n,
        int(chunk.rows[0]),
        len(chunk.rows),
        str(spec.device),
        spec.real.dtype,
    )
    w = _WINDOW_CACHE.get(key)
    if w is None:
        w = chunk.windows(tiling.duration, tiling.sample_rate, spec.device, spec.real.dtype)
        size = w.numel() * w.element_size()
        if size <= WINDOW_CACHE_BYTES:
            if _WINDOW_CACHE.get("bytes", 0) + size > WINDOW_CACHE_BYTES:
                _WINDOW_CACHE.clear()
            _WINDOW_CACHE[key] = w
            _WINDOW_CACHE["bytes"] = _WINDOW_CACHE.get("bytes", 0) + size
    return w


def _compute(chunk: _Chunk, spec: torch.Tensor, tiling: QTiling) -> torch.Tensor:
    """Complex row values [B, r, n]; the tiles are ``[..., :: chunk.step]`` (gwpy's values).

    Row ``j``'s window bin ``k`` (``-half..half``) weights spectrum bin ``k + 1 + f T`` (gwpy's
    ``QTile.get_data_indices``; ``f`` is a multiple of ``1 / T``, so ``f T`` rounds to an integer
    and the window reads one contiguous slice) and, as gwpy pads the window to ``ntiles`` and
    ifftshifts it, lands at ``(k - 1) mod n`` of the row: ``k = 1..half`` at the start,
    ``k = -half..0`` at the end. Both pieces are written straight into the FFT buffer, whose
    rest is zeroed row by row.
    """
    b, r, n = spec.shape[0], len(chunk.rows), chunk.n
    w = _windows(chunk, spec, tiling)
    wrev = w.flip(0)  # row j's half window reversed: bins k = half..0
    total = w.shape[0]
    half = chunk.half.tolist()
    ends = np.cumsum(chunk.half + 1).tolist()
    centre = np.round(1 + chunk.frequencies * tiling.duration).astype(np.int64).tolist()
    buf = torch.empty((b, r, n), dtype=spec.dtype, device=spec.device)
    out, src = torch.view_as_real(buf), torch.view_as_real(spec)  # [..., 2]: re, im
    for j in range(r):
        h, c, z = half[j], centre[j], ends[j]
        a = z - h - 1
        buf[:, j, h : n - h - 1].zero_()  # the rest of the row is written below
        torch.mul(src[:, c + 1 : c + h + 1], w[a + 1 : z, None], out=out[:, j, :h])
        torch.mul(
            src[:, c - h : c + 1], wrev[total - z : total - a, None], out=out[:, j, n - h - 1 :]
        )
    return torch.fft.ifft(buf, dim=-1)


def _energy(c: torch.Tensor) -> torch.Tensor:
    """``|c|**2``, in two passes over ``c``."""
    re, im = c.real, c.imag
    return torch.mul(re, re).addcmul_(im, im)
