"""Any detector, any data: ``gwtwin run`` end to end on a LIGO-like simulation and on frames that
gwtwin's simulator did not write (``examples/write_foreign_frames.py``), with nothing in the
pipeline naming a detector."""

from __future__ import annotations

import importlib.util
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from gwtwin.cli import main
from gwtwin.data import find_frames, list_channels
from gwtwin.data.flags import read_flags
from gwtwin.infer.glitches import read_metadata

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FAST_TRAINING = [
    "--set",
    "train.max_epochs=2",
    "--set",
    "train.batch_size=4",
    "--set",
    "train.model_kwargs={hidden: 16, products: 4, context_levels: 1, context_channels: 8}",
    "--set",
    "train.trainer={accelerator: cpu, limit_train_batches: 8, limit_val_batches: 4}",
    "--set",
    "parallelism.workers=1",
    "--set",
    "parallelism.torch_threads=1",
]


def _run(argv) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert main(argv) == 0


@pytest.fixture(scope="module")
def ligo_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ligo") / "run"
    _run(["run", str(ROOT / "configs" / "run-ligo-tiny.yaml"), "--run-dir", str(run), "--quiet"])
    return run


def test_ligo_like_run_end_to_end(ligo_run):
    run = ligo_run
    frames = find_frames(run / "simulation" / "frames")
    assert {f.observatory for f in frames} == {"H"}
    assert "H1:GDS-CALIB_STRAIN" in list_channels(run / "simulation" / "frames")
    selected = json.loads((run / "scan" / "selected_channels.json").read_text())
    names = [c["name"] for c in selected["channels"]]
    assert selected["strain_channel"] == "H1:GDS-CALIB_STRAIN"
    assert "H1:PEM-CS_MAG_LVEA_VERTEX_X_DQ" in names and "H1:SUS-ETMX_L2_WIT_L_DQ" in names
    # the 60 Hz mains monitor is found by its coherence with strain at the mains harmonics
    mains = next(c for c in selected["channels"] if c["name"] == "H1:PEM-CS_MAINSMON_EBAY_1_DQ")
    assert mains["method"] == "coherence"
    assert any(lo <= 60.0 <= hi for lo, hi in mains["coherence_bands"])
    assert not any(lo <= 50.0 <= hi for lo, hi in mains["coherence_bands"])
    assert all(n.startswith("H1:") for n in names)
    # outputs named from the input: H- files, <STRAIN>_CLEANED / _PREDICTION, H1:GWTWIN- flags
    cleaned = find_frames(run / "clean" / "frames")
    assert cleaned and {f.observatory for f in cleaned} == {"H"}
    assert set(list_channels(run / "clean" / "frames")) == {
        "H1:GDS-CALIB_STRAIN_CLEANED",
        "H1:GDS-CALIB_STRAIN_PREDICTION",
    }
    flags = read_flags(run / "clean" / "flags" / "gwtwin-veto.h5")
    assert sorted(flags) == [
        "H1:GWTWIN-CLEANING_FAILED:1",
        "H1:GWTWIN-UNWITNESSED:1",
        "H1:GWTWIN-WITNESSED:1",
    ]
    result = json.loads((run / "evaluate" / "evaluate.json").read_text())
    # the evaluation knows the 60 Hz lines are the witnessed ones (50 Hz is not a line here)
    assert result["asd_ratio"]["witnessed_lines"][:3] == [60.0, 180.0, 300.0]
    assert result["headline"]["per_family_median_fraction_removed"]["em"] > 0.8
    assert (run / "report" / "index.html").is_file()


def _example_writer():
    spec = importlib.util.spec_from_file_location("foreign", EXAMPLES / "write_foreign_frames.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def foreign_run(tmp_path_factory):
    """The documented recipe: frames from a plain gwpy script, a run config naming only the frame
    directory and the strain channel (as a glob), run in the directory holding ``frames/``."""
    work = tmp_path_factory.mktemp("foreign")
    writer = _example_writer()
    truth = writer.write(work / "frames", duration=384.0, seed=3)
    shutil.copy(EXAMPLES / "foreign-frames.yaml", work / "foreign-frames.yaml")
    import os

    cwd = os.getcwd()
    os.chdir(work)
    try:
        _run(["run", "foreign-frames.yaml", "--run-dir", "run", "--quiet", *FAST_TRAINING])
    finally:
        os.chdir(cwd)
    return work / "run", writer, truth


def test_foreign_frames_select_train_clean_without_truth(foreign_run):
    run, writer, truth = foreign_run
    config = (run / "config.yaml").read_text()
    assert f"strain_channel: {writer.STRAIN}" in config  # the glob, resolved in the frames
    selected = json.loads((run / "scan" / "selected_channels.json").read_text())
    # witnesses are chosen from every channel found: the coupled 256 Hz magnetometer (no unit),
    # not the decoy seismometer
    assert [c["name"] for c in selected["channels"]] == [writer.MAG]
    assert selected["channels"][0]["sample_rate"] == writer.MAG_RATE
    assert set(list_channels(run / "clean" / "frames")) == {
        f"{writer.STRAIN}_CLEANED",
        f"{writer.STRAIN}_PREDICTION",
    }
    assert {f.observatory for f in find_frames(run / "clean" / "frames")} == {"K"}
    meta = read_metadata(run / "clean" / "metadata.csv")
    applied = json.loads((run / "clean" / "clean.json").read_text())["cleaning_applied"]

    def near(times, tol):
        gps = np.asarray(times) + writer.START  # the script draws times from the start
        return np.array([np.min(np.abs(gps - g)) < tol for g in meta["gps"]])

    def cleaned_time(g):
        return any(a + 1 <= g <= b - 1 for a, b in applied)

    magnetic = near(truth["magnetic"], 0.3) & np.array([cleaned_time(g) for g in meta["gps"]])
    whistles = near(truth["whistles"], 0.3)
    assert magnetic.sum() >= 20 and whistles.sum() >= 5
    # the magnetic glitches are explained by the magnetometer and cleaned
    assert np.mean(meta["witnessed"][magnetic]) >= 0.9
    assert set(meta["witness"][magnetic & meta["witnessed"]]) == {writer.MAG}
    assert np.median(meta["snr_after"][magnetic] / meta["snr_before"][magnetic]) < 0.3
    # the unknown family has no witness: flagged, not cleaned
    assert not meta["witnessed"][whistles].any()
    flags = read_flags(run / "clean" / "flags" / "gwtwin-veto.h5")
    assert "K1:GWTWIN-UNWITNESSED:1" in flags
    # no truth: evaluation gives what the data say and names what needs truth
    result = json.loads((run / "evaluate" / "evaluate.json").read_text())
    assert result["truth"] is False
    assert "injection SNR loss" in result["not_computed_without_truth"]
    assert result["headline"]["glitches_improved"] >= 0.9 * magnetic.sum()
    assert result["headline"]["glitches_worsened"] == 0
    html = (run / "report" / "index.html").read_text()
    assert "Cleaning from the data alone" in html and "Not computable without truth" in html
