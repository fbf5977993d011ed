"""``gwtwin.stream.models``: the model of the online service and how it follows a registry alias.

Three tiny (untrained, seeded) twin models are registered once in a real embedded MLflow store
(sqlite + file artifacts under a temporary directory): versions 1 and 2 on the same witnesses,
version 3 trained with one witness at another rate.  Each test points its own alias at the
versions it needs, so the tests do not depend on each other's order; a fake clock drives the
poll interval and :meth:`ModelFollower.wait` joins the background check.
"""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gwtwin.data import Block  # noqa: E402
from gwtwin.errors import GwtwinError  # noqa: E402
from gwtwin.models import TwinModel, build_model  # noqa: E402
from gwtwin.signal.conditioning import fit_conditioning  # noqa: E402
from gwtwin.signal.conditioning_spec import ConditioningSpec  # noqa: E402
from gwtwin.stream.models import (  # noqa: E402
    LoadedModel,
    ModelFollower,
    ModelMismatchError,
    check_compatible,
    parse_model_uri,
)

from .conftest import SMALL_TD as STREAM_TD  # noqa: E402

T0 = 1_400_000_000
NAME = "gwtwin-witness-td"
STRAIN = "X1:STRAIN"
WIT_A, WIT_B = "X1:WIT_A", "X1:WIT_B"
RATES = {WIT_A: 256.0, WIT_B: 128.0}  # the stream's witnesses and versions 1 and 2
OTHER_RATES = {WIT_A: 256.0, WIT_B: 256.0}  # version 3: WIT_B at another rate
STREAM = {STRAIN: 512.0, **RATES}
RATE, WINDOW, TARGET = 256.0, 4.0, 2.0
SMALL_TD = {**STREAM_TD, "linear_taps": 0}  # the streaming tests' network, no linear stage


def small_twin(seed: int, rates: dict[str, float]) -> TwinModel:
    """An untrained twin on 64 s of white noise (conditioning fitted for real)."""
    rng = np.random.default_rng(seed)
    duration = 64
    blocks = [Block.create(rng.standard_normal(duration * 512) * 1e-22, T0, 512, STRAIN, ["m"])]
    for name, rate in rates.items():
        data = rng.standard_normal(int(duration * rate))
        blocks.append(Block.create(data, T0, rate, name, ["V"]))
    spec = fit_conditioning(
        blocks, list(rates), STRAIN, sample_rate=RATE, fftlength=4.0, fduration=1.0, highpass=None
    )
    torch.manual_seed(seed)
    net = build_model(
        "witness_td",
        in_channels=spec.n_features,
        sample_rate=RATE,
        window_duration=WINDOW,
        target_duration=TARGET,
        **SMALL_TD,
    )
    return TwinModel(net, spec, window_duration=WINDOW, target_duration=TARGET)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A sqlite store holding versions 1, 2 (same witnesses) and 3 (WIT_B at 256 Hz)."""
    from gwtwin.train import tracking

    tmp = tmp_path_factory.mktemp("stream-registry")
    uri = f"sqlite:///{tmp}/mlflow.db"
    experiment = tracking.ensure_experiment(uri, "stream", tracking.artifact_location_for(tmp))
    client = tracking.client(uri)
    twins = {1: small_twin(1, RATES), 2: small_twin(2, RATES), 3: small_twin(3, OTHER_RATES)}
    runs = {}
    for version, twin in twins.items():
        run_id = client.create_run(experiment).info.run_id
        info = tracking.log_twin(
            twin, run_id=run_id, tracking_uri=uri, registered_model_name=NAME, alias=None
        )
        assert info["version"] == version
        runs[version] = run_id
    return {"uri": uri, "client": client, "twins": twins, "runs": runs, "tmp": tmp}


class Clock:
    """A fake monotonic clock: advance it by hand."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def follower(registry, alias: str, version: int, **kwargs):
    """A follower of ``models:/NAME@alias`` with ``alias`` first on ``version``."""
    from gwtwin.train.tracking import promote

    promote(NAME, version, alias, registry["uri"])
    logs: list[str] = []
    kwargs.setdefault("clock", Clock())
    f = ModelFollower(
        f"models:/{NAME}@{alias}", tracking_uri=registry["uri"], log=logs.append, **kwargs
    )
    return f, logs


