"""``gwtwin stream`` end to end on a small scenario: online == offline, outputs, restart, gate.

The service reads 1 s (or 3 s, 7 s) frame files from a watched directory and writes 1 s output
frames; online == offline is asserted to 1e-12 * max|prediction| (the engine's bound, see
tests/stream/test_engine.py).  Every input second must appear in exactly one output frame.
"""

from __future__ import annotations

import json
import shutil
import threading
import time

import numpy as np
import pytest
from torch import nn

from gwtwin.cli import main
from gwtwin.data import read
from gwtwin.data.files import find_frames
from gwtwin.data.flags import read_flags
from gwtwin.data.frames import frame_history, write_frames
from gwtwin.infer.clean import clean_frames, load_clean_config
from gwtwin.models import TwinModel
from gwtwin.stream.config import load_stream_config
from gwtwin.stream.service import StreamService, model_band
from gwtwin.stream.status import read_log, stream_status
from gwtwin.stream.writer import STATE_BITS, state_channel

from .conftest import DURATION, START, STRAIN, WITNESSES

BOUND = 1e-12
CLEANED, PREDICTION = STRAIN + "_CLEANED", STRAIN + "_PREDICTION"


def cut(src, directory, length: int, start=START, end=START + DURATION, tag="RAW"):
    """The scenario's raw channels re-cut into ``length`` s files (aligned to GPS 0)."""
    blocks = [read(src / "frames", [c], start, end).block for c in [STRAIN, *WITNESSES]]
    return write_frames(blocks, directory, observatory="V", tag=tag, frame_length=length)


def fast(**overrides):
    """A config for pre-filled directories: short waits, stop when idle.  The subtraction
    decision is off: the untrained model's prediction must be subtracted for the outputs and
    the gate to be seen (tests/stream/test_engine.py checks the stream with the decision)."""
    base = {"wait": 0.3, "idle_timeout": 0.6, "poll": 0.01, "decision": {"enabled": False}}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key].update(value)
        else:
            base[key] = value
    return load_stream_config(base)


def offline(src, twin, out, **cfg):
    config = load_clean_config(
        {
            "images": 0,
            "tensorboard": False,
            "attribute": False,
            "decision": {"enabled": False},
            **cfg,
        }
    )
    clean_frames(src / "frames", out, config, model=twin, log=str)
    return read(out / "frames", [CLEANED, PREDICTION]).block


@pytest.fixture(scope="module")
def reference(stream_scenario, tmp_path_factory):
    src, twin = stream_scenario
    return offline(src, twin, tmp_path_factory.mktemp("offline"))


@pytest.fixture(scope="module")
def streamed(stream_scenario, tmp_path_factory):
    src, twin = stream_scenario
    watch, out = tmp_path_factory.mktemp("watch"), tmp_path_factory.mktemp("out")
    cut(src, watch, 1)
    summary = StreamService(watch, out, fast(gate={"enabled": False}), model=twin, log=str).run()
    return out, summary


def _seconds(log):
    return [r["start"] for r in log if r["kind"] == "second"]


def test_stream_equals_offline_every_second_once(streamed, reference, stream_scenario):
    out, summary = streamed
    files = find_frames(out / "frames")
    assert [f.start for f in files] == list(range(START, START + DURATION))
    assert all(f.duration == 1 for f in files) and summary["seconds"] == DURATION
    got = read(out / "frames", [CLEANED, PREDICTION]).block
    scale = float(reference.data[1].abs().max())
    assert scale > 0
    np.testing.assert_allclose(got.data[1], reference.data[1], rtol=0, atol=BOUND * scale)
    np.testing.assert_allclose(got.data[0], reference.data[0], rtol=0, atol=BOUND * scale)
    log = read_log(out)
    assert _seconds(log) == list(range(START, START + DURATION))
    status = stream_status(out)
    assert status["duplicated_seconds"] == 0 and status["gaps"] == [] and status["stopped"]
    assert 0.5 < status["cleaning_applied_fraction"] <= 1.0


