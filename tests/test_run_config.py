"""The run config (``gwtwin.config``): defaults, example files, errors that name the key path and
the bad value, ``--set`` overrides, and ``gwtwin config show`` / ``validate``."""

from pathlib import Path

import pytest
import yaml

from gwtwin.cli import main
from gwtwin.config import (
    RunConfig,
    config_kind,
    load_any_config,
    load_run_config,
    parse_overrides,
)
from gwtwin.dataset.config import DatasetConfig, load_dataset_config
from gwtwin.errors import ConfigError
from gwtwin.select.config import SelectConfig
from gwtwin.simulate.config import SimulationConfig
from gwtwin.stream.config import StreamConfig, load_stream_config
from gwtwin.stream.replay import ReplayConfig, load_replay_config
from gwtwin.train.config import TrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FILES = sorted(CONFIGS.glob("*.yaml"))
#: the model each kind of file must load into (the kind comes from the file name)
MODELS = {
    "run": RunConfig,
    "simulate": SimulationConfig,
    "select": SelectConfig,
    "dataset": DatasetConfig,
    "train": TrainConfig,
    "stream": StreamConfig,
}


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_example_config_validates_with_its_loader(path):
    kind = config_kind(path)
    assert isinstance(load_any_config(path), MODELS[kind])


def test_config_kinds_by_file_name():
    kinds = {p.name: config_kind(p) for p in FILES}
    for name in ("run-default.yaml", "run-tiny.yaml", "demo.yaml"):
        assert kinds[name] == "run"
    assert kinds["demo-dataset.yaml"] == "dataset"
    assert kinds["simulate-tiny.yaml"] == "simulate"
    assert kinds["select-default.yaml"] == "select"
    assert kinds["train-default.yaml"] == "train"
    assert kinds["stream-default.yaml"] == "stream"


