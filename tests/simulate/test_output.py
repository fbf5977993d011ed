"""What the simulator writes: frames gwpy reads back bit-exactly, truth that reproduces the
catalogue's SNRs, deterministic files, and the CLI end to end."""

import json
from pathlib import Path

import lal
import lalsimulation
import numpy as np
import pytest
from gwpy.timeseries import TimeSeries, TimeSeriesDict
from scipy.signal.windows import tukey

from gwtwin.cli import main
from gwtwin.data import read
from gwtwin.simulate import Simulator, load_config, read_catalogue, truth_channel

TINY = Path(__file__).parents[2] / "configs" / "simulate-tiny.yaml"


def test_frames_read_back_bit_exactly_with_gwpy(default_run):
    sim, result = default_run
    config = sim.config
    assert len(result.frames) == config.duration // config.frame_length
    for index in (0, len(result.frames) - 1):
        path = result.frames[index]
        assert path.name == f"V-GWTWIN-{config.start + index * 64}-64.gwf"
        blocks, truth = sim.render_frame(index)
        names = [c for b in blocks for c in b.channels]
        got = TimeSeriesDict.read(str(path), names)
        for block in blocks:
            for i, name in enumerate(block.channels):
                series = got[name]
                assert series.t0.value == config.start + index * config.frame_length
                assert series.sample_rate.value == block.sample_rate
                assert series.dtype == block.data.numpy().dtype
                np.testing.assert_array_equal(series.value, block.numpy()[i])
        truth_got = TimeSeriesDict.read(str(result.truth_frames[index]), list(truth.channels))
        for i, name in enumerate(truth.channels):
            np.testing.assert_array_equal(truth_got[name].value, truth.numpy()[i])


def test_channels_and_rates_as_configured(default_run):
    sim, result = default_run
    c = sim.config
    expected = {
        c.channel(c.strain.channel): c.strain.sample_rate,
        c.channel(c.scatter.witness): c.scatter.witness_rate,
        c.channel(c.scatter.redundant_witness): c.scatter.witness_rate,
        c.channel(c.em.witness): c.em.witness_rate,
        c.channel(c.powerline.mains_channel): c.powerline.mains_rate,
        c.channel(c.powerline.control_channel): c.powerline.control_rate,
        **{c.channel(d.name): d.rate for d in c.decoys.channels},
    }
    got = TimeSeriesDict.read(str(result.frames[0]), list(expected))
    assert {name: s.sample_rate.value for name, s in got.items()} == expected
    summary = json.loads((result.output / "summary.json").read_text())
    assert {ch["name"] for ch in summary["channels"]} >= set(expected)
    assert summary["counts"] == result.counts


def _lal_psd(curve_function: str, df: float, n: int) -> np.ndarray:
    """The design PSD straight from LALSimulation on an rfft grid (independent of gwtwin)."""
    series = lal.CreateREAL8FrequencySeries("psd", 0, 0.0, df, lal.DimensionlessUnit, n)
    getattr(lalsimulation, curve_function)(series, 9.0)
    return np.array(series.data.data)


def _snr_from_truth(path_dir: Path, channel: str, start: float, end: float, fs: float) -> float:
    pad = 1.0
    files = sorted(str(p) for p in path_dir.glob("*.gwf"))
    ts = TimeSeries.read(files, channel, start=np.floor(start - pad), end=np.ceil(end + pad))
    h = ts.value * tukey(ts.size, alpha=2 * pad / (ts.duration.value))
    hf = np.fft.rfft(h) / fs
    df = fs / h.size
    psd = _lal_psd("SimNoisePSDAdVDesignSensitivityP1200087", df, hf.size)
    freqs = np.arange(hf.size) * df
    band = (freqs >= 10.0) & (psd > 0)  # LAL leaves the last (Nyquist) bin empty
    return float(np.sqrt(4 * np.sum(np.abs(hf[band]) ** 2 / psd[band]) * df))


def test_catalogue_snrs_recomputed_from_truth_frames(default_run):
    """Recompute SNRs of truth glitches from the truth frames and LAL's design PSD: within 5 %."""
    sim, result = default_run
    table = read_catalogue(result.catalogue)
    fs = sim.config.strain.sample_rate
    checked = 0
    for family in ("scatter", "em", "blip", "injection"):
        rows = table[table["family"] == family]
        assert len(rows) > 0, family
        for row in rows[:3]:
            got = _snr_from_truth(
                result.output / "truth",
                truth_channel("V1", family),
                float(row["gps_start"]),
                float(row["gps_end"]),
                fs,
            )
            assert got == pytest.approx(float(row["snr"]), rel=0.05), (family, row["id"])
            checked += 1
    assert checked >= 8


