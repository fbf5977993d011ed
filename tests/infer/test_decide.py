"""The subtraction decision (gwtwin.infer.decide): its null calibration, its rules, its locality."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from gwtwin.errors import GwtwinError
from gwtwin.infer.decide import (
    Decision,
    DecisionSettings,
    decide,
    decide_span,
    gain,
    span_needed,
    unit_stats,
)

RATE = 1024


def _sine_gaussian(n, centre, f0, q, snr, rate=RATE):
    t = (np.arange(n) - centre) / rate
    tau = q / (np.sqrt(2) * np.pi * f0)
    x = np.exp(-((t / tau) ** 2)) * np.sin(2 * np.pi * f0 * t)
    return x * snr / np.linalg.norm(x)


def test_the_drop_under_an_unrelated_prediction_has_the_stated_null_distribution():
    # D = 2<r, p> - |p|^2 with r white: mean -|p|^2, standard deviation 2 |p| (module docstring)
    rng = np.random.default_rng(1)
    n_units, norm = 4000, 3.0
    r = torch.tensor(rng.standard_normal(n_units * RATE))
    p = torch.tensor(rng.standard_normal(n_units * RATE))
    p = p.reshape(n_units, RATE) / p.reshape(n_units, RATE).norm(dim=1, keepdim=True) * norm
    s = unit_stats(p.reshape(-1), r, 0, RATE)
    assert np.mean(s.drop) == pytest.approx(-(norm**2), abs=4 * 2 * norm / math.sqrt(n_units))
    assert np.std(s.drop) == pytest.approx(2 * norm, rel=0.05)
    assert np.median(s.sigma) == pytest.approx(1.0, rel=0.01)  # the robust noise level
    kept, reason = decide(s, Decision(extend=False, pool_units=0))
    # false keeps: at most the Gaussian tail beyond margin + |p| / 2 (3 sigma: 1.35e-3 at most)
    bound = stats.norm.sf(3.0 + norm / 2)
    assert kept.mean() <= bound + 3 * math.sqrt(bound / n_units) + 1 / n_units
    assert set(reason) <= {"not_significant", "worse"}
    # z ~ N(-|p| / 2, 1): "worse" (z <= -3) with probability Phi(-1.5) = 6.7 %
    assert np.mean(reason == "worse") == pytest.approx(stats.norm.cdf(-1.5), abs=0.015)


def test_an_exact_prediction_of_a_glitch_is_kept_with_the_expected_significance():
    rng = np.random.default_rng(2)
    r = rng.standard_normal(8 * RATE)
    c = np.zeros_like(r)
    c[4 * RATE : 5 * RATE] = _sine_gaussian(RATE, RATE // 2, 120.0, 8.0, 12.0)
    s = unit_stats(torch.tensor(c), torch.tensor(r + c), 0, RATE)
    assert s.z[4] == pytest.approx(12.0 / 2, abs=1.5)  # z ~ |c| / (2 sigma)
    kept, reason = decide(s, Decision())
    assert reason[4] == "improved" and kept[4]
    # its neighbours have nothing predicted: no extension, nothing subtracted
    assert list(reason[:4]) == ["no_prediction"] * 4 and not kept[[3, 5]].any()


def test_a_glitch_crossing_a_unit_boundary_is_subtracted_whole():
    rng = np.random.default_rng(3)
    r = rng.standard_normal(8 * RATE)
    c = _sine_gaussian(8 * RATE, 4 * RATE + 150, 40.0, 20.0, 30.0)  # mostly in unit 4
    assert 0.5 < np.sum(c[: 4 * RATE] ** 2) < 9  # a tail in unit 3, too weak alone
    p = torch.tensor(c)
    s = unit_stats(p, torch.tensor(r + c), 0, RATE)
    kept, reason = decide(s, Decision())
    assert reason[4] == "improved" and reason[3] == "extended" and kept[3]
    kept_no, reason_no = decide(s, Decision(extend=False, pool_units=0))
    assert not kept_no[3] and reason_no[3] == "not_significant"


def _decide(p, r, a, b, decision=None):
    """decide_span over units [a, b) of arrays that start at sample 0 (padded with nothing
    predicted and white strain before and after, where the span reaches past them)."""
    decision = decision or Decision()
    lo, hi = span_needed(a * RATE, b * RATE, RATE, decision)
    pad_lo, pad_hi = max(-lo, 0), max(hi - p.size, 0)
    noise = np.random.default_rng(99).standard_normal(pad_lo + pad_hi)
    p = np.concatenate([np.zeros(pad_lo), p, np.zeros(pad_hi)])
    r = np.concatenate([noise[:pad_lo], r, noise[pad_lo:]])
    lo, hi = lo + pad_lo, hi + pad_lo
    return decide_span(
        torch.tensor(p[lo:hi]), torch.tensor(r[lo:hi]), a * RATE, b * RATE, decision, RATE
    )


def test_a_wrong_prediction_is_never_subtracted_and_the_gain_tapers_out():
    rng = np.random.default_rng(4)
    r = rng.standard_normal(14 * RATE)
    c = _sine_gaussian(14 * RATE, 7 * RATE + 512, 100.0, 8.0, 20.0)
    wrong = _sine_gaussian(14 * RATE, 7 * RATE + 512, 300.0, 8.0, 20.0)  # another glitch
    one = Decision(band_low=None)  # one band: the gain's shape is that of the unit rule
    d = _decide(wrong, r + c, 6, 8, one)
    assert not d.kept.any() and "worse" in set(d.reason.ravel())
    assert float(d.gain.abs().max()) == 0.0 and float(d.prediction.abs().max()) == 0.0
    banded = _decide(wrong, r + c, 6, 8)
    assert not banded.kept.any() and float(banded.prediction.abs().max()) == 0.0
    g = _decide(c, r + c, 6, 8, one).gain[0].numpy()
    assert np.all(g[RATE : 2 * RATE] == 1.0)  # unit 7
    ramp = RATE // 4
    fall = 0.5 + 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
    np.testing.assert_allclose(g[RATE - ramp : RATE], fall[::-1])
    assert np.all(g[: RATE - ramp] == 0.0)
    assert np.max(np.abs(np.diff(g))) < 4.0 / ramp  # never a step


def test_a_steady_coupling_is_kept_everywhere_by_pooling():
    # a continuous coupling with |c|^2 = 25 per unit: z ~ 2.5 per unit, Z ~ 6 over 9 units
    rng = np.random.default_rng(7)
    n = 40 * RATE
    t = np.arange(n) / RATE
    c = np.sin(2 * np.pi * 50.0 * t) * np.sqrt(2 * 25.0 / RATE)
    r = rng.standard_normal(n) + c
    one = Decision(band_low=None)
    pooled = _decide(c, r, 6, 34, one)
    assert pooled.kept.mean() >= 0.85 and "pooled" in set(pooled.reason.ravel())
    alone = _decide(c, r, 6, 34, Decision(pool_units=0, extend=False, band_low=None))
    assert alone.kept.mean() < 0.6  # z ~ 2.5 +- 1: the unit rule alone keeps a third
    # in bands: the line's own band (32-64 Hz) decides alike, the others have no prediction
    banded = _decide(c, r, 6, 34)
    band = banded.bands.index((32.0, 64.0))
    assert banded.kept[band].mean() >= 0.85
    others = np.delete(banded.reason, band, axis=0)
    assert set(others.ravel()) == {"no_prediction"}
    # a noise prediction of the same size is never pooled in
    noise = rng.standard_normal(n) * np.sqrt(25.0 / RATE)
    assert not _decide(noise, r, 6, 34).kept.any()


def test_decisions_are_local_so_any_span_decides_the_same():
    rng = np.random.default_rng(5)
    n = 64 * RATE
    r = rng.standard_normal(n)
    p = np.zeros(n)
    for k in range(4, 60, 5):
        p += _sine_gaussian(n, k * RATE + rng.integers(0, RATE), rng.uniform(30, 300), 8.0, 9.0)
    r = r + p + 0.3 * rng.standard_normal(n)  # predictions not quite exact
    p[20 * RATE : 30 * RATE] += 0.1 * rng.standard_normal(10 * RATE)  # some noise predicted
    whole = _decide(p, r, 8, 56)
    pieces = [_decide(p, r, a, min(a + 7, 56)).prediction for a in range(8, 56, 7)]
    # the band filters run by FFT over each span: equal to rounding
    np.testing.assert_allclose(torch.cat(pieces).numpy(), whole.prediction.numpy(), atol=1e-12)
    assert 0 < whole.kept.sum() < whole.kept.size


def test_a_wrong_glitch_next_to_a_right_one_is_withheld_by_the_local_check():
    # one unit, one band (64-128 Hz): a glitch the model gets right (SNR 20, keeps the unit)
    # and, half a unit later, one it predicts that strain does not have (SNR 8)
    rng = np.random.default_rng(11)
    n = 24 * RATE
    r = rng.standard_normal(n)
    right = _sine_gaussian(n, 12 * RATE + 250, 100.0, 8.0, 20.0)
    wrong = _sine_gaussian(n, 12 * RATE + 770, 100.0, 8.0, 8.0)
    r = r + right
    p = right + wrong
    span = slice(10 * RATE, 14 * RATE)

    def power_change(d, at):  # whitened power after - before over samples `at` of the unit
        cleaned = r[span] - d.prediction.numpy()
        return np.sum(cleaned[at] ** 2) - np.sum(r[span][at] ** 2)

    unit = slice(2 * RATE, 3 * RATE)  # unit 12 within the span
    glitch = slice(2 * RATE + 650, 2 * RATE + 890)
    off = _decide(p, r, 10, 14, Decision(local_check=False))
    on = _decide(p, r, 10, 14)
    band = on.bands.index((64.0, 128.0))
    assert on.reason[band, 3] == "improved" and on.kept[band, 3]  # units from 9: unit 12 is 3
    # without the check the wrong glitch is subtracted: power rises by ~|wrong|^2 = 64 there
    assert power_change(off, glitch) > 3 * 2 * 8.0
    # with it the tile is withheld: no rise beyond the margin, the right glitch still removed
    assert power_change(on, glitch) < 3 * 2 * 8.0 * 0.25
    assert power_change(on, unit) < -300
    rows = on.rows(RATE, RATE, 10, 14)
    # withheld: the wrong glitch's tile in unit 12, and the ramp of its mask into unit 13
    assert rows["withheld"][2] >= 0.25 and rows["withheld"][0] == rows["withheld"][1] == 0
    # nothing subtracted at the wrong glitch's centre, and the mask ramps, never steps
    g = on.gain[band].numpy()
    assert g[2 * RATE + 770] == 0.0 and np.max(np.abs(np.diff(g))) < 4.0 / (RATE // 4)


def test_the_local_check_leaves_a_right_prediction_alone():
    # a steady line predicted right (z ~ 2.5 per unit, pooled) and exact glitches: the local
    # check's tiles withhold nothing
    rng = np.random.default_rng(12)
    n = 40 * RATE
    t = np.arange(n) / RATE
    c = np.sin(2 * np.pi * 50.0 * t) * np.sqrt(2 * 25.0 / RATE)
    for k in range(8, 32, 3):
        c += _sine_gaussian(n, k * RATE + rng.integers(0, RATE), rng.uniform(30, 300), 8.0, 10.0)
    r = rng.standard_normal(n) + c
    d = _decide(c, r, 6, 34)
    assert d.kept.any(axis=0).mean() > 0.85
    assert float(d.withheld.sum()) == 0.0


def test_units_without_strain_or_prediction_are_named_and_not_kept():
    rng = np.random.default_rng(6)
    r = rng.standard_normal(6 * RATE)
    c = _sine_gaussian(6 * RATE, 2 * RATE + 500, 100, 8, 20)
    r = r + c
    r[4 * RATE + 10] = np.nan
    c[4 * RATE : 5 * RATE] += 0.5 * rng.standard_normal(RATE)
    s = unit_stats(torch.tensor(c), torch.tensor(r), 0, RATE)
    kept, reason = decide(s, Decision())
    assert reason[4] == "no_strain" and not kept[4]
    assert reason[0] == "no_prediction" and reason[2] == "improved"
    off = decide(s, Decision(enabled=False))[0]
    assert off[4] and off[2] and not off[0]  # disabled: wherever a prediction exists


def test_bands_sum_back_and_a_wrong_band_is_left_alone():
    from gwtwin.infer.decide import band_filters, split_bands

    rng = np.random.default_rng(8)
    bands, taps = band_filters(Decision(), RATE)
    assert bands[0] == (0.0, 16.0) and bands[-1] == (256.0, 512.0) and len(bands) == 6
    x = rng.standard_normal(8 * RATE)
    np.testing.assert_allclose(split_bands(x, taps).sum(0), x, atol=1e-12)
    # right in 64-128 Hz (a glitch at 100 Hz), noise of the same size in 256-512 Hz
    n = 24 * RATE
    r = rng.standard_normal(n)
    c = _sine_gaussian(n, 12 * RATE + 400, 100.0, 20.0, 25.0)
    r = r + c
    wrong = split_bands(rng.standard_normal(n), taps)[-1]
    wrong *= 25.0 / np.linalg.norm(wrong[12 * RATE : 13 * RATE])
    d = _decide(c + wrong, r, 10, 14)
    unit = 12 - 10  # the rows start at unit 10; the span's decisions one unit earlier (ramps)
    glitch_band = d.bands.index((64.0, 128.0))
    assert d.kept[glitch_band, unit + 1] and not d.kept[-1].any()
    assert set(d.reason[-1]) <= {"worse", "not_significant"}
    rows = d.rows(RATE, RATE, 10, 14)
    assert rows["kept"][unit] and "64-128" in rows["bands"][unit]
    assert "256-512" not in rows["bands"][unit] and rows["reason"][unit] == "improved"
    # the subtraction takes the glitch and leaves the high band's noise out
    left = (r - c)[12 * RATE : 13 * RATE]
    cleaned = (r[10 * RATE : 14 * RATE] - d.prediction.numpy())[2 * RATE : 3 * RATE]
    assert np.sum(cleaned**2) < np.sum(left**2) + 3 * 2 * 3.0  # within noise of the truth


def test_gain_of_isolated_kept_units():
    g = gain(np.array([False, True, False, False, True, True, False]), 8, 2).numpy()
    fall = 0.5 + 0.5 * np.cos(np.pi * (np.arange(2) + 0.5) / 2)
    np.testing.assert_allclose(g[6:8], fall[::-1])
    np.testing.assert_array_equal(g[8:16], 1.0)
    np.testing.assert_allclose(g[16:18], fall)
    assert np.all(g[18:30] == 0.0) and np.all(g[40:48] == 1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"unit_duration": 0.3}, r"unit_duration 0.3 s is not a whole number of samples"),
        ({"unit_duration": 0.75}, r"must divide a second or be a whole number of seconds"),
        ({"ramp_duration": 2.0}, r"ramp_duration must be in \[0, unit_duration = 1\] s"),
        ({"unit_duration": 0.0}, r"unit_duration must be > 0 s"),
    ],
)
def test_bad_decision_settings_are_named(kwargs, message):
    with pytest.raises(GwtwinError, match=message):
        Decision(**kwargs).unit_size(RATE)


def test_decision_settings_refuse_unknown_keys():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="margin_sigmas"):
        DecisionSettings.model_validate({"margin_sigmas": 3})
    assert DecisionSettings().decision() == Decision()
