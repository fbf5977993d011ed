"""Small synthetic datasets in the exact ``gwtwin-dataset/1`` layout, written once per session.

The witnesses are conditioned with the real :func:`fit_conditioning`; the target is a known
function of the conditioned features (a delayed linear term plus a bilinear product, in whitened
units) plus Gaussian noise, so a model that trains must find it, and ``truth`` is that function
exactly (the metrics against ground truth are then known).
"""

import json

import h5py
import numpy as np
import pytest
import torch

from gwtwin.data import Block
from gwtwin.signal.conditioning import condition_witnesses, fit_conditioning

T0 = 1_400_000_000
RATE = 256.0  # model rate of the synthetic sets (small, fast)
STRAIN = "X1:STRAIN"
WIT_A, WIT_B = "X1:WIT_A", "X1:WIT_B"  # 256 Hz broadband, 128 Hz slow
WINDOW, TARGET, STRIDE = 4.0, 2.0, 2.0
DURATION = 192
NOISE = 0.5
DELAY = 3  # samples

#: a witness_td small enough for 4 s windows at 256 Hz (receptive field < the 1 s margin)
SMALL_TD = {
    "hidden": 16,
    "products": 4,
    "input_stride": 2,
    "local_layers": 3,
    "context_levels": 1,
    "context_channels": 8,
    "context_layers": 2,
    "fir_duration": 0.25,
    "fir_channels": 2,
    # the linear stage's whitening filter (+-1 s) does not fit the 1 s margin of 4 s windows;
    # it is tested on its own (tests/train/test_linear.py) and in the tiny pipeline run
    "linear_taps": 0,
}


def raw_blocks(seed: int = 3, duration: int = DURATION):
    """Strain (512 Hz) and the two witnesses at their native rates."""
    rng = np.random.default_rng(seed)
    t256 = np.arange(int(duration * 256)) / 256
    a = np.convolve(rng.standard_normal(t256.size), np.hanning(5), "same")
    t128 = np.arange(int(duration * 128)) / 128
    b = np.sin(2 * np.pi * 0.3 * t128) + 0.3 * np.sin(2 * np.pi * 1.1 * t128 + 1)
    strain = rng.standard_normal(int(duration * 512)) * 1e-22
    return (
        Block.create(strain, T0, 512, STRAIN, ["strain"]),
        Block.create(a, T0, 256, WIT_A, ["V"]),
        Block.create(b, T0, 128, WIT_B, ["urad"]),
    )


def coupling(features: torch.Tensor) -> torch.Tensor:
    """The synthetic truth, whitened units, from conditioned features ``[2, T]``."""
    a, b = features[0].double(), features[1].double()
    delayed = torch.roll(a, DELAY)
    return 0.8 * delayed + 0.6 * a * b


def write_timeseries(path, seed: int = 3, duration: int = DURATION):
    strain, a, b = raw_blocks(seed, duration)
    spec = fit_conditioning(
        [strain, a, b],
        [WIT_A, WIT_B],
        STRAIN,
        sample_rate=RATE,
        fftlength=4.0,
        fduration=1.0,
        highpass=None,
    )
    feats = condition_witnesses([a, b], spec)  # [2, n] float32
    truth = coupling(feats)
    gen = torch.Generator().manual_seed(seed)
    target = truth + NOISE * torch.randn(truth.shape, generator=gen, dtype=torch.float64)
    win, hop = int(WINDOW * RATE), int(STRIDE * RATE)
    edge = int(4 * RATE)  # stay clear of the conditioning edges
    starts = np.arange(edge, feats.shape[-1] - edge - win + 1, hop)
    n_valid = len(starts) // 4
    split = {"train": starts[: -n_valid - 1], "valid": starts[-n_valid:]}  # one window gap
    ns_per_sample = 10**9 / RATE
    attrs = {
        "format": "gwtwin-dataset/1",
        "kind": "timeseries",
        "strain_channel": STRAIN,
        "conditioning": spec.to_json(),
        "source": "synthetic",
        "config": json.dumps({"window_duration": WINDOW}),
        "created": "2026-01-01T00:00:00",
        "sample_rate": RATE,
        "window_duration": WINDOW,
        "target_duration": TARGET,
        "feature_names": json.dumps(spec.feature_names),
        "n_skipped": json.dumps({}),
    }
    with h5py.File(path, "w") as h5:
        h5.attrs.update(attrs)
        for name, sel in split.items():
            g = h5.create_group(name)
            g["witness"] = np.stack([feats[:, s : s + win].numpy() for s in sel]).astype("f4")
            g["target"] = np.stack([target[s : s + win].numpy() for s in sel]).astype("f4")
            g["truth"] = np.stack([truth[s : s + win].numpy() for s in sel]).astype("f4")
            g["gps_ns"] = T0 * 10**9 + np.round(sel * ns_per_sample).astype(np.int64)
            g["glitch"] = np.arange(len(sel)) % 2 == 0
            g["max_snr"] = np.where(g["glitch"][()], 10.0 + np.arange(len(sel)), 0).astype("f4")
        h5["psd/frequencies"] = np.asarray(spec.psd_frequencies)
        h5["psd/strain"] = np.asarray(spec.psd_values)
    return path, spec, (strain, a, b)


