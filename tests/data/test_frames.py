"""Frame files: names, discovery, GWF/HDF5/GWOSC reading and writing, gaps, non-finite samples,
and every error path the issue names."""

import shutil
import warnings
from decimal import Decimal
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from astropy import units
from gwpy.segments import Segment, SegmentList
from gwpy.timeseries import StateVector, TimeSeries, TimeSeriesDict
from scipy.signal import resample_poly

from gwtwin.data import (
    NS,
    Block,
    CorruptFrameError,
    FrameData,
    FrameFile,
    FrameNameError,
    FrameNotFoundError,
    GapError,
    MissingChannelError,
    OverlappingFilesError,
    SampleRateMismatchError,
    UnknownFormatError,
    find_frames,
    frame_name,
    parse_frame_name,
    read,
    to_ns,
    write_frame,
    write_frames,
)
from gwtwin.errors import GwtwinError

GPS = 1_000_000_000
SPAN = 192  # seconds: three 64 s files


def noise_block(channels, rate, duration=SPAN, t0=GPS, dtype=np.float64, seed=0, units=None):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((len(channels), int(duration * rate))).astype(dtype)
    return Block.create(torch.from_numpy(data), t0, rate, channels, units or ["m"] * len(channels))


@pytest.fixture(scope="module")
def blocks():
    """Two float64 channels at 256 Hz and one float32 channel at 512 Hz over 192 s."""
    slow = noise_block(["V1:A", "V1:B"], 256, units=["m", "strain"])
    fast = noise_block(["V1:C"], 512, dtype=np.float32, seed=1, units=["T"])
    return slow, fast


@pytest.fixture(scope="module", params=["gwf", "hdf5"])
def frame_dir(request, tmp_path_factory, blocks):
    """Three abutting 64 s files holding ``blocks`` (read-only: copy before changing)."""
    directory = tmp_path_factory.mktemp(f"frames_{request.param}")
    paths = write_frames(blocks, directory, frame_length=64, format=request.param)
    assert [p.name for p in paths] == [
        f"V-GWTWIN-{GPS + 64 * k}-64.{request.param}" for k in range(3)
    ]
    return directory


def copy_dir(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def seg(a, b):
    return SegmentList([Segment(a, b)])


def spans(segments):
    """Segments as exact ``(start_ns, end_ns)`` pairs (LIGOTimeGPS does not compare to Decimal)."""
    return [(to_ns(a), to_ns(b)) for a, b in segments]


# -- names and discovery -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("V-GWTWIN-1000000000-64.gwf", ("V", "GWTWIN", 1000000000, 64, "gwf")),
        (
            "H-H1_GWOSC_4KHZ_R1-1126256640-4096.hdf5",
            ("H", "H1_GWOSC_4KHZ_R1", 1126256640, 4096, "hdf5"),
        ),
        ("HL-TEST-1000000000-1.h5", ("HL", "TEST", 1000000000, 1, "hdf5")),
        ("V-X-1000000000.5-0.25.gwf", ("V", "X", Decimal("1000000000.5"), Decimal("0.25"), "gwf")),
    ],
)
def test_parse_frame_name(name, expected):
    f = parse_frame_name(Path("/data") / name)
    assert (f.observatory, f.tag, f.start, f.duration, f.format) == expected
    assert f.path == Path("/data") / name
    assert f.end_ns - f.start_ns == to_ns(expected[3])


@pytest.mark.parametrize(
    ("name", "error", "match"),
    [
        ("notaframe.gwf", FrameNameError, "'notaframe.gwf' does not follow .*OBS-TAG-GPSSTART"),
        ("V-GWTWIN-1000000000.gwf", FrameNameError, "does not follow"),
        ("V-GWTWIN-1000000000-0.gwf", FrameNameError, "duration of 0 s; expected > 0"),
        ("V-GWTWIN-1000000000-64.txt", UnknownFormatError, r"extension '\.txt'; expected one of"),
        ("V-GWTWIN-1000000000-64", UnknownFormatError, r"extension '\(none\)'"),
    ],
)
def test_parse_frame_name_errors(name, error, match):
    with pytest.raises(error, match=match):
        parse_frame_name(name)


