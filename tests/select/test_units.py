"""Coincidence scores, fringe triggers, slides and the config, each on known inputs."""

import math

import numpy as np
import pytest
import torch

from gwtwin.data import Block
from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.select import (
    SelectConfig,
    coincidence_scores,
    fringe_frequency,
    fringe_triggers,
    load_config,
    shift_triggers,
)
from gwtwin.signal.triggers import TRIGGER_DTYPE

T0 = 1_400_000_000.0


def _table(times, freq=100.0):
    out = np.zeros(len(times), dtype=TRIGGER_DTYPE)
    out["time"] = times
    out["frequency"] = freq
    out["snr"] = 10.0
    out["tstart"], out["tend"] = out["time"] - 0.01, out["time"] + 0.01
    return out


def test_coincidence_scores_known_values():
    strain = _table(T0 + np.array([10.0, 20.0, 30.0, 40.0]), freq=[50, 60, 300, 55])
    witness = _table(T0 + np.array([9.996, 19.995, 35.0, 40.0 - 0.004, 40.002]))
    sc = coincidence_scores("X1:W", strain, witness, tolerance=0.01, livetime=100.0)
    assert sc.n_glitches == 4 and sc.n_witness == 5
    assert sc.coincidence_fraction == pytest.approx(3 / 4)
    assert sc.use_percentage == pytest.approx(100 * 4 / 5)
    # one-to-one: three pairs; IoU = 3 / (4 + 5 - 3)
    assert sc.n_matched == 3 and sc.iou == pytest.approx(0.5)
    # delays strain - witness of the nearest witness trigger: +4 ms, +5 ms, -2 ms
    # float64 GPS seconds near 1.4e9 resolve 2.4e-7 s
    assert np.sort(sc.delays) == pytest.approx([-0.002, 0.004, 0.005], abs=1e-6)
    assert sc.chance_fraction == pytest.approx(1 - math.exp(-5 * 0.02 / 100))
    hist = sc.histogram(4)
    assert sum(hist["counts"]) == 3 and hist["edges"][0] == pytest.approx(-0.01)
    # the band keeps only 40-70 Hz glitches
    banded = coincidence_scores(
        "X1:W", strain, witness, tolerance=0.01, livetime=100.0, band=(40, 70)
    )
    assert banded.n_glitches == 3 and banded.coincidence_fraction == pytest.approx(1.0)


def test_fringe_frequency_of_a_sinusoid():
    fs, f_m, amp = 256.0, 0.2, 10.0  # um: peak velocity 2 pi f A = 12.57 um/s
    t = np.arange(int(200 * fs)) / fs
    x = amp * np.sin(2 * np.pi * f_m * t)
    f = fringe_frequency(x, fs, "um")
    peak = 2 * (2 * np.pi * f_m * amp * 1e-6) / 1.064e-6
    core = slice(int(20 * fs), int(180 * fs))
    # the 2 Hz low-pass passes 0.2 Hz untouched; central differences at 256 Hz: < 1e-4
    assert f[core].max() == pytest.approx(peak, rel=1e-3)
    block = Block(
        torch.as_tensor(x[None]),
        t0_ns=int(T0 * 1e9),
        sample_rate=fs,
        channels=("X1:DISP",),
        units=("um",),
    )
    trig = fringe_triggers(block, threshold=10.0)["X1:DISP"]
    # one span per velocity extremum where f > 10 Hz: t = k / (2 f_m), k = 0 .. 80
    assert len(trig) == 81
    # peaks at velocity extrema t = k / (2 f_m), away from the filter's edge transients
    phase = np.mod(trig["time"][1:-1] - T0, 1 / (2 * f_m))
    assert np.all(np.minimum(phase, 1 / (2 * f_m) - phase) < 0.01)
    assert np.all(trig["fstart"] == 10.0) and np.all(trig["snr"] > 1)
    with pytest.raises(GwtwinError, match="need a channel in a length unit"):
        fringe_frequency(x, fs, "T")
    with pytest.raises(GwtwinError, match="fringe lowpass must be in"):
        fringe_frequency(x, fs, "um", lowpass=200.0)


