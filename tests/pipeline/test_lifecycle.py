"""The model lifecycle on the tiny scenario: ``gwtwin retrain`` trains a challenger on the buffer,
scores champion and challenger on the validation span neither trained on, and promotes only a
challenger that passes every safety criterion and wins by the margin; the decision criteria on
constructed scores."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from gwtwin.cli import main
from gwtwin.config import load_run_config
from gwtwin.errors import GwtwinError
from gwtwin.lifecycle import LifecycleConfig, decide, lifecycle_spans
from gwtwin.run import run_pipeline

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "run-tiny.yaml"
START = 1_400_000_000
LIFECYCLE = ["lifecycle.buffer=128", "lifecycle.validation=128", "lifecycle.max_epochs=1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("lifecycle") / "tiny"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cfg = load_run_config(TINY, {"dataset": {"end": START + 128}})
        run_pipeline(
            cfg, run_dir, "simulate,scan,dataset,train", log=lambda _: None, progress=False
        )
    return run_dir


def test_spans_are_the_buffer_before_the_newest_validation_seconds(trained):
    frames = trained / "simulation" / "frames"
    spans = lifecycle_spans(frames, LifecycleConfig(buffer=100, validation=50))
    assert spans == {"buffer": [START + 106, START + 206], "validation": [START + 206, START + 256]}
    spans = lifecycle_spans(frames, LifecycleConfig(buffer=64, validation=64, end=START + 192))
    assert spans == {"buffer": [START + 64, START + 128], "validation": [START + 128, START + 192]}
    with pytest.raises(GwtwinError, match=r"needs \[1399999944, 1400000256\)"):
        lifecycle_spans(frames, LifecycleConfig(buffer=256, validation=56))


def test_a_challenger_that_does_not_win_by_the_margin_is_not_promoted(trained, capsys):
    from gwtwin.train.tracking import client

    args = ["retrain", str(TINY), "--run-dir", str(trained)]
    sets = [*LIFECYCLE, "lifecycle.margin=1.0"]  # no challenger gains a whole share
    assert main([*args, *sum((["--set", s] for s in sets), [])]) == 0
    (stamp,) = (trained / "lifecycle").iterdir()
    record = json.loads((stamp / "decision.json").read_text())
    assert record["spans"] == {
        "buffer": [START, START + 128],
        "validation": [START + 128, START + 256],
    }
    assert record["champion"]["version"] == 1 and record["challenger"]["version"] == 2
    assert record["challenger"]["warm_start"] is True
    assert record["promoted"] is False and record["decision"]["promote"] is False
    assert any("beats the champion" in k for k in record["decision"]["failed"])
    for role in ("champion", "challenger"):
        s = record["scores"][role]
        assert s["truth"] is True and 0 <= s["power_removed"] <= 1 and s["glitches"] > 0
    uri = json.loads((trained / "train" / "result.json").read_text())["tracking_uri"]
    c = client(uri)
    reg = c.get_registered_model("gwtwin-witness-td")
    aliases = {k: str(v) for k, v in reg.aliases.items()}
    assert aliases.get("challenger") == "2" and "production" not in aliases
    assert aliases.get("candidate") == "1"  # the train step's registration untouched
    run = c.get_run(record["mlflow_run_id"])
    assert run.data.tags["gwtwin.lifecycle.decision"] == "kept"
    assert run.info.artifact_uri.startswith((trained / "train").resolve().as_uri())
    assert run.data.metrics["challenger_power_removed"] == pytest.approx(
        record["scores"]["challenger"]["power_removed"]
    )
    assert "not promoted" in capsys.readouterr().out


def scores(power, asd=(0.999, 1.001), loss=0.001, worse=0):
    return {
        "power_removed": power,
        "asd_ratio_quiet": list(asd),
        "injection_max_snr_loss": loss,
        "glitches_worsened": worse,
    }


def test_decision_criteria_on_constructed_scores():
    cfg = LifecycleConfig(margin=0.02)
    assert decide(scores(0.80), scores(0.95), cfg)["promote"] is True
    worse = decide(scores(0.95), scores(0.80), cfg)
    assert worse["promote"] is False and len(worse["failed"]) == 1
    assert decide(scores(0.90), scores(0.91), cfg)["promote"] is False  # within the margin
    # better, but unsafe: noise added in quiet time, a signal lost, a glitch made worse
    for bad in (scores(0.99, asd=(0.99, 1.05)), scores(0.99, loss=0.05), scores(0.99, worse=2)):
        d = decide(scores(0.80), bad, cfg)
        assert d["promote"] is False and len(d["failed"]) == 1
    # no injections known (real data): not measured, does not block
    d = decide(scores(0.80), scores(0.95, loss=None), cfg)
    assert d["promote"] is True and len(d["not_measured"]) == 1
    # the primary score must be measured
    assert decide(scores(None), scores(0.95), cfg)["promote"] is False


def test_bad_lifecycle_keys_are_named():
    from gwtwin.errors import ConfigError

    with pytest.raises(ConfigError, match=r"lifecycle\.bufer: unknown key"):
        load_run_config(TINY, {"lifecycle": {"bufer": 10}})
    with pytest.raises(ConfigError, match=r"lifecycle\.validation"):
        load_run_config(TINY, {"lifecycle": {"validation": -1}})
