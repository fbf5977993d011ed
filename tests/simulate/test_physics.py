"""The simulator's physics, checked against independent computations.

Each test renders a small scenario with one coupling family and compares what the simulator wrote
with what the physics says it must be.
"""

import numpy as np
import pytest
from scipy.signal import butter, csd, hilbert, sosfiltfilt, sosfreqz, welch

from gwtwin.simulate import Simulator, design_psd, truth_channel


def _concat_frames(sim, n_frames=None):
    """Strain, per-family truth and auxiliary channels over the whole scenario, by rendering."""
    n_frames = n_frames or sim.n_frames
    data: dict[str, list] = {}
    for k in range(n_frames):
        blocks, truth = sim.render_frame(k)
        for block in (*blocks, truth):
            for i, name in enumerate(block.channels):
                # float64: truth is stored in float32, whose spectra underflow at strain scale
                data.setdefault(name, []).append(block.numpy()[i].astype(np.float64))
    return {name: np.concatenate(parts) for name, parts in data.items()}


def test_strain_asd_matches_design_curve(only):
    """Median-Welch ASD of the simulated noise is the design curve within a few percent."""
    config = only(None, duration=512, strain={"lines": []})
    sim = Simulator(config)
    data = _concat_frames(sim)
    strain = data[config.channel(config.strain.channel)]
    fs = config.strain.sample_rate
    freqs, psd = welch(strain, fs=fs, nperseg=int(4 * fs), average="median")
    ratio = np.sqrt(psd / design_psd(freqs, "advirgo"))
    # 127 averages: each bin's ASD scatters by ~5 %; band means over >= 40 bins are good to ~1 %
    for lo, hi in [(15, 30), (30, 100), (100, 500), (500, 1800)]:
        band = (freqs >= lo) & (freqs < hi)
        assert abs(ratio[band].mean() - 1) < 0.03, (lo, hi, ratio[band].mean())
    # the noise is Gaussian: kurtosis of whitened-ish (band-passed) data near 3
    sos = butter(4, [100, 300], btype="bandpass", fs=fs, output="sos")
    y = sosfiltfilt(sos, strain)[int(fs) : -int(fs)]
    kurt = np.mean(y**4) / np.mean(y**2) ** 2
    assert abs(kurt - 3) < 0.1


def test_aligo_curve_selectable(only):
    config = only(None, duration=256, prefix="H1", strain={"design_curve": "aligo", "lines": []})
    sim = Simulator(config)
    strain = _concat_frames(sim)["H1:" + config.strain.channel]
    freqs, psd = welch(strain, fs=4096, nperseg=4 * 4096, average="median")
    band = (freqs > 30) & (freqs < 1000)
    ratio = np.sqrt(psd[band] / design_psd(freqs[band], "aligo"))
    assert abs(ratio.mean() - 1) < 0.03
    # and it is not the Virgo curve
    other = np.sqrt(psd[band] / design_psd(freqs[band], "advirgo"))
    assert abs(other.mean() - 1) > 0.1


def test_strain_is_noise_plus_truth_exactly(only):
    config = only("em", duration=64)
    sim = Simulator(config)
    blocks, truth_block = sim.render_frame(0)
    truth = sim.render_truth(0)
    strain = blocks[0].numpy()[0]
    noise = sim._noise[blocks[0].channels[0]].frame(0)
    np.testing.assert_allclose(strain - sum(truth.values()), noise, rtol=0, atol=1e-30)
    # the stored truth is the same to float32 precision
    for i, family in enumerate(truth):
        np.testing.assert_allclose(truth_block.numpy()[i], truth[family], rtol=1e-7, atol=1e-35)


