"""GWOSC strain files, strain only: samples as gwpy reads them, the DQ and injection masks as
named segment lists, and triggers restricted to DQ-good time, with short pieces skipped or
refused with the frequency range they support.

The files are written here in GWOSC's layouts: HDF5 with h5py (``meta/``, ``strain/Strain`` with
``Xstart``/``Xspacing``/``Npoints``, ``quality/simple`` and ``quality/injections`` 1 Hz masks
with their ``*Shortnames``/``*Descriptions``, ``GWOSCmeta`` channel names) at 4096 Hz, and GWF
with GWOSC's channel names at 16384 Hz with gwpy.  Strain is coloured Gaussian noise at ~1e-21
with loud sine-Gaussian glitches, NaN over a gap that the DATA bit marks.
"""

from __future__ import annotations

import math
import re

import h5py
import numpy as np
import pytest
import scipy.signal
import torch
from gwpy.segments import Segment, SegmentList
from gwpy.timeseries import StateVector, TimeSeries, TimeSeriesDict

from gwtwin.data import Block, MissingChannelError, list_channels, read, write_frame
from gwtwin.data.gwosc import DQ_BITS, INJ_BITS, dq_segments, gwosc_channels, read_dq_mask
from gwtwin.errors import GwtwinError
from gwtwin.signal.qtiling import frequency_limits, plane_qs
from gwtwin.signal.scan import default_channels, triggers_from_frames
from gwtwin.signal.triggers import SegmentTooShortError

T0 = 1126259440
DUR = 64
#: (offset s, f0 Hz, LAL Q, SNR) of the glitches
GLITCHES = [(10.3, 120.0, 8.0, 40.0), (21.0, 300.0, 10.0, 40.0), (50.2, 800.0, 12.0, 40.0)]
DATA_GAP = (36, 40)  # seconds after T0 with no data: DATA bit off, strain NaN
CAT1_OFF = (20, 22)  # CBC_CAT1 (and CAT2, CAT3, which include it) fail
HW_INJ = (5, 6)  # a CBC hardware injection: NO_CBC_HW_INJ off
DQ_DESCRIPTIONS = [
    b"data present",
    b"passes cbc CAT1 test",
    b"passes cbc CAT2 test",
    b"passes cbc CAT3 test",
    b"passes burst CAT1 test",
    b"passes burst CAT2 test",
    b"passes burst CAT3 test",
]


def sine_gaussian(n, fs, f0, q, tc):
    """Unit-norm (sum h^2 = 1) LAL sine-Gaussian, tau = q / (sqrt2 pi f0)."""
    t = np.arange(n) / fs
    tau = q / (math.sqrt(2) * math.pi * f0)
    h = np.exp(-(((t - tc) / tau) ** 2)) * np.cos(2 * math.pi * f0 * (t - tc))
    return h / np.sqrt(np.sum(h**2))


def gwosc_strain(fs, duration, glitches, seed):
    """Coloured noise (white plus a red AR(1) part) at 1e-21, glitches of the given SNR
    (against the noise's own one-sided PSD), NaN over the DATA gap."""
    n = fs * duration
    rng = np.random.default_rng(seed)
    pole = 0.995
    white = rng.standard_normal(n)
    red = 0.05 * scipy.signal.lfilter([1.0], [1.0, -pole], rng.standard_normal(n))
    x = white + red

    def psd(f):  # one-sided, of x
        z = np.exp(-2j * np.pi * f / fs)
        return 2 / fs * (1 + 0.05**2 / abs(1 - pole * z) ** 2)

    for tc, f0, q, snr in glitches:
        h_rss = snr * math.sqrt(psd(f0) / 2)  # snr^2 = 2 h_rss^2 / S(f0)
        x = x + sine_gaussian(n, fs, f0, q, tc) * math.sqrt(fs) * h_rss
    x = 1e-21 * x
    x[DATA_GAP[0] * fs : DATA_GAP[1] * fs] = np.nan
    return x


def masks(duration):
    dq = np.full(duration, 2 ** len(DQ_BITS) - 1, dtype=np.int32)
    dq[CAT1_OFF[0] : CAT1_OFF[1]] &= ~0b1110
    dq[DATA_GAP[0] : DATA_GAP[1]] = 0
    inj = np.full(duration, 2 ** len(INJ_BITS) - 1, dtype=np.int32)
    inj[HW_INJ[0] : HW_INJ[1]] &= ~0b1
    return dq, inj


