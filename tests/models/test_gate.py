"""The witness_td excess-power gate: the formula, its effect on noise and bursts, its place in
the model (first, for the network and the linear stage), old state dicts, the geometry."""

import numpy as np
import pytest
import torch

from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.models import build_model

from .test_architectures import SMALL, _randomise

RATE = 1024.0


def _reference(x, floor, alpha, size):
    """Plain numpy: P = (x^2) conv w (unit-sum Hann, zeros outside), g = clamp(1 - aF/P)."""
    w = np.hanning(size + 2)[1:-1]
    w /= w.sum()
    p = np.convolve(x * x, w, "same")
    with np.errstate(divide="ignore"):
        g = np.where(p > 0, np.clip(1 - alpha * floor / p, 0, 1), 0.0)
    return g * x, p


def _floor_alpha(p, sigma=5.0):
    f = np.median(p)
    r = p / f
    return f, 1 + sigma * 1.4826 * np.median(np.abs(r - np.median(r)))


def _net(**kw):
    base = dict(in_channels=3, sample_rate=RATE, window_duration=8.0, target_duration=4.0)
    return build_model("witness_td", **{**base, **kw}).double()


def test_gate_matches_a_numpy_reference():
    net = _net()
    size = net.gate_size
    assert size == 65 and net.gate_half == 32  # 0.0625 s at 1024 Hz, odd
    assert float(net.gate_window().sum()) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4096))
    x[:, 0, 1000:1100] *= 8  # a burst
    x[:, 2, 3000:3200] = 0  # exact zeros: P = 0 inside, g = 0
    net.set_gate([1.0, 0.0, 0.5], [2.0, 0.0, 1.5])
    assert net.gated_rows == [0, 2]
    y = net.gate_inputs(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(y[:, 1], x[:, 1])  # floor 0: not gated
    for b in range(2):
        for row, floor, alpha in ((0, 1.0, 2.0), (2, 0.5, 1.5)):
            ref, _ = _reference(x[b, row], floor, alpha, size)
            np.testing.assert_allclose(y[b, row], ref, atol=1e-12)
    assert np.abs(y[:, 0, 1020:1080]).mean() > 0.9 * np.abs(x[:, 0, 1020:1080]).mean()


def test_gate_closes_on_its_floor_and_passes_a_burst():
    net = _net(in_channels=1)
    size = net.gate_size
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(64 * 1024)  # unit-variance white floor
    _, p = _reference(noise, 1.0, 0.0, size)
    floor, alpha = _floor_alpha(p[size:-size])
    assert floor == pytest.approx(1.0, abs=0.05) and 1.5 < alpha < 3.0
    net.set_gate([floor], [alpha])
    out = net.gate_inputs(torch.from_numpy(noise)[None, None])[0, 0].numpy()
    assert (out**2).sum() < 1e-3 * (noise**2).sum()
    # a sine-Gaussian burst, amplitude 20 x the floor's rms, on the same floor
    t = (np.arange(4096) - 2048) / RATE
    burst = 20 * np.sin(2 * np.pi * 100 * t) * np.exp(-0.5 * (t / 0.1) ** 2)
    x = torch.from_numpy(burst + noise[:4096])[None, None]
    gain = net.gate_inputs(x)[0, 0].numpy() / x[0, 0].numpy()
    assert ((gain * burst) ** 2).sum() > 0.95 * (burst**2).sum()


def test_ungated_model_is_unchanged_and_the_gate_comes_first():
    net = _randomise(build_model("witness_td", in_channels=2, **SMALL)).eval()
    x = torch.randn(2, 2, 1024)
    assert net.gate_inputs(x) is x  # no gated row: the same tensor, bit for bit
    with torch.no_grad():
        y0 = net(x)
        net.set_gate([1.0, 0.0], [1e6, 0.0])  # row 0 always closed
        x0 = x.clone()
        x0[:, 0] = 0
        torch.testing.assert_close(net(x), net.forward(x0), rtol=0, atol=0)
        assert not torch.allclose(net(x), y0)
        net.set_gate([0.0, 0.0], [0.0, 0.0])
        assert torch.equal(net(x), y0)


def test_the_linear_stage_and_its_attribution_see_gated_inputs():
    net = _net(in_channels=2, linear_taps=3, linear_pairs=[[0, 1]])
    coef = torch.zeros(3, 3, dtype=torch.float64)
    coef[:, 1] = torch.tensor([1.0, 0.5, 0.25])
    net.set_linear_stage(coef)
    x = torch.randn(1, 2, 8192, dtype=torch.float64)
    net.set_gate([1.0, 0.0], [1e6, 0.0])  # row 0 closed: its part and the product's vanish
    total, parts = net.linear_parts(x, [[0], [1]])
    assert float(parts[:, 0].abs().max()) == 0.0
    torch.testing.assert_close(total, 0.5 * x[:, 1, net.margin : -net.margin])
    with torch.no_grad():
        torch.testing.assert_close(net(x), total)  # zero-initialised decoder


def test_state_dict_from_before_the_gate_loads_ungated():
    net = _net()
    net.set_gate([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    old = {k: v for k, v in net.state_dict().items() if not k.startswith("gate_")}
    assert {"gate_floor", "gate_alpha"} <= set(net.state_dict())
    fresh = _net()
    fresh.set_gate([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    fresh.load_state_dict(old)  # strict: the missing gate keys mean "not gated"
    assert fresh.gated_rows == [] and float(fresh.gate_alpha.abs().max()) == 0.0
    again = _net()
    again.load_state_dict(net.state_dict())
    assert again.gated_rows == [0, 1, 2]
    # a module pickled before the gate (no gate attributes at all) runs ungated
    bare = _net(in_channels=1)
    for name in ("gate_floor", "gate_alpha", "gate_size"):
        delattr(bare, name)
    x = torch.randn(1, 1, 8192, dtype=torch.float64)
    assert bare.gate_inputs(x) is x and bare.gate_half == 0
    assert bare.receptive_field_size == _net(in_channels=1).receptive_field_size - 2 * 32


def test_receptive_field_includes_the_gate():
    net = _randomise(build_model("witness_td", in_channels=2, **SMALL)).double()
    net.set_gate([1.0, 1.0], [0.5, 0.5])  # gated rows: the gate's window widens the reach
    n = 4 * int(SMALL["window_duration"] * SMALL["sample_rate"])
    x = torch.randn(1, 2, n, dtype=torch.float64, requires_grad=True)
    centre = n // 2
    net.forward_full(x)[0, centre].backward()
    grad = x.grad.abs().sum(1)[0]
    reach = torch.nonzero(grad > 1e-10 * grad.max()).flatten()
    side = max(centre - int(reach.min()), int(reach.max()) - centre)
    assert side <= net.receptive_field_size // 2
    assert side >= 0.8 * (net.receptive_field_size // 2)


def test_gate_errors():
    with pytest.raises(ConfigError, match="gate_duration must be > 0 s"):
        _net(gate_duration=0.0)
    net = _net()
    with pytest.raises(GwtwinError, match=r"per input row \(3\), found 2 and 3"):
        net.set_gate([1.0, 1.0], [1.0, 1.0, 1.0])
    with pytest.raises(GwtwinError, match=">= 0"):
        net.set_gate([1.0, -1.0, 1.0], [1.0, 1.0, 1.0])
    with pytest.raises(GwtwinError, match="finite"):
        net.set_gate([1.0, float("nan"), 1.0], [1.0, 1.0, 1.0])
