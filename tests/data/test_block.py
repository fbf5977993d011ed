"""Block: construction, exact GPS bookkeeping, channel selection, gwpy round trips, resampling."""

from decimal import Decimal

import numpy as np
import pytest
import torch
from lal import LIGOTimeGPS
from scipy.signal import resample_poly

from gwtwin.data import NS, Block, SampleRateMismatchError, ns_to_gps, resample, to_ns
from gwtwin.errors import GwtwinError

GPS = 1_000_000_000


def ramp_block(n=1024, rate=256.0, t0=GPS, channels=("V1:A", "V1:B")):
    """Rows ``arange(n) + 10_000 * row``: any index bookkeeping error shows in the values."""
    data = torch.arange(n, dtype=torch.float64) + 10_000 * torch.arange(len(channels))[:, None]
    return Block.create(data, t0, rate, channels, ["m", "T"][: len(channels)])


# -- GPS conversion ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gps", "ns"),
    [
        (GPS, GPS * NS),
        ("1000000000.123456789", GPS * NS + 123456789),
        (Decimal("1000000000.5"), GPS * NS + 500_000_000),
        (LIGOTimeGPS(GPS, 250), GPS * NS + 250),
        (1000000000.5, GPS * NS + 500_000_000),
        (np.int64(GPS), GPS * NS),
    ],
)
def test_to_ns_is_exact(gps, ns):
    assert to_ns(gps) == ns
    back = ns_to_gps(ns)
    assert (back.gpsSeconds, back.gpsNanoSeconds) == divmod(ns, NS)


@pytest.mark.parametrize(
    ("gps", "match"),
    [
        (True, "must be a number of seconds"),
        (float("nan"), "must be finite"),
        ("yesterday", "cannot read GPS time"),
        ([1], "cannot read GPS time"),
    ],
)
def test_to_ns_rejects(gps, match):
    with pytest.raises(GwtwinError, match=match):
        to_ns(gps)


# -- construction --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"data": torch.zeros(2, 3, 4)}, r"shape \[channel, time\], found 3 dimensions"),
        ({"channels": ["V1:A"]}, "2 rows of data but 1 channel names"),
        ({"channels": ["V1:A", "V1:A"]}, r"duplicate channel names in Block: \['V1:A'\]"),
        ({"units": ["m"]}, "2 channels but 1 units"),
        ({"sample_rate": 0}, "positive number of Hz, found 0"),
        ({"sample_rate": float("inf")}, "positive number of Hz"),
        ({"sample_rate": "fast"}, "must be a number in Hz, found 'fast'"),
    ],
)
def test_construction_errors(kwargs, match):
    args = {
        "data": torch.zeros(2, 8),
        "t0": GPS,
        "sample_rate": 16,
        "channels": ["V1:A", "V1:B"],
        "units": None,
    }
    args.update(kwargs)
    with pytest.raises(GwtwinError, match=match):
        Block.create(**args)


def test_construction_accepts_numpy_and_1d():
    block = Block.create(np.arange(8.0), GPS, 16, "V1:A")
    assert block.channels == ("V1:A",)
    assert block.units == ("",)
    assert tuple(block.data.shape) == (1, 8)
    assert block.duration == 0.5
    assert block.end_ns == GPS * NS + NS // 2


def test_blocks_compare_by_identity():
    block = ramp_block()
    assert block == block
    assert block != ramp_block()  # same values, another object: no elementwise-eq crash


# -- time axis, crop, isel -----------------------------------------------------------------------


def test_crop_and_isel_are_exact_with_fractional_start():
    t0 = "1000000000.123456789"
    block = ramp_block(t0=t0)
    t0_ns = to_ns(t0)
    piece = block.crop(Decimal(t0) + 1, Decimal(t0) + 2)
    assert piece.t0_ns == t0_ns + NS
    assert piece.size == 256
    assert torch.equal(piece["V1:A"], torch.arange(256, 512, dtype=torch.float64))
    # 10 samples at 256 Hz is 0.0390625 s exactly
    sub = block.isel(10, 20)
    assert sub.t0_ns == t0_ns + 39_062_500
    assert torch.equal(sub["V1:B"], torch.arange(10_010, 10_020, dtype=torch.float64))
    # a crop boundary between samples takes the first sample at or after it
    inside = block.crop(Decimal(t0) + Decimal("0.001"), None)
    assert inside.t0_ns == t0_ns + 3_906_250  # sample 1
    assert inside.end_ns == block.end_ns


def test_isel_negative_indices_move_t0_from_the_end():
    block = ramp_block(n=256, rate=16)
    tail = block.isel(-16, None)
    assert tail.t0_ns == block.end_ns - NS
    assert torch.equal(tail["V1:A"], torch.arange(240, 256, dtype=torch.float64))