def write_gwosc_hdf5(path, fs=4096, duration=DUR, glitches=GLITCHES, seed=1):
    """A strain file in GWOSC's HDF5 layout (as in its 4 kHz R1 releases)."""
    strain = gwosc_strain(fs, duration, glitches, seed)
    dq, inj = masks(duration)
    khz = f"{fs // 1024}KHZ"
    with h5py.File(path, "w") as f:
        meta = {
            "Description": b"Strain data time series from LIGO",
            "DescriptionURL": b"http://www.gw-openscience.org/",
            "Detector": b"H1",
            "Duration": duration,
            "GPSstart": T0,
            "Observatory": b"H",
            "Type": b"StrainTimeSeries",
            "UTCstart": b"2015-09-14T09:50:23",
        }
        for key, value in meta.items():
            f[f"meta/{key}"] = value
        s = f.create_dataset("strain/Strain", data=strain, compression="gzip")
        s.attrs.update(
            {
                "Npoints": strain.size,
                "Xlabel": b"GPS time",
                "Xspacing": 1.0 / fs,
                "Xstart": T0,
                "Xunits": b"second",
                "Ylabel": b"Strain",
                "Yunits": b"",
            }
        )
        f["strain/GWOSCmeta"] = f"GWOSC-{khz}_R1_STRAIN".encode()
        for group, name, values, short, long in (
            ("quality/simple", "DQ", dq, DQ_BITS, DQ_DESCRIPTIONS),
            ("quality/injections", "Inj", inj, INJ_BITS, [b.lower().encode() for b in INJ_BITS]),
        ):
            ds = f.create_dataset(f"{group}/{name}mask", data=values)
            ds.attrs.update(
                {
                    "Bits": len(short),
                    "Npoints": values.size,
                    "Xlabel": b"GPS time",
                    "Xspacing": 1.0,
                    "Xstart": T0,
                    "Xunits": b"second",
                }
            )
            f[f"{group}/{name}Shortnames"] = [b.encode() for b in short]
            f[f"{group}/{name}Descriptions"] = long
            f[f"{group}/GWOSCmeta"] = f"GWOSC-{khz}_R1_{name.upper()}MASK".encode()
    return path


GWF_GLITCHES = [(8.4, 200.0, 8.0, 40.0), (24.6, 3000.0, 12.0, 40.0)]  # 3 kHz: only 16 kHz data


def write_gwosc_gwf(path, fs=16384, duration=32):
    """GWOSC's GWF channels at 16 kHz, written by gwpy (its lalframe backend)."""
    strain = gwosc_strain(fs, duration, GWF_GLITCHES, seed=2)
    dq, inj = masks(duration)
    tsd = TimeSeriesDict()
    for suffix, values, rate, unit in (
        ("STRAIN", strain, fs, "strain"),
        ("DQMASK", dq, 1, None),
        ("INJMASK", inj, 1, None),
    ):
        name = f"H1:GWOSC-16KHZ_R1_{suffix}"
        tsd[name] = TimeSeries(values, t0=T0, sample_rate=rate, unit=unit, name=name, channel=name)
    tsd.write(str(path), format="gwf")
    return path


@pytest.fixture(scope="module")
def hdf5_file(tmp_path_factory):
    return write_gwosc_hdf5(tmp_path_factory.mktemp("gwosc") / f"H-H1_GWOSC_4KHZ_R1-{T0}-64.hdf5")


@pytest.fixture(scope="module")
def gwf_file(tmp_path_factory):
    return write_gwosc_gwf(tmp_path_factory.mktemp("gwosc") / f"H-H1_GWOSC_16KHZ_R1-{T0}-32.gwf")


def seglist(*spans):
    return SegmentList(Segment(T0 + a, T0 + b) for a, b in spans)


def expected_dq(duration):
    """Each bit's active time, decoded from the mask array independently of gwtwin."""
    dq, inj = masks(duration)
    out = {}
    for values, names in ((dq, DQ_BITS), (inj, INJ_BITS)):
        for bit, name in enumerate(names):
            on = (values >> bit) & 1
            out[name] = SegmentList(
                Segment(T0 + k, T0 + k + 1) for k in np.flatnonzero(on)
            ).coalesce()
    return out


