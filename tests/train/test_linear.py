"""The witness_td linear stage: whitening kernel, closed-form fit, and the model's use of it."""

import numpy as np
import pytest
import torch

from gwtwin.data import Block
from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.models import build_model
from gwtwin.models.witness_td import fft_conv_same
from gwtwin.signal.conditioning import fit_conditioning, whitening_kernel
from gwtwin.signal.whitening import whiten
from gwtwin.train.linear import fit_linear_stage

RATE, WINDOW, TARGET = 256.0, 8.0, 4.0
T0 = 1_400_000_000


@pytest.fixture(scope="module")
def spec():
    """A conditioning spec fitted on coloured strain (a steep low-frequency wall)."""
    rng = np.random.default_rng(0)
    n = 256 * 4096 // 256 * 64
    white = rng.standard_normal(n)
    red = np.cumsum(np.cumsum(rng.standard_normal(n))) * 1e-4  # 1/f^2 x 1/f^2 wall
    strain = (white + red - red.mean()) * 1e-22
    wit = rng.standard_normal(64 * 256)
    return fit_conditioning(
        [
            Block.create(strain, T0, 4096, "X1:STRAIN", ["strain"]),
            Block.create(wit, T0, 256, "X1:WIT", ["V"]),
        ],
        ["X1:WIT"],
        "X1:STRAIN",
        sample_rate=RATE,
        fduration=2.0,
        highpass=8.0,
    )


def _small(**kw):
    base = dict(
        in_channels=3,
        sample_rate=RATE,
        window_duration=WINDOW,
        target_duration=TARGET,
        hidden=8,
        products=2,
        input_stride=2,
        local_layers=2,
        context_levels=1,
        context_channels=4,
        context_layers=1,
        fir_duration=0.25,
        fir_channels=2,
    )
    base.update(kw)
    return build_model("witness_td", **base)


