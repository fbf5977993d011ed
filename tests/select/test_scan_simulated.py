"""Selection on the simulated interferometer, measured against its truth catalogue."""

import json
import shutil

import numpy as np
import pytest

from gwtwin.cli import main
from gwtwin.data.errors import MissingChannelError
from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.select import select_channels, select_from_triggers
from gwtwin.select.compare import hveto_rounds
from gwtwin.select.triggers import channel_jobs, compute_triggers
from gwtwin.signal.triggers import Triggers
from gwtwin.simulate import read_catalogue

STRAIN = "V1:Hrec_hoft_4096Hz"
DISP, LVDT = "V1:SBE_SDB1_DISP_X", "V1:SBE_SDB1_LVDT_X"
MAG, MAINS, ASC = "V1:ENV_CEB_MAG_N", "V1:ENV_CEB_UPS_VOLT_R", "V1:ASC_NE_TX_CORR"
COUPLED = {DISP, LVDT, MAG, MAINS, ASC}


def test_coupled_witnesses_selected_no_decoy(selection):
    sel, _ = selection
    names = sel.selected_names
    assert names[:2] == [DISP, MAG] or names[:2] == [MAG, DISP]
    assert not set(names) - COUPLED, names  # no decoy selected
    assert LVDT not in names
    assert [r["name"] for r in sel.redundant] == [LVDT]
    assert sel.redundant[0]["primary"] == DISP and sel.redundant[0]["drop"] > 0.8
    # every channel selected by the rounds beats its slide background by far
    for entry in sel.selected:
        if entry.get("method") == "coherence":
            continue
        assert entry["significance"] > 5 * max(1.0, sel.slides.background[entry["name"]])
    # the mains monitor never glitches on its own: it is found by its coherence with strain
    coherent = [e for e in sel.selected if e.get("method") == "coherence"]
    assert [e["name"] for e in coherent] == [MAINS]
    assert coherent[0]["coherence"] > 0.5 and abs(coherent[0]["coherence_frequency"] - 50) < 0.5


def test_time_slides_false_selection_rate(selection):
    sel, _ = selection
    assert len(sel.slides.shifts) == 10
    assert sel.slides.false_selection_rate <= 0.01


def test_blips_unattributed_and_witnessed_families_vetoed(selection, simulated):
    sel, _ = selection
    cat = read_catalogue(simulated / "catalogue.h5")
    glitches = sel.glitch_table()

    def family_of(t):
        hit = cat[(cat["gps_start"] - 0.5 <= t) & (cat["gps_end"] + 0.5 >= t)]
        hit = hit[hit["family"] != "decoy"]
        return hit["family"][0] if len(hit) else "none"

    fam = np.array([family_of(t) for t in glitches["time"]])
    blips = glitches[fam == "blip"]
    assert len(blips) >= 10
    # blips are vetoed only by chance: at most the deadtime fraction's share (+1 for luck)
    dead = sel.rounds.rounds[-1].cum_deadtime
    assert np.sum(blips["witness"] != "") <= dead * len(blips) + 1
    for family, witness in (("em", MAG), ("scatter", DISP)):
        rows = glitches[fam == family]
        assert np.mean(rows["witness"] == witness) >= 0.5, family
    # the magnetometer's coupling delay (4 ms, witness leads) is recovered
    mag = next(c for c in sel.selected if c["name"] == MAG)
    assert mag["delay"] == pytest.approx(0.004, abs=0.003)
    assert mag["sample_rate"] == 4096.0 and mag["unit"] == "T"


def test_same_winners_and_efficiency_as_hveto(selection):
    sel, _ = selection
    ref = hveto_rounds(sel.strain, sel.auxiliary, sel.live, strain_channel=sel.strain_channel)
    ours = sel.rounds.rounds
    assert [r["winner"] for r in ref] == [r.winner for r in ours]
    for mine, theirs in zip(ours, ref, strict=True):
        assert mine.cum_deadtime == pytest.approx(theirs["cum_deadtime"], rel=1e-6)
        assert mine.cum_efficiency >= theirs["cum_efficiency"]