# -- reading ---------------------------------------------------------------------------------


def test_hdf5_strain_and_masks_as_gwpy_reads_them(hdf5_file):
    strain = read(hdf5_file, ["H1:GWOSC-4KHZ_R1_STRAIN"])
    reference = TimeSeries.read(str(hdf5_file), format="hdf5.gwosc")
    assert reference.name == "H1:GWOSC-4KHZ_R1_STRAIN"
    block = strain.block  # NaN are data, not gaps
    np.testing.assert_array_equal(block.numpy()[0], reference.value)  # NaN where NaN
    assert block.t0_ns == T0 * 10**9 and block.sample_rate == 4096
    assert strain.nonfinite == {"H1:GWOSC-4KHZ_R1_STRAIN": seglist(DATA_GAP)}
    # the DQ mask: gwpy's flags (bits named by DQDescriptions) in bit order = gwtwin's
    dq = read_dq_mask(hdf5_file)
    assert list(dq) == list(DQ_BITS)
    flags = StateVector.read(str(hdf5_file), format="hdf5.gwosc").to_dqflags()
    assert [f.decode() for f in DQ_DESCRIPTIONS] == list(flags)
    for name, flag in zip(DQ_BITS, flags.values(), strict=True):
        assert dq[name] == flag.active, name
    assert dq["DATA"] == seglist((0, DATA_GAP[0]), (DATA_GAP[1], DUR))
    assert dq["CBC_CAT1"] == seglist((0, 20), (22, 36), (40, DUR))
    want = expected_dq(DUR)
    assert dq == {b: want[b] for b in DQ_BITS}
    inj = read_dq_mask(hdf5_file, mask="injection")
    assert inj == {b: want[b] for b in INJ_BITS}
    assert inj["NO_CBC_HW_INJ"] == seglist((0, 5), (6, DUR))
    # a span: clipped to it
    part = read_dq_mask(hdf5_file, T0 + 30, T0 + 45)
    assert part["DATA"] == seglist((30, 36), (40, 45))
    assert dq_segments(hdf5_file, ["DATA", "CBC_CAT1"]) == seglist((0, 20), (22, 36), (40, 64))


def test_gwf_16khz_strain_and_masks_as_gwpy_reads_them(gwf_file):
    name = "H1:GWOSC-16KHZ_R1_STRAIN"
    assert gwosc_channels(list_channels(gwf_file)) == {
        "strain": name,
        "dq": "H1:GWOSC-16KHZ_R1_DQMASK",
        "injection": "H1:GWOSC-16KHZ_R1_INJMASK",
    }
    assert default_channels(gwf_file) == [name]
    strain = read(gwf_file, [name])
    reference = TimeSeries.read(str(gwf_file), name, format="gwf")
    np.testing.assert_array_equal(strain.block.numpy()[0], reference.value)
    assert strain.block.sample_rate == 16384 and strain.block.t0_ns == T0 * 10**9
    state = StateVector.read(str(gwf_file), "H1:GWOSC-16KHZ_R1_DQMASK", format="gwf")
    assert read(gwf_file, ["H1:GWOSC-16KHZ_R1_DQMASK"], dtype=None).block.numpy()[0].tolist() == (
        state.value.tolist()
    )
    # lalframe stores no bit names: GWOSC's documented ones
    want = expected_dq(32)
    assert read_dq_mask(gwf_file) == {b: want[b] for b in DQ_BITS}
    assert read_dq_mask(gwf_file, mask="injection") == {b: want[b] for b in INJ_BITS}
    renamed = read_dq_mask(gwf_file, bit_names=["PRESENT"])
    assert list(renamed) == ["PRESENT"] and renamed["PRESENT"] == want["DATA"]


def test_bit_names_from_a_gwf_unit_string():
    from gwtwin.data.gwosc import _unit_bit_names

    assert _unit_bit_names("0:DATA 1:CBC_CAT1 3:X") == ["DATA", "CBC_CAT1", "BIT2", "X"]
    assert _unit_bit_names("strain") is None and _unit_bit_names("") is None


