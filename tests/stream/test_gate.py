"""``gwtwin.stream.gate``: the safety gate, on seeded simulated strain with a known coupling.

Raw strain is ``n + c``: white Gaussian noise plus a strong coloured component below the model's
band (1024 Hz, model band 8-460 Hz, octave bands 8-16 ... 256-460 Hz), and ``c`` the "true
coupling": sine-Gaussian glitches at 35-55 Hz in chosen increments, scaled so that a glitch holds
30 % of the increment's in-band power. Models are predictions built from ``c`` (perfect, half,
x10) or independent noise; the expected decisions are recomputed here from the public
measurement functions over the same windows, not read from the gate.
"""

from __future__ import annotations

import base64
import functools
import json
import math

import numpy as np
import pytest
from scipy.signal import butter, sosfilt, welch

from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.stream.gate import (
    GateConfig,
    SafetyGate,
    band_power_ratio,
    band_powers,
    increment_band_power,
    octave_bands,
)

FS = 1024
BAND = (8.0, 460.0)
T0 = 1_400_000_000
BANDS = octave_bands(*BAND)


@functools.lru_cache
def _noise(duration: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(duration * FS)
    low = sosfilt(butter(4, 4.0, fs=FS, output="sos"), rng.standard_normal(duration * FS))
    return white + 3.0 * low / low.std()


@functools.lru_cache
def _coupling(duration: int, seed: int, increments: tuple[int, ...]) -> np.ndarray:
    """Sine-Gaussian glitches (tau 0.1 s) centred in the given increments, each holding 30 % of
    the increment's in-band (8-460 Hz) power of the noise."""
    n = _noise(duration, seed)
    t = np.arange(duration * FS) / FS
    c = np.zeros_like(n)
    for k in increments:
        f0, tc = (35.0, 45.0, 55.0)[k % 3], k + 0.5
        g = np.exp(-(((t - tc) / 0.1) ** 2)) * np.sin(2 * np.pi * f0 * (t - tc))
        sl = slice(k * FS, (k + 1) * FS)
        ratio = increment_band_power(g[sl], FS, BAND) / increment_band_power(n[sl], FS, BAND)
        c += g * math.sqrt(0.3 / ratio)
    return c


def _band_noise(duration: int, seed: int, lo: float, hi: float) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(duration * FS)
    return sosfilt(butter(8, [lo, hi], btype="bandpass", fs=FS, output="sos"), x)


def _run(gate: SafetyGate, raw: np.ndarray, pred: np.ndarray, first: int = 0, step: int = FS):
    out = []
    for i in range(first * FS // step, raw.size // step):
        sl = slice(i * step, (i + 1) * step)
        out.append(gate.step(T0 + i * step / FS, raw[sl], pred[sl]))
    return out


def _window_evidence(raw, pred, k: int, window: float = 8.0):
    """(ASD ratio per band, active per band) over the window ending with increment k."""
    sl = slice(max(0, (k + 1 - int(window)) * FS), (k + 1) * FS)
    ratio = np.sqrt(band_power_ratio(raw[sl], raw[sl] - pred[sl], FS, BANDS, fftlength=1.0))
    p = band_powers(np.stack([raw[sl], pred[sl]]), FS, BANDS, fftlength=1.0)
    return ratio, (p[1] > 0) & (p[1] >= 1e-3 * p[0])


# -- (1) measurements ------------------------------------------------------------------------------
def test_band_power_ratio_matches_scipy_welch():
    raw = _noise(16, 1)[: 8 * FS]
    cleaned = raw - 0.3 * _band_noise(8, 2, 30, 70)
    bands = [(10.0, 20.0), (32.0, 64.0), (100.0, 400.0)]
    f, p_raw = welch(raw, FS, window="hann", nperseg=FS, noverlap=FS // 2, detrend=False)
    _, p_cln = welch(cleaned, FS, window="hann", nperseg=FS, noverlap=FS // 2, detrend=False)
    expected = [
        p_cln[(f >= lo) & (f < hi)].sum() / p_raw[(f >= lo) & (f < hi)].sum() for lo, hi in bands
    ]
    got = band_power_ratio(raw, cleaned, FS, bands, fftlength=1.0)
    # same sums in another order (a matrix product): float64 rounding only
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # band power in units of x^2: white noise of unit variance has 1/512 per Hz
    white = np.random.default_rng(3).standard_normal(64 * FS)
    (p,) = band_powers(white, FS, [(100.0, 356.0)], fftlength=1.0)
    assert p == pytest.approx(256 / 512, rel=4 * math.sqrt(1 / (256 * 64)))
    # segments end with the data: 8.3 s uses its last 8 s (the first 0.3 s dropped)
    longer = np.concatenate([np.full(307, 1e3), raw])
    np.testing.assert_allclose(
        band_power_ratio(longer, np.concatenate([np.zeros(307), cleaned]), FS, bands, fftlength=1),
        expected,
        rtol=1e-12,
    )


def test_octave_band_edges():
    edges = [8, 16, 32, 64, 128, 256, 460]
    assert octave_bands(8, 460) == list(zip(edges[:-1], edges[1:], strict=True))
    # a last band narrower than half an octave (300/160 > sqrt 2 keeps it; 330/320 does not)
    assert octave_bands(10, 300)[-1] == (160, 300)
    assert octave_bands(10, 330)[-1] == (160, 330)
    assert octave_bands(10, 15) == [(10, 15)]
    with pytest.raises(ConfigError, match="lo=0"):
        octave_bands(0, 100)


# -- the derivation of the default thresholds ------------------------------------------------------
def test_correlated_ratio_moves_by_prediction_power_not_by_welch_scatter():
    """A small prediction independent of raw (ASD 2 % of raw's, rho = 4e-4), 100 windows of 8 s:
    the ASD ratio stays within the exact triangle bound sqrt(rho) of 1 and scatters by
    sqrt(rho / D) (D = 2 x bandwidth x 8 s), while one Welch ASD estimate scatters by
    1 / sqrt(2 D) and the ratio of two independent ones crosses 1.05 in many windows."""
    deviations, bounds, independent, single = [], [], [], []
    for seed in range(100):
        rng = np.random.default_rng(1000 + seed)
        raw, other = rng.standard_normal((2, 8 * FS))
        pred = 0.02 * rng.standard_normal(8 * FS)
        p = band_powers(np.stack([raw, raw - pred, pred, other]), FS, BANDS, fftlength=1.0)
        deviations.append(np.sqrt(p[1] / p[0]) - 1)
        bounds.append(np.sqrt(p[2] / p[0]))
        independent.append(np.sqrt(p[3] / p[0]))
        single.append(np.sqrt(p[0]))
    deviations, bounds, independent, single = map(
        np.array, (deviations, bounds, independent, single)
    )
    rho, dof = 4e-4, np.array([2 * (hi - lo) * 8 for lo, hi in BANDS])
    assert np.all(np.abs(deviations) <= bounds * (1 + 1e-9))  # exact, window by window
    assert np.abs(deviations).max() < 0.006  # bound ~0.02; the margin to 1.05 is 0.05
    # mean shift rho / 2 = 2e-4 (within 3 standard errors), scatter sqrt(rho / D): 0.0018-0.0003
    assert np.all(np.abs(deviations.mean(0) - rho / 2) < 3 * np.sqrt(rho / dof / 100))
    assert np.all(deviations.std(0) < 1.5 * np.sqrt(rho / dof))
    scatter = single.std(0) / single.mean(0)
    assert np.all(scatter > 0.7 / np.sqrt(2 * dof))  # 6.6 % in 8-16 Hz ... 1.2 % in 256-460 Hz
    assert np.all(scatter > 5 * np.abs(deviations).max(0))
    crossed = np.mean(independent > 1.05, axis=0)
    assert crossed[0] > 0.2 and crossed[1] > 0.15  # 8-16, 16-32 Hz: a third, a quarter


# -- (2), (3) good models --------------------------------------------------------------------------
GLITCHES = tuple(range(2, 120, 3))


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_good_model_never_disables(scale):
    raw = _noise(120, 4) + _coupling(120, 4, GLITCHES)
    pred = scale * _coupling(120, 4, GLITCHES)
    decisions = _run(SafetyGate(GateConfig(), FS, BAND), raw, pred)
    assert len(decisions) == 120
    assert all(d.enabled and not d.changed and d.reason == "" for d in decisions)
    assert all(np.all(d.gain == 1.0) and d.disabled_seconds == 0 for d in decisions)
    claimed = [d.glitch_ratio for d in decisions if d.glitch_ratio is not None]
    if scale == 1.0:
        # every glitch is claimed (its prediction holds ~30 % of raw's power) and cleaned
        assert len(claimed) == len(GLITCHES) and max(claimed) < 0.85
        for k, d in enumerate(decisions):
            ratio, active = _window_evidence(raw, pred, k)
            assert list(d.band_ratios.values()) == pytest.approx(list(ratio), rel=1e-12)
            # cleaned = n exactly: ratio <= 1 + sqrt(rho) in every band (triangle inequality);
            # the active ones (the glitches' 32-64 Hz octave) clean by several %
            span = np.stack([raw, pred])[:, max(0, k - 7) * FS : (k + 1) * FS]
            p = band_powers(span, FS, BANDS, fftlength=1.0)
            assert np.all(ratio <= 1 + np.sqrt(p[1] / p[0]) + 1e-12)
            assert d.active_bands == [n for n, a in zip(d.band_ratios, active, strict=True) if a]
            if k >= GLITCHES[0]:
                assert "32-64" in d.active_bands and d.asd_ratio <= 1.0
    else:
        # 0.25 x 30 % < glitch_fraction: nothing is claimed; the ratio still drops below 1
        assert claimed == []
        assert max(d.asd_ratio for d in decisions if d.active_bands) < 1.0


# -- (4) a model scaled x10 ------------------------------------------------------------------------
def test_model_scaled_x10_is_caught_in_its_first_glitch():
    glitches = (5, 9, 14)
    raw = _noise(20, 5) + _coupling(20, 5, glitches)
    pred = 10 * _coupling(20, 5, glitches)
    decisions = _run(SafetyGate(GateConfig(), FS, BAND), raw, pred)
    first = next(k for k, d in enumerate(decisions) if not d.enabled)
    present = [
        np.abs(pred[k * FS : (k + 1) * FS]).max() > 1e-3 * np.abs(pred).max() for k in range(20)
    ]
    assert first == glitches[0] == present.index(True)
    d = decisions[first]
    assert d.changed and d.glitch_ratio is not None and d.glitch_ratio > 10
    assert "claimed glitch at GPS 1400000005.000: cleaned power" in d.reason
    taper = round(0.1 * FS)
    assert d.gain[0] == 1.0 and np.all(np.diff(d.gain[: taper + 1]) < 0)
    assert np.all(d.gain[taper:] == 0.0)
    sl = slice(first * FS, (first + 1) * FS)
    cleaned = raw[sl] - d.gain * pred[sl]
    assert np.array_equal(cleaned[taper:], raw[sl][taper:])  # output == raw after the taper
    assert d.disabled_seconds == pytest.approx((FS - 1) / FS)
    # stays off: every later increment is gated to raw, and says why and since when
    for later in decisions[first + 1 :]:
        assert not later.enabled and np.all(later.gain == 0.0) and later.disabled_seconds == 1.0
        assert "disabled since GPS 1400000005.000" in later.reason


# -- (5) a model adding noise in quiet time, then good again ---------------------------------------
QUIET = (20, 40)  # the model adds noise in 32-64 Hz here, where there is no glitch
NOISY_GLITCHES = (*range(2, 12, 4), *range(52, 64, 4))  # none in a window over 20-48 s


@functools.lru_cache
def _noisy_model_scenario():
    raw = _noise(64, 6) + _coupling(64, 6, NOISY_GLITCHES)
    pred = _coupling(64, 6, NOISY_GLITCHES).copy()
    added = _band_noise(64, 7, 36, 60)[QUIET[0] * FS : QUIET[1] * FS]
    # noise with 55 % of raw's ASD in 32-64 Hz (rho = 0.3: a full window's ASD ratio ~ 1.14)
    quiet = raw[QUIET[0] * FS : QUIET[1] * FS]
    p = band_powers(np.stack([quiet, added]), FS, [(32, 64)], fftlength=1.0)
    pred[QUIET[0] * FS : QUIET[1] * FS] = added * np.sqrt(0.3 * p[0, 0] / p[1, 0])
    return raw, pred


def test_noise_adding_model_disables_then_resumes_with_hysteresis():
    raw, pred = _noisy_model_scenario()
    cfg = GateConfig()
    decisions = _run(SafetyGate(cfg, FS, BAND), raw, pred)
    evidence = [_window_evidence(raw, pred, k) for k in range(64)]
    worst = [float(np.max(r[a])) if a.any() else math.nan for r, a in evidence]
    exceeded = next(k for k in range(64) if worst[k] > cfg.max_asd_ratio)
    off = next(k for k, d in enumerate(decisions) if not d.enabled)
    assert QUIET[0] < exceeded < QUIET[0] + 8  # evidence builds up over a few increments
    assert exceeded <= off <= exceeded + 1
    d = decisions[off]
    assert d.changed and d.glitch_ratio is None  # the ASD check, not the glitch check
    assert d.reason.startswith(f"ASD ratio {worst[off]:.2f} > 1.05 in 32-64 Hz over the last 8 s")
    # resumes after exactly resume_after consecutive increments at or below 1.01
    good = [
        (np.all(r[a] <= cfg.resume_asd_ratio)) and (dd.glitch_ratio is None or dd.glitch_ratio <= 1)
        for (r, a), dd in zip(evidence, decisions, strict=True)
    ]
    first_good = next(k for k in range(QUIET[1], 64) if all(good[k : k + cfg.resume_after]))
    on = next(k for k in range(off, 64) if decisions[k].enabled)
    assert on == first_good + cfg.resume_after - 1
    assert not any(good[k] for k in range(off, first_good))  # nothing good in between
    assert all(not x.enabled for x in decisions[off:on])
    assert f"{cfg.resume_after - 1}/{cfg.resume_after})" in decisions[on - 1].reason
    # between the thresholds (1.01 < ratio <= 1.05) it stayed off: hysteresis did something
    assert any(1.01 < worst[k] <= 1.05 for k in range(off, on))
    d = decisions[on]
    taper = round(cfg.taper * FS)
    assert d.changed and d.reason == "" and d.gain[0] == 0.0
    assert np.all(np.diff(d.gain[: taper + 1]) > 0) and np.all(d.gain[taper:] == 1.0)
    assert all(x.enabled for x in decisions[on:])


# -- (6) monitoring only ---------------------------------------------------------------------------
def test_disabled_gate_keeps_gain_one_but_reports():
    raw, pred = _noisy_model_scenario()
    watched = _run(SafetyGate(GateConfig(enabled=False), FS, BAND), raw, pred)
    gated = _run(SafetyGate(GateConfig(), FS, BAND), raw, pred)
    assert all(np.all(d.gain == 1.0) and d.disabled_seconds == 0 for d in watched)
    for w, g in zip(watched, gated, strict=True):
        assert w.asd_ratio == g.asd_ratio or (math.isnan(w.asd_ratio) and math.isnan(g.asd_ratio))
        assert w.band_ratios == pytest.approx(g.band_ratios, nan_ok=True)
        assert w.enabled == g.enabled  # the state it would be in
        assert w.reason == (g.reason and "monitoring only, subtraction not gated: " + g.reason)
    assert max(d.asd_ratio for d in watched if d.active_bands) > 1.05


# -- (7) checkpoints -------------------------------------------------------------------------------
def _same(a, b) -> bool:
    return (
        a.gps == b.gps
        and np.array_equal(a.gain, b.gain)
        and (a.enabled, a.changed, a.reason, a.glitch_ratio, a.disabled_seconds)
        == (b.enabled, b.changed, b.reason, b.glitch_ratio, b.disabled_seconds)
        and np.array_equal([a.asd_ratio], [b.asd_ratio], equal_nan=True)
        and np.array_equal(
            list(a.band_ratios.values()), list(b.band_ratios.values()), equal_nan=True
        )
        and a.active_bands == b.active_bands
    )


@pytest.mark.parametrize("restart_at", [3, 23, 30, 50])  # filling up, turning off, off, resuming
def test_restored_gate_is_bit_identical(restart_at):
    raw, pred = _noisy_model_scenario()
    continuous = _run(SafetyGate(GateConfig(), FS, BAND), raw, pred)
    first = SafetyGate(GateConfig(), FS, BAND)
    _run(first, raw[: restart_at * FS], pred[: restart_at * FS])
    state = json.loads(json.dumps(first.state_dict()))
    restored = SafetyGate(GateConfig(), FS, BAND)
    restored.load_state_dict(state)
    resumed = _run(restored, raw, pred, first=restart_at)
    assert all(_same(a, b) for a, b in zip(continuous[restart_at:], resumed, strict=True))
    with pytest.raises(GwtwinError, match="window=8.0 does not match this gate's 4.0"):
        SafetyGate(GateConfig(window=4.0), FS, BAND).load_state_dict(state)


def test_history_is_bounded_and_gaps_clear_it():
    raw, pred = _noisy_model_scenario()
    gate = SafetyGate(GateConfig(), FS, BAND)
    _run(gate, raw[: 20 * FS], pred[: 20 * FS])
    state = gate.state_dict()
    for key in ("raw", "prediction"):  # 8 s of float64
        assert len(base64.b64decode(state[key])) == 8 * FS * 8
    # a 3 s gap: the next window holds only the new increment
    d = gate.step(T0 + 23, raw[23 * FS : 24 * FS], pred[23 * FS : 24 * FS])
    r, p = raw[23 * FS : 24 * FS], pred[23 * FS : 24 * FS]
    ratio = band_power_ratio(r, r - p, FS, BANDS, fftlength=1.0)
    assert list(d.band_ratios.values()) == pytest.approx(list(np.sqrt(ratio)), rel=1e-12)
    with pytest.raises(GwtwinError, match="starts before the end of the previous one"):
        gate.step(T0 + 23.5, raw[:FS], pred[:FS])


def test_any_whole_number_of_samples_per_increment():
    raw = _noise(40, 8) + _coupling(40, 8, (5, 17, 30))
    pred = _coupling(40, 8, (5, 17, 30))
    for step in (384, 1536):  # 0.375 s and 1.5 s increments
        decisions = _run(SafetyGate(GateConfig(), FS, BAND), raw, pred, step=step)
        assert all(d.enabled and d.gain.size == step for d in decisions)
    bad = _run(SafetyGate(GateConfig(), FS, BAND), raw, 10 * pred, step=384)
    assert next(k for k, d in enumerate(bad) if not d.enabled) * 384 <= 5.5 * FS


# -- (8) bad configuration and inputs --------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"windw": 8.0}, r"windw: unknown key \(allowed here: .*window"),
        ({"resume_asd_ratio": 1.2}, r"resume_asd_ratio: .*1\.2 is above max_asd_ratio=1\.05"),
        ({"max_asd_ratio": -1}, r"max_asd_ratio: .*found: -1"),
        ({"fftlength": 16.0}, r"fftlength: .*fftlength=16\.0 s is longer than window=8\.0 s"),
        ({"bands": [(10, 20), (40, 30)]}, r"bands: .*bands\[1\]=\(40\.0, 30\.0\) Hz"),
        ({"resume_after": 0}, r"resume_after: .*found: 0"),
        ({"window": float("nan")}, r"window: .*found: nan"),
    ],
)
def test_bad_config_raises_naming_key_and_value(values, match):
    with pytest.raises(ConfigError, match=match):
        GateConfig(**values)


def test_bad_construction_and_inputs_raise():
    with pytest.raises(ConfigError, match=r"band=\(8, 600\) Hz: .*Nyquist frequency 512 Hz"):
        SafetyGate(GateConfig(), FS, (8.0, 600.0))
    with pytest.raises(ConfigError, match=r"bands\[1\]=\(300, 700\) Hz: .*Nyquist"):
        SafetyGate(GateConfig(bands=[(10, 20), (300, 700)]), FS, BAND)
    with pytest.raises(ConfigError, match=r"bands\[0\]=\(10\.2, 10\.8\) Hz holds no frequency bin"):
        SafetyGate(GateConfig(bands=[(10.2, 10.8)]), FS, BAND)
    gate = SafetyGate(GateConfig(taper=0.5), FS, BAND)
    x = np.zeros(FS)
    with pytest.raises(ConfigError, match=r"taper=0\.5 s is longer than the increment .*0\.25 s"):
        gate.step(T0, x[:256], x[:256])
    with pytest.raises(GwtwinError, match="raw has 1024 samples but prediction has 1000"):
        gate.step(T0, x, x[:1000])
    with pytest.raises(GwtwinError, match="prediction at GPS .*non-finite value at sample 3"):
        gate.step(T0, x, np.where(np.arange(FS) == 3, np.nan, 0.0))
    assert gate.state_dict() == SafetyGate(GateConfig(taper=0.5), FS, BAND).state_dict()