def check(f: ModelFollower, seconds: float = 30.0) -> None:
    """Let ``seconds`` pass on the follower's clock, poll, and wait for the check."""
    f.clock.t += seconds
    f.poll()
    assert f.wait(60)


def windows(twin: TwinModel) -> torch.Tensor:
    gen = torch.Generator().manual_seed(7)
    return torch.randn(3, twin.spec.n_features, twin.window_size, generator=gen)


def same_network(a: TwinModel, b: TwinModel) -> bool:
    x = windows(a)
    return torch.equal(a.predict_windows(x), b.predict_windows(x))


def kinds(f: ModelFollower, version: str | None = None) -> list[str]:
    return [e["event"] for e in f.events if version is None or e["version"] == version]


# -- URIs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/gwtwin-witness-td@production", ("gwtwin-witness-td", "production", None)),
        ("models:/twin_2@cand-1", ("twin_2", "cand-1", None)),
        ("models:/gwtwin-witness-td/3", ("gwtwin-witness-td", None, "3")),
        ("  models:/x/12 ", ("x", None, "12")),
        ("models:/m-0123abcd", (None, None, None)),  # an MLflow 3 logged model: fixed
        ("runs:/0123abcd/model", (None, None, None)),
        ("/data/models/twin", (None, None, None)),
        ("file:///data/models/twin", (None, None, None)),
    ],
)
def test_parse_model_uri(uri, expected):
    assert tuple(parse_model_uri(uri)) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "   ",
        "models:/",
        "models:/x/Production",
        "models:/x/latest",
        "models:/x@",
        "models:/a/b/c",
    ],
)
def test_parse_model_uri_refuses_other_models_forms(uri):
    with pytest.raises(GwtwinError, match=r"models:/NAME@ALIAS.*models:/NAME/VERSION.*runs:/"):
        parse_model_uri(uri)


# -- compatibility ------------------------------------------------------------------------------
def _with_spec(twin: TwinModel, **changes) -> TwinModel:
    spec = ConditioningSpec.from_dict({**twin.spec.to_dict(), **changes})
    return TwinModel(twin.network, spec, window_duration=WINDOW, target_duration=TARGET)


def test_check_compatible(registry):
    one, two, three = (registry["twins"][v] for v in (1, 2, 3))
    check_compatible(two, one, STREAM)  # same channels and rates
    check_compatible(two)  # nothing to compare with
    # another model rate (another prediction grid) is fine
    check_compatible(_with_spec(two, sample_rate=128.0), one, STREAM)
    with pytest.raises(ModelMismatchError, match=r"X1:WIT_B: expected 128 Hz .*found 256 Hz"):
        check_compatible(three, one, STREAM)
    with pytest.raises(ModelMismatchError, match=r"X1:WIT_B \(trained at 128 Hz\) is not in"):
        check_compatible(two, one, {STRAIN: 512.0, WIT_A: 256.0})
    with pytest.raises(ModelMismatchError, match=r"strain channel X1:STRAIN: expected 512 Hz"):
        check_compatible(_with_spec(two, strain_rate=1024.0), one)
    with pytest.raises(ModelMismatchError, match=r"expected X1:STRAIN at 512 Hz.*found X1:OTHER"):
        check_compatible(_with_spec(two, strain_channel="X1:OTHER"), one)
    with pytest.raises(ModelMismatchError, match=r"stream's rate\), found 512 Hz"):
        check_compatible(two, None, {**STREAM, STRAIN: 4096.0})


# -- following ----------------------------------------------------------------------------------
def test_load_resolves_alias_to_its_version(registry):
    f, logs = follower(registry, "t-load", 2)
    assert f.following and f.current is None
    loaded = f.load()
    assert isinstance(loaded, LoadedModel)
    assert (loaded.name, loaded.version, loaded.uri) == (NAME, "2", f"models:/{NAME}/2")
    assert loaded.run_id == registry["runs"][2] and loaded.label() == f"{NAME} v2"
    assert f.current is loaded
    assert same_network(loaded.model, registry["twins"][2])
    assert not same_network(loaded.model, registry["twins"][1])
    assert kinds(f) == ["resolved", "loaded", "adopted"]
    assert all(e["version"] == "2" for e in f.events)
    assert logs == [f"model: running {NAME} v2"]


