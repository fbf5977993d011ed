"""Rounds, segments and coincidence counting on synthetic triggers with known answers."""

import numpy as np
import pytest
from gwpy.segments import Segment, SegmentList

from gwtwin.data import segments as sg
from gwtwin.select import coincidence_grid, run_rounds
from gwtwin.select.compare import hveto_rounds
from gwtwin.signal.triggers import TRIGGER_DTYPE

T0 = 1_400_000_000.0


def _table(times, snr, freq=100.0):
    out = np.zeros(len(times), dtype=TRIGGER_DTYPE)
    out["time"] = times
    out["snr"] = snr
    out["frequency"] = freq
    out["tstart"] = out["time"] - 0.01
    out["tend"] = out["time"] + 0.01
    return np.sort(out, order="time")


def test_segment_arithmetic_matches_gwpy():
    rng = np.random.default_rng(1)
    a = sg.coalesce(np.sort(rng.uniform(0, 100, (30, 2)), axis=1))
    b = sg.coalesce(np.sort(rng.uniform(0, 100, (30, 2)), axis=1))
    ga = SegmentList(Segment(*s) for s in a)
    gb = SegmentList(Segment(*s) for s in b)
    assert sg.total(sg.intersect(a, b)) == pytest.approx(float(abs(ga & gb)))
    assert sg.total(sg.subtract(a, b)) == pytest.approx(float(abs(ga - gb)))
    times = rng.uniform(0, 100, 500)
    assert np.array_equal(sg.contains(a, times), np.array([any(t in s for s in ga) for t in times]))


def test_coincidence_grid_matches_brute_force():
    rng = np.random.default_rng(2)
    ts = np.sort(rng.uniform(0, 1000, 300))
    ta = np.sort(rng.uniform(0, 1000, 200))
    snr = rng.uniform(5, 60, 200)
    thresholds, windows = [8, 20, 50], [0.1, 1.0, 5.0]
    n, counts = coincidence_grid(ts, ta, snr, thresholds, windows)
    for i, thr in enumerate(thresholds):
        sel = ta[snr >= thr]
        assert counts[i] == sel.size
        for j, w in enumerate(windows):
            brute = sum(np.any(np.abs(sel - t) <= w / 2) for t in ts)
            assert n[i, j] == brute


@pytest.fixture
def synthetic():
    """Strain glitches: 40 witnessed by A (+5 ms), 30 by B (+0.4 s); C is a redundant copy of
    A (same times, noisier SNR); D is unrelated; 20 unwitnessed strain glitches."""
    rng = np.random.default_rng(3)
    t_a = T0 + np.sort(rng.choice(np.arange(10, 3590, 9.0), 40, replace=False))
    free = np.setdiff1d(np.arange(12, 3590, 9.0), t_a - T0)
    t_b = T0 + np.sort(rng.choice(free, 30, replace=False))
    free = np.setdiff1d(free, t_b - T0)
    t_u = T0 + np.sort(rng.choice(free, 20, replace=False))
    strain = _table(np.concatenate([t_a + 0.005, t_b + 0.4, t_u]), 10.0)
    aux = {
        "X1:A": _table(t_a, rng.uniform(20, 40, 40)),
        "X1:B": _table(t_b, rng.uniform(10, 15, 30)),
        "X1:C": _table(t_a + rng.normal(0, 0.01, 40), rng.uniform(9, 12, 40)),
        "X1:D": _table(T0 + np.sort(rng.uniform(0, 3600, 60)), rng.uniform(8, 30, 60)),
    }
    return strain, aux, np.array([[T0, T0 + 3600]])


def test_rounds_find_witnesses_and_redundancy(synthetic):
    strain, aux, live = synthetic
    res = run_rounds(strain, aux, live)
    assert res.winners == ["X1:A", "X1:B"]
    r1, r2 = res.rounds
    assert r1.n_vetoed == 40 and r1.n_strain == 90
    assert r1.efficiency == pytest.approx(40 / 90)
    assert r1.window == 0.1  # 5 ms offsets: the smallest window suffices
    assert r2.window == 1.0  # 0.4 s offsets need +- 0.5 s
    assert r2.cum_efficiency == pytest.approx(70 / 90)
    # deadtime: 40 windows of 0.1 s then 30 of 1 s
    assert r1.deadtime == pytest.approx(4.0)
    assert r2.cum_deadtime == pytest.approx(34.0 / 3600)
    assert r1.use_percentage == pytest.approx(100.0)
    # C was as significant as A before round 1 and drops to nothing after it
    assert r1.significances["X1:C"] > 30
    assert r1.drop["X1:C"] / r1.significances["X1:C"] > 0.9
    assert res.final_significances["X1:D"] < 5


def test_tie_goes_to_the_quieter_sensor(synthetic):
    strain, aux, live = synthetic
    # an exact copy of A's times with lower SNRs: same significance, A has the larger SNRs
    aux = {"X1:Z_COPY": aux["X1:A"].copy(), "X1:A": aux["X1:A"]}
    aux["X1:Z_COPY"]["snr"] = 10.0
    assert run_rounds(strain, aux, live).winners[0] == "X1:A"


def test_same_winners_and_efficiency_as_hveto(synthetic):
    strain, aux, live = synthetic
    # without the exact tie (A vs its copy C), which hveto breaks by dictionary order
    aux = {c: t for c, t in aux.items() if c != "X1:C"}
    ours = run_rounds(strain, aux, live)
    ref = hveto_rounds(strain, aux, live, strain_channel="X1:STRAIN")
    assert [r["winner"] for r in ref] == ours.winners
    for mine, theirs in zip(ours.rounds, ref, strict=True):
        assert (mine.threshold, mine.window) == (theirs["threshold"], theirs["window"])
        assert mine.n_vetoed == theirs["n_vetoed"]
        assert mine.deadtime == pytest.approx(theirs["deadtime"])
        assert mine.significance == pytest.approx(theirs["significance"], rel=1e-9)


def test_no_strain_triggers_gives_no_rounds(synthetic):
    _, aux, live = synthetic
    res = run_rounds(_table([], []), aux, live)
    assert res.rounds == [] and res.n_strain == 0
