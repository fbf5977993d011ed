"""``gwtwin clean`` on a small simulated scenario with a small (untrained, seeded) twin model.

What is checked does not need a good model (the subtraction decision is off, except in the
test that shows it keeps this wrong model from making strain worse): the cleaned strain is
exactly raw minus the predicted channel; chunks of any length give the one-pass output; gaps
in the input stay gaps and leave the flags' known time; NaN witness samples switch the
prediction off around them (and out of GWTWIN-CLEANING_APPLIED) instead of poisoning the
output; the flag files read back with gwpy; a missing witness is refused by name; the CLI
writes the same files.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from gwtwin.cli import main
from gwtwin.data import MissingChannelError, list_channels, read
from gwtwin.data.flags import read_flags
from gwtwin.data.frames import write_frame
from gwtwin.errors import ConfigError
from gwtwin.infer.clean import CleanConfig, clean_frames, load_clean_config
from gwtwin.infer.glitches import read_metadata
from gwtwin.infer.predict import GridPredictor
from gwtwin.models import TwinModel, build_model
from gwtwin.signal.conditioning import fit_conditioning, whitening_kernel
from gwtwin.simulate import SimulationConfig, Simulator

START = 1_400_000_000
DURATION = 128
STRAIN = "V1:Hrec_hoft_4096Hz"
WITNESSES = ["V1:SBE_SDB1_DISP_X", "V1:ENV_CEB_MAG_N", "V1:ENV_CEB_UPS_VOLT_R"]
SMALL_TD = {
    "hidden": 8,
    "products": 2,
    "input_stride": 2,
    "local_layers": 2,
    "context_levels": 1,
    "context_channels": 4,
    "context_layers": 1,
    "fir_duration": 0.25,
    "fir_channels": 2,
}
RATE, WINDOW, TARGET = 256.0, 4.0, 2.0


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean-sim")
    config = SimulationConfig.model_validate(
        {
            "duration": DURATION,
            "frame_length": 32,
            "start": START,
            "seed": 21,
            "scatter": {"rate": 120.0},
            "em": {"rate": 200.0},
            "powerline": {"rate": 120.0},
            "blip": {"rate": 200.0},
            "decoys": {"enabled": False},
            "injections": {"count": 1},
        }
    )
    Simulator(config).run(out, workers=1, progress=False)
    frames = out / "frames"
    data = [read(frames, [c], START, START + DURATION).block for c in [STRAIN, *WITNESSES]]
    spec = fit_conditioning(data, WITNESSES, STRAIN, sample_rate=RATE, fduration=1.0)
    torch.manual_seed(0)
    net = build_model(
        "witness_td",
        in_channels=spec.n_features,
        sample_rate=RATE,
        window_duration=WINDOW,
        target_duration=TARGET,
        linear_filter_size=whitening_kernel(spec).numel(),
        **SMALL_TD,
    )
    with torch.no_grad():  # a visible prediction: scale the untrained output up
        for p in net.parameters():
            p.mul_(1.5)
    # and a linear stage through the strain's whitening, as training fits it
    coef = 0.05 * torch.randn(spec.n_features, net.linear_taps, dtype=torch.float64)
    net.set_linear_stage(coef, whitening_kernel(spec))
    twin = TwinModel(net, spec, window_duration=WINDOW, target_duration=TARGET)
    return out, twin


def _small(**overrides) -> CleanConfig:
    # the mechanics below need the untrained model's prediction subtracted everywhere, so the
    # subtraction decision (which withholds a wrong model's prediction) is off unless asked
    base = {"images": 2, "tensorboard": False, "decision": {"enabled": False}}
    base.update(overrides)
    return load_clean_config(base)


def _output(directory, channels):
    fd = read(directory / "frames", channels)
    return fd


@pytest.fixture(scope="module")
def one_pass(scenario, tmp_path_factory):
    src, twin = scenario
    out = tmp_path_factory.mktemp("clean-one")
    summary = clean_frames(src / "frames", out, _small(chunk_duration=256), model=twin, log=str)
    return out, summary


def test_cleaned_is_raw_minus_prediction(scenario, one_pass):
    src, twin = scenario
    out, summary = one_pass
    cleaned = _output(out, [summary["cleaned_channel"], summary["prediction_channel"]]).block
    raw = read(src / "frames", [STRAIN]).block
    assert summary["cleaned_channel"] == STRAIN + "_CLEANED"
    assert cleaned.span == raw.span and cleaned.sample_rate == raw.sample_rate
    # float64 subtraction: exact to one rounding of the raw strain
    scale = float(raw.data.abs().max())
    np.testing.assert_allclose(cleaned.data[0] + cleaned.data[1], raw.data[0], atol=1e-15 * scale)
    pred = cleaned.data[1].numpy()
    assert np.abs(pred).max() > 0
    # GWTWIN-CLEANING_APPLIED is where the whitened prediction is on; the colouring filter
    # spreads it by at most its half length (fduration); beyond, only FFT rounding is left
    applied = summary["cleaning_applied"]
    assert len(applied) == 1
    a, b = applied[0]
    context = GridPredictor(twin).context_seconds
    t = raw.times
    spread = twin.spec.fduration
    assert np.abs(pred[(t < a - spread) | (t >= b + spread)]).max() < 1e-9 * np.abs(pred).max()
    assert a <= START + context and b >= START + DURATION - context
    assert summary["gaps"] == []


def test_chunked_cleaning_equals_one_pass(scenario, one_pass, tmp_path):
    src, twin = scenario
    out, summary = one_pass
    names = [summary["cleaned_channel"], summary["prediction_channel"]]
    ref = _output(out, names).block.data
    scale = float(ref[1].abs().max())
    for chunk in (1, 7, 50):  # the documented minimum is 1 s (whole seconds)
        part = tmp_path / f"chunk{chunk}"
        clean_frames(
            src / "frames", part, _small(chunk_duration=chunk, images=0), model=twin, log=str
        )
        got = _output(part, names).block.data
        np.testing.assert_allclose(got[1], ref[1], rtol=0, atol=1e-6 * scale)
        np.testing.assert_allclose(got[0], ref[0], rtol=0, atol=1e-6 * scale)


def test_flags_metadata_and_images(one_pass):
    out, summary = one_pass
    veto = summary["veto"]
    for fmt in ("xml", "h5"):
        flags = read_flags(out / "flags" / f"gwtwin-veto.{fmt}")
        assert sorted(k.split(":")[1] for k in flags) == sorted(
            ["GWTWIN-WITNESSED", "GWTWIN-CLEANING_FAILED", "GWTWIN-UNWITNESSED"]
        )
        for flag in flags.values():
            assert abs(sum(s[1] - s[0] for s in flag.known) - veto["known_seconds"]) < 1e-6
    for path in veto["flag_files"]["json"]:
        assert len(read_flags(out / path)) == 1
    applied = read_flags(out / "flags" / "cleaning-applied.h5")
    assert list(applied) == ["V1:GWTWIN-CLEANING_APPLIED:1"]
    meta = read_metadata(out / "metadata.csv")
    assert len(meta["gps"]) == veto["counts"]["glitches"] > 0
    assert np.all(meta["snr_before"] >= 8.0)
    assert np.all(meta["cleaned"] <= meta["witnessed"])
    # a witness is named exactly for the witnessed glitches
    assert np.all((meta["witness"] != "") == meta["witnessed"])
    assert set(meta["witness"][meta["witnessed"]]) <= set(WITNESSES)
    assert (out / "accuracy.csv").is_file()
    assert 1 <= len(veto["images"]) <= 2
    for image in veto["images"]:
        assert (out / image["file"]).stat().st_size > 10_000
    saved = json.loads((out / "clean.json").read_text())
    assert saved["veto"]["counts"] == veto["counts"]


def test_gap_in_input_is_a_gap_in_output(scenario, one_pass, tmp_path):
    src, twin = scenario
    frames = tmp_path / "frames"
    shutil.copytree(src / "frames", frames)
    missing = sorted(frames.glob("*.gwf"))[2]  # [START + 64, START + 96)
    missing.unlink()
    summary = clean_frames(frames, tmp_path / "out", _small(images=0), model=twin, log=str)
    assert summary["segments"] == [[START, START + 64], [START + 96, START + DURATION]]
    assert summary["gaps"] == [[START + 64.0, START + 96.0]]
    fd = read(tmp_path / "out" / "frames", [summary["cleaned_channel"]], START, START + DURATION)
    assert [(float(g[0]), float(g[1])) for g in fd.gaps] == [(START + 64.0, START + 96.0)]
    for a, b in summary["veto"]["known"] + summary["cleaning_applied"]:
        assert b <= START + 64 or a >= START + 96
    # the 32 s after the gap are too short for the veto's 32 s residual images: reported
    assert summary["veto"]["skipped_short_segments"] == [[START + 96.0, START + DURATION]]
    # the first segment is cleaned as in one pass, up to its last (tapered) block and the
    # colouring filter's reach
    a, b = summary["cleaning_applied"][0]
    assert b < START + 64 - 1  # the prediction stops the context before the gap
    cut = int(b - TARGET - twin.spec.fduration - 1)
    name = summary["prediction_channel"]
    ref = read(one_pass[0] / "frames", [name], START, cut).block.data
    got = read(tmp_path / "out" / "frames", [name], START, cut).block.data
    assert got.abs().max() > 0
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6 * float(ref.abs().max()))


def test_nan_witness_samples_switch_prediction_off(scenario, tmp_path):
    src, twin = scenario
    frames = tmp_path / "frames"
    shutil.copytree(src / "frames", frames)
    path = sorted(frames.glob("*.gwf"))[1]  # [START + 32, START + 64)
    names = list(list_channels(path))
    blocks = []
    for name in names:
        b = read(path, [name]).block
        if name == WITNESSES[1]:
            data = b.data.clone()
            i = int(10 * b.sample_rate)  # GPS START + 42
            data[0, i : i + 100] = float("nan")
            b = type(b)(data, b.t0_ns, b.sample_rate, b.channels, b.units)
        blocks.append(b)
    write_frame(path, blocks)
    summary = clean_frames(frames, tmp_path / "out", _small(images=0), model=twin, log=str)
    applied = summary["cleaning_applied"]
    assert len(applied) == 2  # the NaN stretch splits it
    assert applied[0][1] <= START + 42 < applied[1][0]
    pred = read(tmp_path / "out" / "frames", [summary["prediction_channel"]]).block
    assert torch.isfinite(pred.data).all()
    spread = twin.spec.fduration  # the colouring filter's reach
    inside = pred.crop(applied[0][1] + spread, applied[1][0] - spread).data
    assert inside.abs().max() < 1e-9 * pred.data.abs().max()


def test_missing_witness_and_bad_config_are_named(scenario, tmp_path):
    src, twin = scenario
    frames = tmp_path / "frames"
    frames.mkdir()
    for path in sorted((src / "frames").glob("*.gwf")):
        keep = [c for c in list_channels(path) if c != WITNESSES[0]]
        write_frame(frames / path.name, [read(path, [c]).block for c in keep])
    with pytest.raises(MissingChannelError, match="SBE_SDB1_DISP_X"):
        clean_frames(frames, tmp_path / "out", _small(), model=twin, log=str)
    with pytest.raises(
        ConfigError, match=r"chunk_sise: unknown key \(allowed here: .*chunk_duration"
    ):
        load_clean_config({"chunk_sise": 10})
    with pytest.raises(ConfigError, match=r"format: .*'gwf' or 'hdf5'.*found: 'gwff'"):
        load_clean_config({"format": "gwff"})
    with pytest.raises(ConfigError, match="no model to clean with"):
        clean_frames(src / "frames", tmp_path / "o2", _small(), log=str)


def test_clean_cli_with_registered_model(scenario, tmp_path):
    """``gwtwin clean`` with ``models:/NAME@ALIAS`` from an embedded MLflow registry."""
    import mlflow

    from gwtwin.train.tracking import (
        artifact_location_for,
        ensure_experiment,
        log_twin,
        tracking_uri_for,
    )

    src, twin = scenario
    workdir = tmp_path / "train"
    workdir.mkdir()
    uri = tracking_uri_for(workdir)
    mlflow.set_tracking_uri(uri)
    experiment = ensure_experiment(uri, "gwtwin-test", artifact_location_for(workdir))
    with mlflow.start_run(experiment_id=experiment) as run:
        run_id = run.info.run_id
    logged = log_twin(twin, run_id=run_id, tracking_uri=uri, registered_model_name="tiny-twin")
    assert logged["model_uri"] == "models:/tiny-twin@candidate"
    out = tmp_path / "clean"
    code = main(
        [
            "clean",
            str(src / "frames"),
            "--output",
            str(out),
            "--model",
            "models:/tiny-twin@candidate",
            "--workdir",
            str(workdir),
            "--format",
            "hdf5",
            "--start",
            str(START + 32),
            "--quiet",
        ]
    )
    assert code == 0
    summary = json.loads((out / "clean.json").read_text())
    assert summary["model"]["uri"] == "models:/tiny-twin@candidate"
    assert summary["segments"] == [[START + 32, START + DURATION]]
    assert all(f.endswith(".hdf5") for f in summary["frames"])
    assert main(["clean", str(src / "frames"), "-o", str(out), "--workdir", str(tmp_path)]) == 2


def test_attribution_shortcut_matches_ablation(scenario):
    """With a linear stage, the witness energies come from the stage's exact shares plus network
    ablation where the network carries power: threshold 0 ablates every block; a network with
    zero output makes the shortcut exact; the per-block rule is chunk-independent."""
    import copy

    src, twin = scenario
    segment = (START, START + DURATION)
    a, b = START + 40, START + 88

    def energies(model, threshold, spans):
        gp = GridPredictor(model, attribution_threshold=threshold)
        out = []
        for lo, hi in spans:
            wa, wb = gp.witness_span(lo, hi, segment)
            wit = [read(src / "frames", [c], wa, wb).block for c in WITNESSES]
            pred = gp.predict_chunk(wit, lo, hi, segment)
            out.append(pred.witness_energy)
        return np.concatenate(out, axis=1)

    exact = energies(twin, 0.0, [(a, b)])
    assert exact.shape == (len(WITNESSES), (b - a) * 64) and exact.max() > 0
    short = energies(twin, 1.0, [(a, b)])
    # where the network is quiet the shortcut keeps the linear share only: the energies agree
    # on the loudest bins of each witness
    for c in range(len(WITNESSES)):
        top = exact[c] >= 0.5 * exact[c].max()
        np.testing.assert_allclose(short[c][top], exact[c][top], rtol=0.3)
    # chunk-independent: the same bins from two chunks
    split = energies(twin, 1.0, [(a, a + 20), (a + 20, b)])
    np.testing.assert_allclose(split, short, rtol=1e-4, atol=1e-6 * short.max())
    # a network whose output is zero: the linear shares are the whole attribution
    silent = copy.deepcopy(twin)
    with torch.no_grad():
        silent.network.decode.weight.zero_()
        silent.network.decode.bias.zero_()
    np.testing.assert_allclose(
        energies(silent, float("inf"), [(a, b)]),
        energies(silent, 0.0, [(a, b)]),
        rtol=1e-4,
        atol=1e-6 * exact.max(),
    )


def _unit_powers(raw, cleaned, rate, t0):
    """Whitened power per 1 s of raw and cleaned strain (one reference whitening: the median
    Welch PSD of the raw strain) and the norm of the whitened subtraction."""
    from gwtwin.signal.spectral import psd_block
    from gwtwin.signal.whitening import Whitener

    whiten = Whitener(psd_block(raw, fftlength=4.0), rate)
    w_raw = whiten(raw.data[0].numpy())
    w_cl = whiten(cleaned.numpy())
    n = int(rate)
    edge = 4 * n
    units = (w_raw.size - 2 * edge) // n
    r = w_raw[edge : edge + units * n].reshape(units, n)
    c = w_cl[edge : edge + units * n].reshape(units, n)
    return (r**2).sum(1), (c**2).sum(1), np.sqrt(((r - c) ** 2).sum(1))


def test_the_decision_keeps_a_wrong_model_from_making_strain_worse(scenario, one_pass, tmp_path):
    """The untrained model is a wrong model: subtracted everywhere it adds its noise to
    strain; with the decision (the default) no second gets worse beyond the stated margin
    and the ASD is unchanged."""
    from scipy.signal import welch

    src, twin = scenario
    out, _ = one_pass
    summary = clean_frames(
        src / "frames", tmp_path / "decided", _small(decision={}), model=twin, log=str
    )
    decision = summary["decision"]
    assert decision["enabled"] and (tmp_path / "decided" / "decisions.csv").is_file()
    assert decision["units"] == DURATION
    raw = read(src / "frames", [STRAIN]).block
    name = summary["cleaned_channel"]
    everywhere = _output(out, [name]).block.data[0]
    decided = _output(tmp_path / "decided", [name]).block.data[0]
    margin = 3.0  # clean.veto.margin_sigma: 3 standard deviations 2 |subtracted| of the drop
    p_raw, p_all, d_all = _unit_powers(raw, everywhere, raw.sample_rate, START)
    _, p_dec, d_dec = _unit_powers(raw, decided, raw.sample_rate, START)
    # subtracted everywhere, the wrong model makes seconds worse beyond the margin ...
    assert np.max(p_all - p_raw - margin * 2 * d_all) > 0
    # ... decided, none
    assert np.all(p_dec - p_raw <= margin * 2 * d_dec + 1e-9)
    assert decision["units_kept"] < decision["units_with_prediction"]
    assert decision["withheld_band_seconds"] >= 0.0  # the local check's share, recorded
    f, a_raw = welch(raw.data[0].numpy(), raw.sample_rate, nperseg=int(4 * raw.sample_rate))
    _, a_dec = welch(decided.numpy(), raw.sample_rate, nperseg=int(4 * raw.sample_rate))
    band = (f >= 10) & (f <= 1000)
    ratio = np.sqrt(a_dec[band] / a_raw[band])
    # no bin gets noisier; below 1 where even this model's fringe features took some of the
    # (dense) scattered light: every kept band lowered the power of its unit significantly
    assert ratio.max() <= 1.01
    _, a_all = welch(everywhere.numpy(), raw.sample_rate, nperseg=int(4 * raw.sample_rate))
    assert np.sqrt(a_all[band] / a_raw[band]).max() > 1.05  # what it did without the decision
