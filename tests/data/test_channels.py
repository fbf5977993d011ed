"""Output names derive from the input's names (gwtwin.data.channels)."""

from __future__ import annotations

import pytest

from gwtwin.data.channels import (
    cleaned_channel,
    flag_name,
    ifo,
    observatory,
    prediction_channel,
    resolve_channel,
)
from gwtwin.errors import GwtwinError


@pytest.mark.parametrize(
    ("strain", "obs"),
    [
        ("H1:GDS-CALIB_STRAIN", "H"),
        ("L1:GWOSC-16KHZ_R1_STRAIN", "L"),
        ("V1:Hrec_hoft_16384Hz", "V"),
    ],
)
def test_names_follow_the_input(strain, obs):
    det = strain[:2]
    assert ifo(strain) == det and observatory(strain) == obs
    assert cleaned_channel(strain) == f"{strain}_CLEANED"
    assert cleaned_channel(strain, "_DC") == f"{strain}_DC"
    assert prediction_channel(strain) == f"{strain}_PREDICTION"
    assert flag_name(strain, "WITNESSED") == f"{det}:GWTWIN-WITNESSED:1"
    assert flag_name(det, "HVETO_ROUND_3", version=None) == f"{det}:GWTWIN-HVETO_ROUND_3"


def test_bad_names_are_refused():
    with pytest.raises(GwtwinError, match=r"expected a full channel name <IFO>:<NAME>.*'STRAIN'"):
        ifo("STRAIN")
    with pytest.raises(GwtwinError, match="found 'h1:x'"):
        ifo("h1:x")
    with pytest.raises(GwtwinError, match="suffix must not be empty"):
        cleaned_channel("H1:X", "")
    with pytest.raises(GwtwinError, match="upper case"):
        flag_name("H1", "witnessed")


def test_resolve_channel_by_name_or_pattern():
    chans = ["H1:GDS-CALIB_STRAIN", "H1:PEM-CS_MAG_LVEA_VERTEX_X_DQ", "H1:ASC-DHARD_P_OUT_DQ"]
    assert resolve_channel("H1:GDS-CALIB_STRAIN", chans) == "H1:GDS-CALIB_STRAIN"
    assert resolve_channel("*:GDS-CALIB_STRAIN*", chans) == "H1:GDS-CALIB_STRAIN"
    with pytest.raises(GwtwinError, match=r"matches 2 channels, expected one: H1:ASC.*H1:PEM"):
        resolve_channel("H1:*_DQ", chans)
    with pytest.raises(GwtwinError, match="matches none of the 3 channels"):
        resolve_channel("L1:*STRAIN*", chans)
    with pytest.raises(
        GwtwinError, match=r"'L1:GDS-CALIB_STRAIN' is not in the frames.*similar: H1"
    ):
        resolve_channel("L1:GDS-CALIB_STRAIN", chans)
