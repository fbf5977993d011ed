"""LightningModules: one per model family.  The architecture is a plain ``nn.Module`` passed in
(the same network serves training, offline inference and the online service); the module owns
the loss, the validation metrics and the optimiser."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn

from gwtwin.train.config import TrainConfig
from gwtwin.train.losses import asd_ratio, cosine_warmup, qimage_loss, whitened_mse
from gwtwin.train.metrics import excess_power_metrics, veto_accuracy, window_power


class _Base(L.LightningModule):
    def __init__(self, net: nn.Module, config: TrainConfig, hparams: dict | None = None):
        super().__init__()
        self.net = net
        self.config = config
        self.save_hyperparameters({"train": config.model_dump(mode="json"), **(hparams or {})})
        self._val: dict[str, list[torch.Tensor]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self):
        opt_cfg, sch = self.config.optimizer, self.config.scheduler
        opt = torch.optim.AdamW(
            self.net.parameters(),
            lr=opt_cfg.lr,
            weight_decay=opt_cfg.weight_decay,
            betas=opt_cfg.betas,
        )
        if sch.name == "none":
            return opt
        if sch.name == "plateau":
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="min", factor=sch.factor, patience=sch.patience
            )
            return {
                "optimizer": opt,
                "lr_scheduler": {"scheduler": plateau, "monitor": "val_loss", "interval": "epoch"},
            }
        max_epochs = self.config.max_epochs

        def multiplier(epoch: int) -> float:
            return cosine_warmup(epoch, max_epochs, sch.warmup_epochs, sch.min_lr_ratio)

        cosine = torch.optim.lr_scheduler.LambdaLR(opt, multiplier)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": cosine, "interval": "epoch"}}

    def _stash(self, **values: torch.Tensor) -> None:
        for key, value in values.items():
            self._val.setdefault(key, []).append(value.detach())

    def _gathered(self) -> dict[str, torch.Tensor]:
        out = {}
        for key, parts in self._val.items():
            local = torch.cat(parts)
            if self.trainer is not None and self.trainer.world_size > 1:
                local = self.all_gather(local).reshape(-1, *local.shape[1:])
            out[key] = local.cpu()
        self._val = {}
        return out


class TimeDomainModule(_Base):
    """Time-domain family: MSE in whitened units on the central part of each window (residual
    SNR^2 per sample), plus ``loss.asd_weight`` x the ASD ratio.  Validation logs ``val_loss``
    and, when the dataset has truth, the fraction of witnessed excess power removed
    (``val_removed_glitch``, ``val_removed_glitch_median``, ``val_removed``) and the residual
    SNR (``val_residual_snr_median``)."""

    def _crop(self, x: torch.Tensor) -> torch.Tensor:
        m = self.net.margin
        return x[..., m : x.shape[-1] - m]

    def _loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = whitened_mse(pred, target)
        lc = self.config.loss
        if lc.asd_weight:
            loss = loss + lc.asd_weight * asd_ratio(
                pred, target, self.net.sample_rate, lc.asd_band, lc.asd_fftlength
            )
        return loss

    def training_step(self, batch, batch_idx):
        pred = self.net(batch["witness"])
        loss = self._loss(pred, self._crop(batch["target"]))
        self.log(
            "train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=pred.shape[0]
        )
        return loss

    def validation_step(self, batch, batch_idx):
        pred = self.net(batch["witness"])
        target = self._crop(batch["target"])
        loss = self._loss(pred, target)
        self.log(
            "val_loss", loss, on_epoch=True, prog_bar=True, sync_dist=True, batch_size=pred.shape[0]
        )
        if "truth" in batch:
            error, power = window_power(self._crop(batch["truth"]), pred)
            self._stash(error=error, power=power, glitch=batch["glitch"])

    def on_validation_epoch_end(self) -> None:
        got = self._gathered()
        if "error" not in got or self.trainer.sanity_checking:
            return
        metrics = excess_power_metrics(got["error"], got["power"], got["glitch"])
        for key in ("removed", "removed_glitch", "removed_glitch_median", "residual_snr_median"):
            value = metrics[key]
            if value == value:  # not NaN
                self.log(f"val_{key}", value, prog_bar=key == "removed_glitch")


class QImageModule(_Base):
    """Q-image family: ``l1_weight`` x L1 + ``ssim_weight`` x (1 - SSIM); validation logs
    ``val_loss`` and the veto accuracy at each of ``veto_thresholds``
    (``val_veto_accuracy_<threshold>``)."""

    def _loss(self, pred, target):
        lc = self.config.loss
        return qimage_loss(pred, target, lc.l1_weight, lc.ssim_weight)

    def training_step(self, batch, batch_idx):
        pred = self.net(batch["witness"])
        loss = self._loss(pred, batch["target"])
        self.log(
            "train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=pred.shape[0]
        )
        return loss

    def validation_step(self, batch, batch_idx):
        pred = self.net(batch["witness"])
        loss = self._loss(pred, batch["target"])
        self.log(
            "val_loss", loss, on_epoch=True, prog_bar=True, sync_dist=True, batch_size=pred.shape[0]
        )
        self._stash(pred=pred, real=batch["target"])

    def on_validation_epoch_end(self) -> None:
        got = self._gathered()
        if "pred" not in got or self.trainer.sanity_checking:
            return
        acc = veto_accuracy(got["pred"], got["real"], self.config.veto_thresholds)
        for threshold, value in acc.items():
            self.log(f"val_veto_accuracy_{threshold:g}", value)