def test_no_file_empty_file_and_run_default_are_the_defaults(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    default = load_run_config(None)
    assert load_run_config(empty) == default
    assert load_run_config(CONFIGS / "run-default.yaml") == default
    assert load_stream_config(CONFIGS / "stream-default.yaml") == StreamConfig()
    assert load_replay_config(CONFIGS / "stream-default.yaml") == ReplayConfig()
    assert default.source.kind == "simulator"
    assert default.simulate == SimulationConfig()
    assert default.strain_channel == "V1:Hrec_hoft_4096Hz" == default.scan.strain_channel


def test_demo_config_matches_the_demo_dataset_config():
    demo = load_run_config(CONFIGS / "demo.yaml")
    assert demo.dataset == load_dataset_config(CONFIGS / "demo-dataset.yaml")
    # the default 2048 s scenario, with its hidden constants pinned so other seeds are the same
    # detector (benchmarks/bench_heldout.py)
    assert demo.simulate == SimulationConfig(instrument_seed=1)
    end = demo.simulate.start + demo.simulate.duration
    # evaluation on the held-out time only: after the last training/validation window
    assert demo.evaluate.start == demo.dataset.end == end - 308


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        # unknown keys, at several depths, with the keys allowed there
        ({"scann": {}}, r"scann: unknown key \(did you mean 'scan'\?\); allowed: clean, "),
        (
            {"scan": {"coincidence": {"windw": 1.0}}},
            r"scan\.coincidence\.windw: unknown key; allowed: delay_bins, tolerance",
        ),
        (
            {"simulate": {"em": {"filter": {"kindd": "lowpass"}}}},
            r"simulate\.em\.filter\.kindd: unknown key \(did you mean 'kind'\?\); "
            r"allowed: frequencies, kind, order",
        ),
        (
            {"scan": {"channel_triggers": [{"match": "*", "methd": "auto"}]}},
            r"scan\.channel_triggers\[0\]\.methd: unknown key .*allowed: .*method",
        ),
        (
            {"clean": {"veto": {"snr_treshold": 8.0}}},
            r"clean\.veto\.snr_treshold: unknown key \(did you mean 'snr_threshold'\?\)",
        ),
        ({"evaluate": {"strat": 0}}, r"evaluate\.strat: unknown key \(did you mean 'start'\?\)"),
        # bad values: the value found and the allowed ones
        (
            {"train": {"scheduler": {"name": "cosin"}}},
            r"train\.scheduler\.name: 'cosin' is not one of 'cosine', 'plateau', 'none'",
        ),
        (
            {"source": {"kind": "files"}},
            r"source\.kind: 'files' is not one of 'simulator', 'frames'",
        ),
        (
            {"dataset": {"valid_fraction": 1.5}},
            r"dataset\.valid_fraction: Input should be less than 1 \(found 1\.5\)",
        ),
        (
            {"train": {"max_epochs": "many"}},
            r"train\.max_epochs: Input should be a valid integer.*\(found 'many'\)",
        ),
        (
            {"simulate": {"decoys": {"channels": [{"name": "ENV_X", "rate": -256}]}}},
            r"simulate\.decoys\.channels\[0\]\.rate: Input should be greater than 0 \(found -256\)",
        ),
        (
            {"dataset": {"conditioning": {"transforms": {"V1:X": "whiten"}}}},
            r"dataset\.conditioning\.transforms\['V1:X'\]: 'whiten' is not one of",
        ),
        # cross-field checks of a section, and of the run
        ({"clean": {"format": "root"}}, r"clean\.format: 'root' is not one of 'gwf', 'hdf5'"),
        ({"simulate": {"duration": 100}}, r"simulate: duration \(100 s\) must be a whole number"),
        ({"source": {"kind": "frames"}}, r"source: kind 'frames' needs a path"),
        (
            {"parallelism": {"workers": 2}, "scan": {"workers": 4}},
            r"parallelism\.workers \(2\) and scan\.workers \(4\) disagree",
        ),
        (
            {"scan": {"strain_channel": "V1:DARM"}},
            r"scan\.strain_channel 'V1:DARM' differs from the run's strain channel "
            r"'V1:Hrec_hoft_4096Hz'",
        ),
    ],
)
def test_errors_name_the_key_path_and_the_value(data, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_run_config(data)


def test_error_from_a_file_names_the_file_and_every_bad_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  max_epoch: 3\n  scheduler: {name: linear}\n")
    with pytest.raises(ConfigError) as info:
        load_run_config(path)
    text = str(info.value)
    assert str(path) in text
    assert "train.max_epoch: unknown key (did you mean 'max_epochs'?)" in text
    assert "train.scheduler.name: 'linear' is not one of" in text


def test_non_mapping_and_missing_files(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- simulate\n")
    with pytest.raises(ConfigError, match=r"must hold a mapping of keys, found list"):
        load_run_config(path)
    with pytest.raises(ConfigError, match=r"run config .*nowhere\.yaml does not exist"):
        load_run_config(tmp_path / "nowhere.yaml")


def test_overrides_nested_and_dotted():
    parsed = parse_overrides(["train.max_epochs=3", "scan.plots=false", "dataset.end=null"])
    assert parsed == {
        "train": {"max_epochs": 3},
        "scan": {"plots": False},
        "dataset": {"end": None},
    }
    config = load_run_config(CONFIGS / "run-tiny.yaml", parsed)
    assert config.train.max_epochs == 3 and config.scan.plots is False
    assert config.train.batch_size == 4  # the file's other train keys are kept
    dotted = load_run_config(CONFIGS / "run-tiny.yaml", {"train.max_epochs": 3})
    assert dotted.train == config.train
    with pytest.raises(ConfigError, match=r"--set expects KEY\.PATH=VALUE, found 'train'"):
        parse_overrides(["train"])


def test_parallelism_goes_to_the_sections_that_have_the_keys():
    config = load_run_config(
        {"parallelism": {"workers": 3, "torch_threads": 1, "dask_scheduler": "tcp://h:8786"}}
    )
    assert config.simulate.workers == 3 and config.scan.workers == 3
    assert config.train.torch_threads == 1
    assert config.scan.dask.scheduler == "tcp://h:8786"
    # the sections' own values stay when parallelism does not set them
    assert load_run_config({"scan": {"workers": 2}}).scan.workers == 2


def test_strain_channel_follows_the_simulator_or_the_frames(tmp_path):
    h1 = load_run_config({"simulate": {"prefix": "H1"}})
    assert h1.scan.strain_channel == "H1:Hrec_hoft_4096Hz" == h1.source.strain_channel
    frames = load_run_config(
        {"source": {"kind": "frames", "path": str(tmp_path), "strain_channel": "L1:GDS-STRAIN"}}
    )
    assert frames.scan.strain_channel == "L1:GDS-STRAIN"
    with pytest.raises(ConfigError, match=r"is not the simulated strain channel"):
        load_run_config({"source": {"strain_channel": "L1:GDS-STRAIN"}})
    with pytest.raises(ConfigError, match=r"source: path is only for kind 'frames'"):
        load_run_config({"source": {"path": str(tmp_path)}})


def test_config_show_round_trips(capsys):
    path = CONFIGS / "run-tiny.yaml"
    assert main(["config", "show", str(path), "--set", "train.max_epochs=2"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    expected = load_run_config(path, {"train": {"max_epochs": 2}})
    assert shown["train"]["max_epochs"] == 2
    assert load_run_config(shown) == expected
    # and the dump of the resolved config is a fixed point
    assert load_run_config(yaml.safe_load(expected.dump())).dump() == expected.dump()


def test_config_show_reports_bad_keys(capsys):
    assert main(["config", "show", "--set", "scan.coincidence.windw=1"]) == 2
    err = capsys.readouterr().err
    assert "gwtwin config: error:" in err and "scan.coincidence.windw: unknown key" in err


def test_config_validate(tmp_path, capsys):
    bad = tmp_path / "bad-run.yaml"
    bad.write_text("train: {scheduler: {name: cosin}}\n")
    assert main(["config", "validate", str(CONFIGS / "run-tiny.yaml"), str(bad)]) == 2
    captured = capsys.readouterr()
    assert "run-tiny.yaml: valid run config" in captured.out
    assert "train.scheduler.name: 'cosin' is not one of" in captured.out
    assert "1 of 2 config file(s) are not valid" in captured.err
    assert main(["config", "validate", str(CONFIGS / "simulate-tiny.yaml")]) == 0
    assert "valid simulate config" in capsys.readouterr().out
