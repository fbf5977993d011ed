"""Q-tile triggers: injections recovered, clustering, segmentation, whitening path, HDF5 files."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import scipy.signal
import torch
from gwpy.table import EventTable

from gwtwin.data import Block
from gwtwin.errors import GwtwinError
from gwtwin.signal.qtiling import frequency_limits, plane_qs
from gwtwin.signal.triggers import (
    TRIGGER_COLUMNS,
    SegmentTooShortError,
    Triggers,
    cluster_tiles,
    find_triggers,
    read_triggers,
    segment_too_short,
    write_triggers,
)

GPS = 1_200_000_000


def sine_gaussian(n, fs, f0, q, tc, phase=0.0):
    """Unit-norm (sum h^2 = 1) LAL sine-Gaussian and its quadrature, tau = q / (sqrt2 pi f0).

    Scaled by ``snr`` it has matched-filter SNR ``snr`` in white noise of unit variance per sample:
    the one-sided PSD is S = 2 / fs, so snr^2 = 4 int |H|^2 / S df = 2 int h^2 dt / S
    = fs * sum(h^2) / fs = sum(h^2).
    """
    t = np.arange(n) / fs
    tau = q / (math.sqrt(2) * math.pi * f0)
    env = np.exp(-(((t - tc) / tau) ** 2))
    hc = env * np.cos(2 * math.pi * f0 * (t - tc) + phase)
    hs = env * np.sin(2 * math.pi * f0 * (t - tc) + phase)
    norm = np.sqrt(np.sum(hc**2))
    return hc / norm, hs / norm


def loudest_near(table, t, window=0.5):
    near = table[np.abs(table["time"] - t) < window]
    assert len(near), f"no trigger within {window} s of {t}"
    return near[np.argmax(near["snr"])]


# -- the injection grid ---------------------------------------------------------------------------

QS = (5.0, 20.0, 60.0)
FREQS = (40.0, 150.0, 600.0)
SNRS = (10.0, 30.0, 100.0)


@pytest.fixture(scope="module")
def injection_run():
    """64 s at 4096 Hz, one channel per SNR, each with the 9 (Q, f) sine-Gaussians 6 s apart."""
    fs, dur = 4096, 64
    n = fs * dur
    rng = np.random.default_rng(2024)
    data, truth = [], []
    for snr in SNRS:
        x = rng.standard_normal(n)
        rows = []
        for k, (q, f0) in enumerate((q, f) for q in QS for f in FREQS):
            tc = 6.0 + 6.0 * k + 0.0123 * k
            hc, hs = sine_gaussian(n, fs, f0, q, tc, phase=0.3 * k)
            x = x + snr * hc
            rows.append((q, f0, snr, tc, hc, hs))
        # the matched-filter SNR actually in this noise (phase maximised): ours estimates
        # sqrt(rho_mf^2 - 2) (Z = rho_mf^2 / 2, snr = sqrt(2 (Z - 1)))
        truth.append([(*r[:4], float(np.hypot(x @ r[4], x @ r[5]))) for r in rows])
        data.append(x)
    names = [f"X1:INJ_SNR{int(s)}" for s in SNRS]
    block = Block.create(np.stack(data).astype(np.float32), GPS, fs, names)
    # Q up to 128: the LAL Q of 60 is an Omega/gwpy Q of ~85 (see test below)
    trig = find_triggers(block, whiten=False, qrange=(4, 128))
    return trig, names, truth


def test_injections_found_at_right_time_frequency_snr(injection_run):
    trig, names, truth = injection_run
    for name, rows in zip(names, truth, strict=True):
        for q, f0, snr, tc, rho_mf in rows:
            hit = loudest_near(trig[name], GPS + tc)
            label = f"Q={q} f={f0} snr={snr}"
            tau = q / (math.sqrt(2) * math.pi * f0)
            # timing: the envelope peak is known to ~tau / snr (1 sigma, Gaussian envelope);
            # 10 ms unless that is physically out of reach (long, faint signals)
            assert abs(hit["time"] - (GPS + tc)) <= max(0.010, 4 * tau / snr), label
            # frequency: 5 %, or 4 sigma of f / (sqrt2 Q snr) for short faint signals
            assert abs(hit["frequency"] / f0 - 1) <= max(0.05, 4 / (math.sqrt(2) * q * snr)), label
            # SNR: within 10 % of the SNR really present in this noise realisation ...
            assert hit["snr"] == pytest.approx(math.sqrt(rho_mf**2 - 2), rel=0.10), label
            # ... which differs from the injected one by the noise, N(0, 1)
            assert abs(hit["snr"] - snr) <= 0.10 * snr + 3.0, label
            if snr >= 30:
                # Omega/gwpy Q = sqrt(2) * LAL Q (energy envelope width convention)
                assert hit["q"] == pytest.approx(math.sqrt(2) * q, rel=0.3), label
            assert hit["tstart"] <= hit["time"] <= hit["tend"]
            assert hit["fstart"] <= hit["frequency"] <= hit["fend"]
            # white unit-variance input: S = 2 / fs, amplitude = snr sqrt(S / 2) = snr / sqrt(fs);
            # S comes from the median of one row, whose ~T * bandwidth independent tiles (>= 100
            # here) give it a ~1.44 / sqrt(100) = 14 % (1 sigma) energy error, 7 % in amplitude
            assert hit["amplitude"] == pytest.approx(hit["snr"] / math.sqrt(4096), rel=0.15)


def test_phase_is_the_carrier_phase_at_the_trigger_time(injection_run):
    trig, names, truth = injection_run
    name, rows = names[2], truth[2]  # SNR 100
    for k, (q, f0, _, tc, _) in enumerate(rows):
        hit = loudest_near(trig[name], GPS + tc)
        expected = 0.3 * k + 2 * math.pi * hit["frequency"] * (hit["time"] - GPS - tc)
        diff = (hit["phase"] - expected + math.pi) % (2 * math.pi) - math.pi
        assert abs(diff) < 0.3, f"Q={q} f={f0}"


def test_no_spurious_triggers(injection_run):
    """Away from the injections the data are Gaussian noise: at SNR >= 5.5 (Z >= 16.1, a tile
    false-alarm probability e^-16.1 = 1e-7) only a handful of clusters may appear."""
    trig, names, truth = injection_run
    for name, rows in zip(names, truth, strict=True):
        table = trig[name]
        far = np.ones(len(table), dtype=bool)
        for *_, tc, _ in rows:
            far &= np.abs(table["time"] - (GPS + tc)) > 1.5
        assert far.sum() <= 3, table[far]
        assert np.all(table["snr"][far] < 7.5)
    assert trig.segment == (GPS, GPS + 64.0)  # whiten=False: nothing cut


# -- clustering -----------------------------------------------------------------------------------


def test_cluster_tiles():
    # intervals: [0,1] [1.05,1.2] (gap 0.05 -> same) [1.4,1.5] (gap 0.2 -> new)
    # [1.45,3] (overlaps) [3.09,3.1] (gap 0.09 -> same) [5,6] (new); given out of order
    tstart = np.array([1.4, 0.0, 5.0, 1.05, 3.09, 1.45])
    tend = np.array([1.5, 1.0, 6.0, 1.2, 3.1, 3.0])
    np.testing.assert_array_equal(cluster_tiles(tstart, tend, 0.1), [1, 0, 2, 0, 1, 1])
    # window 0: only overlapping tiles merge
    np.testing.assert_array_equal(cluster_tiles(tstart, tend, 0.0), [2, 0, 4, 1, 3, 2])
    assert cluster_tiles(np.array([]), np.array([]), 0.1).size == 0
    with pytest.raises(GwtwinError, match=r"cluster_window must be >= 0 s, found -1"):
        cluster_tiles(tstart, tend, -1)


# -- long data in segments ------------------------------------------------------------------------


def test_segmented_equals_single_window():
    """Windows of 16 s with padding give the same loud triggers as one window over 96 s,
    including for bursts on the window boundaries."""
    fs, dur = 1024, 96
    n = fs * dur
    x = np.random.default_rng(8).standard_normal(n)
    times = (16.0, 31.99, 48.0, 70.5)  # boundaries of 16 s cores, and inside one
    for tc in times:
        x = x + 40 * sine_gaussian(n, fs, 100.0, 10.0, tc)[0]
    block = Block.create(x.astype(np.float32), GPS, fs, ["X1:A"])
    one = find_triggers(block, whiten=False, frange=(20, 300), segment_duration=200)["X1:A"]
    many = find_triggers(block, whiten=False, frange=(20, 300), segment_duration=16)["X1:A"]
    loud_one, loud_many = one[one["snr"] > 10], many[many["snr"] > 10]
    assert len(loud_one) == len(loud_many) == len(times)
    np.testing.assert_allclose(loud_many["time"], loud_one["time"], atol=2e-3)
    # each window normalises by its own rows' medians: a 20 s row at 100 Hz, Q ~ 11 has
    # ~T * bandwidth = 350 independent tiles, a 1.44 / sqrt(350) = 8 % (1 sigma) energy error
    np.testing.assert_allclose(loud_many["snr"], loud_one["snr"], rtol=0.10)
    np.testing.assert_allclose(loud_many["frequency"], loud_one["frequency"], rtol=0.01)


# -- segment edges and short segments -------------------------------------------------------------


@pytest.mark.parametrize("whiten", [False, True])
def test_triggers_never_leave_the_analysed_segment(whiten):
    """Loud bursts at both ends of the analysed segment (at its first and last samples without
    whitening; 1 ms outside it, in the discarded whitening edges, with whitening). Unclipped,
    an edge tile reaches half a tile past the segment (31 ms before the data here) and the
    refined peak follows the burst out of it (~1 ms, as in the real-data trial's 1.6 ms)."""
    fs, dur = 4096, 32
    n = fs * dur
    edge = 1.0 if whiten else 0.0  # fduration / 2
    out = 0.001 if whiten else 0.0
    x = np.random.default_rng(11).standard_normal(n)
    bursts = [  # (f0, Q, centre in s from the block start)
        (1000.0, 20.0, edge - out + 0.5 / fs),
        (200.0, 8.0, edge - out),
        (1000.0, 20.0, dur - edge + out - 1.5 / fs),
        (60.0, 5.0, dur - edge + out - 0.002),
    ]
    for f0, q, tc in bursts:
        x = x + 300 * sine_gaussian(n, fs, f0, q, tc)[0]
    block = Block.create(x, GPS, fs, ["X1:EDGE"])
    trig = find_triggers(block, whiten=whiten, frange=(30, 1200), fduration=2.0)
    seg0, seg1 = trig.segment
    assert (seg0, seg1) == (GPS + edge, GPS + dur - edge)
    table = trig["X1:EDGE"]
    for col in ("time", "tstart", "tend"):
        assert np.all((table[col] >= seg0) & (table[col] <= seg1)), col
    # the test bites: clusters at both ends reach the segment's ends (where they were clipped)
    loud = table[table["snr"] > 100]
    assert len(loud) == 2
    assert loud["tstart"][0] == seg0 and loud["tend"][1] >= seg1 - 0.001
    if whiten:  # the refined peaks lay outside: they sit on the ends now
        assert loud["time"][0] == seg0 and loud["time"][1] == loud["tend"][1] == seg1


def _noise(duration, fs=4096, t0=GPS):
    data = np.random.default_rng(3).standard_normal((1, int(duration * fs)))
    return Block.create(data, t0, fs, ["X1:SHORT"])


def test_short_segment_message_gives_the_frequency_range_it_supports():
    """14 s with frange (10, 1000) Hz: the block is one window of its own length T = 14 s, whose
    tiling starts at 50 q_max / (2 pi T) (qtiling's rule, q_max the highest plane's Q)."""
    q_max = max(plane_qs((4, 64), 0.2))
    fmin, _ = frequency_limits(14.0, 4096, (4, 64), 0.2)
    assert fmin == pytest.approx(50 * q_max / (2 * math.pi * 14))
    q_fit = 2 * math.pi * 14 * 10 / 50
    need = 50 * q_max / (2 * math.pi * 10)
    block = _noise(14, t0=1126259455)
    with pytest.raises(
        SegmentTooShortError,
        match=re.escape(
            f"segment 1126259455-1126259469 (14 s) is too short for frange (10, 1000) Hz with "
            f"qrange (4, 64), fftlength 4 s and fduration 2 s: a 14 s window supports "
            f"f >= {fmin:.4g} Hz at Q {q_max:.4g} (50 q_max / (2 pi 14 s)), or down to 10 Hz at "
            f"Q <= {q_fit:.4g}; 10 Hz at Q {q_max:.4g} needs at least {need:.4g} s"
        ),
    ):
        find_triggers(block, frange=(10, 1000), fftlength=4.0)
    # what the message says is enough is enough: the same settings on ceil(need) s work, and
    # so do the 14 s with the range or Q it names
    assert find_triggers(_noise(math.ceil(need)), frange=(10, 1000), fftlength=4.0)
    assert find_triggers(block, frange=(math.ceil(fmin), 1000), fftlength=4.0)
    assert find_triggers(block, frange=(10, 1000), qrange=(4, q_fit), fftlength=4.0)


def test_short_segment_other_limits():
    with pytest.raises(
        SegmentTooShortError,
        match=r"segment 1200000000-1200000003 \(3 s\) .*: whitening estimates the PSD from 4 s "
        r"FFTs, longer than the segment; give at least 4 s or a shorter fftlength \(then a 3 s "
        r"window supports f >= 120 Hz at Q 45\.25",  # 50 * 45.25 / (2 pi 3 s) = 120.03
    ):
        find_triggers(_noise(3), fftlength=4.0)
    # auto frange: a 0.25 s window's lowest frequency is above the highest the rate allows
    fmin, fmax = frequency_limits(0.25, 4096)
    need = 50 * max(plane_qs((4, 64), 0.2)) / (2 * math.pi * fmax)
    assert fmin > fmax and need > 0.25
    with pytest.raises(
        SegmentTooShortError,
        match=re.escape(
            f"(0.25 s) is too short for frange (0, inf) Hz with qrange (4, 64): a 0.25 s window "
            f"supports no frequency at Q 45.25: its lowest, 50 q_max / (2 pi 0.25 s) = "
            f"{fmin:.4g} Hz, is not below the highest, {fmax:.4g} Hz; {fmax:.4g} Hz at Q 45.25 "
            f"needs at least {need:.4g} s"
        ),
    ):
        find_triggers(_noise(0.25), whiten=False)
    assert segment_too_short(_noise(1), whiten=False) is None


# -- whitening path (gwtwin.signal.whitening, itself tested against gwpy) ---------------------


def test_whitened_strain_scale_float32_and_amplitude():
    """Coloured float32 noise at 1e-21 with an injection of known h_rss: found after whitening,
    with amplitude = snr sqrt(S(f)/2) ~ h_rss and the whitening edges excluded."""
    fs, dur, f0 = 2048, 32, 200.0
    n = fs * dur
    b, a = scipy.signal.butter(2, 60, "highpass", fs=fs)
    sigma = 1e-21
    noise = sigma * scipy.signal.lfilter(b, a, np.random.default_rng(4).standard_normal(n))
    s_f0 = 2 * sigma**2 / fs * abs(scipy.signal.freqz(b, a, [f0], fs=fs)[1][0]) ** 2
    snr = 30.0
    h_rss = snr * math.sqrt(s_f0 / 2)  # snr^2 = 2 h_rss^2 / S(f0)
    hc, _ = sine_gaussian(n, fs, f0, 20.0, 17.0)
    h = hc * math.sqrt(fs) * h_rss  # sum(h^2) / fs = h_rss^2
    x = (noise + h).astype(np.float32)
    block = Block.create(x, GPS, fs, ["X1:STRAIN"])
    trig = find_triggers(block, fduration=2.0, frange=(30, 600))
    assert trig.segment == (GPS + 1.0, GPS + 31.0)
    table = trig["X1:STRAIN"]
    assert np.all((table["time"] >= GPS + 1.0) & (table["time"] < GPS + 31.0))
    hit = loudest_near(table, GPS + 17.0)
    assert abs(hit["time"] - (GPS + 17.0)) < 0.01
    assert hit["frequency"] == pytest.approx(f0, rel=0.05)
    assert hit["snr"] == pytest.approx(snr, abs=0.1 * snr + 3)
    assert hit["amplitude"] == pytest.approx(h_rss, rel=0.15)


# -- files ----------------------------------------------------------------------------------------


def test_hdf5_round_trip_and_gwpy_reads_it(tmp_path, injection_run):
    trig, names, _ = injection_run
    trig = Triggers({**trig.tables, "X1:EMPTY": trig[names[0]][:0]}, trig.segment, trig.params)
    path = tmp_path / "triggers.h5"
    write_triggers(path, trig)
    back = read_triggers(path)
    assert back.channels == sorted(trig.channels)
    assert back.segment == trig.segment and back.params == trig.params
    for name in trig.channels:
        np.testing.assert_array_equal(back[name], trig[name])
        table = EventTable.read(str(path), path=name, format="hdf5")
        assert tuple(table.colnames) == TRIGGER_COLUMNS
        np.testing.assert_array_equal(np.asarray(table["snr"]), trig[name]["snr"])
    one = read_triggers(path, channels=[names[1]])
    assert one.channels == [names[1]]
    assert len(trig.to_eventtable(names[1])) == len(trig[names[1]])
    with pytest.raises(GwtwinError, match=r"exists; pass overwrite=True"):
        write_triggers(path, trig)
    write_triggers(path, trig, overwrite=True)
    with pytest.raises(GwtwinError, match=r"has no triggers for 'X1:NOPE'"):
        read_triggers(path, channels=["X1:NOPE"])
    with pytest.raises(GwtwinError, match=r"no triggers for channel 'X1:NOPE'"):
        trig["X1:NOPE"]
    other = tmp_path / "other.h5"
    EventTable(trig[names[0]]).write(str(other), path="x", format="hdf5")
    with pytest.raises(GwtwinError, match=r"not a gwtwin triggers file"):
        read_triggers(other)


# -- bad input ------------------------------------------------------------------------------------


def test_bad_input():
    fs = 1024
    good = Block.create(np.random.default_rng(1).standard_normal((1, 16 * fs)), GPS, fs, ["X1:A"])
    with pytest.raises(GwtwinError, match=r"expects a gwtwin.data.Block, found Tensor"):
        find_triggers(torch.zeros(2, 100))
    bad = good.data.clone()
    bad[0, 5] = math.nan
    with pytest.raises(GwtwinError, match=r"non-finite \(NaN/inf\) samples: \{'X1:A': 1\}"):
        find_triggers(good.replace(data=bad), whiten=False)
    short = Block.create(np.ones((1, 2 * fs)), GPS, fs, ["X1:A"])
    with pytest.raises(
        SegmentTooShortError,
        match=r"segment 1200000000-1200000002 \(2 s\) is too short for .* fduration 4 s: "
        r"whitening discards fduration / 2 = 2 s at each end, leaving no data to analyse; it "
        r"needs more than 4 s",
    ):
        find_triggers(short, fduration=4.0)
    with pytest.raises(GwtwinError, match=r"snr_threshold must be > 0, found 0"):
        find_triggers(good, whiten=False, snr_threshold=0)
    with pytest.raises(GwtwinError, match=r"frange high end 900 Hz is above the highest"):
        find_triggers(good, whiten=False, frange=(30, 900))


def test_constant_channel_warns_and_gives_an_empty_table():
    fs = 1024
    data = np.random.default_rng(1).standard_normal((2, 16 * fs))
    data[1] = 3.0
    block = Block.create(data, GPS, fs, ["X1:A", "X1:DEAD"])
    with pytest.warns(UserWarning, match=r"channel X1:DEAD is constant"):
        trig = find_triggers(block, whiten=False)
    assert len(trig["X1:DEAD"]) == 0
    assert trig.channels == ["X1:A", "X1:DEAD"]
