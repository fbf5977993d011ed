"""``gwtwin evaluate`` over frames, on oracle cleanings of the shared glitch scenario.

The oracle subtracts the truth of the witnessed couplings (the best possible model): every
witnessed glitch loses all its excess power, injections lose nothing, glitch-free stretches keep
their ASD off the witnessed power lines and lose the continuous mains coupling at them.  The
"do nothing" cleaning (cleaned = raw) must score zero everywhere.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gwtwin.cli import main
from gwtwin.data import Block, read
from gwtwin.data.frames import write_frames
from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.evaluate.run import EvaluateConfig, evaluate_run, load_evaluate_config

STRAIN = "V1:Hrec_hoft_4096Hz"
CLEANED = STRAIN + "_CLEANED"


def _fake_clean(scenario, directory, subtract: np.ndarray):
    """A clean-step output directory whose cleaned strain is ``raw - subtract``."""
    raw = read(scenario["dir"] / "frames", [STRAIN]).block
    cleaned = Block(
        raw.data - torch.from_numpy(subtract)[None], raw.t0_ns, raw.sample_rate, (CLEANED,)
    )
    write_frames(cleaned, directory / "frames", tag="GWTWIN_CLEANED", frame_length=64)
    span = [raw.span[0], raw.span[1]]
    (directory / "clean.json").write_text(
        json.dumps(
            {
                "strain_channel": STRAIN,
                "cleaned_channel": CLEANED,
                "segments": [span],
                "cleaning_applied": [span],
            }
        )
    )
    return directory


@pytest.fixture(scope="module")
def oracle(glitch_scenario, tmp_path_factory):
    s = glitch_scenario
    clean = _fake_clean(s, tmp_path_factory.mktemp("oracle-clean"), s["coupled"])
    out = tmp_path_factory.mktemp("oracle-eval")
    # the scenario is dense: short quiet stretches need short Welch segments
    config = EvaluateConfig(quiet_pad=0.5, fftlength=2.0)
    return evaluate_run(s["dir"], clean, out, config, log=str), out


def test_oracle_removes_all_witnessed_power(oracle):
    result, out = oracle
    glitches = result["glitches"]
    assert glitches["all"]["count"] >= 10
    assert glitches["all"]["median_fraction_removed"] == pytest.approx(1.0, abs=1e-9)
    assert glitches["all"]["residual_below_limit"] == 1.0
    for family in ("scatter", "em", "powerline"):
        assert glitches[family]["count"] >= 2
    h = result["headline"]
    # the oracle takes nothing of the signals: what it subtracts is glitch power; the matched
    # SNRs move a little where a glitch overlaps an injection in this dense scenario
    inj = result["injections"]
    assert len(inj["id"]) == 3
    np.testing.assert_allclose(inj["snr_loss"], 0, atol=1e-9)
    # an injection a witnessed glitch overlaps is reported apart from the clear ones
    under = np.asarray(inj["overlapping_glitch"]) >= 0
    for key, group in (("injection_max_snr_loss", ~under), ("_under_glitches", under)):
        key = key if key.startswith("injection") else "injection_max_snr_loss" + key
        assert (h[key] is None) == (not group.any())
        assert h[key] is None or abs(h[key]) < 1e-9
    np.testing.assert_allclose(inj["snr_after"], inj["snr_before"], rtol=0.01)
    crit = result["criteria"]
    assert crit["median_fraction_removed >= 0.9"]["pass"]
    assert crit["injection SNR loss < 1%"]["pass"] is (True if (~under).any() else None)
    for name in ("per_glitch.csv", "injections.csv", "asd_ratio.csv", "asd_ratio.png"):
        assert (out / name).stat().st_size > 0


def test_oracle_asd_ratio_no_added_noise_and_lines_removed(oracle):
    result, _ = oracle
    asd = result["asd_ratio"]
    assert asd["witnessed_lines"] == [50.0, 150.0, 250.0]
    assert asd["line_width"] == pytest.approx(2.3 + 1.0)
    assert asd["n_segments_quiet"] >= 5
    # the oracle removes exactly the coupled noise: nothing else changes off the lines...
    assert 0.98 <= asd["quiet_off_lines"]["min"] <= asd["quiet_off_lines"]["max"] <= 1.02
    assert result["criteria"]["quiet ASD ratio in [0.98, 1.02] off the witnessed lines"]["pass"]
    # ... and the continuous mains coupling is gone at the lines
    assert asd["quiet_at_lines"]["min"] < 0.5


def test_doing_nothing_scores_zero(glitch_scenario, tmp_path):
    s = glitch_scenario
    clean = _fake_clean(s, tmp_path / "clean", np.zeros_like(s["raw"]))
    config = EvaluateConfig(quiet_pad=0.5, fftlength=2.0)
    result = evaluate_run(s["dir"], clean, tmp_path / "eval", config, log=str)
    assert result["glitches"]["all"]["median_fraction_removed"] == pytest.approx(0.0, abs=1e-9)
    asd = result["asd_ratio"]
    assert asd["quiet_all_bins"]["min"] == pytest.approx(1.0)
    assert asd["quiet_all_bins"]["max"] == pytest.approx(1.0)
    # leaving the glitches in differs from the ideal cleaning only where one overlaps a signal
    inj = result["injections"]
    np.testing.assert_allclose(inj["snr_after"], inj["snr_before"], atol=1e-12)
    losses = [
        result["headline"][k]
        for k in ("injection_max_snr_loss", "injection_max_snr_loss_under_glitches")
    ]
    assert all(v is None or abs(v) < 0.01 for v in losses) and any(v is not None for v in losses)


def test_evaluate_cli_and_errors(glitch_scenario, oracle, tmp_path):
    s = glitch_scenario
    clean = _fake_clean(s, tmp_path / "clean", s["coupled"])
    start = s["t0"] + 64
    code = main(
        ["evaluate", str(s["dir"]), str(clean), "-o", str(tmp_path / "ev"), "--start", str(start)]
    )
    assert code == 0
    result = json.loads((tmp_path / "ev" / "evaluate.json").read_text())
    assert result["span"][0] == start
    assert 0 < result["glitches"]["all"]["count"] < oracle[0]["glitches"]["all"]["count"]
    with pytest.raises(GwtwinError, match="gwtwin evaluate needs .*clean.json"):
        evaluate_run(s["dir"], tmp_path, tmp_path / "x", log=str)
    with pytest.raises(GwtwinError, match=r"truth exists only for simulated data"):
        evaluate_run(clean, clean, tmp_path / "x", log=str)
    with pytest.raises(GwtwinError, match="does not overlap the cleaned segments"):
        evaluate_run(s["dir"], clean, tmp_path / "x", EvaluateConfig(start=1e10), log=str)
    with pytest.raises(ConfigError, match=r"quiet_pd: unknown key \(allowed here: .*quiet_pad"):
        load_evaluate_config({"quiet_pd": 1})
    with pytest.raises(ConfigError, match=r"fftlength: .*greater than 0.*found: -1"):
        load_evaluate_config({"fftlength": -1})


def test_flag_figures_count_strain_triggers_like_hveto(tmp_path):
    """Efficiency on the raw-strain triggers inside target glitches, deadtime of the flag in the
    evaluated span; the catalogue-peak share beside it."""
    from gwtwin.data.flags import make_flag, read_flags, write_flags
    from gwtwin.evaluate.flags import flag_figures
    from gwtwin.signal.triggers import TRIGGER_DTYPE, Triggers, write_triggers

    clean = tmp_path / "clean"
    (clean / "flags").mkdir(parents=True)
    (clean / "triggers").mkdir()
    known = np.array([[0.0, 100.0]])
    flags = [
        make_flag("V1:GWTWIN-WITNESSED", np.array([[10.0, 12.0], [50.0, 51.0]]), known),
        make_flag("V1:GWTWIN-UNWITNESSED", np.array([[80.0, 80.5]]), known),
        make_flag("V1:GWTWIN-CLEANING_FAILED", np.zeros((0, 2)), known),
    ]
    write_flags(flags, clean / "flags" / "gwtwin-veto", formats=("h5",))
    rows = np.zeros(6, TRIGGER_DTYPE)
    # two triggers in the scatter glitch (one flagged), one in the blip, one quiet trigger, one
    # too weak, one in the glitch outside the evaluated span
    rows["time"] = [10.5, 13.0, 80.2, 30.0, 50.5, 95.0]
    rows["snr"] = [12.0, 9.0, 20.0, 15.0, 6.0, 30.0]
    write_triggers(clean / "triggers" / "raw.h5", Triggers({"V1:STRAIN": rows}, (0.0, 100.0), {}))
    table = {
        "family": np.array(["scatter", "blip", "em", "em"]),
        "snr": np.array([30.0, 10.0, 9.0, 40.0]),
        "gps_peak": np.array([11.0, 80.2, 50.4, 95.0]),
        "gps_start": np.array([9.0, 80.1, 50.0, 94.0]),
        "gps_end": np.array([14.0, 80.3, 50.8, 96.0]),
    }
    out = flag_figures(clean, table, EvaluateConfig(), read_flags, [(0.0, 90.0)])
    w = out["V1:GWTWIN-WITNESSED:1"]
    assert w["n_glitches"] == 2 and w["n_vetoed"] == 1  # 10.5 in, 13.0 out; 50.5 too weak
    assert w["deadtime"] == pytest.approx(3.0 / 90.0)
    assert w["efficiency_over_deadtime"] == pytest.approx(0.5 / (3.0 / 90.0))
    # catalogue peaks at SNR >= 8 inside [0, 90): 11.0 (flagged) and 50.4 (flagged)
    assert w["catalogue_n_glitches"] == 2 and w["catalogue_efficiency"] == 1.0
    u = out["V1:GWTWIN-UNWITNESSED:1"]
    assert u["n_glitches"] == 1 and u["efficiency"] == 1.0
    assert u["deadtime"] == pytest.approx(0.5 / 90.0)
    assert out["V1:GWTWIN-CLEANING_FAILED:1"]["efficiency"] == 0.0


def test_truth_free_evaluation_of_real_data(glitch_scenario, tmp_path):
    """Without a simulation only what the data say: a cleaning that changed nothing has an ASD
    ratio of exactly 1 (the same Welch segments) and the truth metrics are listed as not
    computable; the raw frames come from clean.json's record of its source."""
    s = glitch_scenario
    clean = _fake_clean(s, tmp_path / "clean", np.zeros_like(s["coupled"]))
    info = json.loads((clean / "clean.json").read_text())
    with pytest.raises(GwtwinError, match=r"does not record the frames it cleaned: give frames="):
        evaluate_run(None, clean, tmp_path / "x", log=str)
    info["source"] = str(s["dir"] / "frames")
    info["veto"] = {"margin_sigma": 3.0}
    (clean / "clean.json").write_text(json.dumps(info))
    meta = _handmade_metadata(s["t0"] + np.array([20.0, 40.0, 60.0, 80.0, 1e6]))
    _write_metadata(clean / "metadata.csv", meta)  # the last row lies outside the span
    config = EvaluateConfig(quiet_pad=0.5, fftlength=2.0)
    result = evaluate_run(None, clean, tmp_path / "ev", config, log=str)
    assert result["truth"] is False and "criteria" not in result and "glitches" not in result
    assert set(result["not_computed_without_truth"]) >= {
        "residual SNR of witnessed glitches",
        "injection SNR loss",
    }
    asd = result["without_truth"]["asd_ratio"]
    for key in ("quiet", "overall"):
        assert asd[key]["min"] == asd[key]["max"] == 1.0 and asd[key]["n_segments"] > 0
    assert result["headline"]["asd_ratio_quiet"] == [1.0, 1.0]
    files = ("evaluate.json", "asd_ratio_data.csv", "glitch_changes.csv", "asd_ratio_data.png")
    for name in (*files, "glitch_power.png"):
        assert (tmp_path / "ev" / name).is_file()
    # the power verdicts the clean step recorded, beside the trigger-SNR ones
    power = result["without_truth"]["glitch_power"]
    assert power["recorded"] and power["count"] == 4 and power["margin_sigma"] == 3.0
    assert (power["improved"], power["worsened"], power["untouched"]) == (2, 1, 1)
    assert power["outcomes"]["cleaned"] == 1 and power["outcomes"]["not_improved"] == 1
    assert result["without_truth"]["glitches"]["count"] == 4
    head = result["headline"]
    assert (head["glitches_improved_power"], head["glitches_worsened_power"]) == (2, 1)
    assert head["power_margin_sigma"] == 3.0
    import csv

    with (tmp_path / "ev" / "glitch_changes.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["power_change"] for r in rows] == ["improved", "worsened", "untouched", "improved"]
    assert [r["outcome"] for r in rows] == ["cleaned", "not_improved", "withheld", "residual"]
    assert float(rows[0]["fraction_power_removed"]) == pytest.approx(0.8)


def test_oracle_reports_truth_free_metrics_beside_truth(oracle):
    result, out = oracle
    assert result["truth"] is True
    asd = result["without_truth"]["asd_ratio"]
    # removing the coupled truth removes power: the data-only ratio shows it without truth
    assert asd["overall"]["median"] < 1.0 and asd["overall"]["min"] < 0.5
    assert asd["overall"]["bins_above_1.02"] == 0
    assert (out / "glitch_changes.png").is_file()


def _handmade_metadata(gps):
    """A metadata table as the clean step writes it, with one glitch per outcome kind."""
    from gwtwin.infer.veto import METADATA_COLUMNS, typed_metadata

    n = len(gps)
    rows = {
        "gps": gps,
        "snr_before": [30.0, 20.0, 12.0, 40.0, 9.0],
        "snr_after": [0.0, 21.0, 12.2, 25.0, 9.0],
        "power_before": [1000.0, 500.0, 400.0, 2000.0, 300.0],
        "power_after": [200.0, 600.0, 400.0, 1000.0, 300.0],
        "power_removed": [800.0, -100.0, 0.0, 1000.0, 0.0],
        "removed_sigma": [14.0, -5.0, 0.0, 20.0, 0.0],
        "outcome": ["cleaned", "not_improved", "withheld", "residual", "unwitnessed"],
        "change": ["improved", "worsened", "untouched", "improved", "untouched"],
        "witnessed": [True, False, False, True, False],
        "cleaned": [True, False, False, False, False],
    }
    out = {c: np.asarray(rows.get(c, np.zeros(n)))[:n] for c in METADATA_COLUMNS}
    out["witness"] = np.full(n, "")
    out["tstart"], out["tend"] = out["gps"] - 0.1, out["gps"] + 0.1
    return typed_metadata(out)


def _write_metadata(path, meta):
    from gwtwin.infer.glitches import _write_metadata as write

    write(path, meta)


def test_power_verdicts_from_metadata():
    """The power-based verdict per glitch, counted from the metadata's columns; an older
    metadata.csv without them reads as not recorded."""
    from gwtwin.evaluate.datadriven import glitch_power_changes

    meta = _handmade_metadata(np.arange(5.0))
    p = glitch_power_changes(meta, margin_sigma=3.0)
    assert p["recorded"] and p["count"] == 5 and p["margin_sigma"] == 3.0
    assert (p["improved"], p["worsened"], p["untouched"]) == (2, 1, 2)
    assert p["fraction_improved"] == 0.4 and p["fraction_worsened"] == 0.2
    # power_removed / power_before: 0.8, -0.2, 0, 0.5, 0 -> median 0
    assert p["median_fraction_power_removed"] == 0.0
    assert p["outcomes"] == {
        "cleaned": 1,
        "residual": 1,
        "withheld": 1,
        "not_improved": 1,
        "unwitnessed": 1,
    }
    old = {k: meta[k] for k in ("gps", "snr_before", "snr_after", "witnessed", "cleaned")}
    p = glitch_power_changes(old)
    assert p == {"recorded": False, "count": 5, "margin_sigma": None}
    empty = glitch_power_changes({k: v[:0] for k, v in meta.items()}, 3.0)
    assert empty["count"] == 0 and empty["fraction_improved"] is None
    assert empty["median_fraction_power_removed"] is None


def test_glitch_verdicts_from_metadata():
    from gwtwin.evaluate.datadriven import glitch_changes

    meta = {
        "snr_before": np.array([20.0, 10.0, 9.0, 12.0]),
        "snr_after": np.array([0.0, 9.5, 11.0, np.nan]),  # nan: no cleaned trigger at all
    }
    g = glitch_changes(meta, snr_margin=1.0)
    assert (g["improved"], g["untouched"], g["worsened"]) == (2, 1, 1)
    assert list(g["change"]) == ["improved", "untouched", "worsened", "improved"]
    assert g["power_removed"][0] == 1.0 and g["power_removed"][2] < 0
    assert glitch_changes({})["count"] == 0
