"""Welch PSD against scipy.signal.welch and gwpy, PSD object, and the error paths."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from gwtwin.data import Block
from gwtwin.errors import GwtwinError
from gwtwin.signal import PSD, psd_block, welch
from gwtwin.signal.spectral import _median_bias

RATE = 1024


@pytest.fixture(scope="module")
def noise():
    rng = np.random.default_rng(20240601)
    return rng.standard_normal((2, 3, 20 * RATE))


# Tolerances: both sides are float64 FFTs of the same segments, so agreement is ~1e-14; 1e-10
# leaves room for FFT-library differences.  Float32 input: scipy computes in float32 (relative
# rounding ~6e-8 per operation, growing like log2(fftlength samples) in the FFT), gwtwin in
# float64, so the difference is scipy's float32 error, well inside the required 1e-5.
@pytest.mark.parametrize("average", ["mean", "median"])
@pytest.mark.parametrize(
    ("fftlength", "overlap", "shape"),
    [(1.0, None, (3,)), (2.0, 0.5, (2, 3)), (4.0, 0.0, ()), (0.5, 0.25, (2, 3))],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_welch_matches_scipy(noise, average, fftlength, overlap, shape, dtype):
    x = noise[(0,) * (2 - len(shape))].astype(dtype)
    assert x.shape[:-1] == shape
    freqs, psd = welch(torch.from_numpy(x), RATE, fftlength, overlap, average)
    noverlap = None if overlap is None else int(overlap * RATE)
    f_ref, p_ref = scipy.signal.welch(
        x, RATE, nperseg=int(fftlength * RATE), noverlap=noverlap, average=average
    )
    assert psd.dtype == torch.float64 and psd.shape == p_ref.shape
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(freqs.numpy(), f_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(psd.numpy(), p_ref, rtol=rtol, atol=0)


def test_welch_even_number_of_segments_median(noise):
    # 20 s, 4 s segments, 2 s overlap: 9 segments; 3 s overlap: 17; 0 overlap: 5; 8 s/4 s: 4
    x = noise[0, 0, : 16 * RATE]
    _, psd = welch(x, RATE, 4.0, 0.0, "median")  # 4 segments: numpy averages the middle two
    _, ref = scipy.signal.welch(x, RATE, nperseg=4 * RATE, noverlap=0, average="median")
    np.testing.assert_allclose(psd.numpy(), ref, rtol=1e-10)


@pytest.mark.parametrize("n", range(1, 12))
def test_median_bias_is_scipys(n):
    from scipy.signal._spectral_py import _median_bias as scipy_bias

    assert _median_bias(n) == pytest.approx(scipy_bias(n), rel=1e-15)


def test_welch_accepts_numpy_and_hann_window_array(noise):
    x = noise[0, 0]
    win = scipy.signal.get_window("hann", RATE)
    f1, p1 = welch(x, RATE, 1.0, window=win)
    f2, p2 = welch(torch.from_numpy(x), RATE, 1.0)
    torch.testing.assert_close(p1, p2, rtol=1e-14, atol=0)


def test_psd_block_matches_gwpy_and_converts(noise):
    block = Block.create(noise[0], 1_000_000_000, RATE, ["X1:A", "X1:B", "X1:C"], ["m"] * 3)
    psd = psd_block(block, 2.0, 1.0, "median")
    assert psd.channels == block.channels and psd.values.shape == (3, RATE + 1)
    ts = block.to_timeseriesdict()["X1:B"]
    ref = ts.psd(2.0, 1.0, method="median")
    np.testing.assert_allclose(psd["X1:B"].numpy(), ref.value, rtol=1e-10)
    series = psd.to_frequencyseries("X1:B")
    assert series.df.value == pytest.approx(0.5)
    assert str(series.unit) == "m2 / Hz"
    np.testing.assert_allclose(series.value, ref.value, rtol=1e-10)
    np.testing.assert_allclose(psd.asd.numpy(), np.sqrt(psd.values.numpy()))
    asd = psd.to_frequencyseries("X1:A", asd=True)
    np.testing.assert_allclose(asd.value, psd.asd[0].numpy())


def test_psd_interpolate_and_select(noise):
    psd = PSD(
        torch.arange(5.0), torch.tensor([[0.0, 2, 4, 6, 8], [1.0, 1, 1, 1, 1]]), ["a", "b"], 8, 1
    )
    fine = psd.interpolate(torch.tensor([0.5, 3.25, 10.0]))
    torch.testing.assert_close(fine["a"], torch.tensor([1.0, 6.5, 8.0]))
    assert psd.select(["b"]).channels == ("b",)
    with pytest.raises(GwtwinError, match="channel 'c' is not in this PSD"):
        psd.select(["c"])
    with pytest.raises(GwtwinError, match="holds 2 channels; name one"):
        psd.to_frequencyseries()


def test_psd_shape_checked():
    with pytest.raises(GwtwinError, match=r"shape \[channel, 4\] to match freqs"):
        PSD(torch.arange(4.0), torch.ones(2, 5), ["a", "b"], 8, 1)


# -- bad input -----------------------------------------------------------------------------------
def test_too_short_for_fftlength():
    x = torch.zeros(3 * 4096)
    with pytest.raises(
        GwtwinError,
        match=r"expected at least 4 s \(16384 samples at 4096 Hz\) of data for fftlength=4 s, "
        r"got 3 s \(12288 samples\)",
    ):
        welch(x, 4096, 4.0)


def test_nan_in_tensor_names_row():
    x = torch.zeros(3, 4 * RATE)
    x[1, 10] = float("nan")
    with pytest.raises(GwtwinError, match=r"NaN or inf found in row 1 \(1 samples\)"):
        welch(x, RATE, 1.0)


def test_nan_in_block_names_channel():
    data = torch.zeros(2, 4 * RATE)
    data[1, :5] = float("inf")
    block = Block.create(data, 0, RATE, ["X1:OK", "X1:BROKEN"])
    with pytest.raises(GwtwinError, match=r"channel\(s\) X1:BROKEN \(5 samples\)"):
        psd_block(block, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fftlength": 1.0, "overlap": 1.0}, "overlap must be shorter than fftlength=1 s"),
        ({"fftlength": 1.0, "average": "mode"}, r"average must be one of \['mean', 'median'\]"),
        ({"fftlength": 1.0001}, "not a whole number of samples at 1024 Hz"),
        ({"fftlength": -1.0}, "fftlength must be a positive number of seconds"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(GwtwinError, match=message):
        welch(torch.zeros(4 * RATE), RATE, **kwargs)


def test_bad_sample_rate():
    with pytest.raises(GwtwinError, match="sample_rate must be a positive number of Hz"):
        welch(torch.zeros(4 * RATE), 0, 1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_welch_on_gpu_matches_cpu(noise):
    x = torch.from_numpy(noise[0])
    for average in ("mean", "median"):
        _, cpu = welch(x, RATE, 2.0, average=average)
        _, gpu = welch(x.cuda(), RATE, 2.0, average=average)
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-10, atol=0)