def test_mask_errors(hdf5_file, tmp_path):
    with pytest.raises(GwtwinError, match=r"mask must be one of \['dq', 'injection'\], found 'x'"):
        read_dq_mask(hdf5_file, mask="x")
    with pytest.raises(
        GwtwinError,
        match=r"dq bit NOPE not in the GWOSC dq mask of .*hdf5; its bits: DATA, CBC_CAT1, "
        r"CBC_CAT2",
    ):
        dq_segments(hdf5_file, ["DATA", "NOPE"])
    with pytest.raises(GwtwinError, match=r"no dq bits given; expected names such as"):
        dq_segments(hdf5_file, [])
    plain = write_frame(
        tmp_path / f"H-PLAIN-{T0}-4.hdf5",
        Block.create(torch.zeros(1, 4096 * 4), T0, 4096, ["H1:STRAIN"]),
    )
    with pytest.raises(
        MissingChannelError,
        match=r"channel <IFO>:GWOSC-<rate>_R<n>_DQMASK \(the GWOSC dq mask\) not found in "
        r".*H-PLAIN-1126259440-4.hdf5; it holds 1 channels: H1:STRAIN",
    ):
        read_dq_mask(plain)
    floaty = write_frame(
        tmp_path / f"H-FLOAT-{T0}-4.hdf5",
        Block.create(torch.tensor([[1.0, 1.5, 1.0, 1.0]]), T0, 1, ["H1:GWOSC-4KHZ_R1_DQMASK"]),
    )
    with pytest.raises(
        GwtwinError,
        match=r"H1:GWOSC-4KHZ_R1_DQMASK in .* is not an integer bitmask: expected whole numbers, "
        r"found 1.5",
    ):
        read_dq_mask(floaty)


# -- triggers on strain only -----------------------------------------------------------------


def assert_found(table, glitches):
    for tc, f0, _, _ in glitches:
        near = table[np.abs(table["time"] - (T0 + tc)) < 0.5]
        assert len(near), f"no trigger near {tc} s"
        hit = near[np.argmax(near["snr"])]
        # at the glitch time within the trigger's own tile extent, at its frequency
        assert abs(hit["time"] - (T0 + tc)) <= min(hit["tend"] - hit["tstart"], 0.05), tc
        assert hit["frequency"] == pytest.approx(f0, rel=0.1)
        assert hit["snr"] > 20


def assert_inside(table, segments):
    for row in table:
        assert any(s[0] <= row["tstart"] and row["tend"] <= s[1] for s in segments), row


@pytest.fixture(scope="module")
def data_triggers(hdf5_file):
    return triggers_from_frames(hdf5_file, default_channels(hdf5_file), frange=(20, 1200))


def test_triggers_default_to_data_present_time(hdf5_file, data_triggers):
    assert default_channels(hdf5_file) == ["H1:GWOSC-4KHZ_R1_STRAIN"]
    trig = data_triggers
    table = trig["H1:GWOSC-4KHZ_R1_STRAIN"]
    assert trig.params["dq_bits"] == ["DATA"]
    assert trig.params["dq_segments"] == [[T0, T0 + 36.0], [T0 + 40.0, T0 + DUR]]
    # each DQ-good piece loses fduration / 2 = 1 s to whitening at each end
    assert trig.params["segments"] == [(T0 + 1.0, T0 + 35.0), (T0 + 41.0, T0 + 63.0)]
    assert trig.params["skipped"] == []
    assert_found(table, GLITCHES)
    assert_inside(table, trig.params["segments"])
    # Gaussian noise elsewhere: few, faint triggers
    far = np.all([np.abs(table["time"] - (T0 + g[0])) > 1 for g in GLITCHES], axis=0)
    assert far.sum() <= 3 and np.all(table["snr"][far] < 8)


