"""The exact multi-Q transform against gwpy's (the reference), its image, and its input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gwpy.signal.qtransform import QTiling as GwpyTiling
from gwpy.signal.qtransform import q_scan
from gwpy.timeseries import TimeSeries

from gwtwin.errors import GwtwinError
from gwtwin.signal.qtransform import (
    LN2,
    energy_from_snr,
    qtiling,
    qtransform,
    qtransform_image,
    snr_from_energy,
)


def sine_gaussian(n, fs, f0, q, tc, snr, phase=0.0):
    """LAL-convention sine-Gaussian ``exp(-((t - tc) / tau)^2) cos(...)``, tau = q / (sqrt2 pi f0).

    Scaled to matched-filter SNR ``snr`` in white noise of unit variance per sample: the one-sided
    PSD is S = 2 / fs, so snr^2 = 4 int |H|^2 / S df = 2 int h^2 dt / S = fs * sum(h^2) / fs
    = sum(h^2) (Parseval with dt = 1 / fs).
    """
    t = np.arange(n) / fs
    tau = q / (math.sqrt(2) * math.pi * f0)
    h = np.exp(-(((t - tc) / tau) ** 2)) * np.cos(2 * math.pi * f0 * (t - tc) + phase)
    return h * snr / np.sqrt(np.sum(h**2))


@pytest.fixture(scope="module")
def short_data():
    """8 s of white noise at 1024 Hz with a sine-Gaussian (float64)."""
    fs, dur = 1024, 8
    rng = np.random.default_rng(11)
    x = rng.standard_normal(fs * dur) + sine_gaussian(fs * dur, fs, 120.0, 10.0, 4.3, 25.0)
    return x, fs


# -- tiling ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dur", "fs", "qrange", "frange", "mismatch"),
    [
        (8, 1024, (4, 64), (0, math.inf), 0.2),
        (64, 4096, (4, 64), (10, 1000), 0.2),
        (4, 2048, (3.3166248, 100), (0, math.inf), 0.35),
    ],
)
def test_tiling_is_gwpys(dur, fs, qrange, frange, mismatch):
    ours = qtiling(dur, fs, qrange, frange, mismatch)
    ref = GwpyTiling(dur, fs, qrange=qrange, frange=frange, mismatch=mismatch)
    np.testing.assert_array_equal(ours.qs, ref.qs)
    assert ours.frange == ref.frange
    for plane, gplane in zip(ours.planes, ref, strict=True):
        # same float operations in the same order: bit-identical frequencies
        np.testing.assert_array_equal(plane.frequencies, gplane.frequencies)
        tiles = list(gplane)
        np.testing.assert_array_equal(plane.ntiles, [t.ntiles for t in tiles])
        np.testing.assert_array_equal(plane.windowsize, [t.windowsize for t in tiles])


def test_median_is_numpys():
    # the CPU median brackets long rows' middle values with a strided sample before selecting;
    # it must equal numpy's median bit for bit, including when the bracket misses (a sorted
    # ramp: the sample is not representative) and with ties at the median
    from gwtwin.signal.qkernel import _median

    rng = np.random.default_rng(5)
    cases = [rng.exponential(size=s).astype(np.float32) for s in [(2, 3, 2**16), (1, 2**15 + 1)]]
    cases.append(np.concatenate([np.zeros(2**16), np.arange(2**16)]).astype(np.float32)[None])
    ties = np.tile(np.array([1.0, 100.0], np.float32), 2**15)[None]
    ties[0, :10] = 0
    cases += [ties, rng.exponential(size=(3, 1000)).astype(np.float32)]
    for a in cases:
        np.testing.assert_array_equal(_median(torch.from_numpy(a)).numpy(), np.median(a, axis=-1))
    strided = torch.from_numpy(rng.exponential(size=(2, 2**17)))[:, ::2]
    np.testing.assert_array_equal(_median(strided).numpy(), np.median(strided.numpy(), axis=-1))


# -- raw tiles vs gwpy ----------------------------------------------------------------------------


def _gwpy_planes(x, fs, norm=True):
    ts = TimeSeries(x, sample_rate=fs, t0=0)
    fseries = ts.fft()
    tiling = GwpyTiling(abs(ts.span), fs)
    return [plane.transform(fseries, norm=norm, epoch=0) for plane in tiling]


def test_raw_tiles_match_gwpy_q_scan(short_data):
    x, fs = short_data
    ours = qtransform(torch.from_numpy(x), fs, norm="gwpy")
    ref = _gwpy_planes(x, fs)
    assert len(ours.planes) == len(ref)
    for plane, gram in zip(ours.planes, ref, strict=True):
        assert plane.q == gram.plane.q
        np.testing.assert_array_equal(plane.frequencies, gram.plane.frequencies)
        for mine, theirs in zip(plane.energies, gram.energies, strict=True):
            assert mine.shape[-1] == theirs.size
            # gwpy rounds its normalised energies to float32 (relative 6e-8); ours are float64
            np.testing.assert_allclose(mine.numpy(), theirs.value, rtol=1e-3, atol=0)
    # the best plane is gwpy's q_scan choice, with the same peak
    qgram, _ = q_scan(TimeSeries(x, sample_rate=fs, t0=0))
    best = int(ours.best_plane())
    assert ours.planes[best].q == qgram.plane.q
    peak, where = ours.planes[best].peak(0.0, ours.duration)
    assert float(peak) == pytest.approx(qgram.peak["energy"], rel=1e-6)
    assert where[0] == pytest.approx(qgram.peak["time"])
    assert where[1] == pytest.approx(qgram.peak["frequency"])


def test_float32_strain_scale_is_safe(short_data):
    """1e-21 data in float32 squares to ~1e-42, below float32's normal range: the transform must
    condition it (scale to unit variance; normalised energies are ratios so nothing changes)."""
    x, fs = short_data
    strain = torch.from_numpy(x * 1e-21).float()
    assert strain.dtype == torch.float32
    ours = qtransform(strain, fs, norm="gwpy")
    ref = _gwpy_planes(x, fs)
    for plane, gram in zip(ours.planes, ref, strict=True):
        for mine, theirs in zip(plane.energies, gram.energies, strict=True):
            assert torch.isfinite(mine).all()
            # float32 FFTs: absolute error ~1e-6 of the row scale (median ~1), so compare with
            # a floor of 1 rather than purely relatively (many noise tiles are ~1e-3)
            err = np.abs(mine.numpy() - theirs.value) / (np.abs(theirs.value) + 1.0)
            assert err.max() < 1e-3
    # raw energies come back in the input's units squared, like gwpy's norm=False
    raw = qtransform(strain, fs, norm=None)
    ref_raw = _gwpy_planes(x * 1e-21, fs, norm=False)
    for mine, theirs in zip(raw.planes[1].energies[::7], ref_raw[1].energies[::7], strict=True):
        assert mine.dtype == torch.float64
        scale = float(np.median(theirs.value))
        np.testing.assert_allclose(mine.numpy(), theirs.value, rtol=1e-3, atol=1e-3 * scale)


def test_normalisations_and_snr_convention():
    fs = 1024
    x = torch.from_numpy(np.random.default_rng(5).standard_normal(fs * 16))
    med = qtransform(x, fs, norm="median")
    gw = qtransform(x, fs, norm="gwpy")
    mean = qtransform(x, fs, norm="mean")
    allz = []
    for pm, pg, pn in zip(med.planes, gw.planes, mean.planes, strict=True):
        for em, eg, en in zip(pm.energies, pg.energies, pn.energies, strict=True):
            torch.testing.assert_close(em, eg * LN2)  # Omega: median / ln 2 estimates the mean
            assert float(en.mean()) == pytest.approx(1.0, rel=1e-9)
            allz.append(em)
    # Gaussian noise: mean-normalised energy is exponential with mean 1 (median/ln2 estimator)
    z = torch.cat(allz)
    assert float(z.mean()) == pytest.approx(1.0, abs=0.02)
    assert snr_from_energy(energy_from_snr(np.array([0.0, 5.5, 100.0]))) == pytest.approx(
        [0.0, 5.5, 100.0]
    )
    assert float(snr_from_energy(torch.tensor(0.5))) == 0.0


def test_peak_energy_relates_to_injected_snr():
    """E[Z] = 1 + snr^2 / 2 for a tile matching a signal of matched-filter SNR snr; the grid
    loses up to the mismatch (20 % energy), noise adds +-snr, hence the bounds."""
    fs, n, rho = 1024, 1024 * 16, 40.0
    x = np.random.default_rng(9).standard_normal(n) + sine_gaussian(n, fs, 100.0, 8.0, 8.0, rho)
    scan = qtransform(torch.from_numpy(x), fs)
    peak = max(float(p.peak(0.0, scan.duration)[0]) for p in scan.planes)
    assert 0.75 * energy_from_snr(rho) < peak < 1.15 * energy_from_snr(rho)


# -- the image ------------------------------------------------------------------------------------


def test_image_keeps_a_10ms_burst_that_gwpys_default_image_misses():
    """64 s of white noise with a ~10 ms burst (300 Hz, tau = 4.5 ms): gwpy's default image
    (1000 time bins of 64 ms, spline-interpolated) shows ~noise; ours keeps the raw-tile peak."""
    fs, dur = 2048, 64
    n = fs * dur
    x = np.random.default_rng(21).standard_normal(n) + sine_gaussian(n, fs, 300.0, 6.0, 37.3, 25.0)
    ts = TimeSeries(x, sample_rate=fs, t0=0)
    gwpy_image = ts.q_transform(whiten=False)  # defaults: tres = 64 ms, fres = 0.5 Hz
    qgram, _ = q_scan(ts)  # gwpy's own raw tiles
    ours = qtransform_image(torch.from_numpy(x).float(), fs, norm="gwpy")
    assert ours.energy.shape == gwpy_image.shape
    np.testing.assert_allclose(ours.times, gwpy_image.times.value)
    np.testing.assert_allclose(ours.frequencies, gwpy_image.frequencies.value)
    raw_peak = qgram.peak["energy"]
    assert float(ours.energy.max()) == pytest.approx(raw_peak, rel=1e-3)  # exact, by MAX
    assert gwpy_image.value.max() < 0.2 * raw_peak  # interpolation lost it
    it, jf = np.unravel_index(int(ours.energy.argmax()), ours.energy.shape)
    assert ours.times[it] <= 37.3 < ours.times[it] + ours.tres
    assert ours.frequencies[jf] == pytest.approx(300, rel=0.15)
    assert ours.q == qgram.plane.q


def test_image_grid_batching_and_planes(short_data):
    x, fs = short_data
    y = np.random.default_rng(3).standard_normal(x.size)
    both = torch.from_numpy(np.stack([x, y]))
    img = qtransform_image(both, fs, outseg=(2.0, 6.0), tres=0.01, logf=True, nfreq=100, t0=0.0)
    assert img.energy.shape == (2, 400, 100)
    np.testing.assert_allclose(img.times, 2.0 + 0.01 * np.arange(400))
    assert img.frequencies[0] == pytest.approx(qtiling(8, fs).frange[0])
    assert np.all(np.diff(np.log(img.frequencies)) > 0)
    for i, row in enumerate((x, y)):  # batched == one at a time
        one = qtransform_image(
            torch.from_numpy(row), fs, outseg=(2.0, 6.0), tres=0.01, logf=True, nfreq=100
        )
        torch.testing.assert_close(img.energy[i], one.energy)
        assert img.q[i] == one.q
    # the best plane's peak is the raw tiles' peak; "max" dominates every plane
    scan = qtransform(torch.from_numpy(x), fs)
    assert float(img.peak[0]) == pytest.approx(
        max(float(p.peak(0.0, 8.0)[0]) for p in scan.planes), rel=1e-9
    )
    allq = qtransform_image(
        both, fs, outseg=(2.0, 6.0), tres=0.01, logf=True, nfreq=100, plane="max"
    )
    assert bool((allq.energy >= img.energy).all())
    assert np.isnan(allq.q).all()
    lowq = qtransform_image(both, fs, tres=0.05, plane=5.0)
    assert lowq.q[0] == scan.planes[0].q
    spec = img.to_spectrogram(0)
    assert spec.shape == (400, 100)


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"qrange": (2, 64)}, r"qrange low end must be >= sqrt\(11\) = 3\.3166.*found 2"),
        ({"qrange": (64, 4)}, r"low <= high"),
        (
            {"frange": (50, 400)},
            r"frange high end 400 Hz is above the highest frequency 322\.\d Hz"
            r" allowed at 1024 Hz for q_min = 5\.657",
        ),
        (
            {"frange": (10, 200)},
            r"frange low end 10 Hz is below the lowest frequency 45\.02 Hz "
            r"that 8 s of data allow at q_max = 45\.25",
        ),
        ({"frange": (100, 50)}, r"low < high"),
        ({"mismatch": 0.9}, r"mismatch must be in \(0, 0\.5\], found 0\.9"),
        ({"norm": "max"}, r"norm must be one of"),
    ],
)
def test_bad_parameters(kwargs, match):
    x = torch.zeros(8 * 1024).normal_()
    with pytest.raises(GwtwinError, match=match):
        qtransform(x, 1024, **kwargs)


def test_bad_data():
    fs = 1024
    with pytest.raises(
        GwtwinError,
        match=r"data too short: 0\.5 s at 1024 Hz allows frequencies "
        r"from 720\.3 Hz .* to 322\.\d Hz",
    ):
        qtransform(torch.randn(512), fs)
    x = torch.randn(2, 8 * fs)
    x[1, 100] = math.nan
    with pytest.raises(GwtwinError, match=r"1 non-finite \(NaN/inf\) samples, in batch rows \[1\]"):
        qtransform(x, fs)
    with pytest.raises(GwtwinError, match=r"zero variance .* batch rows \[0\]"):
        qtransform_image(torch.zeros(1, 8 * fs), fs)
    with pytest.raises(GwtwinError, match=r"sample_rate \(Hz\) is required"):
        qtransform(torch.randn(8 * fs))
    with pytest.raises(GwtwinError, match=r"tres must be a positive number of seconds, found -1"):
        qtransform_image(torch.randn(8 * fs), fs, tres=-1)
    with pytest.raises(GwtwinError, match=r"outseg must be \(start, end\) with end > start"):
        qtransform_image(torch.randn(8 * fs), fs, outseg=(5, 1))
    with pytest.raises(GwtwinError, match=r"plane must be 'best', 'max' or a Q, found 'loud'"):
        qtransform_image(torch.randn(8 * fs), fs, plane="loud")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(short_data):
    x, fs = short_data
    cpu = qtransform_image(torch.from_numpy(x).float(), fs, tres=0.01)
    gpu = qtransform_image(torch.from_numpy(x).float().cuda(), fs, tres=0.01)
    torch.testing.assert_close(gpu.energy.cpu(), cpu.energy, rtol=1e-3, atol=1e-3)


def test_window_cache_tells_tilings_of_one_duration_apart():
    """Two Q tilings of the same duration and rate but another frequency range must not share
    cached windows (they once did: the veto's residual images, then a training set's images,
    failed with a shape mismatch)."""
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.standard_normal((1, 32 * 4096)))
    qtransform_image(x, 4096, qrange=(4, 32), frange=(10, 1000), tres=0.05, nfreq=32)
    second = qtransform_image(x, 4096, qrange=(4, 32), frange=(20, 1000), tres=0.05, nfreq=32)
    from gwtwin.signal import qkernel

    qkernel._WINDOW_CACHE.clear()
    qkernel._PLAN_CACHE.clear()
    fresh = qtransform_image(x, 4096, qrange=(4, 32), frange=(20, 1000), tres=0.05, nfreq=32)
    torch.testing.assert_close(second.energy, fresh.energy)
