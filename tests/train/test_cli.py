"""End to end on a tiny simulated scenario, through the command line: simulate, dataset, train,
models list / promote; then the registered model predicts from the raw frames and refuses
witness channels that are missing or out of order."""

import json
import warnings
from pathlib import Path

import pytest

from gwtwin.cli import main
from gwtwin.data import MissingChannelError, read
from gwtwin.signal.conditioning import ChannelOrderError

ROOT = Path(__file__).resolve().parents[2]
WITNESSES = ["V1:SBE_SDB1_DISP_X", "V1:ENV_CEB_MAG_N", "V1:ENV_CEB_UPS_VOLT_R", "V1:ASC_NE_TX_CORR"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-train")
    sim = root / "sim"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert (
            main(
                [
                    "simulate",
                    str(ROOT / "configs/simulate-tiny.yaml"),
                    "-o",
                    str(sim),
                    "--workers",
                    "1",
                    "--quiet",
                ]
            )
            == 0
        )
    selected = root / "selected_channels.json"
    selected.write_text(
        json.dumps(
            {
                "format": "gwtwin-selected-channels/1",
                "strain_channel": "V1:Hrec_hoft_4096Hz",
                "span": [],
                "channels": [{"name": c} for c in WITNESSES],
                "redundant": [],
            }
        )
    )
    (root / "dataset.yaml").write_text("stride: 2.0\nquiet_fraction: null\nvalid_fraction: 0.3\n")
    assert (
        main(
            [
                "dataset",
                str(sim),
                "--selected",
                str(selected),
                "-o",
                str(root / "ds.h5"),
                "--config",
                str(root / "dataset.yaml"),
                "--quiet",
            ]
        )
        == 0
    )
    (root / "train.yaml").write_text(
        "max_epochs: 2\nbatch_size: 4\ntorch_threads: 1\n"
        "tensorboard: {panels: 1}\ntrainer: {accelerator: cpu, limit_train_batches: 2}\n"
    )
    return root, sim


def test_cli_train_list_promote(tiny, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps table cells at 80 columns
    root, sim = tiny
    work = root / "work"
    assert (
        main(
            [
                "train",
                str(root / "ds.h5"),
                "--workdir",
                str(work),
                "--config",
                str(root / "train.yaml"),
                "--quiet",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "models:/gwtwin-witness-td@candidate" in out
    assert "mlflow ui --backend-store-uri sqlite:///" in out and "tensorboard --logdir" in out
    assert main(["models", "list", "--workdir", str(work)]) == 0
    out = capsys.readouterr().out
    assert "gwtwin-witness-td" in out and "@candidate" in out
    assert (
        main(["models", "promote", "gwtwin-witness-td", "1", "production", "--workdir", str(work)])
        == 0
    )
    assert main(["models", "list", "--workdir", str(work)]) == 0
    assert "@production" in capsys.readouterr().out
    # errors are reported, not raised
    assert main(["models", "promote", "gwtwin-witness-td", "9", "x", "--workdir", str(work)]) == 2
    assert "not in the registry" in capsys.readouterr().err
    assert main(["models", "list", "--workdir", str(root / "nowhere")]) == 2
    assert "holds no mlflow.db" in capsys.readouterr().err

    from gwtwin.train import load_twin

    twin = load_twin("models:/gwtwin-witness-td@production", work)
    blocks = [read(sim / "frames", [c]).block for c in WITNESSES]
    pred = twin.predict(blocks)
    assert pred.sample_rate == 1024.0 and pred.size > 0
    assert pred.channels == ("V1:Hrec_hoft_4096Hz_PREDICTION",)
    with pytest.raises(MissingChannelError, match="V1:ASC_NE_TX_CORR"):
        twin.predict(blocks[:3])
    with pytest.raises(ChannelOrderError, match="wrong order"):
        twin.predict([blocks[1], blocks[0], *blocks[2:]])


def test_warm_started_retrain_promote_and_rollback(tiny, capsys):
    """A second version warm-started from the first: its learnt parameters start as the
    first's; promoting it records the move, and rollback points production back at v1."""
    from types import SimpleNamespace

    import torch

    from gwtwin.models import build_model
    from gwtwin.train import load_twin, train
    from gwtwin.train.config import load_train_config
    from gwtwin.train.tracking import alias_history, promote, tracking_uri_for
    from gwtwin.train.warm import WarmStartError, warm_start_network

    root, _ = tiny
    work = root / "work"  # written by test_cli_train_list_promote (v1 @production)
    uri = tracking_uri_for(work)
    name = "gwtwin-witness-td"
    v1 = load_twin(f"models:/{name}@production", work)

    # the copy itself: every learnt parameter equal
    arch = v1.metadata["model"]
    fresh = build_model(arch["name"], **arch["kwargs"])
    assert not all(
        torch.equal(p, q) for p, q in zip(fresh.parameters(), v1.network.parameters(), strict=True)
    )
    assert warm_start_network(fresh, v1, v1.spec)["copied"] > 0
    for (n, p), (_, q) in zip(fresh.named_parameters(), v1.network.named_parameters(), strict=True):
        assert torch.equal(p, q), n
    other = SimpleNamespace(feature_names=v1.spec.feature_names[::-1])
    with pytest.raises(WarmStartError, match="trained on features"):
        warm_start_network(fresh, v1, other)

    # a retrain into its own work directory, registered in the same store as @challenger
    cfg = load_train_config(
        root / "train.yaml", {"tracking": {"tracking_uri": uri, "alias": "challenger"}}
    )
    result = train(root / "ds.h5", root / "retrain", cfg, warm_start=v1)
    assert result.version == 2 and result.model_uri == f"models:/{name}@challenger"
    assert alias_history(name, "production", uri) == []
    promote(name, 2, "production", uri)
    assert alias_history(name, "production", uri) == [1]
    assert main(["models", "rollback", name, "--workdir", str(work)]) == 0
    assert "version 2 -> 1" in capsys.readouterr().out
    assert load_twin(f"models:/{name}@production", work).metadata["run_id"] == v1.metadata["run_id"]
    assert alias_history(name, "production", uri) == []
    # nothing earlier to go back to: a named error, not a silent no-op
    assert main(["models", "rollback", name, "--workdir", str(work)]) == 2
    assert "no earlier version is recorded" in capsys.readouterr().err
    assert main(["models", "rollback", "nope", "--workdir", str(work)]) == 2
    assert "no such registered model" in capsys.readouterr().err
