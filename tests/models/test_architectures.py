"""The registry, the time-domain network and the Q-image U-Net: shapes, geometry, errors."""

import numpy as np
import pytest
import torch
from torch import nn

from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.models import (
    QImageUNet,
    WitnessTD,
    available_models,
    build_model,
    model_config,
    register_model,
)
from gwtwin.models.witness_td import fft_conv_same

SMALL = {
    "window_duration": 4.0,
    "target_duration": 2.0,
    "sample_rate": 256.0,
    "hidden": 8,
    "products": 2,
    "input_stride": 2,
    "local_layers": 2,
    "context_levels": 1,
    "context_channels": 8,
    "context_layers": 2,
    "fir_duration": 0.25,
    "fir_channels": 2,
}


def test_registry_lists_and_builds():
    assert {"witness_td", "qimage_unet"} <= set(available_models())
    net = build_model("witness_td", in_channels=3, **SMALL)
    assert isinstance(net, WitnessTD)
    config = model_config(net)
    assert config["name"] == "witness_td"
    assert config["kwargs"] == {**config["kwargs"], "in_channels": 3, **SMALL}
    assert config["kwargs"]["activation"] == "gelu"  # defaults recorded too
    # the recorded kwargs rebuild the same architecture
    again = build_model("witness_td", **model_config(net)["kwargs"])
    assert [p.shape for p in again.parameters()] == [p.shape for p in net.parameters()]


def test_registry_errors():
    with pytest.raises(ConfigError, match="unknown model 'nope': expected one of"):
        build_model("nope")
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) hiden \(allowed:"):
        build_model("witness_td", in_channels=2, hiden=3)
    with pytest.raises(ConfigError, match=r"missing required parameter\(s\) in_channels"):
        build_model("qimage_unet")
    with pytest.raises(ConfigError, match="already registered to WitnessTD"):
        register_model("witness_td")(type("Other", (nn.Module,), {}))
    with pytest.raises(ConfigError, match="expected a model built by gwtwin.models"):
        model_config(nn.Linear(2, 2))


def test_witness_td_shapes_and_defaults():
    net = build_model("witness_td", in_channels=8)
    n_params = sum(p.numel() for p in net.parameters())
    assert 10_000 < n_params < 100_000  # a few 10k parameters: trains on 2 CPU cores
    assert net.receptive_field > 3.0  # several seconds at 1024 Hz
    assert net.receptive_field_size // 2 <= net.margin
    assert net.latency == pytest.approx(6.0)
    y = net(torch.randn(2, 8, 8192))
    assert y.shape == (2, 4096)
    # longer inputs: the central part of anything longer than the two margins
    assert net(torch.randn(1, 8, 8192 + 1000)).shape == (1, 4096 + 1000)


def _randomise(net):
    """Give the zero-initialised FiLM layer and decoder (zero with a linear stage) weights so
    every path counts."""
    torch.manual_seed(0)
    with torch.no_grad():
        net.film.weight.normal_(0, 0.1)
        net.decode.weight.normal_(0, 0.1)
        net.fir.normal_(0, 0.1)
    return net


def test_receptive_field_bound_holds():
    net = _randomise(build_model("witness_td", in_channels=2, **SMALL)).double()
    n = 4 * int(SMALL["window_duration"] * SMALL["sample_rate"])
    x = torch.randn(1, 2, n, dtype=torch.float64, requires_grad=True)
    y = net.forward_full(x)
    centre = n // 2
    y[0, centre].backward()
    grad = x.grad.abs().sum(1)[0]
    # FFT convolution leaks ~1e-16 relative everywhere: count what is above rounding
    reach = torch.nonzero(grad > 1e-10 * grad.max()).flatten()
    side = max(centre - int(reach.min()), int(reach.max()) - centre)
    # the bound is tight to within the strided grids' alignment slack
    assert side <= net.receptive_field_size // 2
    assert side >= 0.8 * (net.receptive_field_size // 2)


def test_prediction_ignores_data_outside_receptive_field():
    net = _randomise(build_model("witness_td", in_channels=2, **SMALL)).eval().double()
    win = int(SMALL["window_duration"] * SMALL["sample_rate"])
    x = torch.randn(1, 2, win, dtype=torch.float64)
    y = net(x)
    x2 = x.clone()
    half = net.receptive_field_size // 2
    x2[..., : net.margin - half] = 100.0  # change only what the target part cannot see
    x2[..., win - net.margin + half :] = -100.0
    # exact but for the output FIR's FFT rounding (float64, ~1e-16 x the largest activation)
    torch.testing.assert_close(net(x2), y, atol=1e-9, rtol=0)


def test_witness_td_config_errors():
    with pytest.raises(ConfigError, match="activation must be one of gelu, silu, found 'relu'"):
        build_model("witness_td", in_channels=2, activation="relu")
    with pytest.raises(ConfigError, match=r"receptive field .* exceeds the margin"):
        build_model("witness_td", in_channels=2, window_duration=4.0, target_duration=3.0)
    with pytest.raises(ConfigError, match="kernel_size must be odd"):
        build_model("witness_td", in_channels=2, kernel_size=4)
    with pytest.raises(ConfigError, match="expected 0 < target_duration <= window_duration"):
        build_model("witness_td", in_channels=2, target_duration=10.0)
    net = build_model("witness_td", in_channels=2, **SMALL)
    with pytest.raises(GwtwinError, match=r"expected witness features \[batch, 2, time\], found"):
        net(torch.randn(1, 3, 1024))
    with pytest.raises(GwtwinError, match="expected more than 512 samples"):
        net(torch.randn(1, 2, 400))
    with pytest.raises(GwtwinError, match="finite and not all zero"):
        net.set_output_filter(torch.zeros(5))


def test_fft_conv_same_matches_numpy_correlate():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 200))
    taps = rng.standard_normal((3, 31))
    y = fft_conv_same(torch.from_numpy(x), torch.from_numpy(taps)).numpy()
    for b in range(2):
        for k in range(3):
            ref = np.correlate(np.pad(x[b, k], 15), taps[k], "valid")
            np.testing.assert_allclose(y[b, k], ref, atol=1e-12)  # float64 FFT rounding


