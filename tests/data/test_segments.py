"""gwtwin.data.segments against gwpy's SegmentList (the semantics it mirrors)."""

from __future__ import annotations

import numpy as np
import pytest
from gwpy.segments import Segment, SegmentList

from gwtwin.data import segments as sg
from gwtwin.errors import GwtwinError


def _gwpy(segs) -> SegmentList:
    return SegmentList(Segment(a, b) for a, b in segs).coalesce()


def test_set_operations_match_gwpy():
    rng = np.random.default_rng(4)
    starts = np.sort(rng.uniform(0, 1000, 60))
    a = np.stack([starts, starts + rng.uniform(0.1, 30, 60)], axis=1)
    starts = np.sort(rng.uniform(0, 1000, 40))
    b = np.stack([starts, starts + rng.uniform(0.1, 30, 40)], axis=1)
    ga, gb = _gwpy(a), _gwpy(b)
    assert [tuple(s) for s in sg.coalesce(a)] == [tuple(s) for s in ga]
    # both sides pick the same float endpoints: exact equality
    assert sg.intersect(sg.coalesce(a), sg.coalesce(b)).tolist() == [list(s) for s in ga & gb]
    assert sg.subtract(sg.coalesce(a), sg.coalesce(b)).tolist() == [list(s) for s in ga - gb]
    assert sg.total(sg.coalesce(a)) == pytest.approx(float(abs(ga)))


def test_merge_spans_joins_float_rounding_only():
    # 1 ns is the GPS resolution: pieces computed from sample times touch to rounding
    pieces = [(10.0, 12.0 - 3e-10), (12.0, 14.0), (14.5, 15.0), (0.0, 1.0)]
    assert sg.merge_spans(pieces) == [(0.0, 1.0), (10.0, 14.0), (14.5, 15.0)]
    assert sg.merge_spans(pieces, tolerance=0.0) == [
        (0.0, 1.0),
        (10.0, 12.0 - 3e-10),
        (12.0, 14.0),
        (14.5, 15.0),
    ]
    assert sg.merge_spans([]) == []


def test_efficiency_deadtime():
    fig = sg.efficiency_deadtime([[10.0, 11.0], [50.0, 51.0]], [[0.0, 100.0]], [10.5, 50.2, 70])
    assert fig["efficiency"] == pytest.approx(2 / 3)
    assert fig["deadtime"] == pytest.approx(0.02)
    assert fig["efficiency_over_deadtime"] == pytest.approx(100 / 3)
    with pytest.raises(GwtwinError, match="zero known"):
        sg.efficiency_deadtime(np.zeros((0, 2)), np.zeros((0, 2)), [1.0])