def test_frame_name():
    assert frame_name("V", "GWTWIN", 1000000000, 64) == "V-GWTWIN-1000000000-64.gwf"
    assert frame_name("H", "H1_X", "1000000000.5", 2, format="hdf5") == "H-H1_X-1000000000.5-2.hdf5"
    name = frame_name("L", "T", 1000000000, 16, "h5")
    assert parse_frame_name(name).start == 1000000000
    with pytest.raises(FrameNameError, match=r"tag must be a non-empty string without '-'"):
        frame_name("V", "BAD-TAG", GPS, 64)
    with pytest.raises(UnknownFormatError, match="unknown frame format 'fits'"):
        frame_name("V", "T", GPS, 64, format="fits")


def touch_frames(directory: Path, names):
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).touch()  # find_frames goes by name only
    return directory


def test_find_frames_sorts_filters_and_skips(tmp_path):
    d = touch_frames(
        tmp_path,
        [
            "V-RAW-1000000128-64.gwf",
            "V-RAW-1000000000-64.gwf",
            "V-RAW-1000000064-64.gwf",
            "H-H1_GWOSC_4KHZ_R1-1000000000-4096.hdf5",
            "README.txt",
            "V-RAW-1000000192-64.gwf.tmp",  # being written: not a frame yet
        ],
    )
    (d / "stray.gwf").touch()
    with pytest.warns(UserWarning, match="ignoring .*stray.gwf: file name 'stray.gwf' does not"):
        files = find_frames(d, observatory="V")
    assert [f.start for f in files] == [1000000000, 1000000064, 1000000128]
    assert all(isinstance(f, FrameFile) and f.tag == "RAW" for f in files)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        middle = find_frames(d, GPS + 64, GPS + 128, tag="RAW")
        assert [f.path.name for f in middle] == ["V-RAW-1000000064-64.gwf"]
        assert find_frames(d, GPS + 10, GPS + 70, tag="RAW")[-1].start == GPS + 64
        only = find_frames(d, tag="H1_GWOSC_4KHZ_R1")
    assert [f.format for f in only] == ["hdf5"]
    # a list of files is sorted too; duplicates count once
    listed = find_frames([files[2].path, files[0].path, files[0].path])
    assert [f.start for f in listed] == [GPS, GPS + 128]


def test_find_frames_overlap_names_both_files(tmp_path):
    d = touch_frames(tmp_path, ["V-A-1000000000-64.gwf", "V-A-1000000032-64.gwf"])
    with pytest.raises(
        OverlappingFilesError,
        match=r"V-A-1000000000-64.gwf .*and .*V-A-1000000032-64.gwf .*both cover GPS "
        r"\[1000000032, 1000000064\) \(32 s\)",
    ):
        find_frames(d)
    # different frame sets overlapping in time are told apart by tag/observatory
    touch_frames(tmp_path, ["H-H1_X-1000000000-64.gwf"])
    with pytest.raises(OverlappingFilesError, match="select one set with observatory=/tag="):
        find_frames([tmp_path / "V-A-1000000000-64.gwf", tmp_path / "H-H1_X-1000000000-64.gwf"])
    assert len(find_frames(tmp_path, observatory="H")) == 1


def test_find_frames_missing_source(tmp_path):
    with pytest.raises(FrameNotFoundError, match="frame source .*nowhere does not exist"):
        find_frames(tmp_path / "nowhere")
    assert find_frames(tmp_path) == []
    with pytest.raises(FrameNotFoundError, match="no frame files found in"):
        read(tmp_path, ["V1:A"])


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["gwf", "hdf5"])
def test_single_file_round_trip_is_bit_exact(tmp_path, blocks, fmt):
    slow, fast = (b.crop(GPS, GPS + 16) for b in blocks)
    path = write_frame(tmp_path / "sub" / f"V-T-{GPS}-16.{fmt}", [slow, fast])
    assert path.exists() and not Path(f"{path}.tmp").exists()
    got_slow = read(path, ["V1:A", "V1:B"], dtype=None).block
    got_fast = read(path, "V1:C", dtype=None).block
    assert got_slow.data.dtype == torch.float64 and got_fast.data.dtype == torch.float32
    assert torch.equal(got_slow.data, slow.data) and torch.equal(got_fast.data, fast.data)
    assert (got_slow.t0_ns, got_fast.t0_ns) == (GPS * NS, GPS * NS)
    assert (got_slow.sample_rate, got_fast.sample_rate) == (256, 512)
    # default dtype float64: the float32 channel upcast exactly
    assert torch.equal(read(path, "V1:C").block.data, fast.data.double())
    # units: HDF5 keeps the strings; GWF goes through LAL units ('T' -> 'kg / (A s2)')
    assert got_slow.units == ("m", "strain")
    assert units.Unit(got_fast.units[0]) == units.T
    if fmt == "hdf5":
        assert got_fast.units == ("T",)


