"""Small simulated scenarios shared by the simulator tests (rendered once per session)."""

import pytest

from gwtwin.simulate import SimulationConfig, Simulator

START = 1_400_000_000


def make_config(family: str | None, **overrides) -> SimulationConfig:
    """A scenario with a single coupling family (or none), no decoys, no injections."""
    base = {
        "duration": 128,
        "frame_length": 64,
        "start": START,
        "seed": 7,
        "edge_margin": 2.0,
        "scatter": {"enabled": family == "scatter"},
        "em": {"enabled": family == "em"},
        "powerline": {"enabled": family == "powerline"},
        "blip": {"enabled": family == "blip"},
        "decoys": {"enabled": False},
        "injections": {"enabled": family == "injection"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return SimulationConfig.model_validate(base)


@pytest.fixture
def only():
    """Factory of single-family scenarios: ``only("em", duration=64, em={...})``."""
    return make_config


@pytest.fixture(scope="session")
def default_run(tmp_path_factory):
    """The default scenario's channels and families, shortened to 128 s, written as GWF."""
    out = tmp_path_factory.mktemp("sim-default")
    config = SimulationConfig.model_validate(
        {
            "duration": 128,
            "start": START,
            "seed": 3,
            # denser than the default so 128 s holds several glitches of every family
            "scatter": {"rate": 150.0},
            "em": {"rate": 400.0},
            "powerline": {"rate": 150.0},
            "blip": {"rate": 300.0},
            "injections": {"count": 3},
        }
    )
    sim = Simulator(config)
    result = sim.run(out, workers=2, progress=False)
    return sim, result
