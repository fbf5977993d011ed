"""Simulation configs: defaults, the example files, and errors that name the bad key or value."""

from pathlib import Path

import pytest

from gwtwin.errors import ConfigError
from gwtwin.simulate import SimulationConfig, load_config

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("simulate-*.yaml"))


def test_defaults_describe_a_scenario_worth_cleaning():
    c = SimulationConfig()
    assert c.prefix == "V1" and c.frame_length == 64 and c.strain.sample_rate == 4096
    assert c.duration >= 1800
    n_aux = 5 + len(c.decoys.channels)  # disp, lvdt, mag, mains, angular + decoys
    assert n_aux >= 24 and len(c.decoys.channels) >= 20


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_example_configs_validate(path):
    config = load_config(path)
    assert config.duration % config.frame_length == 0


def test_default_yaml_is_the_builtin_default():
    assert load_config(Path(CONFIGS[0]).parent / "simulate-default.yaml") == SimulationConfig()


def test_simulate_section_of_a_run_config(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("simulate:\n  duration: 128\n  seed: 5\n")
    config = load_config(path)
    assert (config.duration, config.seed) == (128, 5)


def test_unknown_key_names_key_and_allowed_keys(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("em:\n  coupling_strength: 1.0e-11\n")
    with pytest.raises(
        ConfigError, match=r"em\.coupling_strength: unknown key \(allowed here: .*coupling"
    ):
        load_config(path)


def test_unknown_top_level_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("durration: 64\n")
    with pytest.raises(ConfigError, match=r"durration: unknown key .*duration"):
        load_config(path)


def test_bad_choice_names_allowed_values():
    with pytest.raises(
        ConfigError, match=r"strain\.design_curve: .*'advirgo' or 'aligo'.*found: 'virgo'"
    ):
        load_config(None, {"strain": {"design_curve": "virgo"}})


def test_duration_must_be_whole_frames():
    with pytest.raises(
        ConfigError, match=r"duration \(100 s\) must be a whole number of frame_length \(64 s\)"
    ):
        load_config(None, {"duration": 100})


def test_bad_prefix_and_negative_rate():
    with pytest.raises(ConfigError, match=r"prefix: .*like 'V1'.*found: 'Virgo'"):
        load_config(None, {"prefix": "Virgo"})
    with pytest.raises(ConfigError, match=r"blip\.rate: .*greater than or equal to 0"):
        load_config(None, {"blip": {"rate": -1}})


def test_distribution_bounds_checked():
    with pytest.raises(ConfigError, match=r"em\.snr: .*min must not exceed max"):
        load_config(None, {"em": {"snr": {"min": 50, "max": 10}}})


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "broken.yaml"
    bad.write_text("em: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(listing)


def test_filter_corners_checked():
    with pytest.raises(ConfigError, match=r"em\.filter: .*bandpass filter needs 2 corner"):
        load_config(None, {"em": {"filter": {"frequencies": [20.0]}}})
    with pytest.raises(ConfigError, match=r"below the strain Nyquist frequency \(2048 Hz\)"):
        load_config(None, {"em": {"filter": {"frequencies": [20.0, 3000.0]}}})


def test_instrument_seed_fixes_the_hidden_constants_not_the_events():
    from gwtwin.simulate.events import Catalogue

    def draw(seed, instrument_seed):
        c = SimulationConfig.model_validate(
            {"duration": 256, "seed": seed, "instrument_seed": instrument_seed}
        )
        cat = Catalogue(c)
        return cat.scatter.phases, [(e.family, e.peak_ns) for e in cat.events]

    phases_1, events_1 = draw(1, None)
    phases_2, events_2 = draw(2, None)
    assert phases_1 != phases_2 and events_1 != events_2  # another seed: another detector
    same_2, events_same_2 = draw(2, 7)
    same_3, events_same_3 = draw(3, 7)
    assert same_2 == same_3 != phases_2  # one instrument...
    assert events_same_2 == events_2 and events_same_3 != events_2  # ...other events