@pytest.mark.parametrize("fmt", ["gwf", "hdf5"])
def test_gwpy_reads_our_files(tmp_path, blocks, fmt):
    slow, fast = (b.crop(GPS, GPS + 8) for b in blocks)
    path = write_frame(tmp_path / f"V-T-{GPS}-8.{fmt}", [slow, fast])
    tsd = TimeSeriesDict.read(str(path), ["V1:A", "V1:B", "V1:C"], format=fmt)
    for block in (slow, fast):
        for name in block.channels:
            series = tsd[name]
            assert series.dtype == block.numpy().dtype
            np.testing.assert_array_equal(series.value, block[name].numpy())
            assert series.t0.value == GPS and series.sample_rate.value == block.sample_rate


@pytest.mark.parametrize("fmt", ["gwf", "hdf5"])
def test_fractional_start_is_exact(tmp_path, fmt):
    t0 = "1000000000.123456789"  # not on any sample grid from the whole second
    block = noise_block(["V1:A"], 64, duration=2, t0=t0)
    path = write_frame(tmp_path / f"free-name.{fmt}", block)
    data = read(path, ["V1:A"])  # the span comes from the content
    (got,) = data.segments
    assert got.t0_ns == to_ns(t0)
    assert torch.equal(got.data, block.data)
    if fmt == "gwf":  # the frame header covers whole seconds around the data
        assert data.requested == Segment(GPS, GPS + 3)
        assert spans(data.gaps) == [(GPS * NS, to_ns(t0)), (to_ns(t0) + 2 * NS, (GPS + 3) * NS)]
    else:
        assert spans([data.requested]) == [(to_ns(t0), to_ns(t0) + 2 * NS)] and not data.gaps


# -- many files ----------------------------------------------------------------------------------


def test_read_across_file_boundaries_equals_one_block(frame_dir, blocks):
    slow, fast = blocks
    for source in (frame_dir, sorted(frame_dir.iterdir())):
        data = read(source, ["V1:B", "V1:A"])
        assert isinstance(data, FrameData)
        assert not data.gaps and data.nonfinite == {}
        assert len(data.files) == 3
        block = data.block
        assert block.channels == ("V1:B", "V1:A")
        assert block.t0_ns == GPS * NS and block.size == SPAN * 256
        assert torch.equal(block.data, slow.select(["V1:B", "V1:A"]).data)
    fast_read = read(frame_dir, ["V1:C"], dtype=None).block
    assert torch.equal(fast_read.data, fast.data)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (GPS + 10, GPS + 150),
        ("1000000010.5", "1000000150.25"),  # inside files, on the 256 Hz grid
        ("1000000063.999", "1000000064.001"),  # straddling a boundary, between samples
    ],
)
def test_partial_span(frame_dir, blocks, start, end):
    slow, _ = blocks
    data = read(frame_dir, ["V1:A", "V1:B"], start, end)
    assert spans([data.requested]) == [(to_ns(start), to_ns(end))]
    expected = slow.crop(start, end)
    assert data.block.t0_ns == expected.t0_ns
    assert torch.equal(data.block.data, expected.data)


def test_resampling_is_per_contiguous_segment_not_per_file(frame_dir, blocks):
    slow, fast = blocks
    data = read(frame_dir, ["V1:A", "V1:C"], sample_rate=512)
    block = data.block
    # resampling the whole 192 s at once: no file-boundary edge effects
    expected = resample_poly(slow["V1:A"].numpy(), 2, 1)
    assert torch.equal(block["V1:A"], torch.from_numpy(expected))
    assert torch.equal(block["V1:C"], fast["V1:C"].double())
    assert block.history == ("resample V1:A: 256 Hz -> 512 Hz (polyphase)",)


