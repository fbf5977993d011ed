"""Hot reload under replay: the service follows ``models:/NAME@production`` while frames arrive.

Three versions are registered in a real embedded MLflow store: v1 and v2 fit the stream, v3 was
trained with a witness at another rate.  The alias starts on v1, moves to v3 (refused: v1 keeps
running) and then to v2 (adopted at an increment boundary).  No second is dropped or
duplicated; each second's log line and frame history name the version that cleaned it; the
seconds before the swap are v1's offline cleaning and the seconds from the swap on v2's, exactly
(the new model is primed with the buffered history, so its first second has its full context).
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from gwtwin.data import Block, read
from gwtwin.data.files import find_frames
from gwtwin.data.frames import frame_history
from gwtwin.infer.clean import clean_frames, load_clean_config
from gwtwin.models import TwinModel
from gwtwin.signal.filters import resample
from gwtwin.stream.config import load_stream_config
from gwtwin.stream.replay import load_replay_config, replay_in_thread
from gwtwin.stream.service import StreamService
from gwtwin.stream.status import read_log

from .conftest import DURATION, START, STRAIN, WITNESSES, small_twin

NAME = "gwtwin-stream-test"
BOUND = 1e-12
PREDICTION = STRAIN + "_PREDICTION"


def _other_rate_twin(frames) -> TwinModel:
    """A twin whose conditioning says the magnetometer is at half its rate in the stream."""
    from gwtwin.signal.conditioning import fit_conditioning

    twin = small_twin(frames, seed=3)
    data = [read(frames, [c], START, START + DURATION).block for c in [STRAIN, *WITNESSES]]
    mag = data[2]
    half = resample(mag.data, mag.sample_rate, mag.sample_rate / 2)
    data[2] = Block(half, mag.t0_ns, mag.sample_rate / 2, mag.channels, mag.units)
    spec = fit_conditioning(data, WITNESSES, STRAIN, sample_rate=256.0, fduration=1.0)
    return TwinModel(twin.network, spec, window_duration=4.0, target_duration=2.0)


@pytest.fixture(scope="module")
def registry(stream_scenario, tmp_path_factory):
    from gwtwin.train import tracking

    src, _ = stream_scenario
    tmp = tmp_path_factory.mktemp("reload-registry")
    uri = f"sqlite:///{tmp}/mlflow.db"
    experiment = tracking.ensure_experiment(uri, "stream", tracking.artifact_location_for(tmp))
    client = tracking.client(uri)
    twins = {
        1: small_twin(src / "frames", seed=1),
        2: small_twin(src / "frames", seed=2),
        3: _other_rate_twin(src / "frames"),
    }
    for version, twin in twins.items():
        run_id = client.create_run(experiment).info.run_id
        info = tracking.log_twin(
            twin, run_id=run_id, tracking_uri=uri, registered_model_name=NAME, alias=None
        )
        assert info["version"] == version
    tracking.promote(NAME, 1, "production", uri)
    return uri


def _offline(src, uri, version, out):
    twin = TwinModel.load(f"models:/{NAME}/{version}", tracking_uri=uri)
    cfg = load_clean_config({"images": 0, "tensorboard": False, "attribute": False})
    clean_frames(src / "frames", out, cfg, model=twin, log=str)
    return read(out / "frames", [PREDICTION]).block.data[0].numpy()


@pytest.fixture(scope="module")
def reloaded(stream_scenario, registry, tmp_path_factory):
    from gwtwin.train.tracking import promote

    src, _ = stream_scenario
    tmp = tmp_path_factory.mktemp("reload")
    replay = load_replay_config({"file_duration": 1, "speed": 6})
    thread, _ = replay_in_thread(src / "frames", tmp / "watch", replay, log=str)
    config = load_stream_config(
        {
            "model": f"models:/{NAME}@production",
            "tracking_uri": registry,
            "model_poll": 0.2,
            "wait": 1.0,
            "idle_timeout": 2.0,
            "poll": 0.01,
            "gate": {"enabled": False},
        }
    )
    done = threading.Event()

    def operator():  # moves the alias while the stream runs
        state, moved = tmp / "out" / "state.json", []
        while not done.is_set():
            nxt = json.loads(state.read_text())["next"] if state.exists() else 0
            if not moved and nxt >= START + 20:
                promote(NAME, 3, "production", registry)
                moved.append(3)
            elif moved == [3] and nxt >= START + 40:
                promote(NAME, 2, "production", registry)
                moved.append(2)
            time.sleep(0.01)

    mover = threading.Thread(target=operator)
    mover.start()
    try:
        summary = StreamService(tmp / "watch", tmp / "out", config, log=str).run()
    finally:
        done.set()
        mover.join()
        thread.join()
    return tmp, summary


def test_swap_drops_and_duplicates_nothing(reloaded):
    tmp, summary = reloaded
    log = read_log(tmp / "out")
    seconds = [r["start"] for r in log if r["kind"] == "second"]
    assert seconds == list(range(START, START + DURATION))
    assert summary["swaps"] == 1 and summary["refused"] == 1
    swap = next(r for r in log if r["kind"] == "swap")
    at = swap["at"]
    assert START + 40 <= at < START + DURATION - 10
    assert swap["old"] == f"{NAME} v1" and swap["new"] == f"{NAME} v2"
    versions = {r["start"]: r["version"] for r in log if r["kind"] == "second"}
    assert all(versions[s] == "1" for s in range(START, at))
    assert all(versions[s] == "2" for s in range(at, START + DURATION))
    for f in find_frames(tmp / "out" / "frames"):
        expected = f"{NAME} v{versions[int(f.start)]}"
        assert frame_history(f.path)["gwtwin-model"] == expected


def test_incompatible_version_refused_while_the_old_one_runs(reloaded):
    tmp, _ = reloaded
    log = read_log(tmp / "out")
    refused = next(r for r in log if r["kind"] == "refused")
    assert refused["model"] == f"{NAME} v3"
    assert WITNESSES[1] in refused["reason"] and "Hz" in refused["reason"]
    swap_at = next(r for r in log if r["kind"] == "swap")["at"]
    refused_second = max(
        r["start"] for r in log if r["kind"] == "second" and r["wall"] <= refused["wall"]
    )
    assert refused_second < swap_at


def test_each_side_of_the_swap_is_that_version_offline(reloaded, stream_scenario, registry):
    tmp, _ = reloaded
    src, _ = stream_scenario
    at = next(r for r in read_log(tmp / "out") if r["kind"] == "swap")["at"] - START
    got = read(tmp / "out" / "frames", [PREDICTION]).block.data[0].numpy()
    rate = 4096
    for version, sl in ((1, slice(0, at * rate)), (2, slice(at * rate, None))):
        ref = _offline(src, registry, version, tmp / f"offline-v{version}")
        scale = np.abs(ref).max()
        np.testing.assert_allclose(got[sl], ref[sl], rtol=0, atol=BOUND * scale)
