"""A short, dense simulated scenario and its selection, computed once per session."""

import pytest

from gwtwin.simulate import SimulationConfig, Simulator

DECOYS = ("ENV_CEB_MAG_E", "ENV_CEB_SEIS_N", "ASC_WE_TY_CORR", "ENV_CEB_UPS_VOLT_S")


def scenario_config(seed: int = 5, duration: int = 512) -> SimulationConfig:
    """512 s with every family at 1.5-5x the default rates and four decoys at 200/h each."""
    from gwtwin.simulate.config import _default_decoys

    decoys = [d for d in _default_decoys() if d.name in DECOYS]
    return SimulationConfig.model_validate(
        {
            "duration": duration,
            "seed": seed,
            "scatter": {"rate": 90.0},
            "em": {"rate": 300.0},
            "powerline": {"rate": 150.0},
            "blip": {"rate": 150.0},
            "decoys": {"channels": [d.model_dump() for d in decoys], "rate": 200.0},
            "injections": {"count": 2},
        }
    )


@pytest.fixture(scope="session")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("select-sim")
    Simulator(scenario_config()).run(out, workers=2, progress=False)
    return out


@pytest.fixture(scope="session")
def selection(simulated, tmp_path_factory):
    """The selection on the scenario, written to a directory (triggers cached there)."""
    from gwtwin.select import select_channels

    out = tmp_path_factory.mktemp("select-out")
    sel = select_channels(simulated, {"workers": 2}, out)
    return sel, out