def test_scatter_arches_follow_witness_velocity(only):
    """Instantaneous frequency of the scattered-light term = 2 n |dx/dt| / lambda of the witness."""
    config = only(
        "scatter",
        duration=128,
        scatter={
            "rate": 60.0,
            "bounce_amplitudes": [1.0],
            "witness_noise_asd": 1e-4,
            "max_arch_frequency": {"kind": "uniform", "min": 40.0, "max": 45.0},
        },
    )
    sim = Simulator(config)
    data = _concat_frames(sim)
    fs = config.strain.sample_rate
    h = data[truth_channel("V1", "scatter")]
    witness = data[config.channel(config.scatter.witness)].astype(float)
    fw = config.scatter.witness_rate
    # predicted arch frequency from the witness alone (low-passed before differentiating)
    lp = butter(4, 4.0, fs=fw, output="sos")
    v = np.gradient(sosfiltfilt(lp, witness), 1.0 / fw)  # um/s
    predicted = 2 * np.abs(v) / (config.scatter.wavelength * 1e6)
    # measured: Hilbert instantaneous frequency of the band-passed coupled term
    bp = butter(4, [8.0, 200.0], btype="bandpass", fs=fs, output="sos")
    phase = np.unwrap(np.angle(hilbert(sosfiltfilt(bp, h))))
    inst = np.gradient(phase, 1.0 / fs) / (2 * np.pi)
    # compare on the witness grid, where the arch is well in band and away from its turning points
    step = int(fs // fw)
    measured = np.array([np.median(inst[i * step : (i + 1) * step]) for i in range(witness.size)])
    sel = (predicted > 15) & (predicted < 0.9 * predicted.max())
    sel[: int(4 * fw)] = sel[-int(4 * fw) :] = False
    assert sel.sum() > 200
    rel = np.abs(measured[sel] - predicted[sel]) / predicted[sel]
    assert np.median(rel) < 0.03
    assert np.percentile(rel, 90) < 0.1


def test_magnetic_coupling_is_the_configured_filter_and_delay(only):
    """Transfer function magnetometer -> strain truth equals k * H(f) * exp(-2 pi i f delay)."""
    config = only(
        "em",
        duration=256,
        em={
            "rate": 1500.0,
            "witness_noise_asd": 1e-14,
            "delay": 0.0037,
            "filter": {"kind": "bandpass", "order": 2, "frequencies": [20.0, 400.0]},
        },
    )
    sim = Simulator(config)
    data = _concat_frames(sim)
    fs = config.strain.sample_rate
    x = data[config.channel(config.em.witness)].astype(float)
    y = data[truth_channel("V1", "em")]
    freqs, pyy = welch(y, fs=fs, nperseg=int(fs))
    _, pxy = csd(x, y, fs=fs, nperseg=int(fs))
    measured = pyy / np.conj(pxy)  # H2 estimator: unbiased with noise on the witness only
    sos = butter(2, [20.0, 400.0], btype="bandpass", fs=fs, output="sos")
    _, resp = sosfreqz(sos, worN=freqs, fs=fs)
    expected = config.em.coupling * resp * np.exp(-2j * np.pi * freqs * config.em.delay)
    band = (freqs >= 30) & (freqs <= 300)
    np.testing.assert_allclose(np.abs(measured[band]) / np.abs(expected[band]), 1, atol=0.03)
    # delay: slope of the residual phase is zero to 0.05 ms
    resid = np.unwrap(np.angle(measured[band] / resp[band]))
    slope = np.polyfit(freqs[band], resid, 1)[0]
    assert abs(-slope / (2 * np.pi) - config.em.delay) < 5e-5


def test_powerline_sidebands_at_mains_plus_minus_modulation(only):
    config = only("powerline", duration=256, powerline={"rate": 0.0, "harmonics": []})
    sim = Simulator(config)
    h = _concat_frames(sim)[truth_channel("V1", "powerline")]
    fs = config.strain.sample_rate
    freqs, psd = welch(h, fs=fs, nperseg=int(32 * fs), window="blackmanharris")
    band = (freqs > 40) & (freqs < 60)
    f, p = freqs[band], psd[band]
    # the five strongest local maxima
    peaks = [i for i in range(1, len(p) - 1) if p[i] >= p[i - 1] and p[i] >= p[i + 1]]
    top = sorted(sorted(peaks, key=lambda i: p[i])[-5:])
    mains = config.powerline.mains_frequency
    expected = sorted(
        [mains]
        + [mains + s * fm for fm in config.powerline.modulation_frequencies for s in (-1, 1)]
    )
    np.testing.assert_allclose(f[top], expected, atol=1.5 / 32)
    # sideband/carrier power ratio = (depth * amplitude / 2)^2 for each modulation frequency
    pl = config.powerline
    for fm, am in zip(pl.modulation_frequencies, pl.modulation_amplitudes, strict=True):
        i_c = np.argmin(np.abs(f - mains))
        i_s = np.argmin(np.abs(f - (mains + fm)))
        ratio = p[i_s - 2 : i_s + 3].sum() / p[i_c - 2 : i_c + 3].sum()
        assert ratio == pytest.approx((pl.modulation_depth * am / 2) ** 2, rel=0.05)


def test_powerline_episode_sidebands_follow_episode_frequency(only):
    config = only(
        "powerline", duration=128, powerline={"rate": 100.0, "modulation_amplitudes": [0, 0]}
    )
    sim = Simulator(config)
    h = _concat_frames(sim)[truth_channel("V1", "powerline")]
    fs = config.strain.sample_rate
    events = [e for e in sim.catalogue.events if e.family == "powerline"]
    assert events
    event = max(events, key=lambda e: e.duration)
    i0 = int((event.start - config.start) * fs)
    seg = h[i0 : i0 + int(event.duration * fs)]
    freqs = np.fft.rfftfreq(seg.size * 8, 1 / fs)
    spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size), n=seg.size * 8))
    fe = event.params["episode_frequency"]
    mains = config.powerline.mains_frequency
    for side in (mains - fe, mains + fe):
        near = (freqs > side - 0.5) & (freqs < side + 0.5)
        away = (freqs > mains + 12) & (freqs < mains + 20)
        assert spec[near].max() > 50 * spec[away].max()