def test_shift_triggers_wraps_inside_segments():
    live = np.array([[T0, T0 + 100], [T0 + 200, T0 + 300]])
    tab = _table(T0 + np.array([10.0, 90.0, 250.0, 150.0]))
    out = shift_triggers(tab, live, 30.0)
    # 150 is outside the live time and dropped; 90 wraps to 20; 250 -> 280
    assert np.allclose(out["time"] - T0, [20.0, 40.0, 280.0])
    assert np.allclose(out["tend"] - out["tstart"], 0.02)


def test_config_defaults_and_yaml(tmp_path):
    cfg = SelectConfig()
    assert cfg.thresholds == [8, 10, 12, 15, 20, 50, 100, 300]
    assert cfg.windows == [0.1, 0.2, 0.5, 1, 2, 5]
    assert cfg.min_significance == 5 and cfg.strain_snr == 8
    assert cfg.strain_channel is None  # no detector's name as a default
    assert cfg.is_unsafe("V1:Hrec_hoft_4096Hz") and cfg.is_unsafe("V1:LSC_DARM_ERR")
    assert cfg.is_unsafe("H1:GDS-CALIB_STRAIN") and cfg.is_unsafe("H1:CAL-DELTAL_EXTERNAL_DQ")
    assert not cfg.is_unsafe("V1:ENV_CEB_MAG_N")
    assert not cfg.is_unsafe("H1:PEM-CS_MAG_LVEA_VERTEX_X_DQ")
    # products of the strain channel (gwtwin's own outputs) are unsafe whatever their name
    ligo = SelectConfig(strain_channel="L1:MY-H_OF_T", unsafe=[])
    assert ligo.is_unsafe("L1:MY-H_OF_T") and ligo.is_unsafe("L1:MY-H_OF_T_CLEANED")
    assert not ligo.is_unsafe("L1:PEM-EY_MAG_EBAY_SEIRACK_X_DQ")
    # slow channels get the slow-channel rule by their rate, whatever their name
    assert cfg.rule_for("V1:ASC_NE_TX_CORR", 128.0).qrange == (4.0, 16.0)
    assert cfg.rule_for("H1:ASC-DHARD_P_OUT_DQ", 64.0).segment_duration == 128.0
    assert cfg.rule_for("H1:PEM-CS_MAG_LVEA_VERTEX_X_DQ", 4096.0) is None
    assert cfg.rule_for("V1:ASC_NE_TX_CORR") is None  # rate unknown: a rate rule cannot apply
    named = SelectConfig(channel_triggers=[{"match": "*:MAG*", "qrange": (8.0, 32.0)}])
    assert named.rule_for("X1:MAG_1").qrange == (8.0, 32.0)
    path = tmp_path / "s.yaml"
    path.write_text("scan:\n  min_significance: 6\n  slides: {count: 3, step: 100}\n")
    loaded = load_config(path)
    assert loaded.min_significance == 6 and loaded.slides.count == 3
    assert load_config(loaded.model_dump()) == loaded


def test_example_config_validates():
    from pathlib import Path

    path = Path(__file__).parents[2] / "configs" / "select-default.yaml"
    assert load_config(path) == SelectConfig()


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"slides.cout: unknown key \(allowed here: count, step"):
        load_config({"slides": {"cout": 3}})
    with pytest.raises(ConfigError, match=r"bogus: unknown key \(allowed here: .*strain_channel"):
        load_config({"bogus": 1})
    with pytest.raises(ConfigError, match=r"min_significance: .*greater than 0"):
        load_config({"min_significance": -1})
    with pytest.raises(ConfigError, match="slides.step must be at least 10 x the largest window"):
        load_config({"slides": {"step": 20}})
    with pytest.raises(ConfigError, match=r"channel_triggers.0.method.*'auto', 'qtransform'"):
        load_config({"channel_triggers": [{"match": "*", "method": "wavelet"}]})
    with pytest.raises(ConfigError, match="selection config .* does not exist"):
        load_config(tmp_path / "missing.yaml")