def write_qimage(path, seed: int = 4, n_train: int = 24, n_valid: int = 8):
    """Witness images [N, 2, 16, 32] and a strain image that lights up where witness 0 does."""
    rng = np.random.default_rng(seed)
    _, a, b = raw_blocks(seed, 64)
    spec = fit_conditioning(
        [raw_blocks(seed, 64)[0], a, b],
        [WIT_A, WIT_B],
        STRAIN,
        sample_rate=RATE,
        fftlength=4.0,
        fduration=1.0,
        highpass=None,
    )
    freqs = np.geomspace(8, 100, 16)
    times = np.arange(32) / 8

    def make(n):
        w = rng.exponential(1.0, (n, 2, 16, 32)).astype("f4")
        tgt = rng.exponential(1.0, (n, 16, 32)).astype("f4")
        for i in range(0, n, 2):  # every other window holds a "glitch"
            f, t = rng.integers(2, 14), rng.integers(2, 30)
            w[i, 0, f - 1 : f + 2, t - 1 : t + 2] += 60
            tgt[i, f - 1 : f + 2, t - 1 : t + 2] += 40
        return w, tgt

    attrs = {
        "format": "gwtwin-dataset/1",
        "kind": "qimage",
        "strain_channel": STRAIN,
        "conditioning": spec.to_json(),
        "source": "synthetic",
        "config": "{}",
        "created": "2026-01-01T00:00:00",
        "sample_rate": RATE,
        "window_duration": 4.0,
        "target_duration": 4.0,
        "feature_names": json.dumps(spec.feature_names),
        "n_skipped": "{}",
    }
    with h5py.File(path, "w") as h5:
        h5.attrs.update(attrs)
        for name, n, off in (("train", n_train, 0), ("valid", n_valid, n_train + 1)):
            w, tgt = make(n)
            g = h5.create_group(name)
            g["witness"], g["target"], g["truth"] = w, tgt, tgt
            g["gps_ns"] = (T0 + 4 * (off + np.arange(n))) * 10**9
            g["glitch"] = np.arange(n) % 2 == 0
            g["max_snr"] = np.where(g["glitch"][()], 20.0, 0.0).astype("f4")
        h5["psd/frequencies"] = np.asarray(spec.psd_frequencies)
        h5["psd/strain"] = np.asarray(spec.psd_values)
        h5["qimage/frequencies"] = freqs
        h5["qimage/times"] = times
    return path


@pytest.fixture(scope="session")
def ts_dataset(tmp_path_factory):
    """``(path, spec, (strain, wit_a, wit_b))`` of the synthetic time-series dataset."""
    return write_timeseries(tmp_path_factory.mktemp("train-ts") / "synthetic.h5")


@pytest.fixture(scope="session")
def qimage_dataset(tmp_path_factory):
    return write_qimage(tmp_path_factory.mktemp("train-qimage") / "synthetic-qimage.h5")


def small_config(**overrides):
    """A training config for the synthetic sets: few epochs, no progress bar."""
    cfg = {
        "max_epochs": 4,
        "batch_size": 8,
        "progress": False,
        "model_kwargs": dict(SMALL_TD),
        "optimizer": {"lr": 1e-2},
        "tensorboard": {"panels": 2},
        "trainer": {"accelerator": "cpu", "devices": 1, "log_every_n_steps": 1},
    }
    cfg.update(overrides)
    return cfg


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread (see tests/models/conftest.py), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
