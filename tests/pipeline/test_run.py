"""``gwtwin run`` on the tiny scenario: the cheap steps (simulate, scan, dataset) are run once per
module and copied into each test's directory; the second run does nothing, deleting an output
re-runs only what depends on it, a missing input names the step to run first, config changes
re-run exactly the steps whose section changed; and the whole pipeline end to end."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from gwtwin.cli import main
from gwtwin.config import load_run_config
from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.pipeline import config_hash
from gwtwin.run import build_pipeline, default_steps, run_pipeline, run_status
from gwtwin.run.pipeline import _resolved

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "run-tiny.yaml"
CHEAP = "simulate,scan,dataset"


def quiet(_):
    pass


def tiny(**overrides):
    return load_run_config(TINY, overrides)


@pytest.fixture(scope="module")
def cheap_run(tmp_path_factory):
    """A run directory where simulate, scan and dataset ran on the tiny scenario."""
    run_dir = tmp_path_factory.mktemp("run") / "tiny"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # lalframe has no unit for urad
        result = run_pipeline(tiny(), run_dir, CHEAP, log=quiet, progress=False)
    assert result.ran == ["simulate", "scan", "dataset"]
    return run_dir


@pytest.fixture
def run_dir(cheap_run):
    """The cheap run, restored afterwards to how the fixture left it.

    It stays at its own path: the scan's trigger cache is keyed by the frames' path, so a copy
    elsewhere would recompute the triggers when the scan re-runs.
    """
    pristine = cheap_run.parent / "pristine"
    if not pristine.exists():
        shutil.copytree(cheap_run, pristine)
    yield cheap_run
    shutil.rmtree(cheap_run)
    shutil.copytree(pristine, cheap_run)


def test_the_run_writes_its_outputs_and_resolved_config(run_dir):
    for path in ("simulation/frames", "quicklook.png", "scan/selected_channels.json"):
        assert (run_dir / path).exists(), path
    assert (run_dir / "scan/triggers/V1-Hrec_hoft_4096Hz.h5").is_file()
    assert (run_dir / "dataset.h5").is_file()
    assert load_run_config(run_dir / "config.yaml") == tiny()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [manifest["steps"][s]["status"] for s in CHEAP.split(",")] == ["done"] * 3


def test_second_run_does_no_work(run_dir):
    lines = []
    result = run_pipeline(tiny(), run_dir, CHEAP, log=lines.append, progress=False)
    assert result.ran == [] and result.skipped == ["simulate", "scan", "dataset"]
    assert "[simulate] up to date, skipped" in lines
    assert any(line.startswith(f"run {run_dir}: ran none;") for line in lines)


def test_deleting_a_scan_file_reruns_only_the_scan(run_dir):
    (run_dir / "scan" / "channels.csv").unlink()
    lines = []
    result = run_pipeline(tiny(), run_dir, CHEAP, log=lines.append, progress=False)
    # the scan re-runs (from its trigger cache) and writes the same selection, so the dataset,
    # which reads selected_channels.json and the strain triggers, is still up to date
    assert result.ran == ["scan"]
    assert "[scan] running: output scan is missing" not in lines
    assert "[scan] running: output scan changed since the step wrote it" in lines
    assert (run_dir / "scan" / "channels.csv").is_file()


def test_deleting_outputs_reruns_the_steps_that_wrote_them(run_dir):
    (run_dir / "dataset.h5").unlink()
    shutil.rmtree(run_dir / "scan")
    result = run_pipeline(tiny(), run_dir, CHEAP, log=quiet, progress=False)
    assert result.ran == ["scan", "dataset"]
    assert [s.reason for s in result.steps if s.ran] == [
        "output scan is missing",
        "output dataset.h5 is missing",
    ]


def test_force_reruns_an_up_to_date_step(run_dir):
    result = run_pipeline(tiny(), run_dir, "scan", force=True, log=quiet, progress=False)
    assert result.ran == ["scan"] and result.steps[0].reason == "forced"


def test_a_missing_input_names_the_step_to_run_first(tmp_path):
    with pytest.raises(GwtwinError, match=r"step 'scan' needs .*simulation.*run that step first "):
        run_pipeline(tiny(), tmp_path / "fresh", "scan", log=quiet, progress=False)
    with pytest.raises(GwtwinError, match=r"--steps simulate\)"):
        run_pipeline(tiny(), tmp_path / "fresh", "scan,dataset", log=quiet, progress=False)


def test_execution_keys_rerun_nothing_and_a_section_change_reruns_its_step(run_dir):
    faster = tiny(**{"parallelism.workers": 2})
    assert run_pipeline(faster, run_dir, CHEAP, log=quiet, progress=False).ran == []
    changed = tiny(**{"dataset.stride": 2.0})
    assert run_pipeline(changed, run_dir, CHEAP, log=quiet, progress=False).ran == ["dataset"]


def test_config_hashes_follow_the_sections():
    """train.max_epochs re-runs train (and, through their inputs, what reads train's outputs)
    but not simulate, scan or dataset; scan's thresholds do not touch the simulation."""

    def hashes(config):
        pipeline = build_pipeline(config, "unused", progress=False)
        return {s.name: config_hash(s.config) for s in pipeline.steps}

    base = hashes(tiny())
    epochs = hashes(tiny(**{"train.max_epochs": 2}))
    assert [s for s in base if base[s] != epochs[s]] == ["train"]
    snr = hashes(tiny(**{"scan.strain_snr": 10.0}))
    assert [s for s in base if base[s] != snr[s]] == ["scan"]
    pipeline = build_pipeline(tiny(), "unused", progress=False)
    inputs = {s.name: s.inputs for s in pipeline.steps}
    assert "train/result.json" in inputs["clean"] and "clean" in inputs["evaluate"]


def test_status_lists_each_step(run_dir):
    status = dict(run_status(tiny(**{"dataset.stride": 2.0}), run_dir))
    assert status["simulate"] is None and status["scan"] is None
    assert status["dataset"] == "its configuration changed"
    assert status["train"] == "never run"


def test_run_status_cli(run_dir, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    # without CONFIG, the run directory's recorded config.yaml is used
    assert main(["run", "--run-dir", str(run_dir), "--status"]) == 0
    out = capsys.readouterr().out
    assert "using the run's recorded config" in out
    assert "│ simulate │ up to date" in out and "│ train    │ to run: never run" in out


def test_frames_sources_skip_simulation_and_name_their_strain(run_dir, tmp_path):
    path = str(run_dir / "simulation" / "frames")
    frames = {"source": {"kind": "frames", "path": path, "strain_channel": "*:Hrec_*"}}
    config = load_run_config(TINY, frames)
    # evaluate runs on frames too: the truth-free metrics (truth exists only for simulations)
    assert default_steps(config) == ["scan", "dataset", "train", "clean", "evaluate", "report"]
    # a glob names the strain channel: resolved against the frames' channels
    resolved = _resolved(config)
    assert resolved.source.strain_channel == resolved.scan.strain_channel == "V1:Hrec_hoft_4096Hz"
    with pytest.raises(ConfigError, match=r"\['simulate'\] need source\.kind 'simulator'.*renders"):
        run_pipeline(config, tmp_path / "real", "simulate,scan", log=quiet, progress=False)
    with pytest.raises(GwtwinError, match=r"unknown step\(s\) \['scna'\]; the steps are simulate"):
        run_pipeline(config, tmp_path / "real", "scna", log=quiet, progress=False)
    missing = load_run_config({"source": {"kind": "frames", "path": str(tmp_path / "none")}})
    with pytest.raises(GwtwinError, match=r"source\.path .*none does not exist"):
        run_pipeline(missing, tmp_path / "real", "scan", log=quiet, progress=False)
    unnamed = load_run_config({"source": {"kind": "frames", "path": path}})
    with pytest.raises(ConfigError, match=r"source\.strain_channel is required for kind 'frames'"):
        run_pipeline(unnamed, tmp_path / "real", "scan", log=quiet, progress=False)
    several = load_run_config(
        {"source": {"kind": "frames", "path": path, "strain_channel": "V1:*"}}
    )
    with pytest.raises(ConfigError, match=r"'V1:\*' matches \d+ channels, expected one"):
        run_status(several, tmp_path / "real")


def test_full_tiny_run_through_the_cli(run_dir, capsys):
    """Every step through ``gwtwin run``; then a training change re-runs train and what reads
    its outputs, not the data steps."""
    argv = ["run", str(TINY), "--run-dir", str(run_dir), "--quiet"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "ran train" in out and "up to date: simulate, scan, dataset" in out
        for path in ("train/result.json", "clean", "evaluate/evaluate.json", "report/index.html"):
            assert (run_dir / path).exists(), path
        assert "train: models:/gwtwin-witness-td@candidate" in out
        assert "evaluate:\n  witnessed_glitches: " in out  # the headline of evaluate.json
        # the online service on the run's frames (off by default): equal to the clean step
        assert main([*argv, "--set", "stream.enabled=true", "--steps", "stream"]) == 0
        capsys.readouterr()
        stream = json.loads((run_dir / "stream" / "summary.json").read_text())
        assert stream["status"]["seconds"] == 256 and stream["status"]["duplicated_seconds"] == 0
        assert stream["offline"]["relative"] < 1e-12
        assert stream["offline"]["compared_seconds"] > 200
        assert main([*argv, "--set", "train.max_epochs=2"]) == 0
        out = capsys.readouterr().out
        assert "[simulate] up to date" in out and "[dataset] up to date" in out
        for step in ("train", "clean", "evaluate", "report"):
            assert f"[{step}] running" in out, step
        # an interrupted training resumes from its last checkpoint
        manifest = json.loads((run_dir / "manifest.json").read_text())
        manifest["steps"]["train"]["status"] = "started"
        (run_dir / "manifest.json").write_text(json.dumps(manifest))
        lines = []
        config = load_run_config(TINY, {"train.max_epochs": 2})
        result = run_pipeline(config, run_dir, "train", log=lines.append, progress=False)
    assert result.ran == ["train"]
    assert any(line.startswith("[train] resuming the interrupted training from") for line in lines)
    assert any("last.ckpt" in line for line in lines)
