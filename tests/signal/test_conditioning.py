"""Witness and strain conditioning: references, the round trip, chunk independence, errors."""

import math

import numpy as np
import pytest
import scipy.signal
import torch

from gwtwin.data import Block, MissingChannelError, SampleRateMismatchError
from gwtwin.errors import GwtwinError
from gwtwin.signal.conditioning import (
    ChannelOrderError,
    ConditioningSpec,
    condition_strain,
    condition_witnesses,
    fit_conditioning,
    inverse_fir,
    length_scale,
    median_psd,
    uncondition_strain,
)
from gwtwin.signal.filters import _resample_filter
from gwtwin.signal.whitening import design_fir

T0 = 1_400_000_000
DURATION = 64
STRAIN, DISP, MAG, ASC = "V1:STRAIN", "V1:DISP_X", "V1:MAG", "V1:ASC"
LINE_F = 50.0


def _strain(rng, duration=DURATION, rate=4096):
    """Coloured noise: a steep low-frequency wall, a white floor and a loud 50 Hz line."""
    n = duration * rate
    white = rng.standard_normal(n)
    sos = scipy.signal.butter(4, 15, "lowpass", fs=rate, output="sos")
    wall = scipy.signal.sosfilt(sos, rng.standard_normal(n)) * 300
    t = np.arange(n) / rate
    line = 2.0 * np.sin(2 * np.pi * LINE_F * t + 0.3)
    return (white + wall + line) * 1e-23


def _witnesses(rng, duration=DURATION):
    t256 = np.arange(duration * 256) / 256
    disp = 2.0 * np.sin(2 * np.pi * 0.2 * t256) + 0.1 * rng.standard_normal(t256.size)
    mag = rng.standard_normal(duration * 4096) * 1e-12
    asc = np.cumsum(rng.standard_normal(duration * 128)) * 0.01
    return [
        Block.create(disp, T0, 256, DISP, ["um"]),
        Block.create(mag, T0, 4096, MAG, ["T"]),
        Block.create(asc, T0, 128, ASC, ["urad"]),
    ]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    strain = Block.create(_strain(rng), T0, 4096, STRAIN, ["strain"])
    return strain, _witnesses(rng)


@pytest.fixture(scope="module")
def spec(data):
    strain, wit = data
    return fit_conditioning([strain, *wit], [DISP, MAG, ASC], STRAIN)


def test_median_psd_is_scipy_welch_for_one_piece():
    x = np.random.default_rng(1).standard_normal(16 * 512)
    freqs, psd = median_psd([torch.from_numpy(x)], 512, 2.0)
    ref_f, ref = scipy.signal.welch(x, 512, nperseg=1024, average="median")
    np.testing.assert_allclose(freqs.numpy(), ref_f)
    # float64 FFTs of the same segments: rounding only
    np.testing.assert_allclose(psd.numpy(), ref, rtol=1e-10)


def test_median_psd_pools_segments_of_all_pieces():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(8 * 256), rng.standard_normal(6 * 256)
    _, psd = median_psd([torch.from_numpy(a), torch.from_numpy(b)], 256, 1.0)
    segs = [x[i : i + 256] for x in (a, b) for i in range(0, x.size - 255, 128)]
    per = np.array([scipy.signal.periodogram(s, 256, window="hann")[1] for s in segs])
    bias = scipy.signal._spectral_py._median_bias(len(segs))
    np.testing.assert_allclose(psd.numpy(), np.median(per, axis=0) / bias, rtol=1e-10)


def test_length_units():
    assert length_scale("um") == pytest.approx(1e-6)
    assert length_scale("1e-06 m") == pytest.approx(1e-6)
    assert length_scale("nm") == pytest.approx(1e-9)
    assert length_scale("T") is None
    assert length_scale("") is None
    assert length_scale("not a unit") is None


def test_spec_features_and_json_round_trip(spec):
    assert spec.witness_channels == [DISP, MAG, ASC]
    assert spec.feature_names == [
        DISP,
        f"{DISP}:sin1",
        f"{DISP}:cos1",
        f"{DISP}:sin2",
        f"{DISP}:cos2",
        MAG,
        ASC,
    ]
    assert [w.transform for w in spec.witnesses] == ["fringe", "standardise", "standardise"]
    assert spec.witnesses[0].metres == pytest.approx(1e-6)
    assert ConditioningSpec.from_json(spec.to_json()) == spec
    assert spec.psd.sample_rate == 1024 and spec.psd.freqs[-1] == 512


