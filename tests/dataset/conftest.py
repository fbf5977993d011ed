"""Scenarios for the dataset tests: a small simulation and ramp frames (rendered once)."""

import json
import warnings

import numpy as np
import pytest

from gwtwin.data import Block, write_frames
from gwtwin.simulate import SimulationConfig, Simulator

START = 1_400_000_000
STRAIN = "V1:Hrec_hoft_4096Hz"
WITNESSES = ["V1:SBE_SDB1_DISP_X", "V1:ENV_CEB_MAG_N", "V1:ENV_CEB_UPS_VOLT_R", "V1:ASC_NE_TX_CORR"]


def write_selected(path, witnesses=WITNESSES, strain=STRAIN, rates=None):
    """A ``selected_channels.json`` as the selection step writes it."""
    rates = rates or {}
    doc = {
        "format": "gwtwin-selected-channels/1",
        "strain_channel": strain,
        "span": [START, START + 128],
        "channels": [
            {"name": c, "sample_rate": rates.get(c), "unit": "", "delay": 0.0, "band": [10, 500]}
            for c in witnesses
        ],
        "redundant": [{"name": "V1:SBE_SDB1_LVDT_X", "of": "V1:SBE_SDB1_DISP_X"}],
    }
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="session")
def sim(tmp_path_factory):
    """128 s of the simulated interferometer (~15 glitches), no decoys or injections."""
    out = tmp_path_factory.mktemp("sim-dataset")
    config = SimulationConfig.model_validate(
        {
            "duration": 128,
            "start": START,
            "seed": 21,
            "scatter": {"rate": 100.0},
            "em": {"rate": 150.0},
            "powerline": {"rate": 100.0},
            "blip": {"rate": 50.0},
            "decoys": {"enabled": False},
            "injections": {"enabled": False},
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # lalframe has no unit for urad
        Simulator(config).run(out, workers=2, progress=False)
    return out


@pytest.fixture(scope="session")
def selected(sim):
    return write_selected(sim / "selected_channels.json")


RAMP_DURATION = 96
RAMP_FRAME = 16


@pytest.fixture(scope="session")
def ramp_frames(tmp_path_factory):
    """Frames of noise strain (4096 Hz) and ramps: ``V1:RAMP_1024`` holds its sample index
    since ``START`` (1024 Hz), ``V1:RAMP_256`` likewise at 256 Hz; the frame covering
    ``[START + 48, START + 64)`` is removed (a gap) and ``V1:RAMP_256`` is NaN over
    ``[START + 20, START + 20.5)``."""
    out = tmp_path_factory.mktemp("ramp") / "frames"
    rng = np.random.default_rng(5)
    strain = Block.create(
        rng.standard_normal(RAMP_DURATION * 4096) * 1e-21, START, 4096, "V1:STRAIN", ["strain"]
    )
    r1024 = Block.create(
        np.arange(RAMP_DURATION * 1024, dtype=np.float64), START, 1024, "V1:RAMP_1024", ["V"]
    )
    r256 = np.arange(RAMP_DURATION * 256, dtype=np.float64)
    r256[20 * 256 : int(20.5 * 256)] = np.nan
    r256 = Block.create(r256, START, 256, "V1:RAMP_256", ["V"])
    files = write_frames([strain, r1024, r256], out, frame_length=RAMP_FRAME)
    gap = [f for f in files if f"-{START + 48}-" in f.name]
    assert len(gap) == 1
    gap[0].unlink()
    return out