def test_moved_alias_is_loaded_in_background_and_taken_once(registry):
    from gwtwin.train.tracking import promote

    f, logs = follower(registry, "t-move", 1)
    f.load()
    promote(NAME, 2, "t-move", registry["uri"])
    check(f, 29.0)  # before the poll interval: nothing happens
    assert f.take() is None and kinds(f) == ["resolved", "loaded", "adopted"]
    check(f, 1.0)
    loaded = f.take()
    assert loaded is not None and loaded.version == "2" and loaded.uri == f"models:/{NAME}/2"
    assert f.take() is None  # once
    assert same_network(loaded.model, registry["twins"][2])
    assert f.current.version == "1"  # until the service adopts it
    check(f)  # taken but not adopted yet: not loaded again
    assert f.take() is None
    check_compatible(loaded.model, f.current.model, STREAM)
    f.adopt(loaded)
    assert f.current is loaded
    check(f)
    assert f.take() is None
    assert kinds(f, "2") == ["resolved", "loaded", "adopted"]
    assert logs[-1] == f"model: running {NAME} v2 (was {NAME} v1)"
    # the alias going back while a load waits drops it
    promote(NAME, 1, "t-move", registry["uri"])
    check(f)
    promote(NAME, 2, "t-move", registry["uri"])
    check(f)
    assert f.take() is None and "back on running version 2" in f.events[-1]["detail"]


def test_incompatible_version_is_refused_and_not_reloaded(registry):
    from gwtwin.train.tracking import promote

    f, logs = follower(registry, "t-refuse", 1)
    f.load()
    promote(NAME, 3, "t-refuse", registry["uri"])
    check(f)
    loaded = f.take()
    assert loaded.version == "3"
    with pytest.raises(ModelMismatchError) as err:
        check_compatible(loaded.model, f.current.model, STREAM)
    assert "X1:WIT_B" in str(err.value) and "128 Hz" in str(err.value)
    assert "256 Hz" in str(err.value)
    f.refuse(loaded, str(err.value))
    assert f.current.version == "1" and f.refused == {"3": str(err.value)}
    for _ in range(3):
        check(f)
        assert f.take() is None
    assert kinds(f, "3") == ["resolved", "loaded", "refused"]
    assert "X1:WIT_B" in f.events[-1]["detail"] and any("refused" in line for line in logs)
    # a later good version is still followed
    promote(NAME, 2, "t-refuse", registry["uri"])
    check(f)
    assert f.take().version == "2"


def test_registry_errors_keep_the_running_model(registry, monkeypatch):
    from gwtwin.train.tracking import promote

    client = registry["client"]
    f, logs = follower(registry, "t-error", 1)
    f.load()

    # the alias removed: resolving fails
    client.delete_registered_model_alias(NAME, "t-error")
    check(f)
    assert f.events[-1]["event"] == "error" and "t-error" in f.events[-1]["detail"]
    assert "keeping " + NAME + " v1" in f.events[-1]["detail"]
    check(f)  # the same error again: recorded, logged once
    assert kinds(f)[-2:] == ["error", "error"]
    assert sum("cannot resolve" in line for line in logs) == 1

    # a version whose artifact is no twin model
    empty = registry["tmp"] / "not-a-model"
    empty.mkdir(exist_ok=True)
    bad = client.create_model_version(NAME, source=empty.as_uri(), run_id=registry["runs"][1])
    promote(NAME, bad.version, "t-error", registry["uri"])
    check(f)
    assert kinds(f, str(bad.version)) == ["resolved", "error"]
    assert "twin.json" in f.events[-1]["detail"] and f.take() is None

    # a version deleted while the alias named it
    source = client.get_model_version(NAME, "1").source
    gone = client.create_model_version(NAME, source=source, run_id=registry["runs"][1])
    promote(NAME, gone.version, "t-error", registry["uri"])
    client.delete_model_version(NAME, str(gone.version))
    check(f)
    assert f.events[-1]["event"] == "error" and f.take() is None

    # the registry unreachable
    def unreachable(*args, **kwargs):
        raise ConnectionError("Connection refused")

    promote(NAME, 2, "t-error", registry["uri"])
    monkeypatch.setattr(f._registry(), "get_model_version_by_alias", unreachable)
    check(f)
    assert f.events[-1]["event"] == "error" and "Connection refused" in f.events[-1]["detail"]
    assert f.take() is None and f.current.version == "1"
    monkeypatch.undo()  # reachable again: the move is noticed
    check(f)
    assert f.take().version == "2"


