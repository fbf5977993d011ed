"""The watched directory: the file index, gaps, corrupt and late files, witness problems."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from gwtwin.data import Block
from gwtwin.data.block import NS
from gwtwin.data.frames import write_frame
from gwtwin.errors import GwtwinError
from gwtwin.stream import watcher as watcher_module
from gwtwin.stream.watcher import FrameWatcher

T0 = 1_000_000_000
RATES = {"X1:STRAIN": 64.0, "X1:W": 16.0}


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def one_second(directory, t, *, channels=RATES, name=None):
    blocks = [
        Block(torch.arange(int(r), dtype=torch.float64)[None] + t, t * NS, r, (c,), ("",))
        for c, r in channels.items()
    ]
    return write_frame(directory / (name or f"X-RAW-{t}-1.gwf"), blocks)


def test_index_orders_filters_and_parses_each_name_once(tmp_path, monkeypatch):
    for t in (T0 + 2, T0, T0 + 1):
        (tmp_path / f"X-RAW-{t}-1.gwf").write_bytes(b"")
    (tmp_path / "X-OTHER-1000000003-1.gwf").write_bytes(b"")
    (tmp_path / "X-RAW-1000000004-1.gwf.tmp").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a frame")
    calls = []
    real = watcher_module.parse_frame_name
    monkeypatch.setattr(watcher_module, "parse_frame_name", lambda p: calls.append(p) or real(p))
    w = FrameWatcher(tmp_path, "X1:STRAIN", RATES, tag="RAW")
    assert [f.start for f in w.files()] == [T0, T0 + 1, T0 + 2]
    parsed = len(calls)
    for _ in range(5):
        w.files()
    (tmp_path / f"X-RAW-{T0 + 3}-1.gwf").write_bytes(b"")
    w._listed = -1e9  # as if a second had passed
    assert [f.start for f in w.files()][-1] == T0 + 3
    assert len(calls) == parsed + 1  # only the new name was parsed
    os.remove(tmp_path / f"X-RAW-{T0}-1.gwf")
    w._listed = -1e9
    assert [f.start for f in w.files()] == [T0 + 1, T0 + 2, T0 + 3]


def test_next_file_found_without_listing(tmp_path, monkeypatch):
    for t in range(T0, T0 + 3):
        (tmp_path / f"X-RAW-{t}-1.gwf").write_bytes(b"")
    w = FrameWatcher(tmp_path, "X1:STRAIN", RATES)
    assert w._around(T0)[0].start == T0
    (tmp_path / f"X-RAW-{T0 + 3}-1.gwf").write_bytes(b"")
    listed = []
    real = os.listdir
    monkeypatch.setattr(watcher_module.os, "listdir", lambda d: listed.append(d) or real(d))
    assert w._around(T0 + 3)[0].start == T0 + 3  # the expected name, one stat
    assert listed == []


def test_data_gap_and_late(tmp_path):
    clock = Clock()
    w = FrameWatcher(tmp_path / "watch", "X1:STRAIN", RATES, wait=2.0, clock=clock)
    assert w.look(T0).kind == "idle"  # the directory does not exist yet
    (tmp_path / "watch").mkdir()
    one_second(tmp_path / "watch", T0)
    got = w.look(T0)
    assert got.kind == "data" and (got.start, got.end) == (T0, T0 + 1)
    np.testing.assert_array_equal(got.strain, np.arange(64) + T0)
    np.testing.assert_array_equal(got.witnesses["X1:W"], np.arange(16) + T0)
    assert got.problems == {} and got.mtime is not None
    one_second(tmp_path / "watch", T0 + 2)  # T0 + 1 is missing
    w._listed = -1e9
    assert w.look(T0 + 1).kind == "idle"  # within the wait
    clock.t += 2.5
    gap = w.look(T0 + 1)
    assert gap.kind == "gap" and (gap.start, gap.end) == (T0 + 1, T0 + 2)
    assert "no file covering GPS 1000000001 arrived within 2 s" in gap.reason
    assert w.look(T0 + 2).kind == "data"
    one_second(tmp_path / "watch", T0 + 1)  # the late one
    w._listed = w._late_listed = -1e9  # late files are looked for every 10 s
    late = w.late(T0 + 3)
    assert [f.start for f in late] == [T0 + 1] and w.late(T0 + 3) == []


def test_corrupt_after_the_wait_and_witness_problems(tmp_path):
    clock = Clock()
    w = FrameWatcher(tmp_path, "X1:STRAIN", RATES, wait=0.5, clock=clock)
    path = tmp_path / f"X-RAW-{T0}-1.gwf"
    path.write_bytes(b"this is not a frame file")
    assert w.look(T0).kind == "idle"  # still being written, maybe
    old = time.time() - 5
    os.utime(path, (old, old))
    bad = w.look(T0)
    assert bad.kind == "corrupt" and path.name in bad.reason and bad.path == path
    one_second(tmp_path, T0 + 1, channels={"X1:STRAIN": 64.0, "X1:W": 8.0})
    got = w.look(T0 + 1)
    assert got.kind == "data" and got.witnesses["X1:W"] is None
    assert "8 Hz" in got.problems["X1:W"] and "expected 16 Hz" in got.problems["X1:W"]
    one_second(tmp_path, T0 + 2, channels={"X1:STRAIN": 32.0, "X1:W": 16.0})
    w._listed = -1e9
    strain = w.look(T0 + 2)
    assert strain.kind == "strain_bad" and "expected 64 Hz" in strain.reason
    one_second(tmp_path, T0 + 3, channels={"X1:STRAIN": 64.0})
    w._listed = -1e9
    missing = w.look(T0 + 3)
    assert missing.witnesses["X1:W"] is None and "not in" in missing.problems["X1:W"]


def test_fractional_files_are_refused(tmp_path):
    (tmp_path / "X-RAW-1000000000.5-1.gwf").write_bytes(b"")
    with pytest.raises(GwtwinError, match="whole-second files"):
        FrameWatcher(tmp_path, "X1:STRAIN", RATES).look(T0 + 1)
