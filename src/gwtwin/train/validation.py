"""Post-fit validation of a twin through the path a registry load takes.

:func:`evaluate_twin` runs :meth:`TwinModel.predict_windows` (conditioned windows in, central
parts out) over a dataset split and scores it like training does, so the numbers logged as
``best_val_*`` are those of the model that inference will load, not of the LightningModule.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gwtwin.dataset import WindowDataset
from gwtwin.models import TwinModel
from gwtwin.models.twin import ModelSpecMismatchError
from gwtwin.train.losses import qimage_loss, whitened_mse
from gwtwin.train.metrics import (
    QuietASDRatio,
    excess_power_metrics,
    veto_accuracy,
    window_power,
)


def evaluate_twin(
    twin: TwinModel,
    dataset: str | Path,
    split: str = "valid",
    *,
    batch_size: int = 32,
    thresholds=(1, 2, 5, 10, 16, 20, 30, 50),
) -> dict[str, float]:
    """Validation numbers of a twin on a dataset split, through :meth:`TwinModel.predict_windows`.

    Time series: ``loss`` (whitened MSE on the central parts, the training loss without the
    optional ASD term), ``quiet_asd_ratio_max`` / ``_median`` (the cleaned/raw ASD ratio of the
    windows without a strain glitch, 10 Hz to 0.9 x Nyquist,
    :class:`~gwtwin.train.metrics.QuietASDRatio`; absent without quiet windows) and, with
    truth, the excess-power metrics (:func:`~gwtwin.train.metrics.excess_power_metrics`).
    Q-images: ``loss`` (L1 0.8 + (1 - SSIM) 0.2) and ``veto_accuracy_<t>`` per threshold.
    """
    ds = WindowDataset(dataset, split, return_truth=False)
    if ds.kind != twin.kind:
        raise ModelSpecMismatchError(
            f"dataset {dataset} holds {ds.kind!r} windows but the model is {twin.kind!r}"
        )
    if ds.feature_names != twin.spec.feature_names:
        raise ModelSpecMismatchError(
            f"dataset features {ds.feature_names} differ from the model's {twin.spec.feature_names}"
        )
    n = len(ds)
    sq, count = 0.0, 0
    errors, powers, preds, reals = [], [], [], []
    m = twin.margin
    quiet = QuietASDRatio(ds.sample_rate)
    glitch = torch.as_tensor(ds.glitch, dtype=torch.bool)
    for lo in range(0, n, batch_size):
        idx = slice(lo, min(lo + batch_size, n))
        witness = ds.read("witness", idx)
        target = ds.read("target", idx)
        pred = twin.predict_windows(witness, batch_size=batch_size)
        if twin.kind == "timeseries":
            t = target[:, m : target.shape[-1] - m]
            sq += float(whitened_mse(pred, t)) * t.numel()
            count += t.numel()
            calm = ~glitch[idx]
            quiet.add(t[calm], pred[calm])
            if ds.has_truth:
                truth = ds.read("truth", idx)[:, m : target.shape[-1] - m]
                e, p = window_power(truth, pred)
                errors.append(e)
                powers.append(p)
        else:
            sq += float(qimage_loss(pred, target)) * target.shape[0]
            count += target.shape[0]
            preds.append(pred)
            reals.append(target)
    out: dict[str, float] = {"loss": sq / max(count, 1), "n_windows": float(n)}
    out.update(quiet.summary())
    if errors:
        metrics = excess_power_metrics(torch.cat(errors), torch.cat(powers), ds.glitch)
        out.update({k: float(v) for k, v in metrics.items()})
    if preds:
        acc = veto_accuracy(torch.cat(preds), torch.cat(reals), thresholds)
        out.update({f"veto_accuracy_{t:g}": v for t, v in acc.items()})
    ds.close()
    return out
