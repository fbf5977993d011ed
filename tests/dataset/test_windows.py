"""Time bookkeeping of datasets: splits, window grids, skip reasons, labels, quiet sampling."""

import numpy as np
import pytest

from gwtwin.data import NS
from gwtwin.dataset.windows import (
    EDGE,
    GAP,
    NONFINITE,
    classify,
    loudest,
    make_splits,
    sample_quiet,
    subtract,
    union,
    whole_seconds_inward,
    window_starts,
)
from gwtwin.errors import GwtwinError

T = 1_400_000_000 * NS


def test_interval_helpers():
    assert union([(5, 7), (0, 2), (1, 3), (7, 9)]) == [(0, 3), (5, 9)]
    assert subtract((0, 10), [(2, 3), (8, 12), (-5, 1)]) == [(1, 2), (3, 8)]
    assert whole_seconds_inward(T + 1, T + 5 * NS - 1) == (T + NS, T + 4 * NS)
    assert whole_seconds_inward(T + 1, T + NS) is None


def test_splits_by_fraction_and_span():
    s = make_splits((T, T + 100 * NS), 0.25)
    assert s.train == [(T, T + 75 * NS)] and s.valid == [(T + 75 * NS, T + 100 * NS)]
    s = make_splits((T, T + 100 * NS), 0.2, valid_span=(1_400_000_040, 1_400_000_060))
    assert s.valid == [(T + 40 * NS, T + 60 * NS)]
    assert s.train == [(T, T + 40 * NS), (T + 60 * NS, T + 100 * NS)]
    assert make_splits((T, T + 10 * NS), 0.0).valid == []
    with pytest.raises(GwtwinError, match=r"does not overlap the data span"):
        make_splits((T, T + 10 * NS), 0.2, valid_span=(1_500_000_000, 1_500_000_010))
    with pytest.raises(GwtwinError, match=r"no training time left"):
        make_splits((T, T + 10 * NS), 0.2, valid_span=(1_300_000_000, 1_500_000_010))


def test_window_grid_keeps_filter_margins_inside_the_piece():
    starts = window_starts((T, T + 40 * NS), 8 * NS, 4 * NS, 3 * NS)
    assert starts[0] == T + 3 * NS
    assert starts[-1] + 8 * NS + 3 * NS <= T + 40 * NS
    assert starts[-1] + 4 * NS + 8 * NS + 3 * NS > T + 40 * NS
    assert np.all(np.diff(starts) == 4 * NS)
    assert window_starts((T, T + 10 * NS), 8 * NS, 4 * NS, 3 * NS) == []


def test_classify_names_the_reason():
    gaps, bad = [(T + 20 * NS, T + 30 * NS)], [(T + 50 * NS, T + 50 * NS + NS // 2)]
    w, need = 8 * NS, 3 * NS
    assert classify(T, w, need, gaps, bad) is None
    assert classify(T + 15 * NS, w, need, gaps, bad) == GAP
    assert classify(T + 10 * NS, w, need, gaps, bad) == EDGE  # ends 2 s before the gap
    assert classify(T + 45 * NS, w, need, gaps, bad) == NONFINITE
    assert classify(T + 51 * NS, w, need, gaps, bad) == EDGE
    assert classify(T + 54 * NS, w, need, gaps, bad) is None


def test_loudest_trigger_per_window():
    times = np.array([10.5, 11.0, 19.99, 20.0]) + 1_400_000_000
    snrs = np.array([7.0, 12.0, 30.0, 50.0])
    starts = [T + 10 * NS, T + 12 * NS, T + 20 * NS, T + 40 * NS]
    got = loudest(times, snrs, starts, 8 * NS)
    np.testing.assert_allclose(got, [12.0, 30.0, 50.0, 0.0])


def test_quiet_sampling_fraction_and_seed():
    glitch = np.zeros(100, bool)
    glitch[:10] = True
    usable = np.ones(100, bool)
    usable[50:55] = False
    keep = sample_quiet(glitch, usable, 0.5, seed=3)
    assert keep[:10].all() and not keep[50:55].any()
    assert int((keep & ~glitch).sum()) == 10  # quiet = half of the kept windows
    assert np.array_equal(keep, sample_quiet(glitch, usable, 0.5, seed=3))
    assert not np.array_equal(keep, sample_quiet(glitch, usable, 0.5, seed=4))
    keep = sample_quiet(glitch, usable, 0.8, seed=0)
    assert int((keep & ~glitch).sum()) == 40
    assert np.array_equal(sample_quiet(glitch, usable, None, 0), usable)
    # no glitch at all: every usable quiet window is kept
    assert np.array_equal(sample_quiet(np.zeros(100, bool), usable, 0.5, 0), usable)
