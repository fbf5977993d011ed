"""Training end to end on small synthetic sets: learning, best checkpoint, resume, MLflow
registry round trip, TensorBoard panels, TwinModel inference and its refusals."""

import json

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from torch import nn

from gwtwin.data import Block, MissingChannelError, SampleRateMismatchError
from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.models import TwinModel
from gwtwin.models.twin import ModelSpecMismatchError
from gwtwin.signal.conditioning import ChannelOrderError, condition_witnesses
from gwtwin.train import (
    evaluate_twin,
    list_models,
    load_train_config,
    load_twin,
    pip_requirements,
    promote,
    train,
)

from .conftest import RATE, SMALL_TD, T0, TARGET, WINDOW, coupling, small_config


@pytest.fixture(scope="module")
def trained(ts_dataset, tmp_path_factory):
    path, spec, raw = ts_dataset
    workdir = tmp_path_factory.mktemp("train-work")
    torch.set_num_threads(1)
    result = train(path, workdir, small_config(max_epochs=6))
    return result, workdir


def _history(result, key):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=result.tracking_uri)
    return client.get_metric_history(result.run_id, key)


def test_training_learns_the_coupling(trained):
    result, _ = trained
    m = result.metrics
    # truth = 0.8 a(t - 3) + 0.6 a b with unit-variance a and noise 0.5: a model that learnt it
    # removes most of the truth power; predicting zero would give 0, the noise floor alone
    # (no learning) cannot exceed it
    assert m["removed_glitch"] > 0.8 and m["removed"] > 0.8
    assert m["residual_snr_median"] < 0.45 * m["truth_snr_median"]
    # the validation loss approaches the noise variance 0.25 (residual SNR^2 per sample)
    assert 0.2 < m["loss"] < 0.45
    losses = [h.value for h in _history(result, "val_loss")]
    assert losses[-1] < losses[0]
    assert result.windows_per_second > 0 and result.seconds_per_epoch > 0


