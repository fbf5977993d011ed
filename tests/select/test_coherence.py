"""Coherence-based witnesses: significance threshold against simulation, and detection."""

from __future__ import annotations

import numpy as np
import pytest

from gwtwin.errors import GwtwinError
from gwtwin.select.coherence import coherence_threshold, coherence_with_strain


def test_threshold_false_alarm_rate_matches_its_definition():
    # independent Gaussian noise: the share of trials whose loudest bin crosses the threshold
    # is at most alpha (Bonferroni over the bins), and close to it (bins are nearly independent).
    # 200 trials at alpha = 0.2: binomial mean 40, sd 5.7 -> between mean - 3.5 sd and + 3 sd
    rng = np.random.default_rng(3)
    rate, alpha, hits = 256.0, 0.2, 0
    for _ in range(200):
        x, y = rng.normal(size=(2, int(64 * rate)))
        r = coherence_with_strain(
            "V1:X", y, rate, x, rate, fftlength=4.0, alpha=alpha, frange=(10.0, 100.0)
        )
        hits += r.significant
    assert 40 - 3.5 * 5.7 <= hits <= 40 + 3 * 5.7, hits


def test_a_line_shared_with_strain_is_found_in_its_band():
    rng = np.random.default_rng(4)
    fs_w, fs_s, dur = 1024.0, 4096.0, 128
    t_w = np.arange(int(dur * fs_w)) / fs_w
    t_s = np.arange(int(dur * fs_s)) / fs_s
    mains = np.sin(2 * np.pi * 50 * t_w) + 0.1 * rng.normal(size=t_w.size)
    strain = 0.05 * np.sin(2 * np.pi * 50 * t_s) + rng.normal(size=t_s.size)
    r = coherence_with_strain("V1:MAINS", mains, fs_w, strain, fs_s)
    assert r.significant and abs(r.frequency - 50) <= 0.25
    assert all(lo <= 50.25 and hi >= 49.75 for lo, hi in r.bands[:1])
    unrelated = coherence_with_strain("V1:OTHER", rng.normal(size=t_w.size), fs_w, strain, fs_s)
    assert not unrelated.significant


def test_errors():
    with pytest.raises(GwtwinError, match="at least 2 independent segments"):
        coherence_threshold(1, 10, 1e-3)
    with pytest.raises(GwtwinError, match="not a multiple"):
        coherence_with_strain("V1:X", np.zeros(300), 300.0, np.zeros(4096), 4096.0)
