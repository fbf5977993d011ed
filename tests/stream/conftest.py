"""A small simulated scenario and a small seeded twin model for the streaming tests.

The model is untrained (what is checked is bookkeeping, not cleaning quality) but its output is
scaled up and it has a linear stage, so the prediction is visible in every block.
"""

from __future__ import annotations

import pytest
import torch

START = 1_400_000_000
DURATION = 96
STRAIN = "V1:Hrec_hoft_4096Hz"
WITNESSES = ["V1:SBE_SDB1_DISP_X", "V1:ENV_CEB_MAG_N", "V1:ENV_CEB_UPS_VOLT_R"]
SMALL_TD = {
    "hidden": 8,
    "products": 2,
    "input_stride": 2,
    "local_layers": 2,
    "context_levels": 1,
    "context_channels": 4,
    "context_layers": 1,
    "fir_duration": 0.25,
    "fir_channels": 2,
}
RATE, WINDOW, TARGET = 256.0, 4.0, 2.0


def small_twin(frames, *, seed: int = 0, scale: float = 1.5, witnesses=WITNESSES):
    """A seeded untrained twin whose conditioning is fitted on ``frames``."""
    from gwtwin.data import read
    from gwtwin.models import TwinModel, build_model
    from gwtwin.signal.conditioning import fit_conditioning, whitening_kernel

    data = [read(frames, [c], START, START + DURATION).block for c in [STRAIN, *witnesses]]
    spec = fit_conditioning(data, list(witnesses), STRAIN, sample_rate=RATE, fduration=1.0)
    torch.manual_seed(seed)
    net = build_model(
        "witness_td",
        in_channels=spec.n_features,
        sample_rate=RATE,
        window_duration=WINDOW,
        target_duration=TARGET,
        linear_filter_size=whitening_kernel(spec).numel(),
        **SMALL_TD,
    )
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(scale)
    coef = 0.05 * torch.randn(spec.n_features, net.linear_taps, dtype=torch.float64)
    net.set_linear_stage(coef, whitening_kernel(spec))
    return TwinModel(net, spec, window_duration=WINDOW, target_duration=TARGET)


@pytest.fixture(scope="session")
def stream_scenario(tmp_path_factory):
    """96 s of the simulator (glitches of every witnessed family) and a small twin."""
    from gwtwin.simulate import SimulationConfig, Simulator

    out = tmp_path_factory.mktemp("stream-sim")
    config = SimulationConfig.model_validate(
        {
            "duration": DURATION,
            "frame_length": 32,
            "start": START,
            "seed": 21,
            "scatter": {"rate": 120.0},
            "em": {"rate": 200.0},
            "powerline": {"rate": 120.0},
            "blip": {"rate": 200.0},
            "decoys": {"enabled": False},
            "injections": {"count": 1},
        }
    )
    Simulator(config).run(out, workers=1, progress=False)
    return out, small_twin(out / "frames")