def test_set_output_filter_centres_peak():
    net = build_model("witness_td", in_channels=2, **SMALL)
    taps = torch.zeros(301)
    taps[140] = -4.0
    taps[141] = 2.0
    net.set_output_filter(taps)
    c = net.fir.shape[-1] // 2
    fir = net.fir.detach()
    assert float(fir[0, c]) == -1.0 and float(fir[1, c + 1]) == 0.5


def test_witness_td_learns_a_bilinear_coupling():
    """Target = a * b (the power-line kind of coupling): the product branch finds it."""
    torch.manual_seed(2)
    net = build_model("witness_td", in_channels=2, **SMALL)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.randn(16, 2, 1024)
    y = (x[:, 0] * x[:, 1])[:, net.margin : -net.margin]
    first = None
    for _ in range(150):
        loss = (net(x) - y).pow(2).mean()
        first = first if first is not None else float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # the target has unit variance; a linear model cannot go below ~1
    assert float(loss) < 0.1 * first and float(loss) < 0.1


def test_qimage_unet_shapes_and_errors():
    net = build_model("qimage_unet", in_channels=3, base_channels=4, depth=2)
    assert isinstance(net, QImageUNet)
    y = net(torch.rand(2, 3, 16, 32) * 100)
    assert y.shape == (2, 16, 32) and bool((y > 0).all())  # Softplus: positive energies
    with pytest.raises(GwtwinError, match=r"divisible by 2\*\*depth = 4, found 18 x 32"):
        net(torch.rand(1, 3, 18, 32))
    with pytest.raises(GwtwinError, match=r"expected witness images \[batch, 3, frequency"):
        net(torch.rand(1, 2, 16, 32))
    with pytest.raises(ConfigError, match="input_transform must be 'log1p' or 'none'"):
        build_model("qimage_unet", in_channels=1, input_transform="log")


def test_attention_gates_gate_the_skips():
    net = build_model("qimage_unet", in_channels=1, base_channels=4, depth=2)
    gate = net.gates[0]
    x = torch.randn(1, 8, 4, 8)
    with torch.no_grad():
        gate.psi.bias.fill_(-50.0)  # gate closed
    assert float(gate(x, torch.randn(1, 8, 4, 8)).abs().max()) < 1e-15
    with torch.no_grad():
        gate.psi.weight.zero_()
        gate.psi.bias.fill_(50.0)  # gate open
    torch.testing.assert_close(gate(x, torch.randn(1, 8, 4, 8)), x)