def test_catalogue_files_agree(default_run):
    sim, result = default_run
    h5 = read_catalogue(result.catalogue)
    csv = read_catalogue(result.output / "catalogue.csv")
    assert len(h5) == len(csv) == len(sim.catalogue.events)
    np.testing.assert_array_equal(np.asarray(h5["peak_ns"]), np.asarray(csv["peak_ns"]))
    assert list(h5["family"]) == list(csv["family"])
    for row in h5:
        assert row["gps_start"] <= row["gps_peak"] <= row["gps_end"]
        json.loads(str(row["params"]))
    # (the HDF5 column holds bytes: compare as str, or nothing matches and the check is empty)
    witnessed = h5[[str(f) in ("scatter", "em", "powerline") for f in h5["family"]]]
    assert len(witnessed) >= 3
    assert all(str(ch).startswith("V1:") for ch in witnessed["channel"])
    injections = h5[h5["family"] == "injection"]
    params = json.loads(str(injections[0]["params"]))
    assert {"mass1", "mass2", "distance_mpc", "ra", "dec", "geocent_end_time"} <= set(params)


def test_same_seed_same_files_serial_and_parallel(tmp_path):
    config = load_config(TINY)
    a = Simulator(config).run(tmp_path / "a", workers=1, progress=False)
    b = Simulator(config).run(tmp_path / "b", workers=2, progress=False)
    assert (tmp_path / "a" / "catalogue.csv").read_bytes() == (
        tmp_path / "b" / "catalogue.csv"
    ).read_bytes()
    names = [c.name for c in a.channels if c.role != "truth"]
    truth_names = [c.name for c in a.channels if c.role == "truth"]
    for fa, fb, chans in [(x, y, names) for x, y in zip(a.frames, b.frames, strict=True)] + [
        (x, y, truth_names) for x, y in zip(a.truth_frames, b.truth_frames, strict=True)
    ]:
        assert fa.name == fb.name
        da, db = TimeSeriesDict.read(str(fa), chans), TimeSeriesDict.read(str(fb), chans)
        for name in chans:
            np.testing.assert_array_equal(da[name].value, db[name].value)
    # and a different seed gives different data
    strain = config.channel(config.strain.channel)
    other, _ = Simulator(config.model_copy(update={"seed": config.seed + 1})).render_frame(0)
    first = TimeSeriesDict.read(str(a.frames[0]), [strain])[strain].value
    assert not np.array_equal(other[0].numpy()[0], first)


def test_hdf5_frames(tmp_path):
    config = load_config(TINY, {"format": "hdf5"})
    result = Simulator(config).run(tmp_path, workers=1, progress=False)
    assert all(p.suffix == ".hdf5" for p in result.frames)
    blocks, _ = Simulator(config).render_frame(1)
    strain = config.channel(config.strain.channel)
    got = read(tmp_path / "frames", [strain], config.start + 32, config.start + 64).block
    np.testing.assert_array_equal(got.numpy()[0], blocks[0].numpy()[0])


def test_cli_simulate_end_to_end(tmp_path, capsys):
    out = tmp_path / "sim"
    png = tmp_path / "ql.png"
    assert (
        main(["simulate", str(TINY), "--output", str(out), "--quicklook", str(png), "--quiet"]) == 0
    )
    printed = capsys.readouterr().out
    assert "truth catalogue" in printed and "V1:ENV_CEB_MAG_N" in printed
    assert "x real time" in printed
    assert png.stat().st_size > 20_000
    assert len(list((out / "frames").glob("V-GWTWIN-*-32.gwf"))) == 2
    assert len(list((out / "truth").glob("V-GWTWIN_TRUTH-*-32.gwf"))) == 2
    echoed = load_config(out / "config.yaml")
    assert echoed == load_config(TINY)


def test_cli_reports_bad_config(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("scatter:\n  wavelenght: 1.0e-6\n")
    assert main(["simulate", str(bad), "--output", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "scatter.wavelenght: unknown key" in err and "wavelength" in err


def test_cli_show_config(capsys):
    assert main(["simulate", "--show-config", "--duration", "128"]) == 0
    assert "duration: 128" in capsys.readouterr().out
