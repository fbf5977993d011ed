"""Couplings that drift during a scenario: the truth (hence strain) follows the configured
step, ramp or delay shift exactly, the catalogue records it, and bad drifts are refused by name."""

import json

import numpy as np
import pytest

from gwtwin.errors import ConfigError
from gwtwin.simulate import Simulator, load_config
from gwtwin.simulate.drift import profile

RATE = 4096
START = 1_400_000_000


@pytest.fixture
def make_config(only):
    return only


def truth(config, family, index):
    return Simulator(config).render_truth(index)[family]


@pytest.mark.parametrize("family", ["em", "scatter", "powerline"])
def test_a_coupling_step_scales_the_family_after_it_and_nothing_before(family, make_config):
    rates = {family: {"rate": 300.0}}
    plain = make_config(family, **rates)
    drifted = make_config(family, **rates, drift=[{"family": family, "start": 64, "after": 1.5}])
    for index, gain in ((0, 1.0), (1, 1.5)):
        a, b = truth(plain, family, index), truth(drifted, family, index)
        assert np.abs(a).max() > 0
        np.testing.assert_allclose(b, gain * a, rtol=1e-12, atol=0)


def test_a_ramp_is_linear_between_start_and_end(make_config):
    cfg = make_config("powerline", powerline={"rate": 300.0})
    drift = make_config(
        "powerline",
        powerline={"rate": 300.0},
        drift=[{"family": "powerline", "start": 32, "end": 96, "before": 1.0, "after": 2.0}],
    )
    t = np.arange(64 * RATE) / RATE + 64  # frame 1: 64-128 s
    expected = np.clip(1 + (t - 32) / 64, 1, 2)
    a, b = truth(cfg, "powerline", 1), truth(drift, "powerline", 1)
    on = np.abs(a) > 1e-3 * np.abs(a).max()
    np.testing.assert_allclose(b[on] / a[on], expected[on], rtol=1e-9)


def test_a_witness_that_starts_to_couple_leaves_nothing_before_and_its_events_are_dropped(
    make_config,
):
    rates = {"em": {"rate": 600.0}}
    plain = Simulator(make_config("em", **rates))
    sim = Simulator(
        make_config("em", **rates, drift=[{"family": "em", "start": 64, "before": 0, "after": 1}])
    )
    assert np.all(sim.render_truth(0)["em"] == 0)
    np.testing.assert_array_equal(sim.render_truth(1)["em"], plain.render_truth(1)["em"])
    late = [e for e in plain.catalogue.events if e.peak_ns >= (START + 64) * 10**9]
    kept = sim.catalogue.events
    assert len(kept) == len(late) > 0
    assert all(e.peak_ns >= (START + 64) * 10**9 for e in kept)
    assert [e.id for e in kept] == list(range(len(kept)))
    assert all(e.params["drift_gain"] == 1.0 for e in kept)


def test_the_catalogue_snr_follows_the_gain_at_the_peak(make_config):
    rates = {"em": {"rate": 600.0}}
    plain = Simulator(make_config("em", **rates)).catalogue.events
    ramp = {"family": "em", "start": 0, "end": 128, "before": 1.0, "after": 3.0}
    events = Simulator(make_config("em", **rates, drift=[ramp])).catalogue.events
    assert len(events) == len(plain)
    for p, e in zip(plain, events, strict=True):
        gain = 1 + 2 * (p.peak_ns / 1e9 - START) / 128
        assert e.params["drift_gain"] == pytest.approx(gain)
        assert e.snr == pytest.approx(gain * p.snr)


def test_a_moving_delay_shifts_each_burst_by_its_delay_on_the_strain_grid(make_config):
    rates = {"em": {"rate": 400.0}}
    plain = Simulator(make_config("em", **rates))
    shift = {"family": "em", "parameter": "delay", "start": 0, "end": 128, "after": 0.01}
    sim = Simulator(make_config("em", **rates, drift=[shift]))
    pieces0, pieces1 = plain.catalogue.strain_pieces["em"], sim.catalogue.strain_pieces["em"]
    assert len(pieces0) == len(pieces1) > 3
    for event0, event1 in zip(plain.catalogue.events, sim.catalogue.events, strict=True):
        n = round(0.01 * (event0.peak_ns / 1e9 - START) / 128 * RATE)
        assert event1.delay == pytest.approx(event0.delay + n / RATE)
        assert event1.params["drift_delay"] == pytest.approx(n / RATE)
    for p0, p1 in zip(pieces0, pieces1, strict=True):
        assert 0 <= p1.index - p0.index <= round(0.01 * RATE)
        np.testing.assert_array_equal(p0.data, p1.data)
    # the witness is untouched: only strain moves
    mag = [s for s in plain.channels if s.family == "em"][0]
    np.testing.assert_array_equal(plain.render_channel(mag, 1), sim.render_channel(mag, 1))


def test_the_drift_is_written_to_the_summary(tmp_path, make_config):
    cfg = make_config("em", duration=64, drift=[{"family": "em", "start": 10, "after": 1.5}])
    Simulator(cfg).run(tmp_path, workers=1, progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["drift"] == [
        {
            "family": "em",
            "parameter": "coupling",
            "start": 10.0,
            "end": None,
            "before": 1.0,
            "after": 1.5,
        }
    ]


def test_profile_of_a_step_and_a_ramp(make_config):
    step = make_config(None, drift=[{"family": "em", "start": 10, "after": 2}]).drift[0]
    assert list(profile(step, [0, 9.99, 10, 50])) == [1, 1, 2, 2]
    ramp = make_config(None, drift=[{"family": "em", "start": 10, "end": 20, "after": 0}]).drift[0]
    np.testing.assert_allclose(profile(ramp, [0, 10, 15, 20, 30]), [1, 1, 0.5, 0, 0])


@pytest.mark.parametrize(
    ("drift", "message"),
    [
        ({"family": "blip", "start": 1, "after": 2}, r"drift\.0\.family: Input should be"),
        ({"family": "em", "start": 10, "end": 5, "after": 2}, "end must be after its start"),
        ({"family": "scatter", "parameter": "delay", "start": 1, "after": 0.01}, "delay drift"),
        ({"family": "em", "start": 1, "after": -1}, "coupling factors must be >= 0"),
        ({"family": "em", "start": 100, "end": 200, "after": 2}, "within the scenario's 128 s"),
        ({"family": "em", "parameter": "delay", "start": 1, "after": -0.1}, "causal"),
        ({"family": "em", "start": 1}, r"drift\.0\.after: Field required"),
        ({"family": "em", "start": 1, "after": 2, "gain": 3}, r"drift\.0\.gain: unknown key"),
    ],
)
def test_bad_drifts_are_refused_by_name(tmp_path, drift, message, make_config):
    path = tmp_path / "sim.yaml"
    path.write_text(json.dumps({"duration": 128, "frame_length": 64, "drift": [drift]}))
    with pytest.raises(ConfigError, match=message):
        load_config(path)
