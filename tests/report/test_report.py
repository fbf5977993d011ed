"""The run report: built from a tiny run, checked as HTML and in headless Chromium.

The browser test needs Debian's ``chromium`` and ``chromium-driver``; the fixture installs them
with apt-get when they are missing and it runs as root (as CI does), and skips, saying why, where
it cannot. The screenshot is kept in ``test-artifacts/report.png``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gwtwin.errors import GwtwinError
from gwtwin.report.html import Report
from gwtwin.report.run import build_report

ARTIFACTS = Path(os.environ.get("GWTWIN_TEST_ARTIFACTS", "test-artifacts"))
CHANNELS = ["V1:Hrec_hoft_4096Hz", "V1:ENV_CEB_MAG_N", "V1:ENV_CEB_SEIS_N"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The whole pipeline of configs/run-tiny.yaml (simulate ... clean, evaluate, report), plus
    a `gwtwin triggers` file, in one run directory (~1 min)."""
    from gwtwin.config import load_run_config
    from gwtwin.run import run_pipeline
    from gwtwin.signal.scan import triggers_from_frames
    from gwtwin.signal.triggers import write_triggers

    run = tmp_path_factory.mktemp("run")
    config = load_run_config(Path(__file__).parents[2] / "configs" / "run-tiny.yaml")
    run_pipeline(config, run, log=lambda line: None, progress=False)
    write_triggers(run / "triggers.h5", triggers_from_frames(run / "simulation", CHANNELS))
    return run


def test_report_has_every_section(tiny_run):
    index = build_report(tiny_run)
    page = index.read_text()
    for anchor in (
        'id="scenario"',
        'id="triggers"',
        'id="channels"',
        'id="catalogue"',
        'id="channel-selection"',
        'id="training"',
        'id="cleaning-against-truth"',
        'id="cleaning-and-veto"',
        'id="metadata"',
        'id="families"',
        'id="flags"',
    ):
        assert anchor in page, anchor
    assets = sorted(p.name for p in (index.parent / "assets").iterdir())
    assert "quicklook.png" in assets and any(a.startswith("triggers-") for a in assets)
    assert 'href="../simulation/catalogue.csv"' in page  # links into the run, relative
    assert not (index.parent / "_plots").exists()


def test_report_errors(tmp_path):
    with pytest.raises(GwtwinError, match="run directory .* does not exist"):
        build_report(tmp_path / "nope")
    with pytest.raises(GwtwinError, match="nothing to report"):
        build_report(tmp_path)
    report = Report(tmp_path / "r", "t")
    with pytest.raises(GwtwinError, match="start a section"):
        report.paragraph("x")
    report.section("A")
    with pytest.raises(GwtwinError, match="2 values for 3 columns"):
        report.table([[1, 2]], ["a", "b", "c"])
    with pytest.raises(GwtwinError, match="figure .* does not exist"):
        report.figure(tmp_path / "none.png")


def _browser():
    """(chromium, chromedriver) paths, installing Debian's packages when missing and allowed."""
    need = [p for p in ("chromium", "chromedriver") if shutil.which(p) is None]
    if need and shutil.which("apt-get") and os.geteuid() == 0:
        packages = {"chromium": "chromium", "chromedriver": "chromium-driver"}
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", "--no-install-recommends"]
        done = subprocess.run([*cmd, *(packages[p] for p in need)], env=env, capture_output=True)
        if done.returncode != 0:  # stale package lists: update once and retry
            subprocess.run(["apt-get", "update"], env=env, capture_output=True)
            subprocess.run([*cmd, *(packages[p] for p in need)], env=env, capture_output=True)
    missing = [p for p in ("chromium", "chromedriver") if shutil.which(p) is None]
    if missing:
        pytest.skip(f"{missing} not installed and cannot be installed here (needs root + apt-get)")
    return shutil.which("chromium"), shutil.which("chromedriver")