def test_gap_from_missing_middle_file(frame_dir, blocks, tmp_path):
    slow, _ = blocks
    d = copy_dir(frame_dir, tmp_path / "frames")
    next(d.glob("V-GWTWIN-1000000064-64.*")).unlink()
    data = read(d, ["V1:A", "V1:B"])
    assert data.gaps == seg(GPS + 64, GPS + 128)
    assert [(s.t0_ns, s.end_ns) for s in data.segments] == [
        (GPS * NS, (GPS + 64) * NS),
        ((GPS + 128) * NS, (GPS + 192) * NS),
    ]
    assert torch.equal(data.segments[1].data, slow.crop(GPS + 128, GPS + 192).data)
    with pytest.raises(GapError, match=r"1 gap totalling 64 s: \[1000000064, 1000000128\)"):
        _ = data.block
    filled = data.filled()
    assert filled.t0_ns == GPS * NS and filled.size == SPAN * 256
    gap = slice(64 * 256, 128 * 256)
    assert torch.isnan(filled.data[:, gap]).all()
    keep = torch.ones(filled.size, dtype=torch.bool)
    keep[gap] = False
    assert torch.equal(filled.data[:, keep], slow.data[:, keep])
    assert "filled 1 gap totalling 64 s" in filled.history[-1]
    assert torch.equal(data.filled(0.0).data[:, gap], torch.zeros(2, 64 * 256, dtype=torch.float64))
    assert "1 gap(s)" in repr(data) and "gap     [1000000064, 1000000128): 64 s" in data.summary()


def test_gap_beyond_the_files(frame_dir, blocks):
    slow, _ = blocks
    data = read(frame_dir, ["V1:A"], GPS - 10, GPS + SPAN + 5)
    assert data.gaps == SegmentList([Segment(GPS - 10, GPS), Segment(GPS + SPAN, GPS + SPAN + 5)])
    (only,) = data.segments
    assert torch.equal(only.data, slow.select(["V1:A"]).data)
    filled = data.filled()
    assert filled.t0_ns == (GPS - 10) * NS and filled.size == (SPAN + 15) * 256
    # nothing at all in the span: one gap; filling needs a rate
    empty = read(frame_dir, ["V1:A"], GPS + 1000, GPS + 1010)
    assert empty.segments == [] and empty.gaps == seg(GPS + 1000, GPS + 1010)
    with pytest.raises(GapError, match="no data were read .* sample rate is unknown"):
        empty.filled()
    nan = read(frame_dir, ["V1:A"], GPS + 1000, GPS + 1010, expected_rates=256).filled()
    assert nan.size == 2560 and torch.isnan(nan.data).all()


@pytest.mark.parametrize("fmt", ["gwf", "hdf5"])
def test_file_shorter_than_its_name_gives_a_gap(tmp_path, fmt):
    block = noise_block(["V1:A"], 128, duration=96)
    write_frame(tmp_path / f"V-T-{GPS}-64.{fmt}", block.crop(GPS, GPS + 64))
    # the second file's name says 64 s, but it holds 32
    write_frame(tmp_path / f"V-T-{GPS + 64}-64.{fmt}", block.crop(GPS + 64, GPS + 96))
    data = read(tmp_path, ["V1:A"])
    assert data.gaps == seg(GPS + 96, GPS + 128)
    assert torch.equal(data.segments[0].data, block.data)


def test_type_change_between_files(tmp_path):
    """A channel stored as REAL4 in one file and REAL8 in the next is read right."""
    block = noise_block(["V1:A"], 64, duration=32, dtype=np.float32)
    write_frame(tmp_path / f"V-T-{GPS}-16.gwf", block.crop(GPS, GPS + 16))
    write_frame(
        tmp_path / f"V-T-{GPS + 16}-16.gwf", block.crop(GPS + 16, GPS + 32).to(torch.float64)
    )
    for _ in range(2):  # the second pass starts from the type remembered for the last file
        assert torch.equal(read(tmp_path, ["V1:A"]).block.data, block.data.double())


# -- non-finite samples ------------------------------------------------------------------------


