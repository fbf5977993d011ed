"""The local check of the subtraction decision (:mod:`gwtwin.infer.decide`): tiles inside kept
units where the subtraction, as decided, raises the whitened strain's power significantly.

A unit is kept as a whole, and a kept unit can hold more than one thing: the steady line the
pooling kept it for, a glitch the model gets right, and next to it one it gets wrong.
:func:`local_mask` finds the tiles (half, quarter and eighth of a unit) of the last kind, so
that :func:`gwtwin.infer.decide.decide_span` withholds the band there.
"""

from __future__ import annotations

import numpy as np


def local_mask(
    gp: np.ndarray,
    r: np.ndarray,
    sigma: np.ndarray,
    size: int,
    margin: float,
    ramp: int,
    first_bin: int = 0,
    negligible: float = 1e-2,
) -> np.ndarray:
    """The local check's mask (1: keep) over whole units of one band.

    ``gp`` is the band's prediction with the unit decision's gain applied and ``r`` the band's
    whitened strain (NaN where unknown), both starting at a unit boundary; ``sigma`` the
    whitened strain's robust white level in each unit (broadband: a band's own level is
    raised by any line in it).  Every tile of half, a quarter and an eighth of a unit, on the
    unit grid and shifted by half a tile, with ``|gp|^2 > negligible`` over it, is tested as a
    unit is, ``D = 2 <r, gp> - |gp|^2`` against ``2 sigma |gp|`` (``sigma`` of the unit
    holding the tile's centre), with both sums taken over the frequencies from ``first_bin``
    of the tile's spectrum on the unit's grid: below the whitening's high-pass, whitened
    strain holds no noise to compare with, and a short tile's spectral leakage lands there.
    Where ``D <= -margin 2 sigma |gp|`` the mask is 0 over the tile, with half-Hann ramps of
    ``min(ramp, unit / 2)`` samples outside it."""
    n = gp.size
    mask = np.ones(n)
    c2 = np.concatenate([[0.0], np.cumsum(gp**2)])
    finite = np.isfinite(r)
    r0 = np.where(finite, r, 0.0)
    bad = np.concatenate([[0], np.cumsum(~finite)])  # a tile with an unknown sample: untested
    weights = _rfft_weights(size) / size
    weights[:first_bin] = 0.0
    for m in (1, 2, 3):
        s = size >> m
        if s << m != size or s < 4:
            break
        for off in (0, s // 2):
            a = np.arange(off, n - s + 1, s)
            b = a + s
            sig = sigma[np.minimum((a + s // 2) // size, sigma.size - 1)]
            test = (bad[b] == bad[a]) & (c2[b] - c2[a] > negligible) & np.isfinite(sig)
            if not test.any():
                continue
            at, bt = a[test], b[test]
            idx = at[:, None] + np.arange(s)[None]
            big_p = np.fft.rfft(gp[idx], n=size, axis=1)
            big_r = np.fft.rfft(r0[idx], n=size, axis=1)
            norm2 = np.sum(weights * np.abs(big_p) ** 2, axis=1)
            cross = np.sum(weights * (big_r * big_p.conj()).real, axis=1)
            hit = 2.0 * cross - norm2 <= -margin * 2.0 * sig[test] * np.sqrt(norm2)
            hit &= norm2 > negligible
            rr = min(ramp, size // 2)
            fall = 0.5 + 0.5 * np.cos(np.pi * (np.arange(rr) + 0.5) / rr) if rr else None
            for t0, t1 in zip(at[hit], bt[hit], strict=True):
                mask[t0:t1] = 0.0
                if rr:
                    l0 = max(t0 - rr, 0)
                    mask[l0:t0] = np.minimum(mask[l0:t0], fall[rr - (t0 - l0) :])
                    r1 = min(t1 + rr, n)
                    mask[t1:r1] = np.minimum(mask[t1:r1], fall[::-1][: r1 - t1])
    return mask


def _rfft_weights(size: int) -> np.ndarray:
    """Each rfft bin's count in a sum over the full spectrum (2 but for 0 and Nyquist)."""
    w = np.full(size // 2 + 1, 2.0)
    w[0] = 1.0
    if size % 2 == 0:
        w[-1] = 1.0
    return w