def test_whitening_kernel_reproduces_the_targets_whitening(spec):
    k = whitening_kernel(spec)
    assert k.numel() % 2 == 1 and float(k.abs().max()) == pytest.approx(1.0)
    x = torch.randn(20_000, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    f = torch.tensor(spec.psd_frequencies, dtype=torch.float64)
    p = torch.tensor(spec.psd_values, dtype=torch.float64)
    y = whiten(x, (f, p), RATE, spec.fduration, spec.highpass, detrend=None, nfft=spec.nfft)
    z = fft_conv_same(x[None, None], k[None])[0, 0]
    inner = slice(2000, 18_000)  # away from both whitening edges
    scale = float(y[inner] @ z[inner] / (z[inner] @ z[inner]))
    err = (y[inner] - scale * z[inner]).abs().max() / y[inner].abs().max()
    assert float(err) < 1e-10  # float64 FFT rounding; a one-sample shift gives ~1e-1


def _windows(n, kernel, coef, noise, seed):
    """Windows whose target is sum_k coef_k (lags) applied to the whitened features + noise."""
    g = torch.Generator().manual_seed(seed)
    size = int(WINDOW * RATE)
    x = torch.randn(n, 3, size, generator=g, dtype=torch.float64)
    x[:, 2] = torch.sin(torch.cumsum(x[:, 2] * 0.3, -1))  # a bounded fringe-like feature
    z = fft_conv_same(x, kernel.expand(3, -1))
    y = fft_conv_same(z, coef).sum(1) + noise * torch.randn(
        n, size, generator=g, dtype=torch.float64
    )
    return [{"witness": x[i].float(), "target": y[i].float()} for i in range(n)], x, y


def test_fit_recovers_the_coefficients_and_the_model_applies_them(spec):
    kernel = whitening_kernel(spec)
    lags = 5
    net = _small(linear_taps=lags, linear_filter_size=kernel.numel())
    coef = torch.zeros(3, lags, dtype=torch.float64)
    coef[0, 2] = 0.8  # memoryless (scatter-like)
    coef[1, 3] = -0.5  # delayed by one sample (a transfer function's delay)
    coef[2, 1:4] = torch.tensor([0.2, 0.6, 0.2])
    noise = 1.0
    windows, x, y = _windows(24, kernel, coef, noise, seed=2)
    info = fit_linear_stage(net, windows, kernel)
    assert info["coefficients"] == 3 * lags and info["windows"] == 24
    # least squares on N = 24 x 1024 central samples: coefficient errors ~ noise / (rms of the
    # whitened feature x sqrt(N)); 6 sigma
    z = fft_conv_same(x, kernel.expand(3, -1))
    rms = z[..., 512:-512].pow(2).mean((0, 2)).sqrt()
    n = 24 * int(TARGET * RATE)
    solved = info["taps"]
    tol = 6 * noise / (rms[:, None] * np.sqrt(n))
    assert bool(((solved - coef).abs() < tol).all())
    # the stored stage is the convolution of the kernel with those coefficients: the model's
    # linear output equals the reference filter (network output subtracted)
    with torch.no_grad():
        full = net.forward_full(x.float())
        saved = net.linear_fir.clone()
        net.linear_fir.zero_()
        net_only = net.forward_full(x.float())
        net.linear_fir.copy_(saved)
    linear = (full - net_only).double()[:, 512:1536]
    expected = fft_conv_same(z, solved).sum(1)[:, 512:1536]
    assert float((linear - expected).abs().max() / expected.abs().max()) < 2e-3  # float32 model
    # the variance share it explains: signal / (signal + noise) on this set, to a few percent
    signal = fft_conv_same(z, coef).sum(1)[:, 512:1536].pow(2).mean()
    assert info["explained"] == pytest.approx(float(signal / (signal + noise**2)), abs=0.02)


def test_unfitted_stage_is_inert_and_zero_taps_disable_it(spec):
    net = _small()
    assert net.linear_taps == 33 and not net.linear_fitted
    x = torch.randn(2, 3, int(WINDOW * RATE))
    y0 = net(x)
    off = _small(linear_taps=0)
    off.load_state_dict(
        {k: v for k, v in net.state_dict().items() if k != "linear_fir"}, strict=False
    )
    assert torch.equal(off(x), y0)
    with pytest.raises(GwtwinError, match="no linear stage"):
        off.set_linear_stage(torch.zeros(3, 1))


def test_linear_stage_errors(spec):
    kernel = whitening_kernel(spec)
    with pytest.raises(ConfigError, match="linear_taps must be 0 or a positive odd"):
        _small(linear_taps=4)
    with pytest.raises(ConfigError, match="exceeds the margin .* model_kwargs.linear_taps: 0"):
        _small(window_duration=4.0, target_duration=2.0, linear_filter_size=kernel.numel())
    net = _small(linear_filter_size=kernel.numel())
    with pytest.raises(GwtwinError, match=r"shape \(3, 33\), found \(3, 5\)"):
        net.set_linear_stage(torch.zeros(3, 5), kernel)
    with pytest.raises(GwtwinError, match="expects a fixed filter"):
        net.set_linear_stage(torch.zeros(3, 33))
    with pytest.raises(GwtwinError, match="no training windows"):
        fit_linear_stage(net, [], kernel)
    bad = [{"witness": torch.zeros(2, 2048), "target": torch.zeros(2048)}]
    with pytest.raises(GwtwinError, match="windows hold 2 features, the model expects 3"):
        fit_linear_stage(net, bad, kernel)


def test_linear_only_features_bypass_the_network():
    net = _small(linear_only=[0, 2])
    with torch.no_grad():
        net.decode.weight.normal_(0, 0.1)  # a network output that depends on its inputs
    assert net.hparams_["linear_only"] == [0, 2]
    assert net.prod_a.in_channels == 1  # the network sees feature 1 only
    x = torch.randn(1, 3, int(WINDOW * RATE))
    x2 = x.clone()
    x2[:, [0, 2]] = torch.randn(1, 2, x.shape[-1])
    with torch.no_grad():
        torch.testing.assert_close(net(x2), net(x))  # unfitted linear stage: no path for them
        x3 = x.clone()
        x3[:, 1] += 1.0
        assert not torch.allclose(net(x3), net(x))
    with pytest.raises(ConfigError, match="linear_taps=0 disables it"):
        _small(linear_taps=0, linear_only=[0])
    with pytest.raises(ConfigError, match="must index the 3 input features"):
        _small(linear_only=[3])
    with pytest.raises(ConfigError, match="leaves no feature for the network"):
        _small(linear_only=[0, 1, 2])


def _handmade_spec(*witnesses):
    """A conditioning spec with ``(name, transform, n_features)`` witnesses (flat unit PSD)."""
    from gwtwin.signal.conditioning import ConditioningSpec

    def entry(name, transform, n):
        return {
            "name": name,
            "sample_rate": 256.0,
            "unit": "",
            "transform": transform,
            "features": [name] + [f"{name}:{k}" for k in range(n - 1)],
            "mean": [0.0] * n,
            "std": [1.0] * n,
            **({"metres": 1e-6} if transform == "fringe" else {}),
        }

    return ConditioningSpec.from_dict(
        {
            "strain_channel": "X1:STRAIN",
            "strain_rate": 4096.0,
            "strain_unit": "strain",
            "witnesses": [entry(*w) for w in witnesses],
            "psd_frequencies": [0.0, 512.0],
            "psd_values": [1.0, 1.0],
            "sample_rate": 1024.0,
            "fftlength": 4.0,
            "fduration": 2.0,
            "highpass": 10.0,
            "wavelength": 1.064e-6,
            "harmonics": 1,
        }
    )


def test_training_puts_fringe_features_in_the_linear_stage_only():
    from gwtwin.train.network import _linear_only, _model_kwargs

    spec = _handmade_spec(
        ("X1:MAG", "standardise", 1), ("X1:DISP", "fringe", 3), ("X1:ASC", "standardise", 1)
    )
    assert _linear_only(spec, ["fringe"], []) == [1, 2, 3]
    assert _linear_only(spec, [], ["X1:A*"]) == [4]
    assert _linear_only(spec, ["fringe"], ["X1:MAG"]) == [0, 1, 2, 3]
    attrs = {"sample_rate": 1024.0, "window_duration": 8.0, "target_duration": 4.0}
    kw = _model_kwargs("witness_td", attrs, 5, {}, spec, ["fringe"], [])
    assert kw["linear_only"] == [1, 2, 3] and kw["linear_filter_size"] % 2 == 1
    assert "linear_only" not in _model_kwargs(
        "witness_td", attrs, 5, {"linear_taps": 0}, spec, ["fringe"], []
    )
    with pytest.warns(UserWarning, match="cover every feature; the network sees all of them"):
        kw = _model_kwargs("witness_td", attrs, 5, {}, spec, ["fringe", "standardise"], [])
    assert "linear_only" not in kw


def test_bilinear_pairs_are_linear_stage_inputs(spec):
    """A coupling ``W * (x0 x1)`` (mains x angular control) is recovered through the pair."""
    kernel = whitening_kernel(spec)
    net = _small(linear_taps=3, linear_filter_size=kernel.numel(), linear_pairs=[[0, 1]])
    assert net.linear_inputs == 4 and net.linear_fir.shape[0] == 4
    g = torch.Generator().manual_seed(5)
    size = int(WINDOW * RATE)
    x = torch.randn(16, 3, size, generator=g, dtype=torch.float64)
    prod = x[:, :1] * x[:, 1:2]
    y = 0.7 * fft_conv_same(prod, kernel[None])[:, 0] + torch.randn(16, size, generator=g)
    windows = [{"witness": x[i].float(), "target": y[i].float()} for i in range(16)]
    info = fit_linear_stage(net, windows, kernel)
    taps = info["taps"]
    assert taps.shape == (4, 3)
    assert float(taps[3, 1]) == pytest.approx(0.7, abs=0.05)  # the product, lag 0
    assert float(taps[:3].abs().max()) < 0.05 and float(taps[3, [0, 2]].abs().max()) < 0.05
    with pytest.raises(ConfigError, match="must index the 3 input features"):
        _small(linear_pairs=[[0, 3]])
    with pytest.raises(ConfigError, match="linear_taps=0 disables it"):
        _small(linear_taps=0, linear_pairs=[[0, 1]])


def test_witness_pairs_cross_standardised_witnesses_only():
    from gwtwin.train.network import _witness_pairs

    spec = _handmade_spec(
        ("X1:A", "standardise", 1),
        ("X1:D", "fringe", 3),
        ("X1:B", "standardise", 1),
        ("X1:C", "standardise", 1),
    )
    # A is feature 0, D features 1-3, B 4, C 5: pairs across A, B, C, never within D
    assert _witness_pairs(spec) == [[0, 4], [0, 5], [4, 5]]