def test_decoys_do_not_couple_into_strain(only):
    """Adding or removing decoy channels leaves strain and truth unchanged, sample for sample."""
    with_decoys = only("em", duration=64, decoys={"enabled": True})
    without = only("em", duration=64)
    a_blocks, a_truth = Simulator(with_decoys).render_frame(0)
    b_blocks, b_truth = Simulator(without).render_frame(0)
    np.testing.assert_array_equal(a_blocks[0].numpy(), b_blocks[0].numpy())
    np.testing.assert_array_equal(a_truth.numpy(), b_truth.numpy())
    sim = Simulator(with_decoys)
    assert sum(e.family == "decoy" for e in sim.catalogue.events) > 10
    assert all(
        e.snr == 0 and e.witness_snr > 0 for e in sim.catalogue.events if e.family == "decoy"
    )


def test_blips_have_no_witness_and_catalogued_snr(only):
    sim = Simulator(only("blip", duration=128, blip={"rate": 300.0}))
    blips = [e for e in sim.catalogue.events if e.family == "blip"]
    assert len(blips) > 3
    assert all(e.channel == "" for e in blips)
    assert all(6 <= e.snr <= 100 for e in blips)
    assert all(e.duration < 0.2 for e in blips)


def test_strain_glitches_do_not_overlap(only):
    sim = Simulator(
        only(
            None,
            duration=512,
            scatter={"enabled": True},
            em={"enabled": True},
            powerline={"enabled": True},
            blip={"enabled": True},
        )
    )
    glitches = sorted(
        (e for e in sim.catalogue.events if e.family in ("scatter", "em", "powerline", "blip")),
        key=lambda e: e.start_ns,
    )
    assert len(glitches) > 20
    for a, b in zip(glitches, glitches[1:], strict=False):
        assert b.start_ns - a.end_ns >= 0.999e9 * sim.config.min_separation
