"""Poisson significance of coincidences: ``S = -log10 P(Poisson(mu) >= n)``.

``P(Poisson(mu) >= n)`` is the regularised lower incomplete gamma function ``P(n, mu)``
(:func:`scipy.special.gammainc`), which hveto uses directly.  Far in the tail (``S`` of a few
hundred and more) ``gammainc`` underflows to 0; there this module evaluates the tail in log
space instead of falling back to the leading term as hveto does:

``P(X >= n) = pmf(n; mu) * M(1; n + 1; mu)``, with ``M`` Kummer's confluent hypergeometric
function (:func:`scipy.special.hyp1f1`), i.e. the sum over ``k >= 0`` of
``mu**k / ((n + 1) ... (n + k))``, a number between 1 and ``(n + 1) / (n + 1 - mu)`` whenever
``gammainc`` underflows (that needs ``mu`` well below ``n``), so nothing overflows.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammainc, gammaln, hyp1f1

from gwtwin.errors import GwtwinError

__all__ = ["expected_coincidences", "significance"]

_LN10 = math.log(10.0)
_TINY = 1e-280  # below this gammainc loses relative precision (subnormals near 1e-308)


def significance(n, mu):
    """Poisson significance ``-log10 P(Poisson(mu) >= n)`` of ``n`` coincidences.

    Parameters
    ----------
    n : int or array of int
        Number of coincidences found (>= 0).
    mu : float or array of float
        Number expected by chance (>= 0), broadcast against ``n``.

    Returns
    -------
    float or numpy.ndarray
        Significance (dimensionless, >= 0); 0 where ``n == 0``; ``inf`` where ``mu == 0`` and
        ``n > 0`` (a coincidence that chance cannot produce).
    """
    n_arr = np.asarray(n, dtype=np.float64)
    mu_arr = np.asarray(mu, dtype=np.float64)
    if np.any(n_arr < 0) or np.any(n_arr != np.floor(n_arr)):
        raise GwtwinError(f"n must be integers >= 0, found {n_arr[(n_arr < 0) | (n_arr % 1 > 0)]}")
    if np.any(~np.isfinite(mu_arr)) or np.any(mu_arr < 0):
        raise GwtwinError(f"mu must be finite and >= 0, found {mu_arr[~(mu_arr >= 0)]}")
    n_arr, mu_arr = np.broadcast_arrays(n_arr, mu_arr)
    out = np.zeros(n_arr.shape, dtype=np.float64)
    pos = n_arr > 0
    zero_mu = pos & (mu_arr == 0)
    out[zero_mu] = np.inf
    work = pos & ~zero_mu
    if np.any(work):
        nn, mm = n_arr[work], mu_arr[work]
        with np.errstate(divide="ignore"):
            g = gammainc(nn, mm)
        s = np.empty_like(nn)
        ok = g > _TINY
        s[ok] = -np.log10(g[ok])
        tail = ~ok
        if np.any(tail):
            nt, mt = nn[tail], mm[tail]
            log_pmf = -mt + nt * np.log(mt) - gammaln(nt + 1)
            log_sum = np.log(hyp1f1(1.0, nt + 1, mt))
            s[tail] = -(log_pmf + log_sum) / _LN10
        out[work] = s
    return float(out) if out.ndim == 0 else out


def expected_coincidences(n_strain, n_channel, window, livetime):
    """hveto's chance expectation ``mu = N_strain * N_channel * window / livetime``.

    Parameters
    ----------
    n_strain, n_channel : int or array
        Strain and auxiliary trigger counts.
    window : float or array
        Full coincidence window, s (a trigger pair counts when ``|dt| <= window / 2``).
    livetime : float
        Live time, s (> 0).
    """
    if not livetime > 0:
        raise GwtwinError(f"livetime must be > 0 s, found {livetime} s")
    return (
        np.asarray(n_strain, dtype=np.float64)
        * np.asarray(n_channel, dtype=np.float64)
        * np.asarray(window, dtype=np.float64)
        / float(livetime)
    )