def test_witnesses_standardised_and_fringe_features_exact(data, spec):
    _, wit = data
    x = condition_witnesses(wit, spec, dtype=torch.float64)
    assert x.shape == (spec.n_features, DURATION * 1024)
    # fitted on the same data less the resampling edges (10 / 128 s for the slowest channel):
    # mean 0 and std 1 there, up to the few samples a 0.1 s trim differs by
    core = x[:, 103:-103]
    np.testing.assert_allclose(core.mean(dim=1), 0, atol=2e-3)
    np.testing.assert_allclose(core.std(dim=1), 1, atol=2e-3)
    # reference: scipy's resample_poly of x (um -> m), low-passed with scipy's firwin at the
    # spec's corner for the phase, then sin/cos(4 pi n x / lambda); away from the FIR's edges
    w = spec.witnesses[0]
    assert spec.fringe_lowpass == 5.0
    disp = scipy.signal.resample_poly(wit[0].numpy()[0], 4, 1, window=("kaiser", 5.0))
    taps = scipy.signal.firwin(2049, 5.0, fs=1024, window=("kaiser", 8.0))
    slow = scipy.signal.fftconvolve(disp, taps, mode="same")
    phase = 4 * np.pi * slow * 1e-6 / 1.064e-6
    inner = slice(1024, -1024)
    for row, ref in enumerate([slow, np.sin(phase), np.cos(phase), np.sin(2 * phase)]):
        got = x[row].numpy() * w.std[row] + w.mean[row]
        np.testing.assert_allclose(got[inner], ref[inner], atol=1e-9 * max(1, np.abs(ref).max()))
    # without the low-pass the phase is the raw displacement's
    raw_spec = ConditioningSpec.from_dict({**spec.to_dict(), "fringe_lowpass": None})
    x_raw = condition_witnesses(wit, raw_spec, dtype=torch.float64)
    phase = 4 * np.pi * disp * 1e-6 / 1.064e-6
    got = x_raw[1].numpy() * w.std[1] + w.mean[1]
    np.testing.assert_allclose(got, np.sin(phase), atol=1e-9)


def test_strain_whitened_to_unit_variance(data, spec):
    strain, _ = data
    y = condition_strain(strain, spec)
    edge = int(spec.edge_duration * 1024)
    # Gaussian noise whitened by its own PSD: unit variance, except the band below the
    # high-pass (10 Hz of 512 Hz removed) and the line, which the 2 s filter does not fully flatten
    assert float(y[edge:-edge].std()) == pytest.approx(1.0, abs=0.08)


def _round_trip_gain(spec, freqs):
    """Predicted gain of uncondition(condition(.)) at ``freqs``, from the filters themselves:
    the whitening FIR's response times the inverse FIR's (both zero phase)."""
    nfft = 1 << 16
    rate = spec.sample_rate
    f = torch.tensor(spec.psd_frequencies, dtype=torch.float64)
    p = torch.tensor(spec.psd_values, dtype=torch.float64)
    w = design_fir((f, p), rate, spec.fduration, spec.highpass, nfft=spec.nfft)
    c = inverse_fir(spec)
    grid = np.fft.rfftfreq(nfft, 1 / rate)
    out = []
    for taps in (w, c):
        centred = torch.zeros(nfft, dtype=torch.float64)
        centred[: taps.shape[-1]] = taps
        centred = torch.roll(centred, -int(taps.shape[-1] / 2 - 1))
        out.append(torch.fft.rfft(centred).real.numpy())
    gain = np.interp(freqs, grid, out[0] * out[1])
    # and the two resamplings (4096 -> 1024 -> 4096 Hz): scipy's polyphase Kaiser FIRs, whose
    # passband ripple is ~1e-3
    # (zero-stuffing by 4 divides the amplitude by 4, which the up filter's gain 4 restores)
    for taps in (_resample_filter(1, 4), _resample_filter(4, 1) / 4):
        _, h = scipy.signal.freqz(taps, worN=freqs, fs=4096)
        gain = gain * np.abs(h)
    return gain


def test_round_trip_restores_strain_away_from_edges(data, spec):
    strain, _ = data
    freqs = np.array([20.0, LINE_F, 73.0, 150.0, 300.0])
    gain = _round_trip_gain(spec, freqs)
    # the design claim: ~1 % away from the line, a few % on it (a bare ASD colour filter is off
    # by a factor 2.7 on the simulated 50 Hz line)
    assert np.all(np.abs(gain[[0, 2, 3, 4]] - 1) < 0.01), gain
    assert abs(gain[1] - 1) < 0.1, gain
    # sinusoids riding on the noise come back with exactly that gain (the amplitude fitted over
    # 48 s against noise ~1e-23 per sample is good to ~3e-5 relative; the FIR tails beyond the
    # truncated responses add ~1e-4)
    t = np.arange(strain.size) / 4096
    tones = sum(1e-21 * np.sin(2 * np.pi * f * t + k) for k, f in enumerate(freqs))
    x = strain.replace(data=torch.from_numpy(strain.numpy() + tones[None]))
    back = uncondition_strain(condition_strain(x, spec), spec).numpy()
    assert back.shape == (strain.size,)
    edge = int(math.ceil(spec.edge_duration)) * 4096
    design = np.column_stack(
        [f(2 * np.pi * fr * t[edge:-edge]) for fr in freqs for f in (np.sin, np.cos)]
    )

    def amplitudes(series):
        coef, *_ = np.linalg.lstsq(design, series[edge:-edge], rcond=None)
        return np.hypot(coef[0::2], coef[1::2])

    measured, original = amplitudes(back), amplitudes(x.numpy()[0])
    np.testing.assert_allclose(measured / original, gain, atol=1e-4)  # measured 4e-5
    # and the noise itself comes back in band (15-400 Hz, away from the line) to ~1 %
    sos = scipy.signal.butter(8, [15, 400], "bandpass", fs=4096, output="sos")
    a = scipy.signal.sosfiltfilt(sos, strain.numpy()[0])[edge:-edge]
    b = scipy.signal.sosfiltfilt(sos, uncondition_strain(condition_strain(strain, spec), spec))
    notch = scipy.signal.iirnotch(LINE_F, 5, fs=4096)
    a = scipy.signal.filtfilt(*notch, a)
    b = scipy.signal.filtfilt(*notch, b[edge:-edge])
    assert np.std(a - b) / np.std(a) < 0.015  # measured 0.0065