def test_nonfinite_samples_are_reported_per_channel(tmp_path):
    block = noise_block(["V1:A", "V1:B", "V1:C"], 256, duration=128)
    boundary = 64 * 256
    block.data[0, boundary - 2 : boundary + 3] = float("nan")  # across the file boundary
    block.data[0, 10] = float("nan")
    block.data[1, 500] = float("inf")
    write_frames(block, tmp_path, frame_length=64, format="hdf5")
    data = read(tmp_path, ["V1:A", "V1:B", "V1:C"])
    step = NS // 256  # 3906250 ns
    assert list(data.nonfinite) == ["V1:A", "V1:B"]
    assert spans(data.nonfinite["V1:A"]) == [
        (GPS * NS + 10 * step, GPS * NS + 11 * step),
        ((GPS + 64) * NS - 2 * step, (GPS + 64) * NS + 3 * step),
    ]
    assert spans(data.nonfinite["V1:B"]) == [(GPS * NS + 500 * step, GPS * NS + 501 * step)]
    # NaN are data, not gaps: the block is whole and holds them
    assert not data.gaps
    assert data.block.nonfinite() == {"V1:A": 6, "V1:B": 1}


# -- GWOSC -------------------------------------------------------------------------------------


def write_gwosc(path, t0=GPS, duration=32, rate=4096, meta=True, seed=5):
    """A file laid out like a GWOSC strain file (float64 strain, 1 Hz DQ mask, NaN where
    data are missing)."""
    rng = np.random.default_rng(seed)
    strain = rng.standard_normal(duration * rate) * 1e-21
    strain[rate * 3 : rate * 4] = np.nan  # one missing second
    mask = np.full(duration, 127, dtype=np.int32)
    mask[3] = 0
    with h5py.File(path, "w") as f:
        s = f.create_dataset("strain/Strain", data=strain)
        s.attrs.update(
            {
                "Xstart": t0,
                "Xspacing": 1.0 / rate,
                "Npoints": strain.size,
                "Xunits": "second",
                "Yunits": "strain",
            }
        )
        f["meta/Detector"] = b"H1"
        f["meta/GPSstart"] = t0
        f["meta/Duration"] = duration
        q = f.create_dataset("quality/simple/DQmask", data=mask)
        q.attrs.update({"Xstart": t0, "Xspacing": 1.0, "Xunits": "second", "Npoints": duration})
        f["quality/simple/DQDescriptions"] = [
            b"DATA",
            b"CBC_CAT1",
            b"CBC_CAT2",
            b"CBC_CAT3",
            b"BURST_CAT1",
            b"BURST_CAT2",
            b"BURST_CAT3",
        ]
        if meta:
            f["strain/GWOSCmeta"] = b"GWOSC-4KHZ_R1_STRAIN"
            f["quality/simple/GWOSCmeta"] = b"GWOSC-4KHZ_R1_DQMASK"
    return path


def test_gwosc_file_matches_gwpy(tmp_path):
    path = write_gwosc(tmp_path / f"H-H1_GWOSC_4KHZ_R1-{GPS}-32.hdf5")
    (found,) = find_frames(tmp_path)
    assert (found.observatory, found.tag, found.duration) == ("H", "H1_GWOSC_4KHZ_R1", 32)
    strain = read(tmp_path, ["H1:GWOSC-4KHZ_R1_STRAIN"])
    reference = TimeSeries.read(str(path), format="hdf5.gwosc")
    assert reference.name == "H1:GWOSC-4KHZ_R1_STRAIN"
    block = strain.block
    np.testing.assert_array_equal(block.numpy()[0], reference.value)  # NaN where NaN
    assert block.t0_ns == GPS * NS and block.sample_rate == 4096 and block.units == ("strain",)
    assert strain.nonfinite == {"H1:GWOSC-4KHZ_R1_STRAIN": seg(GPS + 3, GPS + 4)}
    dq = read(path, ["H1:GWOSC-4KHZ_R1_DQMASK"], GPS + 2, GPS + 10).block
    state = StateVector.read(str(path), format="hdf5.gwosc").crop(GPS + 2, GPS + 10)
    np.testing.assert_array_equal(dq.numpy()[0], state.value)
    assert dq.sample_rate == 1 and dq.t0_ns == (GPS + 2) * NS
    with pytest.raises(
        MissingChannelError,
        match=r"channel H1:STRAIN not found in .*H-H1_GWOSC_4KHZ_R1-1000000000-32.hdf5; it holds "
        r"2 channels: H1:GWOSC-4KHZ_R1_STRAIN, H1:GWOSC-4KHZ_R1_DQMASK",
    ):
        read(path, ["H1:STRAIN"])


