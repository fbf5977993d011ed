"""Per-glitch metadata and veto flags from raw strain, the twin's prediction and cleaned strain.

Everything is compared in whitened strain with one reference whitening, so raw and cleaned
numbers are on the same scale and the SNR of a noise-free prediction is its optimal SNR.

For every strain glitch (a trigger of the raw strain with SNR >= ``snr_threshold``):

- ``snr_before``: the raw trigger's SNR; ``snr_after``: the loudest trigger of the cleaned strain
  overlapping the glitch's ``[tstart, tend]`` (0 when none survives);
- ``predicted_snr``: optimal SNR of the prediction over the glitch, ``|w(raw - cleaned)|``;
- ``residual_snr2``: the largest SNR² (``2 (Z - 1)``, gwtwin's convention for a normalised
  energy ``Z``) of the cleaned strain's Q-image over the glitch, and ``residual_area``: the number
  of Q-image pixels at or above ``snr2_threshold`` (Glitchflow's "N. Pixel");
- ``witnessed``: the witnesses explain it (``predicted_snr >= witnessed_fraction * snr_before``
  and ``>= min_predicted_snr``); ``cleaned``: witnessed and ``residual_area == 0``;
- ``witness``: the channel explaining it, when the caller attributes one.

Flags (``known`` = the analysed span; each glitch marks ``[tstart - pad, tend + pad]``):
``<IFO>:GWTWIN-WITNESSED:1``, ``<IFO>:GWTWIN-CLEANING_FAILED:1`` (witnessed, not cleaned) and
``<IFO>:GWTWIN-UNWITNESSED:1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gwtwin.errors import GwtwinError

#: the veto flags, ``<IFO>:GWTWIN-<NAME>:1`` (:func:`gwtwin.data.channels.flag_name`)
FLAG_NAMES = ("WITNESSED", "CLEANING_FAILED", "UNWITNESSED")
METADATA_COLUMNS = (
    "gps",
    "tstart",
    "tend",
    "frequency",
    "snr_before",
    "snr_after",
    "predicted_snr",
    "residual_snr2",
    "residual_area",
    "witnessed",
    "cleaned",
    "witness",
)


@dataclass(frozen=True)
class VetoConfig:
    """Thresholds of the veto (SNRs are ``sqrt(2 (Z - 1))``; times in s)."""

    snr_threshold: float = 8.0
    snr2_threshold: float = 25.0
    witnessed_fraction: float = 0.5
    min_predicted_snr: float = 4.0
    pad: float = 0.1
    image_duration: float = 32.0
    qrange: tuple[float, float] = (4.0, 32.0)
    frange: tuple[float, float] = (10.0, 1000.0)

    def __post_init__(self):
        for name in ("snr_threshold", "snr2_threshold", "image_duration"):
            if not getattr(self, name) > 0:
                raise GwtwinError(f"{name} must be > 0, found {getattr(self, name)}")
        if not 0 <= self.witnessed_fraction <= 1:
            raise GwtwinError(
                f"witnessed_fraction must be in [0, 1], found {self.witnessed_fraction}"
            )


def _overlap_max(table: np.ndarray, tstart: float, tend: float) -> float:
    if len(table) == 0:
        return 0.0
    hit = (table["tend"] >= tstart) & (table["tstart"] <= tend)
    return float(table["snr"][hit].max()) if hit.any() else 0.0


def _residual_images(w_cleaned, t0, rate, centres, config: VetoConfig, batch: int = 16):
    """Q-images of the cleaned strain around each glitch: ``[(energy [nt, nf], t_first)]``.

    Each image covers ``image_duration`` s centred on the glitch (shifted inside the data at the
    edges); the segments are transformed in batches, so the Q tiling is built once.
    """
    from gwtwin.signal.qimage import qtransform_image

    n = w_cleaned.shape[-1]
    size = int(round(config.image_duration * rate))
    if size > n:
        raise GwtwinError(
            f"the residual Q-image needs {config.image_duration} s ({size} samples) of data, "
            f"found {n / rate:.1f} s"
        )
    starts = np.floor((np.asarray(centres) - config.image_duration / 2 - t0) * rate)
    starts = np.clip(starts.astype(np.int64), 0, n - size)
    data = torch.as_tensor(w_cleaned)
    out = []
    for k in range(0, len(starts), batch):
        seg = torch.stack([data[i : i + size] for i in starts[k : k + batch]])
        image = qtransform_image(
            seg, rate, qrange=config.qrange, frange=config.frange, tres=1 / 64, logf=True, nfreq=128
        )
        for j, i in enumerate(starts[k : k + batch]):
            out.append((image.energy[j].numpy(), image.times + t0 + i / rate))
    return out


def glitch_metadata(
    w_raw,
    w_cleaned,
    t0: float,
    sample_rate: float,
    raw_triggers: np.ndarray,
    cleaned_triggers: np.ndarray,
    config: VetoConfig = VetoConfig(),
    *,
    witness: Mapping[int, str] | Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """The metadata table (columns :data:`METADATA_COLUMNS`), one row per strain glitch.

    Parameters
    ----------
    w_raw, w_cleaned : array ``[time]``
        Raw and cleaned strain whitened with the same reference filter (unit-variance noise).
    t0, sample_rate : float
        GPS of the first sample (s) and rate (Hz).
    raw_triggers, cleaned_triggers : structured arrays
        Triggers (Omicron columns) of the whitened raw and cleaned strain.
    witness : mapping row -> channel, or a list with one channel per glitch, optional
        Attribution of each glitch to a witness channel (``""`` where none).
    """
    w_raw = np.asarray(w_raw, dtype=np.float64)
    w_cleaned = np.asarray(w_cleaned, dtype=np.float64)
    if w_raw.shape != w_cleaned.shape or w_raw.ndim != 1:
        raise GwtwinError(
            f"raw and cleaned must be 1-D of one length, found {w_raw.shape} and {w_cleaned.shape}"
        )
    glitches = np.sort(raw_triggers[raw_triggers["snr"] >= config.snr_threshold], order="time")
    w_pred = w_raw - w_cleaned
    rows: dict[str, list] = {c: [] for c in METADATA_COLUMNS}
    images = _residual_images(w_cleaned, t0, sample_rate, glitches["time"], config)
    for k, trig in enumerate(glitches):
        lo = int(np.floor((trig["tstart"] - config.pad - t0) * sample_rate))
        hi = int(np.ceil((trig["tend"] + config.pad - t0) * sample_rate))
        lo, hi = max(lo, 0), min(hi, w_raw.size)
        predicted = float(np.sqrt(np.sum(w_pred[lo:hi] ** 2))) if hi > lo else 0.0
        energy, times = images[k]
        cols = (times + 1 / 64 >= trig["tstart"] - config.pad) & (
            times <= trig["tend"] + config.pad
        )
        energy = energy[cols]
        snr2 = np.clip(2 * (energy - 1), 0, None)
        witnessed = predicted >= max(
            config.min_predicted_snr, config.witnessed_fraction * float(trig["snr"])
        )
        area = int(np.sum(snr2 >= config.snr2_threshold))
        rows["gps"].append(float(trig["time"]))
        rows["tstart"].append(float(trig["tstart"]))
        rows["tend"].append(float(trig["tend"]))
        rows["frequency"].append(float(trig["frequency"]))
        rows["snr_before"].append(float(trig["snr"]))
        rows["snr_after"].append(_overlap_max(cleaned_triggers, trig["tstart"], trig["tend"]))
        rows["predicted_snr"].append(predicted)
        rows["residual_snr2"].append(float(snr2.max()) if snr2.size else 0.0)
        rows["residual_area"].append(area)
        rows["witnessed"].append(bool(witnessed))
        rows["cleaned"].append(bool(witnessed and area == 0))
        if witness is None:
            rows["witness"].append("")
        elif isinstance(witness, Mapping):
            rows["witness"].append(str(witness.get(k, "")))
        else:
            rows["witness"].append(str(witness[k]))
    out = {c: np.asarray(v) for c, v in rows.items()}
    out["residual_area"] = out["residual_area"].astype(np.int64)
    out["witnessed"] = out["witnessed"].astype(bool)
    out["cleaned"] = out["cleaned"].astype(bool)
    out["witness"] = out["witness"].astype(str)
    return out


def veto_flags(metadata: Mapping[str, np.ndarray], known, ifo: str, pad: float = 0.1):
    """The three gwtwin flags as gwpy ``DataQualityFlag``s (see the module docstring)."""
    from gwtwin.data.channels import flag_name
    from gwtwin.data.flags import make_flag

    known = np.asarray(known, dtype=np.float64).reshape(-1, 2)
    spans = np.stack([metadata["tstart"] - pad, metadata["tend"] + pad], axis=1).reshape(-1, 2)
    spans[:, 0] = np.maximum(spans[:, 0], known[:, 0].min()) if len(known) else spans[:, 0]
    spans[:, 1] = np.minimum(spans[:, 1], known[:, 1].max()) if len(known) else spans[:, 1]
    witnessed = np.asarray(metadata["witnessed"], bool)
    failed = witnessed & ~np.asarray(metadata["cleaned"], bool)
    descriptions = {
        "WITNESSED": "strain glitch predicted from witness channels by the gwtwin model",
        "CLEANING_FAILED": "witnessed glitch whose residual after cleaning is above "
        "the SNR^2 threshold",
        "UNWITNESSED": "strain glitch that no witness channel explains",
    }
    masks = {
        "WITNESSED": witnessed,
        "CLEANING_FAILED": failed,
        "UNWITNESSED": ~witnessed,
    }
    return [
        make_flag(flag_name(ifo, name), spans[masks[name]], known, description=descriptions[name])
        for name in FLAG_NAMES
    ]


def accuracy_curves(metadata: Mapping[str, np.ndarray], thresholds=None) -> dict[str, np.ndarray]:
    """Glitchflow's accuracy curves from the metadata, per SNR² threshold.

    ``veto_accuracy``: share of glitches where "the prediction is above the threshold" agrees
    with "the raw strain is above the threshold"; ``denoising_accuracy``: share of glitches whose
    residual maximum SNR² is below the threshold.
    """
    thresholds = np.arange(1, 51, dtype=float) if thresholds is None else np.asarray(thresholds)
    raw2 = np.asarray(metadata["snr_before"], float) ** 2
    pred2 = np.asarray(metadata["predicted_snr"], float) ** 2
    resid2 = np.asarray(metadata["residual_snr2"], float)
    if raw2.size == 0:
        nan = np.full(thresholds.shape, np.nan)
        return {"threshold": thresholds, "veto_accuracy": nan, "denoising_accuracy": nan}
    veto = np.array([np.mean((pred2 >= t) == (raw2 >= t)) for t in thresholds])
    denoise = np.array([np.mean(resid2 < t) for t in thresholds])
    return {"threshold": thresholds, "veto_accuracy": veto, "denoising_accuracy": denoise}