def test_crop_outside_names_both_spans():
    block = ramp_block(n=256, rate=256)
    with pytest.raises(
        GwtwinError,
        match=r"cannot crop to GPS \[1000000000.5, 1000000002.0\).*"
        r"covers \[1000000000.0, 1000000001.0\)",
    ):
        block.crop(GPS + 0.5, GPS + 2)


def test_times_and_index_of():
    block = ramp_block(n=512, rate=256, t0="1000000000.25")
    times = block.times
    assert times[0] == 1000000000.25
    np.testing.assert_allclose(times - GPS, 0.25 + np.arange(512) / 256, rtol=0, atol=2e-7)
    assert block.index_of("1000000001.25") == 256
    assert block.index_of(LIGOTimeGPS(GPS + 1, 250_000_001)) == 256  # within 1 ns: on it
    assert block.index_of(LIGOTimeGPS(GPS + 1, 250_000_002)) == 257


def test_select_reorders_rows_and_units():
    block = ramp_block()
    picked = block.select(["V1:B", "V1:A"])
    assert picked.channels == ("V1:B", "V1:A")
    assert picked.units == ("T", "m")
    assert torch.equal(picked.data[0], block["V1:B"])
    with pytest.raises(
        GwtwinError, match=r"'V1:C' is not in this Block; it holds \['V1:A', 'V1:B'\]"
    ):
        block.select(["V1:C"])


def test_nonfinite_counts_per_channel():
    block = ramp_block(n=64)
    block.data[0, 3] = float("nan")
    block.data[0, 9] = float("inf")
    block.data[1, 0] = -float("inf")
    assert block.nonfinite() == {"V1:A": 2, "V1:B": 1}
    assert ramp_block().nonfinite() == {}


# -- gwpy interop and resampling -----------------------------------------------------------------


@pytest.mark.parametrize("t0", [GPS, LIGOTimeGPS(GPS, 11_718_750)])  # 3 samples at 256 Hz
def test_timeseriesdict_round_trip_keeps_exact_t0(t0):
    block = ramp_block(t0=t0)
    tsd = block.to_timeseriesdict()
    assert list(tsd) == ["V1:A", "V1:B"]
    assert str(tsd["V1:B"].unit) == "T"
    back = Block.from_timeseriesdict(tsd)
    assert back.t0_ns == block.t0_ns
    assert back.sample_rate == 256
    assert back.units == ("m", "T")
    assert torch.equal(back.data, block.data)


def mixed_tsd():
    from gwpy.timeseries import TimeSeries, TimeSeriesDict

    rng = np.random.default_rng(3)
    tsd = TimeSeriesDict()
    tsd["V1:SLOW"] = TimeSeries(rng.standard_normal(256), t0=GPS, sample_rate=256, name="V1:SLOW")
    tsd["V1:FAST"] = TimeSeries(rng.standard_normal(512), t0=GPS, sample_rate=512, name="V1:FAST")
    return tsd


def test_mixed_rates_are_refused_naming_both():
    with pytest.raises(SampleRateMismatchError, match=r"V1:SLOW 256 Hz, V1:FAST 512 Hz"):
        Block.from_timeseriesdict(mixed_tsd())


def test_explicit_resampling_matches_scipy():
    tsd = mixed_tsd()
    block = Block.from_timeseriesdict(tsd, sample_rate=512)
    # the same scipy call on the same input: equal to the last bit
    expected = resample_poly(tsd["V1:SLOW"].value, 2, 1)
    assert torch.equal(block["V1:SLOW"], torch.from_numpy(expected))
    assert torch.equal(block["V1:FAST"], torch.from_numpy(tsd["V1:FAST"].value))
    assert block.history == ("resample V1:SLOW: 256 Hz -> 512 Hz (polyphase)",)
    down = Block.from_timeseriesdict(tsd, sample_rate=256)
    assert torch.equal(down["V1:FAST"], torch.from_numpy(resample_poly(tsd["V1:FAST"].value, 1, 2)))


def test_resampling_to_the_native_rate_warns():
    tsd = mixed_tsd()
    del tsd["V1:FAST"]
    with pytest.warns(UserWarning, match="resampling to the native rate 256 Hz does nothing"):
        Block.from_timeseriesdict(tsd, sample_rate=256)


def test_from_timeseriesdict_errors():
    tsd = mixed_tsd()
    with pytest.raises(GwtwinError, match=r"channels \['V1:NOPE'\] not found; available"):
        Block.from_timeseriesdict(tsd, ["V1:NOPE"])
    tsd["V1:FAST"].t0 = GPS + 1
    with pytest.raises(GwtwinError, match="channels start at different GPS times"):
        Block.from_timeseriesdict(tsd, sample_rate=512)


def test_resample_refuses_awkward_ratios():
    with pytest.raises(GwtwinError, match=r"cannot resample 4096 Hz -> 4095.9 Hz"):
        resample(np.zeros(16), 4096, 4095.9)
