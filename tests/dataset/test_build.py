"""build_dataset on ramp frames and on the simulator: exact GPS alignment, splits, truth, errors."""

import json
import pickle

import h5py
import numpy as np
import pytest
import scipy.signal
import scipy.stats
import torch
from torch.utils.data import DataLoader

from gwtwin.cli import main
from gwtwin.data import NS, MissingChannelError, SampleRateMismatchError, read
from gwtwin.dataset import (
    DatasetConfig,
    WindowDataset,
    build_dataset,
    load_dataset_config,
    read_attrs,
)
from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.signal.conditioning import condition_strain

from .conftest import START, STRAIN, WITNESSES, write_selected

RAMP_CHANNELS = ["V1:RAMP_1024", "V1:RAMP_256"]
RAMP_CONFIG = {
    "strain_channel": "V1:STRAIN",
    "valid_fraction": 0.25,
    "quiet_fraction": None,
    "snr_threshold": 8.0,
}


@pytest.fixture(scope="module")
def ramp(ramp_frames, tmp_path_factory):
    out = tmp_path_factory.mktemp("ramp-ds") / "ramp.h5"
    summary = build_dataset(ramp_frames, RAMP_CHANNELS, out, RAMP_CONFIG)
    return ramp_frames, summary


# -- ramp: exact alignment and bookkeeping --------------------------------------------------------
def test_ramp_windows_hold_exactly_the_samples_at_gps(ramp):
    frames, summary = ramp
    train = WindowDataset(summary.path, "train")
    spec = train.conditioning
    assert train.feature_names == RAMP_CHANNELS
    # pad: whitening FIR (2 s) + resampling (10/256 s) -> 3 whole seconds; 8 s windows, 4 s
    # stride; the train split is [0, 72) s, the frame [48, 64) s is missing and RAMP_256 is NaN
    # over [20, 20.5) s: usable windows start at 3, 7, 27, 31, 35 s
    starts = (train.gps_ns - START * NS) / NS
    np.testing.assert_array_equal(starts, [3, 7, 27, 31, 35])
    w1024, w256 = spec.witnesses
    for k, g in enumerate(train.gps_ns):
        witness, target = train[k]
        assert witness.shape == (2, 8192) and target.shape == (8192,)
        # the 1024 Hz ramp is its sample index since START: the window starting at gps_ns holds
        # exactly samples (gps - START) * 1024 + 0..8191 (float32 storage of z-scores: |z| < 2,
        # 2.4e-7 x std 8e3 = 0.002 samples)
        first = (int(g) - START * NS) * 1024 // NS
        got = witness[0].double() * w1024.std[0] + w1024.mean[0]
        np.testing.assert_allclose(got, np.arange(first, first + 8192), atol=0.01, rtol=0)
        # the 256 Hz ramp: scipy's polyphase resampling of the window plus its 3 s margins
        lo = (int(g) - START * NS) * 256 // NS - 3 * 256
        ramp256 = np.arange(lo, lo + 14 * 256, dtype=np.float64)
        ref = scipy.signal.resample_poly(ramp256, 4, 1, window=("kaiser", 5.0))[3072 : 3072 + 8192]
        got = witness[1].double() * w256.std[0] + w256.mean[0]
        np.testing.assert_allclose(got, ref, atol=0.01, rtol=0)
        # the target is the whitened strain of that span (filters reach 3 s at most)
        strain = read(frames, ["V1:STRAIN"], int(g) / NS - 3, int(g) / NS + 11).block
        ref = condition_strain(strain, spec)[3072 : 3072 + 8192].float()
        np.testing.assert_allclose(target, ref, atol=1e-5 * float(ref.abs().max()))