def test_initial_load_failures_raise(registry, tmp_path):
    with pytest.raises(GwtwinError, match=r"cannot resolve models:/gwtwin-witness-td@nowhere"):
        ModelFollower(f"models:/{NAME}@nowhere", tracking_uri=registry["uri"]).load()
    with pytest.raises(GwtwinError, match=r"version 99"):
        ModelFollower(f"models:/{NAME}/99", tracking_uri=registry["uri"]).load()
    unreachable = f"sqlite:///{tmp_path}/missing/dir/mlflow.db"
    with pytest.raises(GwtwinError, match=r"missing/dir/mlflow.db"):
        ModelFollower(f"models:/{NAME}@t-load", tracking_uri=unreachable).load()


def test_fixed_models_are_never_followed(registry):
    import mlflow

    from gwtwin.train.tracking import promote

    promote(NAME, 1, "t-fixed", registry["uri"])
    local = mlflow.artifacts.download_artifacts(
        f"models:/{NAME}/1", tracking_uri=registry["uri"], dst_path=str(registry["tmp"] / "v1")
    )
    memory = registry["twins"][1]
    for model in (f"models:/{NAME}/1", local, memory):
        clock = Clock()
        f = ModelFollower(model, tracking_uri=registry["uri"], clock=clock, log=lambda _: None)
        loaded = f.load()
        assert not f.following and loaded.version in ("1", None)
        assert same_network(loaded.model, memory)
        promote(NAME, 2, "t-fixed", registry["uri"])
        clock.t += 1e6
        f.poll()
        assert f._thread is None and f.wait(0) and f.take() is None
        assert kinds(f) == ["loaded", "adopted"]
        promote(NAME, 1, "t-fixed", registry["uri"])
    assert loaded.label() == "in-memory model" and loaded.uri is None
    fixed = ModelFollower(f"models:/{NAME}/1", tracking_uri=registry["uri"], log=str).load()
    assert fixed.run_id == registry["runs"][1] and fixed.label() == f"{NAME} v1"
    assert ModelFollower(local, log=str).load().label() == local


def test_close_stops_polling(registry):
    from gwtwin.train.tracking import promote

    f, _ = follower(registry, "t-close", 1)
    with f:
        f.load()
        promote(NAME, 2, "t-close", registry["uri"])
    check(f)
    assert f._thread is None and f.take() is None


def test_one_check_in_flight_at_a_time(registry, monkeypatch):
    import threading

    f, _ = follower(registry, "t-flight", 1)
    f.load()
    release, calls = threading.Event(), []
    resolve = f._registry().get_model_version_by_alias

    def slow(*args):
        calls.append(args)
        release.wait(30)
        return resolve(*args)

    monkeypatch.setattr(f._registry(), "get_model_version_by_alias", slow)
    f.clock.t += 30
    f.poll()
    f.clock.t += 30
    f.poll()  # the first check still runs: nothing started
    assert not f.wait(0.05) and len(calls) == 1
    release.set()
    assert f.wait(30) and len(calls) == 1 and f.take() is None

    def broken():
        raise RuntimeError("a bug")

    monkeypatch.setattr(f, "_resolve", broken)
    check(f)  # even an unexpected failure is an event, not a dead thread or a raise
    assert f.events[-1]["event"] == "error" and "RuntimeError: a bug" in f.events[-1]["detail"]
