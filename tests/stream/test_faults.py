"""Faults under replay: every one is logged with its file, span and reason, and every input second
appears in exactly one output frame (or, where no strain could be read, in exactly one gap).

The replay (:mod:`gwtwin.stream.replay`) writes the scenario as 1 s files at 8x real time (the
service keeps up, as it must with a live stream), one fault of each kind; the service runs at
the same time with a 1 s wait (of wall time).
"""

from __future__ import annotations

import numpy as np
import pytest

from gwtwin.data import read
from gwtwin.data.files import find_frames
from gwtwin.stream.config import load_stream_config
from gwtwin.stream.replay import load_replay_config, replay_in_thread
from gwtwin.stream.service import StreamService
from gwtwin.stream.status import read_log, stream_status
from gwtwin.stream.writer import STATE_BITS, state_channel

from .conftest import DURATION, START, STRAIN, WITNESSES

FAULTS = [
    {"kind": "drop", "gps": START + 20},
    {"kind": "delay", "gps": START + 30, "delay": 2.5},  # beyond the 1 s wait: a gap, then late
    {"kind": "delay", "gps": START + 40, "delay": 0.3},  # within the wait: read as usual
    {"kind": "corrupt", "gps": START + 50},
    {"kind": "truncate", "gps": START + 55},
    {"kind": "nan", "gps": START + 60, "channel": WITNESSES[1]},
    {"kind": "missing_channel", "gps": START + 65, "channel": WITNESSES[0]},
    {"kind": "rate_change", "gps": START + 70, "channel": WITNESSES[2]},
    {"kind": "rate_change", "gps": START + 80, "channel": STRAIN},
]
NO_STRAIN = {START + 20, START + 30, START + 50, START + 55}  # nothing readable: gaps


@pytest.fixture(scope="module", params=["gwf", "hdf5"])
def faulty(request, stream_scenario, tmp_path_factory):
    src, twin = stream_scenario
    fmt = request.param
    tmp = tmp_path_factory.mktemp(f"faults-{fmt}")
    config = load_replay_config(
        {"file_duration": 1, "speed": 8, "format": fmt, "protect": [STRAIN], "faults": FAULTS}
    )
    thread, result = replay_in_thread(
        src / "frames", tmp / "watch", config, manifest=tmp / "manifest.jsonl", log=str
    )
    logs: list[str] = []
    stream = load_stream_config(  # the gate watches but does not act: the model is untrained
        {
            "wait": 1.0,
            "idle_timeout": 4.0,
            "poll": 0.01,
            "format": fmt,
            "gate": {"enabled": False},
            "decision": {"enabled": False},  # and would withhold its prediction
        }
    )
    summary = StreamService(tmp / "watch", tmp / "out", stream, model=twin, log=logs.append).run()
    thread.join()
    return tmp / "out", summary, logs, result


def test_every_second_once_or_in_one_gap(faulty):
    out, summary, _, replayed = faulty
    log = read_log(out)
    written = [r["start"] for r in log if r["kind"] == "second"]
    assert len(written) == len(set(written))
    gaps = [r for r in log if r["kind"] in ("gap", "corrupt")]
    gap_seconds = [s for g in gaps for s in range(int(g["span"][0]), int(g["span"][1]))]
    assert set(gap_seconds) == NO_STRAIN and len(gap_seconds) == len(NO_STRAIN)
    assert sorted(written + gap_seconds) == list(range(START, START + DURATION))
    frames = find_frames(out / "frames")
    assert sorted(f.start for f in frames) == sorted(written)
    assert summary["seconds"] == DURATION - len(NO_STRAIN)
    assert stream_status(out)["duplicated_seconds"] == 0
    assert replayed["files"] >= DURATION - 1


def test_each_fault_is_named(faulty):
    out, _, logs, _ = faulty
    log = read_log(out)
    by_kind = {}
    for r in log:
        by_kind.setdefault(r["kind"], []).append(r)
    drop = next(g for g in by_kind["gap"] if g["span"][0] == START + 20)
    assert "no file covering GPS 1400000020" in drop["reason"]
    assert any(g["span"][0] == START + 30 for g in by_kind["gap"])
    late = by_kind["late"]
    assert len(late) == 1 and "1400000030" in late[0]["path"]
    corrupt = {g["span"][0]: g for g in by_kind["corrupt"]}
    assert set(corrupt) == {START + 50, START + 55}
    assert all("does not read" in g["reason"] and g["path"] for g in corrupt.values())
    witness = {(w["span"][0], w["channel"]): w["reason"] for w in by_kind["witness"]}
    assert "NaN" in witness[(START + 60, WITNESSES[1])]
    assert "not in" in witness[(START + 65, WITNESSES[0])]
    assert "Hz" in witness[(START + 70, WITNESSES[2])]
    strain = by_kind["strain_bad"]
    assert len(strain) == 1 and strain[0]["span"] == [START + 80, START + 81]
    assert "2048 Hz" in strain[0]["reason"] and "expected 4096 Hz" in strain[0]["reason"]
    assert any("1400000050" in line for line in logs)  # the operator's log names it too


def test_outputs_at_the_faults(faulty, stream_scenario):
    out, _, _, _ = faulty
    src, _ = stream_scenario
    records = {r["start"]: r for r in read_log(out) if r["kind"] == "second"}
    for s in (START + 60, START + 65, START + 70):
        assert records[s]["bits"]["WITNESS_BAD"], s
        assert not records[s]["bits"].get("CLEANING_APPLIED")
    # a bad witness switches off only the blocks it reaches: far from it, cleaning goes on
    assert records[START + 45]["bits"].get("CLEANING_APPLIED")
    # strain at another rate: written raw, as found, flagged
    f80 = next(f for f in find_frames(out / "frames") if f.start == START + 80)
    block = read(f80.path, [STRAIN + "_CLEANED"]).block
    assert block.sample_rate == 2048
    state = read(f80.path, [state_channel(STRAIN)]).block.data[0].numpy().astype(int)
    assert ((state >> STATE_BITS["RAW_PASSTHROUGH"]) & 1).all()
    # NaN-free seconds with good witnesses are raw - prediction exactly
    frames = [f.path for f in find_frames(out / "frames") if f.start in range(START, START + 19)]
    got = read(frames, [STRAIN + "_CLEANED", STRAIN + "_PREDICTION"]).block
    raw = read(src / "frames", [STRAIN], START, START + 19).block
    np.testing.assert_allclose(
        got.data[0] + got.data[1], raw.data[0], rtol=0, atol=1e-15 * float(raw.data.abs().max())
    )