def test_ramp_skipped_windows_are_counted(ramp):
    _, summary = ramp
    attrs = read_attrs(summary.path)
    # train candidates 3..59 s: 11 and 23 s reach the NaN span with their margins, 15 and 19 s
    # contain it, 39 s reaches the gap, 43..59 s contain it; valid: 75, 79, 83 s all usable
    assert attrs["n_skipped"] == {"edge": 3, "nonfinite": 2, "gap": 5}
    assert attrs["counts"]["train"]["windows"] == 5
    assert attrs["counts"]["valid"]["windows"] == 3
    valid = WindowDataset(summary.path, "valid")
    np.testing.assert_array_equal((valid.gps_ns - START * NS) / NS, [75, 79, 83])


def test_chunking_does_not_change_the_windows(ramp, tmp_path):
    frames, summary = ramp
    other = build_dataset(
        frames, RAMP_CHANNELS, tmp_path / "small.h5", {**RAMP_CONFIG, "chunk_duration": 8.0}
    )
    with h5py.File(summary.path) as a, h5py.File(other.path) as b:
        for split in ("train", "valid"):
            np.testing.assert_array_equal(a[split]["gps_ns"][()], b[split]["gps_ns"][()])
            for name in ("witness", "target"):
                x, y = a[split][name][()], b[split][name][()]
                # conditioning is chunk-independent beyond its edges: float32 rounding only
                np.testing.assert_allclose(x, y, atol=1e-5 * np.abs(x).max())


def test_window_dataset_is_lazy_and_picklable(ramp):
    _, summary = ramp
    ds = WindowDataset(summary.path, "train")
    assert ds._h5 is None  # not opened in __init__
    assert len(ds) == 5 and ds.kind == "timeseries" and ds.sample_rate == 1024
    with h5py.File(summary.path) as h5:
        assert h5["train/witness"].chunks == (1, 2, 8192)  # one window per chunk
    x, y = ds[-1]
    assert ds._h5 is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._h5 is None
    torch.testing.assert_close(clone[4][0], x)
    batches = list(DataLoader(ds, batch_size=2, num_workers=1))
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]
    torch.testing.assert_close(batches[2][1][0], y)
    with pytest.raises(IndexError, match=r"out of range for 5"):
        ds[5]
    with pytest.raises(GwtwinError, match=r"has no truth"):
        WindowDataset(summary.path, "valid", return_truth=True)
    with pytest.raises(GwtwinError, match=r"split must be one of"):
        WindowDataset(summary.path, "test")
    ds.close()


