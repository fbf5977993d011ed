"""The replay source (:mod:`gwtwin.stream.replay`): exact copies re-cut into any file duration,
loops and GPS offsets, pacing on a fake clock, every fault kind, and config errors.

The source is 16 s of ramps (``np.arange``, so every copied sample is checked exactly) in three
channels at different rates, written in 8 s files from GPS 1000000000, in GWF and in HDF5.
Output files are aligned on multiples of ``file_duration`` from GPS 0 (1000000000 is 1 modulo
3, so 3 s files give a 2 s first file and a 2 s last one).
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from gwtwin.data import (
    NS,
    Block,
    CorruptFrameError,
    MissingChannelError,
    SampleRateMismatchError,
    list_channels,
    read,
    write_frames,
)
from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.stream import replay as replay_mod
from gwtwin.stream.replay import (
    Fault,
    ReplayConfig,
    load_replay_config,
    replay,
    replay_in_thread,
)

START, DURATION = 1_000_000_000, 16
RATES = {"X1:STRAIN": 512, "X1:W1": 128, "X1:W2": 64}
UNITS = {"X1:STRAIN": "strain", "X1:W1": "", "X1:W2": ""}
FORMATS = ["gwf", "hdf5"]


def ramps():
    """16 s of ramps, one Block per channel (each at its own rate)."""
    return [
        Block(
            np.arange(DURATION * rate, dtype=np.float64) + 1e5 * i,
            START * NS,
            rate,
            (c,),
            (UNITS[c],),
        )
        for i, (c, rate) in enumerate(RATES.items())
    ]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """``{format: directory}`` of the 16 s ramp source in 8 s files."""
    blocks, out = ramps(), {}
    for fmt in FORMATS:
        out[fmt] = tmp_path_factory.mktemp(f"replay-src-{fmt}")
        write_frames(blocks, out[fmt], observatory="X", tag="SRC", frame_length=8, format=fmt)
    return out


class FakeClock:
    """A clock that only moves when slept on; records the watched directory at each sleep."""

    def __init__(self, directory=None, on_sleep=None):
        self.now, self.directory, self.on_sleep, self.seen = 0.0, directory, on_sleep, []

    def __call__(self):
        return self.now

    def sleep(self, dt):
        if self.directory is not None and self.directory.exists():
            self.seen.append((self.now, sorted(p.name for p in self.directory.iterdir())))
        self.now += dt
        if self.on_sleep is not None:
            self.on_sleep(self.now)


def run(source, tmp_path, clock=None, **config):
    config.setdefault("speed", 0)
    logs: list[str] = []
    kw = {} if clock is None else {"clock": clock, "sleep": clock.sleep}
    summary = replay(
        source,
        tmp_path / "watch",
        ReplayConfig(**config),
        manifest=tmp_path / "manifest.jsonl",
        log=logs.append,
        **kw,
    )
    lines = (tmp_path / "manifest.jsonl").read_text().splitlines()
    return summary, [json.loads(line) for line in lines], logs


def names(directory):
    return sorted(p.name for p in directory.iterdir())


def second(directory, channel, t):
    return read(directory, [channel], t, t + 1).block


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("duration", [1, 3])
def test_copies_are_exact_in_any_file_duration(sources, tmp_path, fmt, duration):
    summary, manifest, logs = run(sources[fmt], tmp_path, file_duration=duration)
    watch = tmp_path / "watch"
    if duration == 1:
        expected = [f"X-SRC-{START + t}-1.{fmt}" for t in range(DURATION)]
    else:  # aligned on multiples of 3 s from GPS 0: 2 s, 3 s x 4, 2 s
        spans = [(0, 2), (2, 5), (5, 8), (8, 11), (11, 14), (14, 16)]
        expected = [f"X-SRC-{START + a}-{b - a}.{fmt}" for a, b in spans]
    assert names(watch) == sorted(expected)
    assert summary["files"] == len(expected) and summary["seconds"] == DURATION
    assert [m["fault"] for m in manifest] == [None] * len(expected)
    assert [m["start"] for m in manifest] == sorted(m["start"] for m in manifest)
    for t in range(START, START + DURATION):
        for c, rate in RATES.items():
            got, want = second(watch, c, t), second(sources[fmt], c, t)
            assert got.sample_rate == rate and got.t0_ns == t * NS
            assert got.units == want.units and got.data.dtype == want.data.dtype
            assert torch.equal(got.data, want.data)
    assert len(logs) == 1 and "16 s of GPS [1000000000, 1000000016)" in logs[0]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # staging removed


def test_channel_subset_other_format_and_names(sources, tmp_path):
    run(
        sources["gwf"],
        tmp_path,
        file_duration=4,
        format="hdf5",
        observatory="Y",
        tag="REPLAY",
        channels=["X1:W2", "X1:STRAIN"],
        start=START + 4,
        end=START + 12,
    )
    watch = tmp_path / "watch"
    assert names(watch) == [f"Y-REPLAY-{START + 4}-4.hdf5", f"Y-REPLAY-{START + 8}-4.hdf5"]
    assert sorted(list_channels(watch)) == ["X1:STRAIN", "X1:W2"]
    got = read(watch, ["X1:W2"]).block
    assert torch.equal(got.data, read(sources["gwf"], ["X1:W2"], START + 4, START + 12).block.data)


@pytest.mark.parametrize("fmt", FORMATS)
def test_loops_make_one_contiguous_stream(sources, tmp_path, monkeypatch, fmt):
    monkeypatch.setattr(replay_mod, "CHUNK_SECONDS", 5)  # chunk edges inside files too
    summary, manifest, _ = run(sources[fmt], tmp_path, file_duration=3, loops=2)
    watch = tmp_path / "watch"
    assert summary["span"] == (START, START + 2 * DURATION) and summary["seconds"] == 32
    # [START+14, START+17) straddles the loop boundary: its pieces come from both ends
    assert f"X-SRC-{START + 14}-3.{fmt}" in names(watch)
    spans = [(m["start"], m["end"]) for m in manifest]
    assert spans[0][0] == START and spans[-1][1] == START + 32
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    for c in RATES:
        stream = read(watch, [c], START, START + 32)  # no gap
        assert stream.gaps == [] and stream.block.t0_ns == START * NS
        half = stream.block.size // 2
        source = read(sources[fmt], [c]).block.data
        assert torch.equal(stream.block.data[:, :half], source)
        assert torch.equal(stream.block.data[:, half:], source)


def test_gps_offset_shifts_names_and_data(sources, tmp_path):
    run(sources["hdf5"], tmp_path, file_duration=8, gps_offset=1000)
    watch = tmp_path / "watch"
    assert names(watch) == [f"X-SRC-{START + 1000}-8.hdf5", f"X-SRC-{START + 1008}-8.hdf5"]
    for c in RATES:
        got = read(watch, [c]).block
        assert got.t0_ns == (START + 1000) * NS
        assert torch.equal(got.data, read(sources["hdf5"], [c]).block.data)


@pytest.mark.parametrize("speed", [1.0, 4.0])
def test_files_appear_at_real_time_pace(sources, tmp_path, speed):
    clock = FakeClock(tmp_path / "watch")
    summary, manifest, _ = run(sources["gwf"], tmp_path, clock, file_duration=2, speed=speed)
    # file [t, t + 2) appears when its last second has been acquired: (t + 2 - START) / speed
    due = [(m["end"] - START) / speed for m in manifest]
    assert [m["elapsed"] for m in manifest] == pytest.approx(due)
    assert [m["due"] for m in manifest] == pytest.approx(due)
    assert summary["wall"] == pytest.approx(DURATION / speed)
    assert summary["speed"] == pytest.approx(speed)
    for now, present in clock.seen:  # what a poller would have seen at each moment
        expected = [f"X-SRC-{START + t}-2.gwf" for t in range(0, DURATION, 2)]
        assert present == [n for n in expected if (int(n.split("-")[2]) + 2 - START) <= now * speed]
    assert all(m["written_wall"] is not None for m in manifest)


def test_real_clock_keeps_pace(sources, tmp_path):
    summary, manifest, _ = run(sources["hdf5"], tmp_path, speed=16.0, end=START + 8)
    assert summary["files"] == 8 and summary["wall"] >= 0.5 - 0.01
    assert all(m["elapsed"] >= m["due"] - 1e-6 for m in manifest)
    walls = [m["written_wall"] for m in manifest]
    assert walls == sorted(walls)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_fault_does_what_it_says(sources, tmp_path, fmt):
    faults = [
        {"kind": "drop", "gps": START + 1.5},
        {"kind": "delay", "gps": START + 2, "delay": 2.5},
        {"kind": "corrupt", "gps": START + 3},
        {"kind": "truncate", "gps": START + 4.999},
        {"kind": "nan", "gps": START + 5},  # default channel: the first unprotected, X1:W1
        {"kind": "missing_channel", "gps": START + 6, "channel": "X1:W2"},
        {"kind": "rate_change", "gps": START + 7, "channel": "X1:W1"},
        {"kind": "rate_change", "gps": START + 8, "channel": "X1:STRAIN"},  # protected, named
    ]
    clock = FakeClock()
    summary, manifest, logs = run(
        sources[fmt], tmp_path, clock, speed=1.0, protect=["X1:STRAIN"], faults=faults
    )
    watch = tmp_path / "watch"

    def path(t):
        return watch / f"X-SRC-{START + t}-1.{fmt}"

    # drop: never written, a manifest event without a path
    assert not path(1).exists()
    dropped = [m for m in manifest if m["start"] == START + 1]
    assert dropped == [dict(dropped[0], path=None, written_wall=None, fault="drop")]
    # delay: written 2.5 s late, after the files of [4, 5) and before [5, 6)
    order = [m["start"] - START for m in manifest]
    assert order == [0, 1, 3, 4, 2, 5, 6, *range(7, 16)]
    late = manifest[order.index(2)]
    assert late["fault"] == "delay" and late["elapsed"] == pytest.approx(3 + 2.5)
    assert torch.equal(
        second(watch, "X1:W1", START + 2).data, second(sources[fmt], "X1:W1", START + 2).data
    )
    # corrupt (second half of the bytes random, size kept) and truncate (first half only):
    # reading raises CorruptFrameError for every channel, in both formats
    ref = tmp_path / "ref"  # the same two files, valid
    replay(sources[fmt], ref, {"speed": 0, "start": START + 3, "end": START + 5}, log=len)
    valid = {t: (ref / path(t).name).read_bytes() for t in (3, 4)}
    assert path(3).stat().st_size == len(valid[3]) and path(4).stat().st_size == len(valid[4]) // 2
    if fmt == "hdf5":  # byte-reproducible (GWF frames hold their creation time)
        assert path(3).read_bytes()[: len(valid[3]) // 2] == valid[3][: len(valid[3]) // 2]
        assert path(3).read_bytes() != valid[3]
        assert path(4).read_bytes() == valid[4][: len(valid[4]) // 2]
    for t in (3, 4):
        for c in RATES:
            with pytest.raises(CorruptFrameError):
                read(path(t), [c])
    # nan: exactly that channel and second
    bad = read(watch, ["X1:W1"], START + 5, START + 6)
    assert bool(torch.isnan(bad.block.data).all()) and list(bad.nonfinite) == ["X1:W1"]
    assert not read(watch, ["X1:W1"], START + 6, START + 7).nonfinite
    for c in ("X1:STRAIN", "X1:W2"):
        assert torch.equal(
            second(watch, c, START + 5).data, second(sources[fmt], c, START + 5).data
        )
    # missing_channel: the channel is absent from that file only
    assert sorted(list_channels(path(6))) == ["X1:STRAIN", "X1:W1"]
    with pytest.raises(MissingChannelError, match="X1:W2"):
        read(path(6), ["X1:W2"])
    # rate_change: half the native rate in that file, so a read across it refuses
    assert (
        read(path(7), ["X1:W1"]).block.sample_rate == 64
        and read(path(7), ["X1:W1"]).block.size == 64
    )
    assert read(path(8), ["X1:STRAIN"]).block.sample_rate == 256
    assert read(path(7), ["X1:W2"]).block.sample_rate == 64  # the others untouched
    with pytest.raises(SampleRateMismatchError):
        read(watch, ["X1:W1"], START + 6, START + 8)
    assert summary["files"] == DURATION - 1 and summary["dropped"] == 1
    applied = {(f["kind"], f["span"][0] - START, f["channel"]) for f in summary["faults"]}
    assert applied == {
        ("drop", 1, None),
        ("delay", 2, None),
        ("corrupt", 3, None),
        ("truncate", 4, None),
        ("nan", 5, "X1:W1"),
        ("missing_channel", 6, "X1:W2"),
        ("rate_change", 7, "X1:W1"),
        ("rate_change", 8, "X1:STRAIN"),
    }
    assert len(logs) == len(faults) + 1


def test_delay_at_full_speed_and_combined_faults(sources, tmp_path):
    faults = [
        Fault(kind="delay", gps=START, delay=0.5),
        Fault(kind="nan", gps=START + 0.5, channel="X1:W2"),
    ]
    clock = FakeClock()
    _, manifest, _ = run(sources["hdf5"], tmp_path, clock, end=START + 4, faults=faults)
    assert [m["start"] - START for m in manifest] == [1, 2, 3, 0]
    assert manifest[-1]["fault"] == "nan+delay" and manifest[-1]["elapsed"] == pytest.approx(0.5)
    assert torch.isnan(second(tmp_path / "watch", "X1:W2", START).data).all()


def test_source_gaps_skip_files(tmp_path):
    src = tmp_path / "src"
    write_frames(ramps(), src, observatory="X", tag="SRC", frame_length=4, format="hdf5")
    (src / f"X-SRC-{START + 4}-4.hdf5").unlink()  # the source lacks [START + 4, START + 8)
    summary, manifest, logs = run(src, tmp_path, file_duration=2)
    assert summary["files"] == 6 and summary["source_gaps"] == 2
    skipped = [(m["start"] - START, m["path"]) for m in manifest if m["fault"] == "source-gap"]
    assert skipped == [(4, None), (6, None)]
    assert "2 files skipped at source gaps" in logs[-1]


def test_stop_returns_early_and_cleans_up(sources, tmp_path):
    stop = threading.Event()
    clock = FakeClock(on_sleep=lambda now: stop.set() if now >= 3.5 else None)
    summary = replay(
        sources["gwf"],
        tmp_path / "watch",
        {"speed": 1.0, "faults": [{"kind": "delay", "gps": START, "delay": 100}]},
        log=lambda _: None,
        stop=stop,
        clock=clock,
        sleep=clock.sleep,
    )
    assert summary["stopped"] and summary["files"] == 2  # [1, 2) and [2, 3)
    assert f"X-SRC-{START}-1.gwf" not in names(tmp_path / "watch")  # the delayed one: discarded
    assert [p.name for p in tmp_path.iterdir()] == ["watch"]


def test_replay_in_thread(sources, tmp_path):
    thread, result = replay_in_thread(
        sources["hdf5"], tmp_path / "watch", {"speed": 0, "file_duration": 4}, log=lambda _: None
    )
    thread.join(30)
    assert not thread.is_alive() and result["files"] == 4
    thread, result = replay_in_thread(sources["hdf5"], tmp_path / "w2", {"channels": ["X1:NOPE"]})
    thread.join(30)
    assert isinstance(result["error"], GwtwinError)


def test_config_errors_name_what_is_expected(sources, tmp_path):
    with pytest.raises(
        ConfigError, match=r"file_durations: unknown key \(allowed here: .*file_duration"
    ):
        load_replay_config({"file_durations": 2})
    with pytest.raises(
        ConfigError,
        match=r"faults\.0\.when: unknown key \(allowed here: channel, delay, gps, kind\)",
    ):
        load_replay_config({"faults": [{"kind": "drop", "gps": START, "when": 1}]})
    with pytest.raises(ConfigError, match=r"faults\.0\.kind.*'drop'.*'rate_change'"):
        load_replay_config({"faults": [{"kind": "explode", "gps": START}]})
    with pytest.raises(ConfigError, match="delay > 0"):
        load_replay_config({"faults": [{"kind": "delay", "gps": START}]})
    with pytest.raises(ConfigError, match="file_duration.*greater than or equal to 1"):
        load_replay_config(None, {"file_duration": 0})
    yaml = tmp_path / "run.yaml"
    yaml.write_text("replay:\n  speed: 0\n  file_duration: 2\nstream:\n  other: 1\n")
    assert load_replay_config(yaml, {"loops": 3}).model_dump()["file_duration"] == 2
    watch = tmp_path / "watch"
    with pytest.raises(
        GwtwinError, match=r"outside the replayed stream GPS \[1000001000, 1000001016\)"
    ):
        replay(
            sources["gwf"], watch, {"gps_offset": 1000, "faults": [{"kind": "drop", "gps": START}]}
        )
    with pytest.raises(
        GwtwinError, match=r"channel 'X1:NOPE' is not replayed; available channels: \["
    ):
        replay(
            sources["gwf"], watch, {"faults": [{"kind": "nan", "gps": START, "channel": "X1:NOPE"}]}
        )
    with pytest.raises(
        GwtwinError, match=r"\['X1:NOPE'\] not in the source; .* holds: \[.*'X1:W1'"
    ):
        replay(sources["gwf"], watch, {"channels": ["X1:STRAIN", "X1:NOPE"]})
    with pytest.raises(
        GwtwinError, match=r"not inside the source's span GPS \[1000000000, 1000000016\)"
    ):
        replay(sources["gwf"], watch, {"end": START + 20})
    with pytest.raises(GwtwinError, match="every replayed channel is protected"):
        replay(
            sources["gwf"],
            watch,
            {"protect": list(RATES), "faults": [{"kind": "nan", "gps": START}]},
        )
    assert not watch.exists() or names(watch) == []
