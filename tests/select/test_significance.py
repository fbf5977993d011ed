"""Poisson significance against hveto's and against exact (mpmath) tails."""

import numpy as np
import pytest
from hveto.core import significance as hveto_significance

from gwtwin.errors import GwtwinError
from gwtwin.select import expected_coincidences, significance


def test_matches_hveto_on_a_grid():
    checked = 0
    for n in [1, 2, 3, 5, 10, 30, 100, 300, 1000, 3000]:
        for mu in [1e-3, 0.01, 0.1, 0.5, 1.0, 3.0, 10.0, 50.0, 200.0, 1000.0]:
            ref = hveto_significance(n, mu)
            ours = significance(n, mu)
            from scipy.special import gammainc

            if gammainc(n, mu) > 1e-280:
                # same formula (-log10 gammainc) where it does not underflow: equal to rounding
                assert ours == pytest.approx(ref, rel=1e-12, abs=1e-12), (n, mu)
            else:
                # hveto falls back to -log10 pmf(n); the exact tail is pmf(n) * M(1; n+1; mu),
                # larger by a factor between 1 and (n + 1) / (n + 1 - mu)
                bound = np.log10((n + 1) / (n + 1 - mu))
                assert 0 <= ref - ours <= bound + 1e-9, (n, mu)
            checked += 1
    assert checked == 100


def test_exact_tail_against_mpmath():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    for n, mu in [(100, 0.01), (1000, 1.0), (100000, 50000.0), (500, 100.0), (40, 2.5)]:
        exact = -mpmath.log10(mpmath.gammainc(n, 0, mu, regularized=True))
        # double precision on a value of up to ~1e4: relative 1e-12
        assert significance(n, mu) == pytest.approx(float(exact), rel=1e-10), (n, mu)


def test_vectorised_and_edge_cases():
    n = np.array([0, 5, 5])
    mu = np.array([1.0, 0.0, 2.0])
    s = significance(n, mu)
    assert s[0] == 0.0 and np.isinf(s[1]) and s[2] == pytest.approx(hveto_significance(5, 2.0))
    assert significance(3, 1.0) == pytest.approx(hveto_significance(3, 1.0))


def test_bad_inputs():
    with pytest.raises(GwtwinError, match="n must be integers >= 0"):
        significance(-1, 1.0)
    with pytest.raises(GwtwinError, match="mu must be finite and >= 0"):
        significance(3, -2.0)
    with pytest.raises(GwtwinError, match="livetime must be > 0 s"):
        expected_coincidences(10, 10, 0.1, 0.0)
    assert expected_coincidences(10, 20, 0.5, 100.0) == pytest.approx(1.0)