def test_outputs(selection):
    from gwpy.segments import DataQualityDict, DataQualityFlag

    sel, out = selection
    hand = json.loads((out / "selected_channels.json").read_text())
    assert hand["format"] == "gwtwin-selected-channels/1"
    assert hand["strain_channel"] == STRAIN
    assert [c["name"] for c in hand["channels"]] == sel.selected_names
    keys = {
        "name",
        "sample_rate",
        "unit",
        "delay",
        "band",
        "round",
        "significance",
        "threshold",
        "window",
        "efficiency",
        "deadtime",
    }
    for entry in hand["channels"]:
        extra = (
            {"method", "coherence", "coherence_frequency", "coherence_bands", "coherence_threshold"}
            if entry.get("method") == "coherence"
            else set()
        )
        assert set(entry) == keys | extra
        assert entry["band"][0] < entry["band"][1]
    assert hand["redundant"][0]["name"] == LVDT and hand["refused_unsafe"] == []
    assert hand["span"][1] - hand["span"][0] == pytest.approx(sel.livetime)
    rounds = json.loads((out / "rounds.json").read_text())
    assert [r["winner"] for r in rounds["rounds"]] == [r.winner for r in sel.rounds.rounds]
    assert set(rounds["rounds"][0]["significance_drop"]) == set(sel.auxiliary)
    table = json.loads((out / "channels.json").read_text())["channels"]
    assert table[0]["channel"] == sel.selected_names[0] and "delay_histogram" in table[0]
    csv_lines = (out / "channels.csv").read_text().splitlines()
    assert csv_lines[0].startswith("rank,channel,status") and len(csv_lines) == len(table) + 1
    for path, kw in (
        (out / "veto_segments.xml", {"format": "ligolw"}),
        (out / "veto_segments.h5", {}),
    ):
        flags = DataQualityDict.read(str(path), **kw)
        assert sorted(flags) == [f"V1:GWTWIN-HVETO_ROUND_{r.n}:1" for r in sel.rounds.rounds]
    r1 = sel.rounds.rounds[0]
    flag = DataQualityFlag.read(str(out / "veto_segments.h5"), "V1:GWTWIN-HVETO_ROUND_1:1")
    assert float(abs(flag.active)) == pytest.approx(r1.deadtime, abs=1e-6)
    for png in ("significance.png", "delays.png", "efficiency_deadtime.png"):
        assert (out / "plots" / png).stat().st_size > 10_000


def test_cache_reused_and_dask(selection, simulated, tmp_path):
    from dask.distributed import Client

    sel, out = selection
    seen = []
    again = select_channels(
        simulated,
        {"workers": 1, "slides": {"count": 0}, "plots": False},
        out,
        progress=lambda name, cached: seen.append(cached),
    )
    assert seen and all(seen)  # every channel's triggers came from the cache
    assert again.selected_names == sel.selected_names
    # a Dask cluster computes the same triggers as the process pool did
    jobs = channel_jobs(simulated, [MAG, DISP], sel.config)
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        found = compute_triggers(jobs, None, scheduler=c)
    for name in (MAG, DISP):
        cached = compute_triggers([j for j in jobs if j["channel"] == name], out / "triggers")
        assert np.array_equal(found[name][name], cached[name][name])


def test_bad_channel_list(simulated, tmp_path):
    with pytest.raises(MissingChannelError, match="channels not found in the frames .*V1:NOPE"):
        select_channels(simulated, {"channels": ["V1:NOPE", MAG]}, tmp_path)
    with pytest.raises(MissingChannelError, match="'V1:GDS-CALIB_STRAIN' is not in the frames"):
        select_channels(simulated, {"strain_channel": "V1:GDS-CALIB_STRAIN"}, tmp_path)
    with pytest.raises(MissingChannelError, match=r"'V1:\*_N' matches \d+ channels, expected one"):
        select_channels(simulated, {"strain_channel": "V1:*_N"}, tmp_path)
    frames = simulated / "frames"  # bare frames say nothing of which channel is strain
    with pytest.raises(ConfigError, match="scan.strain_channel is not set: name the strain"):
        select_channels(frames, {}, tmp_path)
    glob = select_channels(frames, {"strain_channel": "*:Hrec_*", "channels": [MAG]}, None)
    assert glob.strain_channel == STRAIN