def test_report_renders_in_headless_chromium(tiny_run):
    pytest.importorskip("selenium", reason="selenium is a test extra: pip install -e .[test]")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    chromium, chromedriver = _browser()
    index = build_report(tiny_run)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,2200",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        driver.get(index.resolve().as_uri())
        assert driver.title == "gwtwin run report"
        # tables rendered with rows
        for ident in ("channels", "catalogue", "triggers", "selection", "families", "flags"):
            rows = driver.find_elements(By.CSS_SELECTOR, f"#{ident} tbody tr")
            assert len(rows) > 0, ident
        # every image loaded (decoded, non-zero size): quick look, triggers, selection plots,
        # evaluation plots, accuracy curves, glitch panels
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) >= 8
        for img in images:
            ok = driver.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth > 0", img
            )
            assert ok, img.get_attribute("src")
        # clicking a numeric header sorts the table by it
        table = driver.find_element(By.ID, "catalogue")
        col = [h.text for h in table.find_elements(By.TAG_NAME, "th")].index("snr")
        table.find_elements(By.TAG_NAME, "th")[col].click()
        values = [
            float(r.find_elements(By.TAG_NAME, "td")[col].get_attribute("data-v"))
            for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")
        ]
        assert values == sorted(values) and len(values) > 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "report.png"))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
    finally:
        driver.quit()
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_selection_and_training_sections(tmp_path):
    """The sections read the files `gwtwin scan` and `gwtwin train` write (shapes as they write)."""
    import json

    import matplotlib.pyplot as plt

    scan = tmp_path / "scan"
    (scan / "plots").mkdir(parents=True)
    (scan / "channels.csv").write_text(
        "rank,channel,status,round,significance,slide_background,redundant_of\n"
        "1,V1:ENV_CEB_MAG_N,selected,1,39.5,0.0,\n"
        "2,V1:SBE_SDB1_LVDT_X,redundant of V1:SBE_SDB1_DISP_X,,12.0,0.0,V1:SBE_SDB1_DISP_X\n"
    )
    (scan / "rounds.json").write_text(json.dumps({"n_strain": 120, "livetime": 2040.0}))
    (scan / "selected_channels.json").write_text(
        json.dumps({"strain_channel": "V1:Hrec_hoft_4096Hz", "channels": [{"name": "V1:MAG"}]})
    )
    fig = plt.figure(figsize=(2, 2))
    fig.savefig(scan / "plots" / "significance.png")
    plt.close(fig)
    (tmp_path / "train").mkdir()
    result = {
        "metrics": {"removed_glitch": 0.815, "loss": 1.33},
        "best_val_loss": 1.3,
        "epochs": 23,
        "train_seconds": 262.0,
        "windows_per_second": 73.7,
        "n_parameters": 68184,
        "registered_model_name": "gwtwin-witness-td",
        "version": 1,
        "model_uri": "models:/gwtwin-witness-td/1",
        "tracking_uri": "sqlite:///x/mlflow.db",
        "workdir": str(tmp_path / "train"),
    }
    (tmp_path / "train" / "result.json").write_text(json.dumps(result))
    page = build_report(tmp_path).read_text()
    assert 'id="channel-selection"' in page and 'id="training"' in page
    assert "V1:SBE_SDB1_DISP_X" in page and "significance.png" in page
    assert "0.815" in page and "gwtwin-witness-td" in page and "mlflow ui" in page


