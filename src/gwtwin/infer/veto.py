"""Per-glitch metadata and veto flags from raw strain, the twin's prediction and cleaned strain.

Everything is compared in whitened strain with one reference whitening (unit-variance noise), so
raw and cleaned numbers are on the same scale, a waveform's norm is its optimal SNR and a sum of
squares is an energy in SNR² units.

For every strain glitch (a trigger of the raw strain with SNR >= ``snr_threshold``), over its span
``[tstart - pad, tend + pad]``, with ``w_raw``, ``w_cleaned`` the whitened strain and
``Δ = w_raw - w_cleaned`` the subtraction that was applied:

- ``snr_before``: the raw trigger's SNR; ``snr_after``: the loudest trigger of the cleaned strain
  overlapping the glitch's ``[tstart, tend]`` (0 when none survives);
- ``predicted_snr``: the applied subtraction's optimal SNR ``|Δ|`` (0 where it is at the level of
  float rounding, ``|Δ| <= 1e-6 |w_raw|``: raw and cleaned strain whitened apart where nothing
  was subtracted);
- ``power_before = Σ w_raw²``, ``power_after = Σ w_cleaned²`` and ``power_removed`` = their
  difference (``= 2 <w_raw, Δ> - |Δ|²``);
- ``removed_sigma = power_removed / (2 |Δ|)`` (0 where ``|Δ| = 0``): if the subtraction were
  unrelated to the strain noise, ``power_removed`` would have mean ``-|Δ|²`` and standard
  deviation ``2 |Δ|``, so this is the drop's significance in standard deviations of the noise;
- ``attempted_snr``: sqrt of the energy the model *tried* to subtract over the span, before the
  cleaning's subtraction decision (the caller's ``attempted`` energies, in the model's own
  whitening; ``|Δ|`` when not given);
- ``residual_snr2``: the largest SNR² (``2 (Z - 1)``, gwtwin's convention for a normalised
  energy ``Z``) of the cleaned strain's Q-image over the glitch, and ``residual_area``: the number
  of Q-image pixels at or above ``snr2_threshold`` (Glitchflow's "N. Pixel");
- ``witnessed``: the prediction *explains* a significant part of the glitch's power,
  ``removed_sigma >= margin_sigma`` and ``power_removed >= max(min_predicted_snr²,
  (witnessed_fraction · snr_before)²)`` (``witnessed_fraction`` is a share of SNR, so its square
  is a share of power: 0.5 asks for a quarter of the glitch's power); ``cleaned``: witnessed and
  ``residual_area == 0``;
- ``outcome``, one word: ``cleaned``; ``residual`` (witnessed, residual left); and for the glitches
  not witnessed, ``unwitnessed`` (``attempted_snr < max(min_predicted_snr, witnessed_fraction ·
  snr_before)``: the model did not try to explain the glitch; a steady coupling's prediction
  running through a loud blip is not an attempt at the blip), ``withheld`` (attempted, but what
  was subtracted is below half the attempted energy, both in the model's whitening: the
  cleaning's decision did not subtract it) or ``not_improved`` (attempted and subtracted without
  a significant drop in power: this includes glitches made worse);
- ``change``: ``improved`` when ``power_removed`` exceeds the margin, ``worsened`` when
  ``-power_removed`` does, else ``untouched``: the truth-free verdict per glitch.  The margin is
  ``max(margin_sigma · 2 |Δ|, change_tolerance · power_before)``: significant (at the default 3
  sigma a subtraction unrelated to the glitch is called improved or worsened by chance in
  ~0.1 % of glitches, the Gaussian tail) and material (by default 1 % of the glitch's power,
  0.5 % of its SNR: a loud glitch's power moves by a few SNR² when the whitening-filter tail of
  a subtraction a second away, of norm ~0.1, happens to line up with it, which no search
  could tell from the glitch itself);
- ``witness``: the channel explaining it, when the caller attributes one.

Flags (``known`` = the analysed span; each glitch marks ``[tstart - pad, tend + pad]``):
``<IFO>:GWTWIN-WITNESSED:1`` (witnessed), ``<IFO>:GWTWIN-CLEANING_FAILED:1`` (a glitch the model
tried and did not improve, or whose residual is above the SNR² threshold: outcome ``residual``,
``withheld`` or ``not_improved``) and ``<IFO>:GWTWIN-UNWITNESSED:1`` (not witnessed: no witness
explains it; the tried-and-failed glitches, ``withheld`` and ``not_improved``, are in both
CLEANING_FAILED and UNWITNESSED).
"""

