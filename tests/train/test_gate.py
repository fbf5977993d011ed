"""The witness gate's fit: floor and alpha from the data, the per-witness choice on the
validation MSE, the modes and fallbacks; and the quiet-window ASD ratio that checks it."""

import numpy as np
import pytest
import torch

from gwtwin.models import build_model
from gwtwin.train.gate import fit_witness_gate, gate_candidates, gate_statistics
from gwtwin.train.linear import fit_linear_stage, linear_stage_mse
from gwtwin.train.metrics import QuietASDRatio

from .test_linear import _handmade_spec

RATE, WINDOW, TARGET = 256.0, 4.0, 2.0
SIZE = int(WINDOW * RATE)
SMALL = dict(
    sample_rate=RATE,
    window_duration=WINDOW,
    target_duration=TARGET,
    hidden=8,
    products=2,
    input_stride=2,
    local_layers=2,
    context_levels=1,
    context_channels=8,
    context_layers=2,
    fir_duration=0.25,
    fir_channels=2,
    linear_taps=17,
    linear_filter_size=0,
)


def _bandpass(lo=20.0, hi=100.0, n=9):
    k = np.arange(n) - n // 2
    h = 2 * hi / RATE * np.sinc(2 * hi / RATE * k) - 2 * lo / RATE * np.sinc(2 * lo / RATE * k)
    return h * np.hanning(n + 2)[1:-1]


def _windows(n, seed, couples_floor):
    """Witness r = sine-Gaussian bursts (amplitude 20, in every other window) + a unit white
    floor; target = band-pass FIR of the bursts (of burst + floor where ``couples_floor[r]``)
    + unit white noise."""
    rng = np.random.default_rng(seed)
    h = _bandpass()
    t = np.arange(SIZE) / RATE
    out = []
    for i in range(n):
        glitch = i % 2 == 0
        x = np.zeros((len(couples_floor), SIZE))
        y = rng.standard_normal(SIZE)
        for r, couples in enumerate(couples_floor):
            burst = np.zeros(SIZE)
            for _ in range(2 if glitch else 0):
                t0, f, tau = rng.uniform(1.2, 2.8), rng.uniform(25, 90), rng.uniform(0.03, 0.08)
                burst += (
                    20 * np.sin(2 * np.pi * f * (t - t0)) * np.exp(-0.5 * ((t - t0) / tau) ** 2)
                )
            x[r] = burst + rng.standard_normal(SIZE)
            y += (1.0 if r == 0 else 0.7) * np.convolve(x[r] if couples else burst, h, "same")
        out.append(
            {
                "witness": torch.tensor(x, dtype=torch.float32),
                "target": torch.tensor(y, dtype=torch.float32),
                "glitch": torch.tensor(glitch),
            }
        )
    return out


def _spec(n):
    return _handmade_spec(*[(f"X1:W{r}", "standardise", 1) for r in range(n)])


def _net(n=1, **kw):
    return build_model("witness_td", in_channels=n, **{**SMALL, **kw})


def _quiet_power(net, windows):
    quiet = torch.stack([w["witness"] for w in windows if not w["glitch"]])
    with torch.no_grad():
        return float(net(quiet).double().pow(2).mean())


def test_statistics_follow_the_formula():
    net = _net(2)
    windows = _windows(6, 0, (False, False))
    floor, alpha = gate_statistics(net, windows, [1], sigma=5.0)
    # numpy: P over every window, clear of the edges, every gate_size // 8 samples
    w = np.hanning(net.gate_size + 2)[1:-1]
    w /= w.sum()
    half, step = net.gate_half, net.gate_size // 8
    p = np.concatenate(
        [
            np.convolve(it["witness"][1].double().numpy() ** 2, w, "same")[half:-half:step]
            for it in windows
        ]
    )
    f = np.median(p)
    assert float(floor[0]) == pytest.approx(f, rel=1e-9)
    mad = np.median(np.abs(p / f - np.median(p / f)))
    assert float(alpha[0]) == pytest.approx(1 + 5 * 1.4826 * mad, rel=1e-9)
    assert f == pytest.approx(1.0, rel=0.1)  # the unit floor, not the bursts