def test_gwosc_names_without_meta(tmp_path):
    path = write_gwosc(
        tmp_path / f"H-H1_GWOSC_16KHZ_R1-{GPS}-4.hdf5", duration=4, rate=16384, meta=False
    )
    data = read(path, ["H1:GWOSC-16KHZ_R1_STRAIN"])
    assert data.block.sample_rate == 16384
    assert read(path, ["H1:GWOSC-16KHZ_R1_DQMASK"]).block.size == 4


# -- error paths ---------------------------------------------------------------------------------


def test_missing_channel_lists_what_the_file_holds(frame_dir):
    with pytest.raises(
        MissingChannelError,
        match=r"channel V1:NOPE not found in .*V-GWTWIN-1000000000-64\.\w+; it holds 3 channels: "
        r"V1:A, V1:B, V1:C",
    ):
        read(frame_dir, ["V1:A", "V1:NOPE"])


def test_channel_missing_from_one_file_names_that_file(tmp_path, blocks):
    slow, _ = blocks
    write_frame(tmp_path / f"V-T-{GPS}-64.gwf", slow.crop(GPS, GPS + 64))
    write_frame(
        tmp_path / f"V-T-{GPS + 64}-64.gwf", slow.select(["V1:A"]).crop(GPS + 64, GPS + 128)
    )
    with pytest.raises(
        MissingChannelError,
        match=r"channel V1:B not found in .*V-T-1000000064-64"
        r"\.gwf; it holds 1 channels: V1:A",
    ):
        read(tmp_path, ["V1:A", "V1:B"])


def test_unknown_format_errors(tmp_path, blocks):
    slow, _ = blocks
    odd = tmp_path / "data.txt"
    odd.write_text("not a frame")
    with pytest.raises(
        UnknownFormatError,
        match=r"cannot tell the format of .*data.txt from its "
        r"extension '\.txt'",
    ):
        read(odd, ["V1:A"])
    with pytest.raises(UnknownFormatError, match="unknown frame format 'fits'"):
        write_frame(tmp_path / "x.dat", slow, format="fits")
    with pytest.raises(
        UnknownFormatError,
        match=r"cannot write format 'hdf5' to .*x.gwf: the "
        "extension says 'gwf'",
    ):
        write_frame(tmp_path / "x.gwf", slow, format="hdf5")
    # an explicit format reads a file whose extension does not tell
    path = write_frame(tmp_path / "frame.dat", slow.crop(GPS, GPS + 4), format="hdf5")
    assert torch.equal(
        read(path, ["V1:A"], format="hdf5").block.data,
        slow.crop(GPS, GPS + 4).select(["V1:A"]).data,
    )


def test_overlapping_files_are_refused_by_read(tmp_path, blocks):
    slow, _ = blocks
    write_frame(tmp_path / f"V-T-{GPS}-64.hdf5", slow.crop(GPS, GPS + 64))
    write_frame(tmp_path / f"V-T-{GPS + 32}-64.hdf5", slow.crop(GPS + 32, GPS + 96))
    with pytest.raises(OverlappingFilesError, match=r"both cover GPS \[1000000032, 1000000064\)"):
        read(tmp_path, ["V1:A"])


def test_rate_mismatch_between_files(tmp_path):
    write_frame(tmp_path / f"V-T-{GPS}-8.gwf", noise_block(["V1:A"], 256, duration=8))
    write_frame(tmp_path / f"V-T-{GPS + 8}-8.gwf", noise_block(["V1:A"], 512, 8, t0=GPS + 8))
    with pytest.raises(
        SampleRateMismatchError,
        match=r"channel V1:A is sampled at 256 Hz in "
        r".*V-T-1000000000-8.gwf but at 512 Hz in .*V-T-1000000008-8.gwf",
    ):
        read(tmp_path, ["V1:A"])


def test_rate_differs_from_expected(frame_dir):
    with pytest.raises(
        SampleRateMismatchError,
        match=r"expected 4096 Hz, found 256 Hz in file "
        r".*V-GWTWIN-1000000000-64\.\w+ for channel V1:A",
    ):
        read(frame_dir, ["V1:A"], expected_rates={"V1:A": 4096})
    assert read(frame_dir, ["V1:A", "V1:B"], expected_rates=256).sample_rate == 256
    with pytest.raises(GwtwinError, match=r"expected_rates names channels that are not requested"):
        read(frame_dir, ["V1:A"], expected_rates={"V1:X": 256})