def test_outputs_carry_model_state_and_flags(streamed):
    out, _ = streamed
    first = find_frames(out / "frames")[0].path
    assert frame_history(first)["gwtwin-model"] == "in-memory model"
    state = read(out / "frames", [state_channel(STRAIN)]).block
    assert state.sample_rate == 16
    bits = state.data[0].numpy().astype(int)
    applied = (bits >> STATE_BITS["CLEANING_APPLIED"]) & 1
    assert applied[:16].sum() == 0 and applied[40 * 16 : 41 * 16].all()  # segment start: raw
    flags = read_flags(out / "flags" / "gwtwin-stream.h5")  # (LIGO_LW keeps no description)
    name = "V1:GWTWIN-CLEANING_APPLIED:1"
    assert abs(flags[name].known) == DURATION
    assert 0.5 * DURATION < abs(flags[name].active) < DURATION
    assert "in-memory model [1400000000, 1400000096)" in flags[name].description
    state_json = json.loads((out / "state.json").read_text())
    assert state_json["next"] == START + DURATION and state_json["segment_start"] is None


@pytest.mark.parametrize("length", [3, 7])
def test_file_durations_and_unaligned_start(stream_scenario, tmp_path, length):
    src, twin = stream_scenario
    a, b = START + 3, START + DURATION - 5
    ref = offline(src, twin, tmp_path / "off", start=a, end=b)
    cut(src, tmp_path / "watch", length, start=a, end=b)  # aligned files: first/last partial
    StreamService(
        tmp_path / "watch", tmp_path / "on", fast(gate={"enabled": False}), model=twin, log=str
    ).run()
    got = read(tmp_path / "on" / "frames", [CLEANED, PREDICTION]).block
    assert got.span == (a, b)
    scale = float(ref.data[1].abs().max())
    np.testing.assert_allclose(got.data[1], ref.data[1], rtol=0, atol=BOUND * scale)


def test_restart_resumes_without_rewriting_or_skipping(stream_scenario, streamed, tmp_path):
    """Stopped at whatever second it had reached, restarted: the continuous run's output."""
    src, twin = stream_scenario
    watch, out = tmp_path / "watch", tmp_path / "out"
    cut(src, watch, 1)
    config = fast(gate={"enabled": False})
    stop = threading.Event()
    first = StreamService(watch, out, config, model=twin, log=str, stop=stop)
    thread = threading.Thread(target=first.run)
    thread.start()
    state = out / "state.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if state.exists() and json.loads(state.read_text())["next"] >= START + 40:
            break
        time.sleep(0.005)
    stop.set()
    thread.join()
    resume = json.loads(state.read_text())["next"]
    assert START + 40 <= resume < START + DURATION
    StreamService(watch, out, config, model=twin, log=str).run()
    assert _seconds(read_log(out)) == list(range(START, START + DURATION))
    got = read(out / "frames", [CLEANED, PREDICTION]).block
    ref = read(streamed[0] / "frames", [CLEANED, PREDICTION]).block
    scale = float(ref.data[1].abs().max())
    np.testing.assert_allclose(got.data, ref.data, rtol=0, atol=BOUND * scale)
    starts = [r for r in read_log(out) if r["kind"] == "start"]
    assert starts[1]["resume"] == resume


class Scaled(nn.Module):
    """A twin network with its output multiplied by ``factor`` (a deliberately wrong model)."""

    def __init__(self, net: nn.Module, factor: float):
        super().__init__()
        self.net, self.factor = net, factor
        self.in_channels = net.in_channels

    def forward(self, x):
        return self.factor * self.net(x)


def _scaled(twin, factor):
    return TwinModel(
        Scaled(twin.network, factor),
        twin.spec,
        window_duration=twin.window_duration,
        target_duration=twin.target_duration,
    )


