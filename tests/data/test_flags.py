"""Data-quality flags: written in three formats, read back with gwpy's own readers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gwpy.segments import DataQualityDict, DataQualityFlag

from gwtwin.data.flags import make_flag, read_flags, write_flags
from gwtwin.errors import GwtwinError

KNOWN = [[1400000000, 1400000512]]


def flags():
    witnessed = make_flag(
        "V1:GWTWIN_WITNESSED",
        [[1400000010.25, 1400000012.5], [1400000011, 1400000013], [1400000100, 1400000101.125]],
        KNOWN,
        description="glitch predicted from witnesses",
    )
    empty = make_flag("V1:GWTWIN_CLEANING_FAILED:2", np.zeros((0, 2)), KNOWN)
    return [witnessed, empty]


def test_make_flag_coalesces_and_names():
    witnessed, empty = flags()
    assert witnessed.name == "V1:GWTWIN_WITNESSED:1" and empty.version == 2
    assert [tuple(s) for s in witnessed.active] == [
        (1400000010.25, 1400000013.0),
        (1400000100.0, 1400000101.125),
    ]
    assert abs(witnessed.livetime - 3.875) < 1e-9


def test_every_format_reads_back_with_gwpy(tmp_path):
    written = write_flags(flags(), tmp_path / "V1-GWTWIN_FLAGS")
    expected = {f.name: f for f in flags()}
    xml = DataQualityDict.read(str(written["xml"][0]), format="ligolw")
    h5 = DataQualityDict.read(str(written["h5"][0]))
    for table in (xml, h5, read_flags(written["xml"][0]), read_flags(written["h5"][0])):
        assert set(table) == set(expected)
        for name, flag in expected.items():
            assert list(table[name].active) == list(flag.active)
            assert list(table[name].known) == list(flag.known)
    assert len(written["json"]) == 2
    for path in written["json"]:
        doc = json.loads(path.read_text())  # DQSEGDB's shape
        assert {"ifo", "name", "version", "active", "known"} <= set(doc)
        flag = DataQualityFlag.read(str(path))
        assert list(flag.active) == list(expected[flag.name].active)


def test_errors_are_named(tmp_path):
    with pytest.raises(GwtwinError, match="active outside its known segments"):
        make_flag("V1:X", [[1400000600, 1400000601]], KNOWN)
    with pytest.raises(GwtwinError, match="IFO:NAME or IFO:NAME:VERSION, found 'X'"):
        make_flag("X", [], KNOWN)
    with pytest.raises(GwtwinError, match="end >= start"):
        make_flag("V1:X", [[5, 4]], [[0, 10]])
    write_flags(flags(), tmp_path / "f", ["xml"])
    with pytest.raises(GwtwinError, match=r"flag file\(s\) exist"):
        write_flags(flags(), tmp_path / "f", ["xml"])
    write_flags(flags(), tmp_path / "f", ["xml"], overwrite=True)
    with pytest.raises(GwtwinError, match=r"unknown flag format\(s\) \['txt'\]"):
        write_flags(flags(), tmp_path / "g", ["txt"])
    bad = tmp_path / "bad.xml"
    bad.write_text("<not ligolw")
    with pytest.raises(GwtwinError, match="cannot read flags from .*bad.xml"):
        read_flags(bad)
    with pytest.raises(GwtwinError, match="expected .xml, .h5 or .json"):
        read_flags(_touch(tmp_path / "f.txt"))


def _touch(path):
    path.write_text("")
    return path