from __future__ import annotations

import math
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
    "power_before",
    "power_after",
    "power_removed",
    "removed_sigma",
    "attempted_snr",
    "outcome",
    "change",
)
#: the per-glitch outcomes (column ``outcome``), see the module docstring
OUTCOMES = ("cleaned", "residual", "withheld", "not_improved", "unwitnessed")
#: the outcomes of the CLEANING_FAILED flag: tried and not improved, or residual left
FAILED_OUTCOMES = ("residual", "withheld", "not_improved")
#: the truth-free per-glitch verdicts (column ``change``)
CHANGES = ("improved", "worsened", "untouched")
#: a subtraction below this share of the raw strain's norm over a glitch is float rounding
ROUNDING = 1e-6


@dataclass(frozen=True)
class VetoConfig:
    """Thresholds of the veto (SNRs are ``sqrt(2 (Z - 1))``; times in s).

    ``witnessed_fraction`` is a share of the glitch's SNR (its square, of its power) that the
    prediction must remove; ``margin_sigma`` the significance (standard deviations of the noise)
    a drop or rise of power must exceed to count, and ``change_tolerance`` the share of the
    glitch's power it must exceed too (see the module docstring).
    """

    snr_threshold: float = 8.0
    snr2_threshold: float = 25.0
    witnessed_fraction: float = 0.5
    min_predicted_snr: float = 4.0
    pad: float = 0.1
    image_duration: float = 32.0
    qrange: tuple[float, float] = (4.0, 32.0)
    frange: tuple[float, float] = (10.0, 1000.0)
    margin_sigma: float = 3.0
    change_tolerance: float = 0.01

    def __post_init__(self):
        for name in ("snr_threshold", "snr2_threshold", "image_duration"):
            if not getattr(self, name) > 0:
                raise GwtwinError(f"{name} must be > 0, found {getattr(self, name)}")
        if not self.margin_sigma >= 0:
            raise GwtwinError(f"margin_sigma must be >= 0, found {self.margin_sigma}")
        if not 0 <= self.change_tolerance < 1:
            raise GwtwinError(
                f"change_tolerance must be in [0, 1) (a share of a glitch's power), found "
                f"{self.change_tolerance}"
            )
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


def _per_glitch(values, k: int, default):
    """Entry ``k`` of a per-glitch mapping (row -> value) or sequence, else ``default``."""
    if values is None:
        return default
    if isinstance(values, Mapping):
        return values.get(k, default)
    return values[k]


def power_change(w_raw, w_cleaned) -> dict[str, float]:
    """The whitened power of one glitch span before and after cleaning and its significance.

    ``power_before = Σ w_raw²``, ``power_after = Σ w_cleaned²``, ``power_removed`` = their
    difference (computed as ``2 <w_raw, Δ> - |Δ|²``, free of the cancellation of two large
    sums), ``norm = |Δ|`` of the applied subtraction ``Δ = w_raw - w_cleaned`` and
    ``removed_sigma = power_removed / (2 |Δ|)`` (0 where ``|Δ| = 0``): for a subtraction
    unrelated to unit-variance noise, ``power_removed`` has mean ``-|Δ|²`` and standard
    deviation ``2 |Δ|``. A subtraction at the level of float rounding (``|Δ| <=``
    :data:`ROUNDING` ``· |w_raw|``: raw and cleaned strain whitened apart, where nothing was
    subtracted) counts as none: norm, power_removed and removed_sigma 0.
    """
    w_raw = np.asarray(w_raw, np.float64)
    w_cleaned = np.asarray(w_cleaned, np.float64)
    delta = w_raw - w_cleaned
    before = float(np.sum(w_raw**2))
    after = float(np.sum(w_cleaned**2))
    norm = float(np.sqrt(np.sum(delta**2)))
    if norm <= ROUNDING * math.sqrt(before):
        norm, removed = 0.0, 0.0
    else:
        removed = float(2 * np.dot(w_raw, delta)) - norm**2
    return {
        "power_before": before,
        "power_after": after,
        "power_removed": removed,
        "norm": norm,
        "removed_sigma": removed / (2 * norm) if norm > 0 else 0.0,
    }