def test_gate_disables_a_model_scaled_x10_within_one_increment(
    stream_scenario, reference, tmp_path
):
    src, twin = stream_scenario
    raw = read(src / "frames", [STRAIN]).block.data[0].numpy()
    pred = reference.data[1].numpy()
    # a harmless model: in no second and in no octave band over 8 s does its prediction carry
    # more than 1 % of raw's power (the untrained network's prediction is not the coupling, so
    # more would be harm the gate must catch); x10 the same model carries up to 100 %
    from gwtwin.stream.gate import band_powers, increment_band_power, octave_bands

    band = model_band(twin)
    worst = max(
        max(p[1] / p[0])
        for i in range(0, raw.size - 8 * 4096 + 1, 4096)
        for p in [
            band_powers(
                np.stack([raw, pred])[:, i : i + 8 * 4096],
                4096.0,
                octave_bands(*band),
                fftlength=1.0,
            )
        ]
    )
    worst = max(
        worst,
        *(
            (lambda p: p[1] / p[0])(
                increment_band_power(
                    np.stack([raw[i : i + 4096], pred[i : i + 4096]]), 4096.0, band
                )
            )
            for i in range(0, raw.size, 4096)
        ),
    )
    k0 = float(np.sqrt(0.01 / worst))
    cut(src, tmp_path / "watch", 1)
    results = {}
    for name, factor in (("good", k0), ("bad", 10 * k0)):
        out = tmp_path / name
        StreamService(tmp_path / "watch", out, fast(), model=_scaled(twin, factor), log=str).run()
        results[name] = (out, [r for r in read_log(out) if r["kind"] == "second"])
    good = results["good"][1]
    assert not any(r["bits"].get("CLEANING_DISABLED") for r in good)
    out, bad = results["bad"]
    # within one increment: every second whose own measurement (ASD ratio over the window
    # ending with it, or the claimed-glitch power) says the x10 model adds noise is disabled in
    # that very second (the measurements are checked against scipy in test_gate.py)
    harmful = [
        r
        for r in bad
        if r["gate"] and (r["gate"]["asd_ratio"] > 1.05 or (r["gate"]["glitch_ratio"] or 0) > 1.0)
    ]
    assert len(harmful) >= 5
    for r in harmful:
        assert r["bits"].get("CLEANING_DISABLED"), f"GPS {r['start']} not disabled"
    onset = min(r["start"] for r in harmful)
    assert bad[onset - START]["gate"]["reason"]
    got = read(out / "frames", [CLEANED]).block.data[0].numpy()
    taper = int(0.1 * 4096)
    for r in bad:
        if r["bits"].get("CLEANING_DISABLED") == [[r["start"], r["start"] + 1]]:
            i = (r["start"] - START) * 4096
            # output == raw once the taper is over (and where it was disabled all along)
            np.testing.assert_array_equal(got[i + taper : i + 4096], raw[i + taper : i + 4096])
    disabled = sum(bool(r["bits"].get("CLEANING_DISABLED")) for r in bad)
    assert disabled >= 0.5 * sum(
        bool(r["bits"].get("CLEANING_APPLIED") or r["bits"].get("CLEANING_DISABLED")) for r in bad
    )


def test_cli_stream_and_status(stream_scenario, tmp_path, capsys):
    src, twin = stream_scenario
    cut(src, tmp_path / "watch", 4, end=START + 40)
    model_dir = tmp_path / "model"
    import mlflow.pytorch

    # a local MLflow model directory is a fixed model URI the CLI accepts
    twin.write_description(tmp_path)
    mlflow.pytorch.save_model(
        twin.network,
        str(model_dir),
        serialization_format="pickle",
        pip_requirements=["torch"],
        extra_files=[str(tmp_path / "twin.json")],
    )
    args = ["stream", "--frames", str(tmp_path / "watch"), "--model", str(model_dir)]
    args += ["--output", str(tmp_path / "out"), "--idle-timeout", "0.5"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["seconds"] == 40
    assert main(["stream", "status", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert "40 s written" in text and "latency" in text
    assert main(["stream", "status", str(tmp_path / "out"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seconds"] == 40
    assert main(["stream", "status", str(tmp_path / "nowhere")]) == 2
    shutil.rmtree(tmp_path / "out")


def test_precision_auto_is_float64_exact_and_float32_low_latency(stream_scenario, tmp_path):
    import torch

    _, twin = stream_scenario
    exact = StreamService(tmp_path / "w", tmp_path / "a", fast(), model=twin, log=str)
    low = StreamService(tmp_path / "w", tmp_path / "b", fast(lookahead=2), model=twin, log=str)
    forced = StreamService(
        tmp_path / "w", tmp_path / "c", fast(lookahead=2, precision="float64"), model=twin, log=str
    )
    assert exact.engine.grid.dtype == torch.float64 and exact.engine.lookahead is None
    assert low.engine.grid.dtype == torch.float32 and low.engine.lookahead == 2
    assert forced.engine.grid.dtype == torch.float64