def test_triggers_restricted_to_chosen_bits_skip_short_pieces(hdf5_file):
    # DATA and CBC_CAT1: pieces of 20, 14 and 24 s; frange low end 20 Hz needs
    # 50 q_max / (2 pi 20 Hz) = 18 s, so the 14 s piece is skipped, naming what it supports
    q_max = max(plane_qs((4, 64), 0.2))
    fmin, _ = frequency_limits(14.0, 4096, (4, 64), 0.2)
    assert 50 * q_max / (2 * math.pi * 20) == pytest.approx(18.0, abs=0.1)
    with pytest.warns(UserWarning, match=r"skipped: segment 1126259462-1126259476 \(14 s\)"):
        trig = triggers_from_frames(hdf5_file, dq_bits=["DATA", "CBC_CAT1"], frange=(20, 1200))
    table = trig["H1:GWOSC-4KHZ_R1_STRAIN"]
    assert trig.params["dq_bits"] == ["DATA", "CBC_CAT1"]
    assert trig.params["segments"] == [(T0 + 1.0, T0 + 19.0), (T0 + 41.0, T0 + 63.0)]
    (skip,) = trig.params["skipped"]
    assert skip["segment"] == [T0 + 22.0, T0 + 36.0]
    assert f"a 14 s window supports f >= {fmin:.4g} Hz at Q {q_max:.4g}" in skip["reason"]
    assert_found(table, [GLITCHES[0], GLITCHES[2]])
    assert_inside(table, trig.params["segments"])
    assert not np.any(np.abs(table["time"] - (T0 + GLITCHES[1][0])) < 1)  # CAT1 failed there


def test_short_segment_raises_with_the_frequency_range(hdf5_file):
    q_max = max(plane_qs((4, 64), 0.2))
    fmin, _ = frequency_limits(14.0, 4096, (4, 64), 0.2)
    need = 50 * q_max / (2 * math.pi * 10)
    message = re.escape(
        f"segment 1126259462-1126259476 (14 s) is too short for frange (10, 1000) Hz with qrange "
        f"(4, 64), fftlength 4 s and fduration 2 s: a 14 s window supports f >= {fmin:.4g} Hz at "
        f"Q {q_max:.4g} (50 q_max / (2 pi 14 s)), or down to 10 Hz at "
        f"Q <= {2 * math.pi * 14 * 10 / 50:.4g}; 10 Hz at Q {q_max:.4g} needs at least {need:.4g} s"
    )
    opts = {"frange": (10, 1000), "fftlength": 4.0}
    # the only piece: raises
    with pytest.raises(SegmentTooShortError, match=message):
        triggers_from_frames(hdf5_file, None, T0 + 22, T0 + 36, **opts)
    # every piece too short (20, 14, 24 s < 36 s): raises, listing them
    with (
        pytest.warns(UserWarning, match=r"skipped"),
        pytest.raises(
            SegmentTooShortError,
            match=r"no piece of data in .* is long enough to analyse: .*" + message,
        ),
    ):
        triggers_from_frames(hdf5_file, dq_bits=["CBC_CAT1"], **opts)


def test_triggers_on_16khz_gwf(gwf_file):
    trig = triggers_from_frames(gwf_file, frange=(20, 5000))
    table = trig["H1:GWOSC-16KHZ_R1_STRAIN"]
    assert trig.params["sample_rate"] == 16384
    assert trig.params["dq_segments"] == [[T0, T0 + 32.0]]  # the gap is after 32 s
    assert_found(table, GWF_GLITCHES)
    assert_inside(table, trig.params["segments"])


def test_triggers_errors(hdf5_file, tmp_path):
    with pytest.raises(
        GwtwinError,
        match=r"channel H1:GWOSC-4KHZ_R1_STRAIN has NaN/inf samples at GPS "
        r"\[1126259476, 1126259480\): triggers need finite data \(crop those spans out with "
        r"start/end, or on GWOSC files restrict to dq_bits such as DATA\)",
    ):
        triggers_from_frames(hdf5_file, dq_bits=())
    with pytest.raises(
        GwtwinError,
        match=r"no data for \['H1:GWOSC-4KHZ_R1_STRAIN'\] in .* between 1126259476 and "
        r"1126259480 with DQ bits \['DATA'\] set",
    ):
        triggers_from_frames(hdf5_file, None, T0 + 36, T0 + 40)
    plain = write_frame(
        tmp_path / f"H-PLAIN-{T0}-8.hdf5",
        Block.create(torch.randn(1, 4096 * 8), T0, 4096, ["H1:STRAIN"]),
    )
    with pytest.raises(
        GwtwinError,
        match=r"dq_bits \['DATA'\] given but .*H-PLAIN-1126259440-8.hdf5 holds no GWOSC DQ mask "
        r"channel \(<IFO>:GWOSC-<rate>_R<n>_DQMASK\); its first file holds: H1:STRAIN",
    ):
        triggers_from_frames(plain, dq_bits=["DATA"])
    # no mask, no dq_bits: all time is analysed
    assert triggers_from_frames(plain, frange=(50, 1000)).params["dq_bits"] == []
