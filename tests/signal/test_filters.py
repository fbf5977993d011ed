"""Zero-phase SOS filters against scipy.signal.sosfiltfilt, resampling against resample_poly."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pytest
import scipy.signal
import torch

from gwtwin.data import Block
from gwtwin.errors import GwtwinError
from gwtwin.signal import (
    bandpass,
    design_sos,
    filter_block,
    highpass,
    lowpass,
    resample,
    resample_block,
    resample_settle,
    settle_time,
    sosfiltfilt,
)

RATE = 4096


@pytest.fixture(scope="module")
def noise():
    return np.random.default_rng(11).standard_normal((2, 3, 8 * RATE))


BANDS = [
    (55.0, 65.0),  # narrow band, order 8: b/a form is useless here
    (20.0, 500.0),
    (10.0, None),
    (None, 100.0),
    (30.0, 2000.0),
]


# Tolerance: the scipy backend runs scipy's own sosfilt on the same extended input (exact up to
# the order of float additions); the torch backend's chunked FFT form differs from the direct
# recursion by float64 rounding amplified by the sections' gain, measured <= 1e-12 relative to the
# output's peak for these bands; 1e-10 is the requirement.
@pytest.mark.parametrize(("flow", "fhigh"), BANDS)
@pytest.mark.parametrize("backend", ["scipy", "torch"])
def test_sosfiltfilt_matches_scipy(noise, flow, fhigh, backend):
    sos = design_sos(RATE, flow, fhigh, 8)
    ref = scipy.signal.sosfiltfilt(sos, noise, axis=-1)
    if flow is not None and fhigh is not None:
        out = bandpass(torch.from_numpy(noise), RATE, flow, fhigh, backend=backend)
    elif flow is not None:
        out = highpass(noise, RATE, flow, backend=backend)
    else:
        out = lowpass(noise, RATE, fhigh, backend=backend)
    assert out.shape == noise.shape and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-10 * np.abs(ref).max())


def test_narrow_band_order_8_where_ba_fails():
    t = np.arange(8 * RATE) / RATE
    x = np.sin(2 * np.pi * 60 * t) + np.sin(2 * np.pi * 30 * t)
    out = bandpass(x, RATE, 55, 65, order=8, backend="torch").numpy()
    core = slice(2 * RATE, -2 * RATE)
    # passes 60 Hz with unit gain, removes 30 Hz
    np.testing.assert_allclose(out[core], np.sin(2 * np.pi * 60 * t[core]), atol=1e-3)
    # the transfer-function form of the same filter is numerically unstable
    b, a = scipy.signal.butter(8, [55, 65], "bandpass", fs=RATE)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ba = scipy.signal.filtfilt(b, a, x)
    assert not np.isfinite(ba).all() or np.abs(ba[core] - out[core]).max() > 0.1


def test_float32_and_batch_shapes(noise):
    x32 = torch.from_numpy(noise).float()
    out = bandpass(x32, RATE, 20, 500)
    assert out.dtype == torch.float32 and out.shape == x32.shape
    ref = scipy.signal.sosfiltfilt(design_sos(RATE, 20, 500), noise, axis=-1)
    # float32 input rounding (6e-8 relative) through a gain-1 filter
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize(("flow", "fhigh"), [(10.0, None), (55.0, 65.0)])
def test_settle_time_bounds_the_edge_transient(noise, flow, fhigh):
    """A chunk filtered with settle_time of extra data either side matches the long span."""
    tol = 1e-3
    settle = settle_time(RATE, flow, 8, tol, fhigh=fhigh)
    assert 0 < settle < 2.0
    x = noise[0, 0]
    sos = design_sos(RATE, flow, fhigh, 8)
    long = scipy.signal.sosfiltfilt(sos, x)
    pad = int(np.ceil(settle * RATE))
    i0, i1 = 3 * RATE, 5 * RATE
    chunk = sosfiltfilt(x[i0 - pad : i1 + pad], sos).numpy()[pad:-pad]
    # the bound is tol x (max input) x (L1 norm of the response); noise is ~3 sigma peak
    scale = np.abs(x).max() * np.abs(long).max() / np.abs(x).max()
    assert np.abs(chunk - long[i0:i1]).max() < 5 * tol * max(scale, 1.0)
    # and a much shorter margin is visibly worse
    short = int(pad / 8)
    bad = sosfiltfilt(x[i0 - short : i1 + short], sos).numpy()[short:-short]
    assert np.abs(bad - long[i0:i1]).max() > np.abs(chunk - long[i0:i1]).max()


def test_settle_time_grows_with_order_and_lower_corner():
    assert settle_time(RATE, 10, 8) > settle_time(RATE, 20, 8) > settle_time(RATE, 20, 2)
    assert settle_time(RATE, 10, 8, tol=1e-6) > settle_time(RATE, 10, 8, tol=1e-3)


RATE_PAIRS = [
    (4096, 1024),
    (4096, 2048),
    (4096, 64),
    (16384, 4096),
    (1024, 4096),
    (256, 2048),
    (64, 128),
]


@pytest.mark.parametrize(("rate_in", "rate_out"), RATE_PAIRS)
@pytest.mark.parametrize("n", [4 * 4096 + 37, 999])
def test_resample_matches_resample_poly(rate_in, rate_out, n):
    x = np.random.default_rng(n).standard_normal((2, 2, n))
    ratio = Fraction(rate_out, rate_in)
    ref = scipy.signal.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
    out = resample(torch.from_numpy(x), rate_in, rate_out)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-10 * np.abs(ref).max())


def test_resample_float32():
    x = np.random.default_rng(0).standard_normal(8192).astype(np.float32)
    out = resample(x, 4096, 1024)
    assert out.dtype == torch.float32
    ref = scipy.signal.resample_poly(x.astype(np.float64), 1, 4)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-6)


def test_resample_settle():
    assert resample_settle(4096, 1024) == (10 / 1024, 40, 10)
    assert resample_settle(1024, 4096) == (10 / 1024, 10, 40)
    # beyond the settle span the output does not feel the zero padding
    rng = np.random.default_rng(1)
    x = rng.standard_normal(4 * 4096)
    long = resample(x, 4096, 1024)
    settle = resample_settle(4096, 1024)
    chunk = resample(x[4096:8192], 4096, 1024)
    e = settle.size_out
    torch.testing.assert_close(chunk[e:-e], long[1024 + e : 2048 - e], atol=1e-12, rtol=0)


def test_noop_resample_warns():
    x = torch.arange(16.0)
    with pytest.warns(UserWarning, match="resampling 1024 Hz -> 1024 Hz does nothing"):
        out = resample(x, 1024, 1024)
    torch.testing.assert_close(out, x)
    block = Block.create(x, 0, 1024, "X1:A")
    with pytest.warns(UserWarning, match="native rate 1024 Hz does nothing"):
        assert resample_block(block, 1024) is block


def test_blocks_record_history(noise):
    block = Block.create(noise[0], 1_000_000_000, RATE, ["X1:A", "X1:B", "X1:C"])
    filtered = filter_block(block, 20, 500)
    assert filtered.history[-1].startswith("band-pass 20-500 Hz Butterworth order 8")
    assert filtered.t0_ns == block.t0_ns
    down = resample_block(filtered, 1024)
    assert down.sample_rate == 1024 and down.size == block.size // 4
    assert down.history[-1] == "resample 4096 Hz -> 1024 Hz (polyphase, Kaiser beta 5)"
    assert "high-pass 10 Hz" in filter_block(block, flow=10).history[-1]
    assert "low-pass 100 Hz" in filter_block(block, fhigh=100).history[-1]


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flow", "fhigh", "message"),
    [
        (
            0.0,
            100.0,
            r"flow must be in \(0, 2048\) Hz \(the Nyquist frequency of 4096 Hz data\), "
            "found 0 Hz",
        ),
        (10.0, 2048.0, r"fhigh must be in \(0, 2048\) Hz .* found 2048 Hz"),
        (-5.0, None, r"flow must be in \(0, 2048\) Hz"),
        (None, 3000.0, r"fhigh must be in \(0, 2048\) Hz .* found 3000 Hz"),
        (100.0, 50.0, "band-pass needs flow < fhigh, found flow=100 Hz, fhigh=50 Hz"),
        (None, None, "give flow"),
    ],
)
def test_band_edges_outside(flow, fhigh, message):
    with pytest.raises(GwtwinError, match=message):
        design_sos(RATE, flow, fhigh)


def test_order_checked():
    with pytest.raises(GwtwinError, match="order must be a positive integer, found 0"):
        design_sos(RATE, 10, None, 0)


@pytest.mark.parametrize(
    ("rate_in", "rate_out", "message"),
    [
        (4096, 1000, r"ratio must be a power of two .* found 125/512"),
        (4096, 12288, r"found 3/1"),
        (4096, 4096 * np.pi, "not a rational ratio"),
    ],
)
def test_bad_resampling_ratio(rate_in, rate_out, message):
    with pytest.raises(GwtwinError, match=message):
        resample(torch.zeros(4096), rate_in, rate_out)
    with pytest.raises(GwtwinError, match=message):
        resample_settle(rate_in, rate_out)


def test_too_short_for_filter_padding():
    with pytest.raises(GwtwinError, match=r"expected more than 51 samples .* got 40 samples"):
        bandpass(torch.zeros(40), RATE, 20, 500)


def test_nan_named(noise):
    x = noise[0].copy()
    x[2, 7] = np.nan
    with pytest.raises(GwtwinError, match=r"row 2 \(1 samples\)"):
        bandpass(x, RATE, 20, 500)
    block = Block.create(x, 0, RATE, ["X1:A", "X1:B", "X1:C"])
    with pytest.raises(GwtwinError, match=r"channel\(s\) X1:C \(1 samples\)"):
        filter_block(block, 20, 500)
    with pytest.raises(GwtwinError, match=r"channel\(s\) X1:C"):
        resample_block(block, 1024)


def test_unknown_backend(noise):
    with pytest.raises(GwtwinError, match=r"backend must be one of \['auto', 'scipy', 'torch'\]"):
        bandpass(noise[0], RATE, 20, 500, backend="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_filters_on_gpu_match_scipy(noise):
    x = torch.from_numpy(noise).cuda()
    sos = design_sos(RATE, 55, 65)
    out = sosfiltfilt(x, sos)  # auto: the torch recursion on the GPU
    ref = scipy.signal.sosfiltfilt(sos, noise, axis=-1)
    assert out.device.type == "cuda"
    np.testing.assert_allclose(out.cpu().numpy(), ref, atol=1e-10 * np.abs(ref).max())
    down = resample(x, RATE, 512)
    ref = scipy.signal.resample_poly(noise, 1, 8, axis=-1)
    np.testing.assert_allclose(down.cpu().numpy(), ref, atol=1e-10 * np.abs(ref).max())