def test_conditioning_is_chunk_independent(data, spec):
    strain, wit = data
    whole_w = condition_witnesses(wit, spec, dtype=torch.float64)
    whole_s = condition_strain(strain, spec)
    lo, hi = T0 + 10, T0 + 40
    part_w = condition_witnesses([b.crop(lo, hi) for b in wit], spec, dtype=torch.float64)
    part_s = condition_strain(strain.crop(lo, hi), spec)
    edge = int(math.ceil(spec.condition_edge_duration * 1024))
    i0 = 10 * 1024
    # identical FIRs on identical samples: rounding only
    np.testing.assert_allclose(
        part_w[:, edge:-edge], whole_w[:, i0 + edge : i0 + 30 * 1024 - edge], atol=1e-9
    )
    np.testing.assert_allclose(
        part_s[edge:-edge], whole_s[i0 + edge : i0 + 30 * 1024 - edge], atol=1e-9
    )


def test_mapping_input_matched_by_name(data, spec):
    _, wit = data
    by_name = {b.channels[0]: b for b in reversed(wit)}
    assert torch.equal(condition_witnesses(by_name, spec), condition_witnesses(wit, spec))


# -- errors ---------------------------------------------------------------------------------------
def test_missing_witness_refused(data, spec):
    _, wit = data
    with pytest.raises(MissingChannelError, match=r"V1:MAG.*missing.*expects"):
        condition_witnesses([wit[0], wit[2]], spec)


def test_reordered_witnesses_refused(data, spec):
    _, wit = data
    with pytest.raises(ChannelOrderError, match=r"wrong order: expected .*V1:DISP_X.*found"):
        condition_witnesses([wit[1], wit[0], wit[2]], spec)


def test_wrong_rate_refused(data, spec):
    strain, wit = data
    fast = wit[0].replace(
        data=torch.from_numpy(scipy.signal.resample_poly(wit[0].numpy(), 2, 1, axis=-1)),
        sample_rate=512,
    )
    with pytest.raises(SampleRateMismatchError, match=r"V1:DISP_X is at 512 Hz.*256 Hz"):
        condition_witnesses([fast, wit[1], wit[2]], spec)
    slow = strain.replace(data=strain.data[:, ::2], sample_rate=2048)
    with pytest.raises(SampleRateMismatchError, match=r"V1:STRAIN is at 2048 Hz.*4096 Hz"):
        condition_strain(slow, spec)
    pred = Block.create(torch.zeros(8 * 512), T0, 512, "prediction")
    with pytest.raises(SampleRateMismatchError, match=r"at 512 Hz.*1024 Hz"):
        uncondition_strain(pred, spec)


def test_missing_strain_refused(data, spec):
    _, wit = data
    with pytest.raises(MissingChannelError, match=r"strain channel V1:STRAIN is not in the data"):
        condition_strain(wit[1], spec)
    with pytest.raises(MissingChannelError, match=r"\['V1:MAG'\] are not in the training data"):
        fit_conditioning([data[0], wit[0], wit[2]], [DISP, MAG], STRAIN)


def test_fit_refuses_bad_inputs(data):
    strain, wit = data
    flat = wit[1].replace(data=torch.ones_like(wit[1].data))
    with pytest.raises(GwtwinError, match=r"constant over the training data"):
        fit_conditioning([strain, flat], [MAG], STRAIN)
    with pytest.raises(GwtwinError, match=r"fringe features need a length unit.*'T'"):
        fit_conditioning([strain, wit[1]], [MAG], STRAIN, transforms={MAG: "fringe"})
    with pytest.raises(GwtwinError, match=r"no strain channel given"):
        fit_conditioning([strain, wit[1]], [MAG])
    nan = strain.replace(data=strain.data.clone())
    nan.data[0, 100] = float("nan")
    with pytest.raises(GwtwinError, match=r"NaN/inf samples"):
        fit_conditioning([nan, wit[1]], [MAG], STRAIN)


def test_edges_cover_the_filters(spec):
    # whitening FIR 2 s (2047 samples exact edge at 1024 Hz) + 10 / 128 s of the slowest
    # channel's resampling + the fringe low-pass half length (1024 samples); the inverse FIR is
    # 4 s long
    assert spec.condition_edge_duration == pytest.approx(2047 / 1024 + 10 / 128 + 1024 / 1024)
    assert spec.edge_duration == pytest.approx(4095 / 1024 + 10 / 128)