def test_unsafe_channels_refused(selection, simulated, tmp_path):
    _, out = selection
    shutil.copytree(out / "triggers", tmp_path / "triggers")
    sel = select_channels(
        simulated,
        {"channels": [MAG, STRAIN], "workers": 1, "slides": {"count": 2}, "plots": False},
        tmp_path,
    )
    assert sel.refused_unsafe == [STRAIN]
    assert sel.selected_names == [MAG]


def test_no_strain_triggers_gives_explicit_empty_result(selection):
    sel, _ = selection
    triggers = _triggers_of(sel)
    empty = select_from_triggers(triggers, {"strain_snr": 1e6, "strain_channel": STRAIN})
    assert empty.selected == [] and empty.rounds.rounds == []
    assert "no strain triggers with SNR >= 1e+06" in empty.notes[0]


def test_zero_live_time(selection):
    sel, _ = selection
    triggers = _triggers_of(sel)
    lo, hi = sel.span
    triggers[MAG] = Triggers(
        triggers[MAG].tables, (hi + 10, hi + 20), {"segments": [[hi + 10, hi + 20]]}
    )
    with pytest.raises(GwtwinError, match="zero live time: the channels' analysed segments"):
        select_from_triggers(triggers, {}, strain_channel=STRAIN)
    with pytest.raises(ConfigError, match="no strain channel: give strain_channel"):
        select_from_triggers(triggers, {})


def _triggers_of(sel):
    out = {STRAIN: Triggers({STRAIN: sel.strain}, sel.span, {"segments": sel.live.tolist()})}
    for name, table in sel.auxiliary.items():
        out[name] = Triggers({name: table}, sel.span, {"segments": sel.live.tolist()})
    return out


def test_cli_scan_end_to_end(selection, simulated, tmp_path, capsys):
    _, out = selection
    shutil.copytree(out / "triggers", tmp_path / "triggers")  # re-used: same jobs
    cfg = tmp_path / "select.yaml"
    cfg.write_text("slides: {count: 2}\nworkers: 1\n")
    code = main(
        [
            "scan",
            str(simulated),
            "-o",
            str(tmp_path),
            "--config",
            str(cfg),
            "-c",
            MAG,
            "V1:ENV_CEB_MAG_E",
            "--quiet",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "selected: V1:ENV_CEB_MAG_N" in text and "hveto rounds" in text
    hand = json.loads((tmp_path / "selected_channels.json").read_text())
    assert [c["name"] for c in hand["channels"]] == [MAG]
    code = main(["scan", str(simulated), "-o", str(tmp_path), "-c", "V1:NOPE", "--quiet"])
    assert code == 2
    assert "channels not found in the frames" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_default_scenario_acceptance(seed, tmp_path):
    """The default 2048 s scenario with its 20 decoys (slow: ~5 min per seed on 2 cores)."""
    from gwtwin.simulate import SimulationConfig, Simulator

    Simulator(SimulationConfig(seed=seed)).run(tmp_path / "sim", workers=2, progress=False)
    sel = select_channels(tmp_path / "sim", {"workers": 2}, tmp_path / "out")
    names = sel.selected_names
    assert {DISP, MAG} <= set(names)
    assert {MAINS, ASC} & set(names)
    assert not set(names) - COUPLED
    assert LVDT in [r["name"] for r in sel.redundant]
    assert sel.slides.false_selection_rate <= 0.01
    ref = hveto_rounds(sel.strain, sel.auxiliary, sel.live, strain_channel=sel.strain_channel)
    assert [r["winner"] for r in ref] == [r.winner for r in sel.rounds.rounds]
