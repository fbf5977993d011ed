"""Cleaning metrics against ground truth, on oracle cleanings whose answers are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from gwtwin.errors import GwtwinError
from gwtwin.evaluate.metrics import (
    WITNESSED_FAMILIES,
    asd_ratio,
    injection_safety,
    quiet_segments,
    score_glitches,
    summarise_scores,
)

START = 1_400_000_000


def _witnessed(table):
    return table[np.isin(np.asarray(table["family"]).astype(str), WITNESSED_FAMILIES)]


def test_oracle_cleanings_score_exactly(glitch_scenario):
    s = glitch_scenario
    events = _witnessed(s["table"])
    assert len(events) >= 6
    raw, coupled, w = s["raw"], s["coupled"], s["whitener"]
    perfect = score_glitches(raw, raw - coupled, coupled, s["t0"], w, events)
    none = score_glitches(raw, raw, coupled, s["t0"], w, events)
    half = score_glitches(raw, raw - 0.5 * coupled, coupled, s["t0"], w, events)
    # whitening is linear, so these hold to rounding (float64 FFT filtering: ~1e-12 relative)
    np.testing.assert_allclose(perfect["fraction_removed"], 1.0, atol=1e-9)
    np.testing.assert_allclose(none["fraction_removed"], 0.0, atol=1e-9)
    np.testing.assert_allclose(half["fraction_removed"], 0.75, atol=1e-9)
    np.testing.assert_allclose(none["residual_snr"], none["snr"], rtol=1e-9)
    summary = summarise_scores(half)
    assert summary["all"]["count"] == len(half["id"])
    assert summary["all"]["median_fraction_removed"] == pytest.approx(0.75, abs=1e-9)
    assert summarise_scores(perfect)["all"]["residual_below_limit"] == 1.0


def test_measured_snr_agrees_with_the_catalogue(glitch_scenario):
    # catalogue SNRs are against the design PSD from 10 Hz; ours whiten with the measured median
    # Welch PSD (lines and glitches included, 4 s resolution) from the same 10 Hz: agreement
    # within 10 % per glitch for the median
    s = glitch_scenario
    events = _witnessed(s["table"])
    scored = score_glitches(s["raw"], s["raw"], s["coupled"], s["t0"], s["whitener"], events)
    ratio = scored["snr"] / scored["snr_catalogue"]
    assert abs(np.median(ratio) - 1) < 0.1, ratio


def test_injection_safety_measures_the_share_taken(glitch_scenario):
    s = glitch_scenario
    inj = s["table"][np.asarray(s["table"]["family"]).astype(str) == "injection"]
    assert len(inj) >= 1
    raw, h = s["raw"], s["injection"]
    untouched = injection_safety(raw, raw - s["coupled"], h, s["t0"], s["whitener"], inj)
    # a whole inspiral may span a glitch: removing that glitch's coupling (and nothing else) moves
    # the injection's inner product by its overlap with the glitch, well under the 1 % budget
    assert np.all(np.abs(untouched["snr_loss"]) < 0.01)
    damaged = injection_safety(raw, raw - 0.01 * h, h, s["t0"], s["whitener"], inj)
    np.testing.assert_allclose(damaged["snr_loss"], 0.01, rtol=1e-9)
    np.testing.assert_allclose(
        damaged["snr_before"] - damaged["snr_after"], 0.01 * damaged["snr_optimal"], rtol=1e-9
    )


def test_asd_ratio_on_quiet_stretches(glitch_scenario):
    s = glitch_scenario
    table = s["table"]
    strain_events = table[np.asarray(table["family"]).astype(str) != "decoy"]
    span = (START, START + s["raw"].size / s["rate"])
    quiet = quiet_segments(span, strain_events, pad=1.0)
    assert len(quiet) and np.all(np.diff(quiet, axis=1) > 0)
    raw = s["raw"]
    # the test scenario is dense with glitches: 1 s segments fit between them
    freqs, ratio, n = asd_ratio(
        raw, raw - s["coupled"], s["t0"], s["rate"], fftlength=1.0, segments=quiet
    )
    band = (freqs >= 10) & (freqs <= 1000)
    assert n >= 10
    # scatter and magnetic couplings vanish away from their events; the power-line coupling is
    # continuous (the mains line and its sidebands at 50, 150, 250 Hz), so removing it lowers the
    # ASD there even in glitch-free time, and nowhere else
    mains = np.any([np.abs(freqs - h) <= 5 for h in (50, 150, 250)], axis=0)
    # (the leakage of the mains lines through the Hann window leaves < 1e-3, 20x below the
    # 2 % acceptance band of the cleaning)
    np.testing.assert_allclose(ratio[band & ~mains], 1.0, atol=1e-3)
    assert ratio[freqs == 50][0] < 0.5
    _, scaled, _ = asd_ratio(raw, 1.01 * raw, s["t0"], s["rate"], fftlength=1.0, segments=quiet)
    np.testing.assert_allclose(scaled[band], 1.01, rtol=1e-12)
    with pytest.raises(GwtwinError, match="no 4.0 s Welch segment fits"):
        asd_ratio(raw, raw, s["t0"], s["rate"], segments=np.array([[START, START + 2]]))


def test_shape_mismatch_is_named(glitch_scenario):
    s = glitch_scenario
    with pytest.raises(GwtwinError, match="1-D arrays of one length"):
        score_glitches(s["raw"], s["raw"][:-1], s["coupled"], s["t0"], s["whitener"], s["table"])