def _clean_run(run: Path, *, new: bool) -> None:
    """A run directory with what `gwtwin clean` and `gwtwin evaluate` (without truth) write:
    ``new`` with the per-glitch outcome and power columns, else as an older gwtwin wrote it."""
    import json

    import numpy as np

    from gwtwin.infer.glitches import _write_metadata
    from gwtwin.infer.veto import METADATA_COLUMNS

    clean, evaluate = run / "clean", run / "evaluate"
    clean.mkdir(parents=True)
    evaluate.mkdir(parents=True)
    meta = {c: np.zeros(3) for c in METADATA_COLUMNS}
    meta.update(
        gps=np.array([1e9 + 1, 1e9 + 2, 1e9 + 3]),
        snr_before=np.array([30.0, 20.0, 10.0]),
        removed_sigma=np.array([14.5, -5.25, 0.0]),
        witnessed=np.array([True, False, False]),
        cleaned=np.array([True, False, False]),
        witness=np.array(["V1:MAG", "", ""]),
        outcome=np.array(["cleaned", "not_improved", "unwitnessed"]),
        change=np.array(["improved", "worsened", "untouched"]),
    )
    _write_metadata(clean / "metadata.csv", meta)
    counts = {"glitches": 3, "witnessed": 1, "cleaned": 1, "cleaning_failed": 1}
    power = {"recorded": False, "count": 3, "margin_sigma": None}
    if new:
        counts["outcomes"] = {"cleaned": 1, "not_improved": 1, "unwitnessed": 1}
        power = {
            "recorded": True,
            "count": 3,
            "margin_sigma": 3.0,
            **{"improved": 1, "worsened": 1, "untouched": 1},
            **{f"fraction_{k}": 1 / 3 for k in ("improved", "worsened", "untouched")},
            "median_fraction_power_removed": 0.125,
            "outcomes": {"cleaned": 1, "residual": 0, "withheld": 0, "not_improved": 1},
        }
    else:  # an older metadata.csv: the columns before the power ones
        lines = (clean / "metadata.csv").read_text().splitlines()
        keep = METADATA_COLUMNS.index("witness") + 1
        (clean / "metadata.csv").write_text(
            "\n".join(",".join(line.split(",")[:keep]) for line in lines) + "\n"
        )
    info = {
        "cleaned_channel": "V1:H_CLEANED",
        "strain_channel": "V1:H",
        "prediction_channel": "V1:H_PREDICTION",
        "model": {"uri": "models:/m/1", "channels": ["V1:MAG"]},
        "seconds": 64.0,
        "segments": [[1e9, 1e9 + 64]],
        "cleaning_applied_seconds": 24.0,
        "context_seconds": 20,
        "veto": {"counts": counts, "flags": {}},
    }
    (clean / "clean.json").write_text(json.dumps(info))
    snr = {"count": 3, "improved": 1, "worsened": 0, "untouched": 2, "snr_margin": 1.0}
    snr.update({"fraction_improved": 1 / 3, "fraction_worsened": 0.0, "fraction_untouched": 2 / 3})
    result = {
        "truth": False,
        "without_truth": {"glitches": snr, "glitch_power": power, "asd_ratio": {}},
        "not_computed_without_truth": {"injection SNR loss": "needs the injected waveforms"},
    }
    if not new:
        del result["without_truth"]["glitch_power"]  # an older evaluate.json
    (evaluate / "evaluate.json").write_text(json.dumps(result))


def test_cleaning_report_shows_outcomes_and_power_verdicts(tmp_path):
    """The per-glitch verdicts from the data alone and the outcomes, in the report; a run made
    before they existed reports them as not recorded."""
    _clean_run(tmp_path / "new", new=True)
    page = build_report(tmp_path / "new").read_text()
    for anchor in ('id="glitch_verdicts"', 'id="glitch_outcomes"', 'id="metadata"'):
        assert anchor in page, anchor
    assert "whitened power (3 sigma)" in page and "not_improved" in page
    assert '<th class="text">outcome</th>' in page and "<th>removed_sigma</th>" in page
    assert "-5.25" in page and "0.125" in page and "not recorded" not in page
    _clean_run(tmp_path / "old", new=False)
    page = build_report(tmp_path / "old").read_text()
    assert 'id="glitch_verdicts"' in page and 'id="metadata"' in page
    assert "not recorded" in page and "margin not recorded" in page
    assert "<th>removed_sigma</th>" not in page
    assert "power_before, power_removed" in page  # named as not recorded in metadata.csv