def test_best_checkpoint_has_lowest_val_loss(trained):
    result, _ = trained
    losses = [h.value for h in _history(result, "val_loss")]
    assert result.best_val_loss == pytest.approx(min(losses), rel=1e-6)
    ckpt = torch.load(result.best_checkpoint, map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == int(np.argmin(losses))
    # the model handed back (and registered) is the best one, not the last one
    assert result.metrics["loss"] == pytest.approx(min(losses), rel=1e-4)


class _Scripted(L.LightningModule):
    """Logs a scripted val_loss per epoch: 3, 1, 2 -> the best is epoch 1."""

    script = (3.0, 1.0, 2.0)

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return (self.w - 1).pow(2).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.script[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.zeros(2, 1), batch_size=1)

    def val_dataloader(self):
        return torch.utils.data.DataLoader(torch.zeros(1, 1), batch_size=1)


def test_checkpoint_rule_keeps_minimum_not_last(tmp_path):
    from gwtwin.train.trainer import checkpoint_callbacks

    cb, last = checkpoint_callbacks(tmp_path)
    trainer = L.Trainer(
        max_epochs=3,
        callbacks=[cb, last],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(_Scripted())
    assert cb.best_model_score == 1.0
    assert torch.load(cb.best_model_path, weights_only=False)["epoch"] == 1
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["epoch"] == 2


def test_registry_model_reproduces_logged_numbers(trained, ts_dataset):
    result, workdir = trained
    assert result.model_uri == "models:/gwtwin-witness-td@candidate"
    twin = load_twin(result.model_uri, workdir)
    assert twin.channels == ["X1:WIT_A", "X1:WIT_B"]
    assert twin.sample_rates == {"X1:WIT_A": 256.0, "X1:WIT_B": 128.0}
    again = evaluate_twin(twin, ts_dataset[0])
    from mlflow import MlflowClient

    logged = MlflowClient(tracking_uri=result.tracking_uri).get_run(result.run_id).data.metrics
    for key in ("loss", "removed_glitch", "removed_glitch_median", "residual_snr_median"):
        assert again[key] == pytest.approx(logged[f"best_val_{key}"], rel=1e-6, abs=1e-9)
    # what was logged: provenance params, config, requirements pinned without a bare torch
    run = MlflowClient(tracking_uri=result.tracking_uri).get_run(result.run_id)
    assert run.data.params["dataset.strain_channel"] == "X1:STRAIN"
    assert json.loads(run.data.params["channels"]) == ["X1:WIT_A", "X1:WIT_B"]
    reqs = pip_requirements()
    assert any(r.startswith("torch==") for r in reqs) and "torch" not in reqs
    assert all("+" not in r for r in reqs)
    assert (workdir / "mlflow.db").is_file() and (workdir / "mlartifacts").is_dir()
    # the quiet windows' ASD ratio is logged like the other numbers
    assert again["quiet_asd_ratio_max"] >= again["quiet_asd_ratio_median"] > 0
    assert logged["best_val_quiet_asd_ratio_median"] == pytest.approx(
        again["quiet_asd_ratio_median"], rel=1e-6
    )
    # the witness gate's choice: no linear stage here (linear_taps 0), so auto gates nothing
    gate = result.witness_gate
    assert gate["mode"] == "auto" and gate["gated"] == []
    assert gate["reason"] == "no linear stage to score the gate with"
    assert json.loads(run.data.params["witness_gate.gated"]) == []
    saved = json.loads((workdir / "result.json").read_text())["witness_gate"]
    assert saved["witnesses"]["X1:WIT_A"]["gated"] is False
    local = MlflowClient(tracking_uri=result.tracking_uri).download_artifacts(
        result.run_id, "witness-gate.json", str(workdir)
    )
    assert json.loads(open(local).read())["reason"] == gate["reason"]


def test_models_list_and_promote(trained):
    result, _ = trained
    rows = list_models(result.tracking_uri)
    assert [(r["name"], r["version"], r["aliases"]) for r in rows] == [
        ("gwtwin-witness-td", 1, ["candidate"])
    ]
    assert rows[0]["metrics"]["best_val_loss"] == pytest.approx(result.metrics["loss"])
    promote("gwtwin-witness-td", 1, "production", result.tracking_uri)
    assert list_models(result.tracking_uri)[0]["aliases"] == ["candidate", "production"]
    with pytest.raises(
        GwtwinError, match=r"cannot promote gwtwin-witness-td version 7 .* \(versions \[1\]\)"
    ):
        promote("gwtwin-witness-td", 7, "production", result.tracking_uri)
    with pytest.raises(GwtwinError, match="no such registered model"):
        promote("nope", 1, "production", result.tracking_uri)


def test_tensorboard_has_losses_lr_and_panels(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result, _ = trained
    acc = EventAccumulator(result.tensorboard_dir, size_guidance={"images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"train_loss_epoch", "val_loss", "val_removed_glitch"} <= set(tags["scalars"])
    assert any(t.startswith("lr-") for t in tags["scalars"])
    assert "validation/qspectrograms" in tags["images"]
    assert len(acc.Images("validation/qspectrograms")) == result.epochs


def test_resume_continues_from_checkpoint(trained, ts_dataset, tmp_path):
    result, _ = trained
    last = result.best_checkpoint.replace("best.ckpt", "last.ckpt")
    resumed = train(ts_dataset[0], tmp_path, small_config(max_epochs=7), resume=last)
    assert resumed.epochs == 7  # 6 done before, one more now
    assert len(_history(resumed, "val_loss")) == 1
    with pytest.raises(GwtwinError, match="checkpoint to resume from, .*nope.ckpt, does not exist"):
        train(ts_dataset[0], tmp_path, small_config(), resume=tmp_path / "nope.ckpt")


def test_predict_on_raw_witnesses_uses_the_window_framing(trained):
    result, _ = trained
    twin = result.twin
    _, a, b = (None, *trained_raw())
    pred = twin.predict([a, b])
    feats = condition_witnesses([a, b], twin.spec)
    # first output sample: the conditioning edge plus the window margin after the data start
    offset = twin.edge_size + twin.margin
    assert pred.t0_ns == T0 * 10**9 + round(offset / RATE * 1e9)
    assert pred.size == feats.shape[-1] - 2 * offset
    # the k-th target part is the network's output on the k-th window
    for k in (0, 3):
        s = twin.edge_size + k * twin.target_size
        ref = twin.network(feats[None, :, s : s + twin.window_size])[0].detach()
        got = pred.data[0, k * twin.target_size : (k + 1) * twin.target_size]
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    # and it predicts the coupling: most of the truth's power is explained
    truth = coupling(feats)[offset : offset + pred.size].float()
    resid = ((truth - pred.data[0]) ** 2).sum() / (truth**2).sum()
    assert float(resid) < 0.2
    strain = twin.predict([a, b], units="strain")
    assert strain.sample_rate == 512.0 and strain.units == ("strain",)


def trained_raw():
    from .conftest import raw_blocks

    _, a, b = raw_blocks(seed=11, duration=40)
    return a, b


def test_predict_refuses_bad_witness_data(trained):
    twin = trained[0].twin
    a, b = trained_raw()
    with pytest.raises(MissingChannelError, match=r"\['X1:WIT_B'\] are missing"):
        twin.predict([a])
    with pytest.raises(ChannelOrderError, match="wrong order: expected"):
        twin.predict([b, a])
    fast = Block.create(np.zeros(40 * 256), T0, 256, "X1:WIT_B", ["urad"])
    with pytest.raises(
        SampleRateMismatchError,
        match="X1:WIT_B is at 256 Hz, the conditioning expects its native rate 128 Hz",
    ):
        twin.predict([a, fast])
    with pytest.raises(GwtwinError, match="expected at least .* s of witness data"):
        twin.predict([a.isel(0, 256 * 6), b.isel(0, 128 * 6)])
    with pytest.raises(GwtwinError, match="units must be 'whitened' or 'strain'"):
        twin.predict([a, b], units="volts")
    with pytest.raises(ModelSpecMismatchError, match=r"expected windows \[N, 2, \.\.\.\]"):
        twin.predict_windows(torch.zeros(1, 3, 1024))
    with pytest.raises(
        ModelSpecMismatchError, match="network takes 2 input rows but the conditioning makes 3"
    ):
        spec = twin.spec.from_dict(twin.spec.to_dict())
        spec.witnesses[0].features.append("extra")
        TwinModel(twin.network, spec, window_duration=WINDOW, target_duration=TARGET)


def test_train_config_errors(ts_dataset, qimage_dataset, tmp_path):
    with pytest.raises(
        ConfigError, match=r"optimizer.lrr: unknown key \(allowed here: betas, lr, weight_decay"
    ):
        load_train_config({"optimizer": {"lrr": 1}})
    with pytest.raises(ConfigError, match="batch_size: Input should be greater than or equal"):
        load_train_config({"batch_size": 0})
    with pytest.raises(ConfigError, match="does not exist"):
        load_train_config(tmp_path / "missing.yaml")
    # a run config serves too: its train: section
    run = tmp_path / "run.yaml"
    run.write_text("dataset: {stride: 2.0}\ntrain: {max_epochs: 3, optimizer: {lr: 0.01}}\n")
    cfg = load_train_config(run, {"optimizer": {"weight_decay": 0.5}})
    assert cfg.max_epochs == 3 and cfg.optimizer.lr == 0.01 and cfg.optimizer.weight_decay == 0.5
    with pytest.raises(
        ConfigError,
        match="model 'witness_td' trains on 'timeseries' datasets but .* holds 'qimage' windows",
    ):
        train(qimage_dataset, tmp_path, small_config(), model="witness_td")
    with pytest.raises(
        ModelSpecMismatchError,
        match=r"model_kwargs.window_duration=2.0 "
        r"disagrees with the dataset \(4.0\)",
    ):
        train(
            ts_dataset[0], tmp_path, small_config(model_kwargs={**SMALL_TD, "window_duration": 2.0})
        )


def test_trainer_keys_reach_lightning(ts_dataset, tmp_path):
    """strategy / accelerator go to lightning.Trainer unchanged: Lightning itself names them."""
    cfg = small_config(trainer={"accelerator": "cpu", "strategy": "no-such-strategy"})
    with pytest.raises(ValueError, match="no-such-strategy"):
        train(ts_dataset[0], tmp_path, cfg)
    cfg = small_config(trainer={"accelerator": "no-such-device"})
    with pytest.raises(ValueError, match="no-such-device"):
        train(ts_dataset[0], tmp_path, cfg)


def test_every_example_config_validates():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "configs"
    for path in sorted(root.glob("train-*.yaml")):
        cfg = load_train_config(path)
        assert yaml.safe_load(cfg.dump()) == cfg.model_dump(mode="json")


def test_qimage_model_trains_and_reports_veto_accuracy(qimage_dataset, tmp_path):
    cfg = small_config(
        max_epochs=3, model_kwargs={"base_channels": 4, "depth": 2}, veto_thresholds=[5, 30]
    )
    result = train(qimage_dataset, tmp_path, cfg)
    assert result.model_uri == "models:/gwtwin-qimage-unet@candidate"
    m = result.metrics
    assert set(m) >= {"loss", "veto_accuracy_5", "veto_accuracy_30"}
    assert all(0.0 <= m[f"veto_accuracy_{t}"] <= 1.0 for t in (5, 30))
    twin = load_twin(result.model_uri, tmp_path)
    assert twin.kind == "qimage"
    again = evaluate_twin(twin, qimage_dataset, thresholds=[5, 30])
    assert again["veto_accuracy_30"] == pytest.approx(m["veto_accuracy_30"])
    with pytest.raises(GwtwinError, match="only the time-domain family can"):
        twin.predict([])


def test_output_filter_starts_as_the_whitening_filter(ts_dataset):
    from gwtwin.models import build_model
    from gwtwin.signal import design_fir
    from gwtwin.train.network import _whitening_taps

    spec = ts_dataset[1]
    taps = _whitening_taps(spec)
    f = torch.tensor(spec.psd_frequencies, dtype=torch.float64)
    p = torch.tensor(spec.psd_values, dtype=torch.float64)
    ref = design_fir((f, p), RATE, spec.fduration, spec.highpass, nfft=spec.nfft)
    torch.testing.assert_close(taps, ref)
    net = build_model(
        "witness_td",
        in_channels=2,
        sample_rate=RATE,
        window_duration=WINDOW,
        target_duration=TARGET,
        **SMALL_TD,
    )
    net.set_output_filter(taps)
    fir = net.fir.detach().double()
    peak = int(taps.abs().argmax())
    half = fir.shape[-1] // 2
    torch.testing.assert_close(
        fir[0], (taps / taps.abs().max())[peak - half : peak + half + 1].float().double()
    )