def power_verdict(
    power_removed: float,
    norm: float,
    margin_sigma: float,
    power_before: float = 0.0,
    tolerance: float = 0.0,
) -> str:
    """``improved`` when ``power_removed`` exceeds ``max(margin_sigma · 2 norm, tolerance ·
    power_before)``, ``worsened`` when ``-power_removed`` does, else ``untouched`` (``norm =
    |Δ|``, see :func:`power_change`)."""
    margin = max(margin_sigma * 2 * norm, tolerance * power_before)
    if power_removed > margin:
        return "improved"
    if -power_removed > margin:
        return "worsened"
    return "untouched"


def _outcome(norm, attempted, applied, witnessed, area, snr, config) -> str:
    """The outcome of one glitch (module docstring): ``norm = |Δ|`` of the applied subtraction,
    ``attempted`` the energy (SNR²) the model tried to subtract, ``applied`` the energy it did
    subtract in the same (the model's) whitening (None: ``norm²``), ``snr`` the glitch's."""
    if witnessed:
        return "cleaned" if area == 0 else "residual"
    tried = max(config.min_predicted_snr, config.witnessed_fraction * snr)
    if math.sqrt(max(attempted, 0.0)) < tried:
        return "unwitnessed"
    done = norm**2 if applied is None else applied
    return "withheld" if done < 0.5 * attempted else "not_improved"


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
    attempted: Mapping[int, float] | Sequence[float] | None = None,
    applied: Mapping[int, float] | Sequence[float] | None = None,
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
    attempted : mapping row -> energy, or a list with one energy per glitch, optional
        Whitened energy (SNR²) the model tried to subtract over each glitch's padded span before
        the cleaning's subtraction decision; default (and for rows a mapping lacks) the applied
        ``|Δ|²``.
    applied : mapping row -> energy, or a list, optional
        The energy actually subtracted over each span in the same whitening as ``attempted``
        (what ``withheld`` compares with ``attempted``); default ``|Δ|²``.
    """
    w_raw = np.asarray(w_raw, dtype=np.float64)
    w_cleaned = np.asarray(w_cleaned, dtype=np.float64)
    if w_raw.shape != w_cleaned.shape or w_raw.ndim != 1:
        raise GwtwinError(
            f"raw and cleaned must be 1-D of one length, found {w_raw.shape} and {w_cleaned.shape}"
        )
    glitches = np.sort(raw_triggers[raw_triggers["snr"] >= config.snr_threshold], order="time")
    rows: dict[str, list] = {c: [] for c in METADATA_COLUMNS}
    images = _residual_images(w_cleaned, t0, sample_rate, glitches["time"], config)
    for k, trig in enumerate(glitches):
        lo = int(np.floor((trig["tstart"] - config.pad - t0) * sample_rate))
        hi = int(np.ceil((trig["tend"] + config.pad - t0) * sample_rate))
        lo, hi = max(lo, 0), min(hi, w_raw.size)
        lo = min(lo, hi)
        p = power_change(w_raw[lo:hi], w_cleaned[lo:hi])
        removed, norm, sigma = p["power_removed"], p["norm"], p["removed_sigma"]
        tried = _per_glitch(attempted, k, None)
        tried = norm**2 if tried is None else float(tried)
        energy, times = images[k]
        cols = (times + 1 / 64 >= trig["tstart"] - config.pad) & (
            times <= trig["tend"] + config.pad
        )
        energy = energy[cols]
        snr2 = np.clip(2 * (energy - 1), 0, None)
        need = max(config.min_predicted_snr, config.witnessed_fraction * float(trig["snr"])) ** 2
        witnessed = sigma >= config.margin_sigma and removed >= need
        area = int(np.sum(snr2 >= config.snr2_threshold))
        rows["gps"].append(float(trig["time"]))
        rows["tstart"].append(float(trig["tstart"]))
        rows["tend"].append(float(trig["tend"]))
        rows["frequency"].append(float(trig["frequency"]))
        rows["snr_before"].append(float(trig["snr"]))
        rows["snr_after"].append(_overlap_max(cleaned_triggers, trig["tstart"], trig["tend"]))
        rows["predicted_snr"].append(norm)
        rows["residual_snr2"].append(float(snr2.max()) if snr2.size else 0.0)
        rows["residual_area"].append(area)
        rows["witnessed"].append(bool(witnessed))
        rows["cleaned"].append(bool(witnessed and area == 0))
        rows["witness"].append(str(_per_glitch(witness, k, "")))
        for col in ("power_before", "power_after", "power_removed", "removed_sigma"):
            rows[col].append(p[col])
        rows["attempted_snr"].append(math.sqrt(max(tried, 0.0)))
        done = _per_glitch(applied, k, None)
        outcome = _outcome(norm, tried, done, witnessed, area, float(trig["snr"]), config)
        rows["outcome"].append(outcome)
        rows["change"].append(
            power_verdict(
                removed, norm, config.margin_sigma, p["power_before"], config.change_tolerance
            )
        )
    out = {c: np.asarray(v) for c, v in rows.items()}
    return typed_metadata(out)


def typed_metadata(out: dict) -> dict[str, np.ndarray]:
    """The metadata columns with their types (an empty table included)."""
    for col in METADATA_COLUMNS:
        if col in ("witnessed", "cleaned"):
            out[col] = np.asarray(out[col], bool)
        elif col == "residual_area":
            out[col] = np.asarray(out[col], np.int64)
        elif col in ("witness", "outcome", "change"):
            out[col] = np.asarray(out[col], str)
        else:
            out[col] = np.asarray(out[col], np.float64)
    return out


def failed_mask(metadata: Mapping[str, np.ndarray]) -> np.ndarray:
    """The CLEANING_FAILED glitches: outcome ``residual``, ``withheld`` or ``not_improved``
    (metadata without ``outcome``, from an older gwtwin: witnessed and not cleaned)."""
    if "outcome" in metadata:
        return np.isin(np.asarray(metadata["outcome"]).astype(str), FAILED_OUTCOMES)
    return np.asarray(metadata["witnessed"], bool) & ~np.asarray(metadata["cleaned"], bool)


def veto_flags(metadata: Mapping[str, np.ndarray], known, ifo: str, pad: float = 0.1):
    """The three gwtwin flags as gwpy ``DataQualityFlag``s (see the module docstring)."""
    from gwtwin.data.channels import flag_name
    from gwtwin.data.flags import make_flag

    known = np.asarray(known, dtype=np.float64).reshape(-1, 2)
    spans = np.stack([metadata["tstart"] - pad, metadata["tend"] + pad], axis=1).reshape(-1, 2)
    spans[:, 0] = np.maximum(spans[:, 0], known[:, 0].min()) if len(known) else spans[:, 0]
    spans[:, 1] = np.minimum(spans[:, 1], known[:, 1].max()) if len(known) else spans[:, 1]
    witnessed = np.asarray(metadata["witnessed"], bool)
    descriptions = {
        "WITNESSED": "strain glitch whose power the gwtwin prediction from witness channels "
        "significantly explains",
        "CLEANING_FAILED": "strain glitch the gwtwin model tried and did not improve, or whose "
        "residual after cleaning is above the SNR^2 threshold",
        "UNWITNESSED": "strain glitch that no witness channel explains (those the model tried "
        "and did not improve are also in CLEANING_FAILED)",
    }
    masks = {
        "WITNESSED": witnessed,
        "CLEANING_FAILED": failed_mask(metadata),
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
