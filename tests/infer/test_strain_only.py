"""Real data without witnesses: `gwtwin glitches` on strain files in GWOSC's layouts finds and
flags the glitches in DQ-good time only, and `gwtwin report` shows them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from gwtwin.cli import main
from gwtwin.data.flags import read_flags
from gwtwin.errors import GwtwinError
from gwtwin.infer.strain_only import StrainFlagConfig, flag_strain_glitches

# the GWOSC-layout writers of the data tests (4 kHz HDF5 and 16 kHz GWF, with DQ masks)
_spec = importlib.util.spec_from_file_location(
    "gwosc_layout", Path(__file__).parents[1] / "data" / "test_gwosc.py"
)
gwosc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gwosc)


@pytest.fixture(scope="module")
def hdf5_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("gwosc") / "H-H1_GWOSC_4KHZ_R1-1126259440-64.hdf5"
    return gwosc.write_gwosc_hdf5(path)


def test_glitches_of_a_gwosc_hdf5_file_flagged_in_data_time(hdf5_file, tmp_path):
    out = tmp_path / "glitches"
    assert main(["glitches", str(hdf5_file), "-o", str(out)]) == 0
    info = json.loads((out / "glitches.json").read_text())
    assert info["strain_channel"] == "H1:GWOSC-4KHZ_R1_STRAIN"  # the file's only strain channel
    assert info["dq_bits"] == ["DATA"]
    # every injected glitch (SNR 40) is found, once, near its time
    t = np.array([gwosc.T0 + g[0] for g in gwosc.GLITCHES])
    rows = np.genfromtxt(out / "glitches.csv", delimiter=",", names=True)
    gps = np.atleast_1d(rows["gps"])
    assert all(np.min(np.abs(gps - tc)) < 0.1 for tc in t)
    # no data (DATA off, NaN strain) is never known time; the flag is only where glitches are
    flag = read_flags(out / "flags" / "gwtwin-unwitnessed.h5")["H1:GWTWIN-UNWITNESSED:1"]
    gap = (gwosc.T0 + gwosc.DATA_GAP[0], gwosc.T0 + gwosc.DATA_GAP[1])
    assert all(s[1] <= gap[0] or s[0] >= gap[1] for s in flag.known)
    assert all(any(a <= tc <= b for a, b in flag.active) for tc in t)
    assert abs(flag.active) < 0.1 * abs(flag.known)
    assert info["flag"]["name"] == "H1:GWTWIN-UNWITNESSED:1"
    # and triggers never lie outside the analysed time
    table = np.genfromtxt(out / "glitches.csv", delimiter=",", names=True)
    for a, b in zip(np.atleast_1d(table["tstart"]), np.atleast_1d(table["tend"]), strict=True):
        assert any(k0 <= a and b <= k1 for k0, k1 in info["known"])
    # the report of that directory alone
    assert main(["report", str(out)]) == 0
    html = (out / "report" / "index.html").read_text()
    assert "Strain glitches (no witness)" in html and "H1:GWTWIN-UNWITNESSED:1" in html


def test_glitches_at_16khz_gwf(tmp_path):
    path = gwosc.write_gwosc_gwf(tmp_path / "H-H1_GWOSC_16KHZ_R1-1126259440-32.gwf")
    info = flag_strain_glitches(path, tmp_path / "out", log=str)
    assert info["strain_channel"] == "H1:GWOSC-16KHZ_R1_STRAIN"
    rows = np.genfromtxt(tmp_path / "out" / "glitches.csv", delimiter=",", names=True)
    freq = np.atleast_1d(rows["frequency"])
    assert np.any(freq > 2000)  # the 3 kHz glitch: only 16 kHz data can show it


def test_glitch_flag_errors(hdf5_file, tmp_path):
    with pytest.raises(GwtwinError, match=r"'L1:\*' matches none of the 1 channels"):
        flag_strain_glitches(hdf5_file, tmp_path, "L1:*", log=str)
    # a 14 s stretch alone: the error states the frequency range it can support
    with pytest.raises(GwtwinError, match=r"too short for .*supports f >= [\d.]+ Hz"):
        flag_strain_glitches(
            hdf5_file,
            tmp_path,
            config=StrainFlagConfig(frange=(10.0, 1000.0)),
            start=gwosc.T0 + 22,
            end=gwosc.T0 + 36,
            log=str,
        )
