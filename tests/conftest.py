"""Shared fixtures: environment for headless plotting and MLflow, small simulated scenarios."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


import numpy as np  # noqa: E402
import pytest  # noqa: E402

START = 1_400_000_000
STRAIN = "V1:Hrec_hoft_4096Hz"


@pytest.fixture(scope="session")
def glitch_scenario(tmp_path_factory):
    """192 s dense with every glitch family and 3 injections, no decoys, rendered once.

    Returns the directory and what oracle tests need: raw strain, the truth of the witnessed
    couplings and of the injections, the reference whitening (median Welch PSD of the raw strain)
    and the truth catalogue.
    """
    from gwtwin.data import read
    from gwtwin.evaluate.metrics import WITNESSED_FAMILIES
    from gwtwin.signal.spectral import psd_block
    from gwtwin.signal.whitening import Whitener
    from gwtwin.simulate import SimulationConfig, Simulator
    from gwtwin.simulate.engine import read_catalogue

    out = tmp_path_factory.mktemp("sim-glitches")
    config = SimulationConfig.model_validate(
        {
            "duration": 192,
            "frame_length": 64,
            "start": START,
            "seed": 12,
            "scatter": {"rate": 150.0},
            "em": {"rate": 400.0},
            "powerline": {"rate": 150.0},
            "blip": {"rate": 200.0},
            "decoys": {"enabled": False},
            "injections": {"count": 3},
        }
    )
    Simulator(config).run(out, workers=2, progress=False)
    raw = read(out / "frames", [STRAIN]).block
    names = [f"V1:TRUTH_{f.upper()}" for f in (*WITNESSED_FAMILIES, "injection")]
    truth = read(out / "truth", names).block
    return {
        "dir": out,
        "raw": raw.data[0].numpy(),
        "coupled": truth.data[:3].sum(dim=0).numpy(),
        "injection": truth.data[3].numpy(),
        "whitener": Whitener(psd_block(raw, fftlength=4.0), raw.sample_rate),
        "table": read_catalogue(out),
        "t0": START,
        "rate": raw.sample_rate,
        "families": np.asarray(read_catalogue(out)["family"]).astype(str),
    }