def test_auto_gates_a_witness_whose_floor_does_not_couple():
    train, valid = _windows(32, 1, (False,)), _windows(16, 2, (False,))
    net = _net()
    record, stage = fit_witness_gate(net, _spec(1), train, valid, None, mode="auto", sigma=5.0)
    info = record["witnesses"]["X1:W0"]
    assert record["gated"] == ["X1:W0"] and info["gated"] and net.gated_rows == [0]
    assert "lowers the validation MSE" in info["reason"]
    assert info["validation_mse_with"] < 0.9 * info["validation_mse_without"]
    assert 0.9 < info["floor"][0] < 1.1 and 2.0 < info["alpha"][0] < 5.0
    # the loaded linear stage is the gated fit, and it scores as recorded
    assert linear_stage_mse(net, valid, None, stage["taps"]) == pytest.approx(
        info["validation_mse_with"]
    )
    ungated = _net()
    fit_linear_stage(ungated, train, None)
    with torch.no_grad():
        full = net(torch.stack([w["witness"] for w in valid]))
        assert bool(full.abs().max() > 1)  # the bursts are predicted
    assert _quiet_power(net, valid) < 0.1 * _quiet_power(ungated, valid)


def test_auto_leaves_a_coupling_floor_ungated_and_the_modes():
    train, valid = _windows(32, 3, (False, True)), _windows(16, 4, (False, True))
    spec = _spec(2)
    net = _net(2)
    record, _ = fit_witness_gate(net, spec, train, valid, None, mode="auto", sigma=5.0)
    w1 = record["witnesses"]["X1:W1"]
    assert record["gated"] == ["X1:W0"] and net.gated_rows == [0]
    assert not w1["gated"] and "raises the validation MSE" in w1["reason"]
    assert w1["validation_mse_with"] > w1["validation_mse_without"]
    assert record["validation_mse"]["final"] < record["validation_mse"]["ungated"]
    record, stage = fit_witness_gate(net, spec, train, valid, None, mode="all")
    assert record["gated"] == ["X1:W0", "X1:W1"] and net.gated_rows == [0, 1] and stage is None
    record, _ = fit_witness_gate(net, spec, train, valid, None, mode="off")
    assert (
        record["gated"] == [] and net.gated_rows == [] and record["reason"] == "witness_gate: off"
    )
    # fallbacks of auto: no validation windows, no linear stage, no gate in the family
    record, _ = fit_witness_gate(net, spec, train, [], None, mode="auto")
    assert record["gated"] == [] and "no validation windows" in record["reason"]
    assert net.gated_rows == []
    record, _ = fit_witness_gate(_net(2, linear_taps=0), spec, train, valid, None)
    assert record["gated"] == [] and "no linear stage" in record["reason"]
    unet = build_model("qimage_unet", in_channels=2, base_channels=4, depth=2)
    record, _ = fit_witness_gate(unet, spec, train, valid, None)
    assert record["gated"] == [] and "no witness gate" in record["reason"]


def test_fringe_witnesses_are_never_candidates():
    spec = _handmade_spec(
        ("X1:MAG", "standardise", 1), ("X1:DISP", "fringe", 3), ("X1:B", "standardise", 2)
    )
    assert gate_candidates(spec) == {"X1:MAG": [0], "X1:B": [4, 5]}


def test_gate_duration_comes_from_the_train_config():
    from gwtwin.errors import ConfigError
    from gwtwin.train.network import _model_kwargs

    spec = _spec(1)
    attrs = {"sample_rate": 1024.0, "window_duration": 8.0, "target_duration": 4.0}
    kw = _model_kwargs("witness_td", attrs, 1, {}, spec, gate_duration=0.125)
    assert kw["gate_duration"] == 0.125
    with pytest.raises(ConfigError, match="disagrees with train.gate_duration"):
        _model_kwargs("witness_td", attrs, 1, {"gate_duration": 0.5}, spec, gate_duration=0.125)


def test_quiet_asd_ratio():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(8, 1024, generator=g, dtype=torch.float64)
    zero = QuietASDRatio(256.0)
    zero.add(target, torch.zeros_like(target))
    s = zero.summary()
    assert s["quiet_asd_ratio_max"] == pytest.approx(1.0, abs=1e-12)
    assert s["quiet_asd_ratio_median"] == pytest.approx(1.0, abs=1e-12)
    noisy = QuietASDRatio(256.0)
    noisy.add(target, 0.5 * torch.randn(8, 1024, generator=g, dtype=torch.float64))
    s = noisy.summary()
    # independent noise of a quarter of the power: sqrt(1.25) on average
    assert s["quiet_asd_ratio_median"] == pytest.approx(np.sqrt(1.25), rel=0.05)
    assert s["quiet_asd_ratio_max"] > s["quiet_asd_ratio_median"] > 1.0
    freqs, _ = noisy.ratio()
    assert freqs.min() >= 10.0 and freqs.max() <= 0.9 * 128.0
    assert QuietASDRatio(256.0).summary() == {}  # no quiet windows: absent
