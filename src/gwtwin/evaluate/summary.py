"""Summaries of an evaluation: the ASD-ratio statistics, the headline numbers and the acceptance
criteria of the cleaning."""

from __future__ import annotations

import numpy as np

from gwtwin.evaluate.flags import flag_by_name


def asd_summary(freqs, p_quiet, n_quiet, p_all, n_all, config, lines, width):
    with np.errstate(divide="ignore", invalid="ignore"):
        quiet = np.sqrt(p_quiet[0] / p_quiet[1]) if n_quiet else np.full(freqs.size, np.nan)
        overall = np.sqrt(p_all[0] / p_all[1]) if n_all else np.full(freqs.size, np.nan)
    band = (freqs >= config.band[0]) & (freqs <= config.band[1])
    near_line = np.zeros(freqs.size, bool)
    for f0 in lines:
        near_line |= np.abs(freqs - f0) <= width
    other = band & ~near_line

    def stats(values, mask):
        v = values[mask]
        if not v.size or np.all(np.isnan(v)):
            return {"min": None, "max": None, "outside_0.98_1.02": None}
        return {
            "min": float(np.nanmin(v)),
            "max": float(np.nanmax(v)),
            "outside_0.98_1.02": int(np.sum((v < 0.98) | (v > 1.02))),
        }

    summary = {
        "band": list(config.band),
        "n_segments_quiet": int(n_quiet),
        "n_segments_overall": int(n_all),
        "fftlength": config.fftlength,
        "witnessed_lines": lines,
        "line_width": width,
        "quiet_all_bins": stats(quiet, band),
        "quiet_off_lines": stats(quiet, other),
        "quiet_at_lines": stats(quiet, band & near_line),
        "overall_all_bins": stats(overall, band),
        "overall_median": float(np.nanmedian(overall[band])) if n_all else None,
        "n_bins": int(band.sum()),
    }
    table = {"frequency": freqs, "quiet": quiet, "overall": overall, "witnessed_line": near_line}
    return {"summary": summary, "table": table}


def headline(summary, inj, asd, flags) -> dict:
    allw = summary.get("all", {})
    loss_all = np.asarray(inj.get("snr_loss", []), np.float64)
    overlap = np.asarray(inj.get("overlapping_glitch", np.full(loss_all.size, -1))) >= 0
    loss, loss_overlap = loss_all[~overlap], loss_all[overlap]
    s = asd["summary"]
    return {
        "witnessed_glitches": allw.get("count"),
        "median_fraction_removed": allw.get("median_fraction_removed"),
        "residual_snr_below_5": allw.get("residual_below_limit"),
        "per_family_median_fraction_removed": {
            k: v["median_fraction_removed"]
            for k, v in summary.items()
            if k not in ("all", "criteria")
        },
        "asd_ratio_quiet_off_lines": [s["quiet_off_lines"]["min"], s["quiet_off_lines"]["max"]],
        "asd_ratio_quiet_at_lines_min": s["quiet_at_lines"]["min"],
        "injection_max_snr_loss": float(np.max(loss)) if loss.size else None,
        # an injection that a witnessed glitch overlaps: what "loss" measures there is the
        # glitch's cleaning residual projected on the signal (either sign), reported apart
        "injection_max_snr_loss_under_glitches": float(np.max(loss_overlap))
        if loss_overlap.size
        else None,
        "witnessed_flag_efficiency_over_deadtime": (flag_by_name(flags, "WITNESSED") or {}).get(
            "efficiency_over_deadtime"
        ),
        "unwitnessed_flag_efficiency": (flag_by_name(flags, "UNWITNESSED") or {}).get("efficiency"),
    }


def criteria(h: dict) -> dict:
    """The cleaning issue's acceptance criteria, each with its measured value and verdict."""

    def check(value, ok):
        return {"value": value, "pass": None if value is None else bool(ok(value))}

    lo_hi = h["asd_ratio_quiet_off_lines"]
    return {
        "median_fraction_removed >= 0.9": check(h["median_fraction_removed"], lambda v: v >= 0.9),
        "residual SNR < 5 for >= 90% (SNR <= 50)": check(
            h["residual_snr_below_5"], lambda v: v >= 0.9
        ),
        "unwitnessed flag efficiency >= 0.9 (blips SNR >= 8)": check(
            h["unwitnessed_flag_efficiency"], lambda v: v >= 0.9
        ),
        "quiet ASD ratio in [0.98, 1.02] off the witnessed lines": check(
            None if lo_hi[0] is None else lo_hi, lambda v: 0.98 <= v[0] and v[1] <= 1.02
        ),
        "injection SNR loss < 1%": check(h["injection_max_snr_loss"], lambda v: v < 0.01),
        "witnessed flag efficiency/deadtime >= 10": check(
            h["witnessed_flag_efficiency_over_deadtime"], lambda v: v >= 10
        ),
    }
