"""What can be measured of a cleaning without ground truth (real data): from the data alone.

Real data never has truth, so ``gwtwin evaluate`` also scores a cleaning from what it wrote and
the raw frames, the same way on simulated and on real data:

- **ASD ratio** cleaned / raw over the same Welch segments (Hann, 50 % overlap), over all the
  cleaned time and over *quiet* time: at least ``quiet_pad`` seconds away from every raw-strain
  trigger with SNR >= ``flag_snr`` (``clean/triggers/raw.h5``) and inside the time a prediction
  was subtracted. Without truth a quiet stretch is defined by the data, so it still holds
  glitches below the trigger threshold and any continuous coupling (a witnessed mains line):
  a ratio below 1 there may be real cleaning, a ratio above 1 is always added noise;
- **per glitch, by trigger SNR** (the clean step's metadata: the raw trigger's SNR and the
  loudest cleaned trigger over it): ``improved`` when the SNR falls by more than ``snr_margin``,
  ``worsened`` when it rises by more, ``untouched`` otherwise, and the power
  ``1 - (after / before)**2`` the cleaning removed from the trigger (:func:`glitch_changes`);
- **per glitch, by whitened power** (:func:`glitch_power_changes`, the metadata's ``change``,
  ``power_before``, ``power_removed`` and ``outcome`` columns, see :mod:`gwtwin.infer.veto`): the
  whitened energy over the glitch's span before and after cleaning, ``improved`` / ``worsened``
  when it falls / rises by more than ``margin_sigma`` standard deviations of what a subtraction
  unrelated to the noise would change (``2 |Δ|``), ``untouched`` otherwise; the median share of
  the span's power removed (noise included: ``power_before`` holds ~1 per sample of noise
  besides the glitch, so this understates the share of the glitch's own excess); the margin; and
  the counts of each outcome (cleaned, residual, withheld, not_improved, unwitnessed). Metadata
  written before these columns existed gives ``recorded: false`` ("not recorded").

:func:`not_computable` lists the truth metrics and why each needs truth, so a report on real data
says what it cannot say.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from gwtwin.data import segments as sg
from gwtwin.evaluate.config import EvaluateConfig
from gwtwin.evaluate.metrics import welch_powers

__all__ = [
    "asd_from_data",
    "glitch_changes",
    "glitch_power_changes",
    "not_computable",
    "truth_free",
]

#: the metrics that need the simulator's truth, with the reason
_NEEDS_TRUTH = {
    "fraction of witnessed excess power removed, per family": "needs the noise-free coupled "
    "contribution of each glitch (truth frames)",
    "residual SNR of witnessed glitches": "needs the coupled truth to subtract from the cleaning",
    "flag efficiency against truth": "needs the true glitch families (catalogue)",
    "injection SNR loss": "needs the injected waveforms (truth frames)",
}


def not_computable() -> dict[str, str]:
    """The truth metrics ``gwtwin evaluate`` cannot compute on real data, with the reason."""
    return dict(_NEEDS_TRUTH)


def glitch_changes(metadata: dict, snr_margin: float = 1.0) -> dict:
    """Per-glitch verdicts from the clean step's metadata (``snr_before``, ``snr_after``).

    Returns counts and fractions of ``improved`` / ``worsened`` / ``untouched`` glitches, the
    median power removed from their triggers and the per-glitch arrays (``change``: one of the
    three words; ``power_removed``: ``1 - (after / before)**2``).
    """
    before = np.asarray(metadata.get("snr_before", []), np.float64)
    after = np.asarray(metadata.get("snr_after", []), np.float64)
    after = np.where(np.isfinite(after), after, 0.0)  # no cleaned trigger: below its threshold
    delta = after - before
    change = np.where(
        delta < -snr_margin, "improved", np.where(delta > snr_margin, "worsened", "untouched")
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        removed = 1.0 - (after / before) ** 2
    n = int(before.size)
    counts = {k: int(np.sum(change == k)) for k in ("improved", "worsened", "untouched")}
    return {
        "count": n,
        **counts,
        **{f"fraction_{k}": (v / n if n else None) for k, v in counts.items()},
        "median_power_removed": float(np.median(removed)) if n else None,
        "snr_margin": snr_margin,
        "change": change,
        "power_removed": removed,
    }


def glitch_power_changes(metadata: dict, margin_sigma: float | None = None) -> dict:
    """The power-based per-glitch verdicts the clean step recorded (module docstring).

    ``metadata``: the metadata columns (``change``, ``power_before``, ``power_removed``,
    ``outcome``; any may be missing in an older ``metadata.csv``); ``margin_sigma``: the veto's
    margin, as recorded in ``clean.json`` (None: not recorded). Returns ``recorded`` (False when
    the columns are absent), ``count``, the counts and fractions of ``improved`` / ``worsened``
    / ``untouched``, ``median_fraction_power_removed`` (median ``power_removed / power_before``),
    ``margin_sigma`` and ``outcomes`` (count per outcome).
    """
    from gwtwin.infer.veto import CHANGES, OUTCOMES

    n = len(metadata.get("gps", metadata.get("snr_before", [])))
    out: dict = {"recorded": "change" in metadata, "count": n, "margin_sigma": margin_sigma}
    if not out["recorded"]:
        return out
    change = np.asarray(metadata["change"]).astype(str)
    counts = {k: int(np.sum(change == k)) for k in CHANGES}
    out.update(counts)
    out.update({f"fraction_{k}": (v / n if n else None) for k, v in counts.items()})
    share = None
    if "power_removed" in metadata and "power_before" in metadata:
        before = np.asarray(metadata["power_before"], np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.asarray(metadata["power_removed"], np.float64) / before
        share = share[np.isfinite(share)]
    out["median_fraction_power_removed"] = (
        float(np.median(share)) if share is not None and share.size else None
    )
    if "outcome" in metadata:
        outcome = np.asarray(metadata["outcome"]).astype(str)
        out["outcomes"] = {k: int(np.sum(outcome == k)) for k in OUTCOMES}
    else:
        out["outcomes"] = None
    return out


def asd_from_data(
    raw_source, clean: Path, info: dict, spans, config: EvaluateConfig, triggers: np.ndarray
) -> dict:
    """Cleaned / raw ASD ratio over all of ``spans`` and over its quiet part (away from the
    raw-strain ``triggers``, a ``[n, 2]`` array of their ``[tstart, tend]``), in chunks."""
    from gwtwin.data import read

    strain, cleaned_name = info["strain_channel"], info["cleaned_channel"]
    applied = sg.coalesce([tuple(s) for s in info.get("cleaning_applied", [])])
    pad = np.array([-config.quiet_pad, config.quiet_pad])
    excluded = sg.coalesce(np.asarray(triggers, np.float64).reshape(-1, 2) + pad)
    total = {"quiet": None, "overall": None}
    counts = {"quiet": 0, "overall": 0}
    freqs = None
    for s0, s1 in spans:
        for c in np.arange(s0, s1, config.chunk_duration):
            d = min(c + config.chunk_duration, s1)
            g0, g1 = math.floor(c), math.ceil(d)
            raw = read(raw_source, [strain], g0, g1).block
            cln = read(clean / "frames", [cleaned_name], g0, g1).block
            r, cl = raw.data[0].numpy(), cln.data[0].numpy()
            core = sg.coalesce([(c, d)])
            quiet = sg.intersect(sg.subtract(core, excluded), applied)
            for key, segs in (("quiet", quiet), ("overall", core)):
                f, pc, pr, n = welch_powers(
                    r, cl, float(g0), raw.sample_rate, fftlength=config.fftlength, segments=segs
                )
                freqs = f
                prev = total[key]
                total[key] = (pc, pr) if prev is None else (prev[0] + pc, prev[1] + pr)
                counts[key] += n
    band = (freqs >= config.band[0]) & (freqs <= config.band[1])
    out = {"band": list(config.band), "fftlength": config.fftlength, "n_bins": int(band.sum())}
    table = {"frequency": freqs}
    for key in ("quiet", "overall"):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (
                np.sqrt(total[key][0] / total[key][1])
                if counts[key]
                else np.full(freqs.size, np.nan)
            )
        table[key] = ratio
        v = ratio[band]
        ok = counts[key] and not np.all(np.isnan(v))
        out[key] = {
            "n_segments": int(counts[key]),
            "min": float(np.nanmin(v)) if ok else None,
            "max": float(np.nanmax(v)) if ok else None,
            "median": float(np.nanmedian(v)) if ok else None,
            "bins_above_1.02": int(np.sum(v > 1.02)) if ok else None,
        }
    return {"summary": out, "table": table}


def truth_free(raw_source, clean: Path, info: dict, spans, config: EvaluateConfig) -> dict:
    """The truth-free section of ``evaluate.json`` (see the module docstring) and its tables."""
    from gwtwin.infer.glitches import read_metadata
    from gwtwin.signal.triggers import read_triggers

    trig = np.zeros((0, 2))
    path = clean / "triggers" / "raw.h5"
    if path.is_file():
        t = read_triggers(path)
        rows = [t[c] for c in t.channels if len(t[c])]
        if rows:
            rows = np.concatenate(rows)
            loud = rows[rows["snr"] >= config.flag_snr]
            trig = np.stack([loud["tstart"], loud["tend"]], axis=1)
    asd = asd_from_data(raw_source, clean, info, spans, config, trig)
    meta_path = clean / "metadata.csv"
    metadata = read_metadata(meta_path) if meta_path.is_file() else {}
    if metadata:
        gps = np.asarray(metadata["gps"], np.float64)
        inside = np.zeros(gps.size, bool)
        for a, b in spans:
            inside |= (gps >= a) & (gps < b)
        metadata = {k: np.asarray(v)[inside] for k, v in metadata.items()}
    changes = glitch_changes(metadata, config.snr_margin)
    veto = info.get("veto", {})
    margin = veto.get("margin_sigma", veto.get("config", {}).get("margin_sigma"))
    power = glitch_power_changes(metadata, margin)
    table = {
        "gps": np.asarray(metadata.get("gps", []), np.float64),
        "snr_before": np.asarray(metadata.get("snr_before", []), np.float64),
        "snr_after": np.asarray(metadata.get("snr_after", []), np.float64),
        "change": changes.pop("change"),
        "power_removed": changes.pop("power_removed"),
    }
    if power["recorded"]:  # the power-based verdict beside the SNR-based one
        n = table["gps"].size

        def column(name, fill=np.nan):
            return np.asarray(metadata[name]) if name in metadata else np.full(n, fill)

        with np.errstate(divide="ignore", invalid="ignore"):
            share = column("power_removed").astype(float) / column("power_before").astype(float)
        table["power_change"] = column("change").astype(str)
        table["removed_sigma"] = column("removed_sigma").astype(float)
        table["fraction_power_removed"] = share
        table["outcome"] = column("outcome", "").astype(str)
    return {
        "summary": {"asd_ratio": asd["summary"], "glitches": changes, "glitch_power": power},
        "asd_table": asd["table"],
        "glitch_table": table,
    }