def test_mixed_native_rates_need_sample_rate(frame_dir):
    with pytest.raises(
        SampleRateMismatchError,
        match=r"V1:A 256 Hz, V1:C 512 Hz.*pass "
        "sample_rate=",
    ):
        read(frame_dir, ["V1:A", "V1:C"])


def test_samples_off_the_grid_of_the_previous_file(tmp_path):
    write_frame(tmp_path / f"V-T-{GPS}-8.gwf", noise_block(["V1:A"], 256, duration=8))
    # starts half a sample after a 256 Hz grid point of the first file
    late = noise_block(["V1:A"], 256, duration=4, t0=Decimal(GPS + 8) + Decimal(1) / 512)
    write_frame(tmp_path / f"V-T-{GPS + 8}-8.gwf", late)
    with pytest.raises(GwtwinError, match="not on the sample grid of the preceding file"):
        read(tmp_path, ["V1:A"])


@pytest.mark.parametrize("fmt", ["gwf", "hdf5"])
def test_corrupt_files(tmp_path, blocks, fmt, capfd):
    slow, _ = blocks
    path = write_frame(tmp_path / f"V-T-{GPS}-64.{fmt}", slow.crop(GPS, GPS + 64))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    kind = "GWF" if fmt == "gwf" else "HDF5"
    with pytest.raises(
        CorruptFrameError,
        match=rf"cannot read {kind} file .*V-T-1000000000-64"
        rf"\.{fmt}.*truncated",
    ):
        read(path, ["V1:A"])
    path.write_bytes(b"garbage" * 100)
    with pytest.raises(CorruptFrameError, match=rf"cannot read {kind} file"):
        read(tmp_path, ["V1:A"])
    assert "XLAL Error" not in capfd.readouterr().err  # LAL's own messages are kept quiet


def test_write_frame_warns_when_data_outrun_the_name(tmp_path, blocks):
    slow, _ = blocks
    with pytest.warns(
        UserWarning,
        match=r"not inside the span \[1000000000, 1000000016\) that "
        "the name",
    ):
        write_frame(tmp_path / f"V-T-{GPS}-16.gwf", slow.crop(GPS, GPS + 32))


def test_write_frames_aligns_to_frame_length(tmp_path):
    block = noise_block(["V1:A"], 16, duration=100, t0=GPS + 10)
    paths = write_frames(block, tmp_path, observatory="H", tag="X", frame_length=32)
    assert [p.name for p in paths] == [
        "H-X-1000000010-22.gwf",
        "H-X-1000000032-32.gwf",
        "H-X-1000000064-32.gwf",
        "H-X-1000000096-14.gwf",
    ]
    assert torch.equal(read(tmp_path, ["V1:A"]).block.data, block.data)
    loose = write_frames(block, tmp_path / "loose", frame_length=64, align=False, format="hdf5")
    assert [p.name for p in loose] == ["V-GWTWIN-1000000010-64.hdf5", "V-GWTWIN-1000000074-36.hdf5"]
    with pytest.raises(GwtwinError, match="frame_length must be a positive whole number"):
        write_frames(block, tmp_path, frame_length=0)


def test_format_selects_one_copy_of_the_data(tmp_path, blocks):
    slow, _ = blocks
    piece = slow.crop(GPS, GPS + 8)
    write_frame(tmp_path / f"V-T-{GPS}-8.gwf", piece)
    write_frame(tmp_path / f"V-T-{GPS}-8.hdf5", piece)
    with pytest.raises(OverlappingFilesError, match=r"V-T-1000000000-8\.\w+ .*both cover"):
        read(tmp_path, ["V1:A"])
    for fmt in ("gwf", "hdf5"):
        data = read(tmp_path, ["V1:A"], format=fmt)
        assert [p.suffix for p in data.files] == [f".{fmt}"]
        assert torch.equal(data.block.data, piece.select(["V1:A"]).data)


def test_hdf5_that_is_not_a_frame(tmp_path):
    path = tmp_path / f"V-T-{GPS}-8.hdf5"
    with h5py.File(path, "w") as f:
        f["V1:A"] = np.zeros((2, 8))
    with pytest.raises(
        UnknownFormatError,
        match=r"V1:A in HDF5 file .* is not a time series in "
        "gwpy's layout",
    ):
        read(path, ["V1:A"])
    with pytest.raises(
        MissingChannelError,
        match=r"channel V1:B not found .*it holds 1 "
        "channels: V1:A",
    ):
        read(path, ["V1:B"])