def test_read_attrs_refuses_other_files(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["format"] = "something"
    with pytest.raises(GwtwinError, match=r"not a gwtwin dataset.*'something'"):
        read_attrs(path)
    with pytest.raises(GwtwinError, match=r"does not exist"):
        read_attrs(tmp_path / "missing.h5")


# -- the simulator: splits, labels, truth --------------------------------------------------------
@pytest.fixture(scope="module")
def simset(sim, selected, tmp_path_factory):
    out = tmp_path_factory.mktemp("simset") / "sim.h5"
    return build_dataset(sim, selected, out, {"valid_fraction": 0.25, "quiet_fraction": 0.25})


def test_layout_and_provenance(simset):
    attrs = read_attrs(simset.path)
    assert attrs["format"] == "gwtwin-dataset/1" and attrs["kind"] == "timeseries"
    assert attrs["strain_channel"] == STRAIN
    assert attrs["witness_channels"] == WITNESSES
    assert attrs["feature_names"][0] == WITNESSES[0]
    assert len(attrs["feature_names"]) == 8  # x, sin/cos x 2 harmonics, 3 standardised
    assert attrs["target_duration"] == 4.0 and attrs["window_duration"] == 8.0
    assert DatasetConfig.model_validate(attrs["config"]).quiet_fraction == 0.25
    with h5py.File(simset.path) as h5:
        for split in ("train", "valid"):
            g = h5[split]
            n = g["gps_ns"].shape[0]
            assert g["witness"].shape == (n, 8, 8192) and g["witness"].dtype == np.float32
            for name in ("target", "truth", "blip"):
                assert g[name].shape == (n, 8192)
            assert g["gps_ns"].dtype == np.int64 and g["glitch"].dtype == bool
            assert np.all(np.diff(g["gps_ns"][()]) > 0)
        np.testing.assert_allclose(h5["psd/frequencies"][-1], 512.0)
        assert h5["psd/strain"].shape == h5["psd/frequencies"].shape


def test_no_window_of_one_split_overlaps_the_other(simset):
    attrs = read_attrs(simset.path)
    need = int(attrs["edge_duration"] * NS)
    w = int(attrs["window_duration"] * NS)
    train = WindowDataset(simset.path, "train").gps_ns
    valid = WindowDataset(simset.path, "valid").gps_ns
    assert len(train) and len(valid)
    # not even the data their filters read: train [g - need, g + w + need) vs valid likewise
    assert train.max() + w + need <= valid.min() - need
    cut = attrs["splits"]["valid"][0][0]
    assert train.max() + w + need <= cut <= valid.min() - need


def test_glitch_and_quiet_windows(simset):
    for split in ("train", "valid"):
        ds = WindowDataset(simset.path, split)
        assert np.array_equal(ds.glitch, ds.max_snr >= 8.0)
        n_glitch, n_quiet = int(ds.glitch.sum()), int((~ds.glitch).sum())
        counts = read_attrs(simset.path)["counts"][split]
        assert counts == {"windows": len(ds), "glitch": n_glitch, "quiet": n_quiet}
    train = WindowDataset(simset.path, "train")
    assert train.glitch.sum() >= 10
    # quiet_fraction 0.25: one quiet window per three glitch windows (unless fewer exist)
    with h5py.File(simset.path) as h5:
        skipped = json.loads(h5["train"].attrs["n_skipped"])
    available = int((~train.glitch).sum()) + skipped.get("quiet_not_sampled", 0)
    assert available > (~train.glitch).sum() > 0
    assert (~train.glitch).sum() == min(available, round(train.glitch.sum() / 3))


def test_truth_lines_up_with_the_target(simset):
    ds = WindowDataset(simset.path, "train", return_truth=True)
    target = ds.read("target", slice(None)).double()
    truth = ds.read("truth", slice(None)).double()
    blip = ds.read("blip", slice(None)).double()
    power = (truth**2).sum(dim=1)
    # the power-line coupling never stops (~0.04 per sample): loud = a glitch well above it
    loud = power > 3 * power.median()
    assert int(loud.sum()) >= 3
    resid = ((target - blip - truth) ** 2).mean(dim=1)
    before = ((target - blip) ** 2).mean(dim=1)
    # what is left is noise only: loud windows look like the others once truth is removed...
    assert float(resid[loud].max()) < 1.05 * float(resid[~loud].median())
    # ...and truth accounts for the excess power it should (uncorrelated with the noise: the
    # cross term is ~ 2 sqrt(power / n) ~ 1 % of it)
    np.testing.assert_allclose((before - resid)[loud] * 8192, power[loud], rtol=0.1)
    # exact alignment: shifting truth by even one sample (1 ms) leaves more power behind
    best = float(((target - blip - truth)[loud] ** 2).sum())
    for lag in (-2, -1, 1, 2):
        shifted = torch.roll(truth, lag, dims=1)
        assert float(((target - blip - shifted)[loud] ** 2).sum()) > best


def test_qimage_tiles(sim, selected, tmp_path):
    out = tmp_path / "q.h5"
    summary = build_dataset(
        sim,
        selected,
        out,
        {"kind": "qimage", "end": START + 72, "valid_fraction": 0.2, "quiet_fraction": 0.5},
    )
    ds = WindowDataset(out, "train", return_truth=True)
    assert len(ds) >= 4 and ds.glitch.any()
    x, y, t = ds[0]
    assert x.shape == (8, 64, 256) and y.shape == (64, 256) and t.shape == (64, 256)
    with h5py.File(out) as h5:
        f = h5["qimage/frequencies"][()]
        assert f.shape == (64,) and f[0] == pytest.approx(8) and f[-1] == pytest.approx(500)
        assert h5["qimage/times"].shape == (256,)
        target = h5["train/target"][()]
    # normalised energy (a tile's median is ln 2 in noise; a pixel is the max of the tiles
    # in it, ~1): noise-like overall, and the loudest pixel follows the loudest strain trigger
    # (found with Q 4-64, so a single Q = 12 plane sees less of a short burst, but the loudest
    # glitch keeps at least a quarter of its energy 1 + SNR^2 / 2)
    assert 0.7 < np.median(target) < 1.5
    peaks = target.reshape(len(target), -1).max(axis=1)
    loudest = int(np.argmax(ds.max_snr))
    assert peaks[loudest] > 0.25 * (1 + ds.max_snr[loudest] ** 2 / 2)
    assert scipy.stats.spearmanr(ds.max_snr, peaks).statistic > 0.5
    # truth (strain without blips and injections) matches the target where no blip is
    truth = np.stack([ds[i][2].numpy() for i in range(len(ds))])
    assert np.median(np.abs(truth - target)) < 0.05 * np.median(target)
    assert summary.counts["train"]["windows"] == len(ds)


# -- errors --------------------------------------------------------------------------------------
def test_channels_not_in_frames(sim, tmp_path):
    sel = write_selected(tmp_path / "sel.json", [WITNESSES[0], "V1:NOT_A_CHANNEL"])
    with pytest.raises(MissingChannelError, match=r"\['V1:NOT_A_CHANNEL'\] are not in the frames"):
        build_dataset(sim, sel, tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_selection_rate_disagrees_with_frames(sim, tmp_path):
    sel = write_selected(tmp_path / "sel.json", rates={"V1:ENV_CEB_MAG_N": 2048})
    with pytest.raises(SampleRateMismatchError, match=r"MAG_N at 2048 Hz.*at 4096 Hz"):
        build_dataset(sim, sel, tmp_path / "x.h5")


def test_model_rate_not_a_power_of_two_ratio(sim, selected, tmp_path):
    with pytest.raises(GwtwinError, match=r"ratio must be a power of\s+two"):
        build_dataset(sim, selected, tmp_path / "x.h5", {"conditioning": {"sample_rate": 1000}})


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"windw_duration: unknown key \(allowed here: "):
        load_dataset_config({"windw_duration": 8})
    with pytest.raises(ConfigError, match=r"target_duration .* must not exceed"):
        load_dataset_config({"target_duration": 16})
    with pytest.raises(ConfigError, match=r"not a whole number of samples"):
        load_dataset_config({"stride": 0.0001})
    with pytest.raises(GwtwinError, match=r"format 'gwtwin-selected-channels/1', found None"):
        (tmp_path / "s.json").write_text(json.dumps({"channels": []}))
        build_dataset(tmp_path, tmp_path / "s.json", tmp_path / "x.h5")


def test_default_config_file_is_the_defaults():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "configs" / "dataset-default.yaml"
    assert load_dataset_config(path) == DatasetConfig()
    # a run config serves too: its dataset: section
    run = Path(__file__).resolve().parents[2] / "configs" / "run-tiny.yaml"
    assert load_dataset_config(run).valid_fraction == 0.25


# -- the command ---------------------------------------------------------------------------------
def test_cli_dataset_end_to_end(sim, selected, tmp_path, capsys):
    config = tmp_path / "ds.yaml"
    config.write_text(f"end: {START + 64}\nvalid_fraction: 0.25\nquiet_fraction: null\n")
    out = tmp_path / "cli.h5"
    rc = main(
        [
            "dataset",
            str(sim),
            "--selected",
            str(selected),
            "-o",
            str(out),
            "-c",
            str(config),
            "--quiet",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "train" in printed and "valid" in printed
    ds = WindowDataset(out, "train")
    assert len(ds) > 0 and ds.attrs["config"]["end"] == START + 64
    assert ds.gps_ns.max() + 11 * NS <= (START + 48) * NS
    bad = write_selected(tmp_path / "bad.json", ["V1:NOPE"])
    rc = main(["dataset", str(sim), "--selected", str(bad), "-o", str(out), "--quiet"])
    assert rc == 2
    assert "V1:NOPE" in capsys.readouterr().err
