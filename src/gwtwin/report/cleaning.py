"""Report sections of the cleaning (``clean/``) and of its evaluation, against truth and from the
data alone.

Runs made before the per-glitch power columns existed (``metadata.csv`` without ``outcome``,
``change`` ...; ``clean.json`` without outcome counts; ``evaluate.json`` without
``glitch_power``) are reported too: what they lack reads "not recorded".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gwtwin.infer.veto import CHANGES, METADATA_COLUMNS, OUTCOMES
from gwtwin.report.html import Report

NOT_RECORDED = "not recorded"
#: the metadata table's columns, in the report's order (verdicts first)
_META_ORDER = (
    "gps",
    "frequency",
    "snr_before",
    "snr_after",
    "outcome",
    "change",
    "removed_sigma",
    "power_before",
    "power_removed",
    "power_after",
    "predicted_snr",
    "attempted_snr",
    "residual_snr2",
    "residual_area",
    "witnessed",
    "cleaned",
    "witness",
)
#: what each outcome means (the veto's rules, :mod:`gwtwin.infer.veto`)
OUTCOME_MEANING = {
    "cleaned": "witnessed, nothing left above the SNR² threshold",
    "residual": "witnessed, residual left above the SNR² threshold (CLEANING_FAILED)",
    "withheld": "the model predicted it, the subtraction decision did not apply it "
    "(CLEANING_FAILED)",
    "not_improved": "subtracted without a significant power drop, or made worse (CLEANING_FAILED)",
    "unwitnessed": "the model predicted nothing there",
}


def _accuracy_plot(path: Path, folder: Path) -> Path | None:
    import csv

    from matplotlib.figure import Figure  # no pyplot: no global figure state or backend

    with path.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    thr = np.array([float(r["threshold"]) for r in rows])
    folder.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.subplots()
    for key, label in (("veto_accuracy", "veto accuracy"), ("denoising_accuracy", "denoising")):
        values = np.array([float(r[key]) if r[key] not in ("", "nan") else np.nan for r in rows])
        ax.plot(thr, values, marker=".", label=label)
    ax.set_xlabel("SNR$^2$ threshold")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend()
    ax.set_title("Glitchflow accuracy curves from the per-glitch metadata")
    out = folder / "accuracy.png"
    fig.savefig(out, dpi=100)
    return out


def cleaning_section(report: Report, run: Path) -> bool:
    clean = run / "clean"
    path = clean / "clean.json"
    if not path.is_file():
        return False
    from gwtwin.infer.glitches import read_metadata

    info = json.loads(path.read_text())
    veto = info.get("veto", {})
    counts = veto.get("counts", {})
    report.section("Cleaning and veto")
    model = info.get("model", {})
    report.paragraph(
        f"{info['cleaned_channel']} = {info['strain_channel']} minus the witness prediction of "
        f"{model.get('uri') or 'the given model'} (channels {', '.join(model.get('channels', []))})"
        f"; {info['seconds']:g} s in {len(info['segments'])} segment(s), cleaning applied over "
        f"{info['cleaning_applied_seconds']:g} s (the first and last {info['context_seconds']} s "
        "of each segment lack the context a prediction needs). The predicted noise is written "
        f"as {info['prediction_channel']}."
    )
    report.metrics(
        {
            "glitches (SNR >= threshold)": counts.get("glitches"),
            "witnessed": counts.get("witnessed"),
            "cleaned": counts.get("cleaned"),
            "cleaning failed": counts.get("cleaning_failed"),
            "unwitnessed": counts.get("unwitnessed"),
            "cleaning speed [x real time]": info.get("speed_x_real_time"),
        }
    )
    outcomes = counts.get("outcomes")
    report.metrics(
        {
            f"outcome {name}": NOT_RECORDED if outcomes is None else outcomes.get(name, 0)
            for name in OUTCOMES
        }
    )
    flags = veto.get("flags", {})
    report.table(
        [
            {
                "flag": name,
                "active [s]": f.get("active_seconds"),
                "efficiency": f.get("efficiency"),
                "deadtime": f.get("deadtime"),
                "efficiency / deadtime": f.get("efficiency_over_deadtime"),
            }
            for name, f in flags.items()
        ],
        ["flag", "active [s]", "efficiency", "deadtime", "efficiency / deadtime"],
        caption="Data-quality flags (efficiency over the strain glitches each flag targets, "
        "as classified by the metadata)",
        table_id="flags",
    )
    meta_path = clean / "metadata.csv"
    if meta_path.is_file():
        meta = read_metadata(meta_path)
        order = [*_META_ORDER, *(c for c in METADATA_COLUMNS if c not in _META_ORDER)]
        columns = [c for c in order if c in meta and c not in ("tstart", "tend")]
        missing = [c for c in order if c not in meta and c not in ("tstart", "tend")]
        rows = [
            {c: (("yes" if v else "no") if isinstance(v, (bool, np.bool_)) else v) for c, v in r}
            for r in ([(c, meta[c][k].item()) for c in columns] for k in range(len(meta["gps"])))
        ]
        report.table(
            rows,
            columns,
            caption="Per-glitch metadata (click a header to sort"
            + (
                "; outcome and change: see the outcome table of the data-alone section; "
                "removed_sigma: the whitened power drop in standard deviations of the noise)"
                if "outcome" in meta
                else ")"
            ),
            table_id="metadata",
        )
        if missing:
            report.paragraph(
                f"{', '.join(missing)}: {NOT_RECORDED} in this metadata.csv (written by an "
                "older gwtwin)."
            )
    acc = clean / "accuracy.csv"
    if acc.is_file():
        png = _accuracy_plot(acc, report.directory / "_plots")
        if png is not None:
            report.figure(png, "Veto and denoising accuracy vs SNR² threshold")
    for image in veto.get("images", []):
        png = clean / image["file"]
        if png.is_file():
            report.figure(
                png,
                f"{image['category']}: GPS {image['gps']:.3f}, real / predicted / cleaned",
            )
    links = {"clean.json": report.relative(path)}
    for name in ("metadata.csv", "accuracy.csv"):
        if (clean / name).is_file():
            links[name] = report.relative(clean / name)
    for files in veto.get("flag_files", {}).values():
        for f in files:
            links[Path(f).name] = report.relative(clean / f)
    if (clean / "frames").is_dir():
        links["cleaned frames"] = report.relative(clean / "frames")
    report.links(links)
    return True


def evaluation_section(report: Report, run: Path) -> bool:
    folder = run / "evaluate"
    path = folder / "evaluate.json"
    if not path.is_file():
        return False
    result = json.loads(path.read_text())
    if result.get("truth", True):
        _truth_section(report, folder, result)
    _data_section(report, folder, result)
    report.links(
        {
            name: report.relative(folder / name)
            for name in (
                "evaluate.json",
                "per_glitch.csv",
                "injections.csv",
                "asd_ratio.csv",
                "asd_ratio_data.csv",
                "glitch_changes.csv",
            )
            if (folder / name).is_file()
        }
    )
    return True


def _data_section(report: Report, folder: Path, result: dict) -> None:
    """What the data say without truth (real data: all there is)."""
    free = result.get("without_truth")
    if not free:
        return
    report.section("Cleaning from the data alone")
    report.paragraph(
        "Measured without any truth, as on real data: the cleaned / raw ASD ratio on the same "
        "Welch segments over quiet time (away from every raw-strain trigger) and all time, and "
        "per glitch the trigger SNR before and after cleaning and the whitened power over the "
        "glitch before and after, whose change counts when it exceeds the stated margin in "
        "standard deviations of what a subtraction unrelated to the noise would change."
    )
    g = free.get("glitches", {})
    report.metrics(
        {
            "glitches": g.get("count"),
            "improved": g.get("improved"),
            "untouched": g.get("untouched"),
            "worsened": g.get("worsened"),
            "median trigger power removed": g.get("median_power_removed"),
        }
    )
    _glitch_verdicts(report, g, free.get("glitch_power"))
    asd = free.get("asd_ratio", {})
    report.table(
        [{"time": key, **asd[key]} for key in ("quiet", "overall") if key in asd],
        ["time", "n_segments", "min", "median", "max", "bins_above_1.02"],
        caption=f"ASD ratio cleaned / raw over {asd.get('band')} Hz, from the data",
        table_id="asd_data",
    )
    missing = result.get("not_computed_without_truth")
    if missing:
        report.table(
            [{"metric": k, "why not": v} for k, v in missing.items()],
            ["metric", "why not"],
            caption="Not computable without truth",
            table_id="needs_truth",
        )
    for name, caption in (
        ("asd_ratio_data.png", "ASD ratio cleaned / raw, quiet time from the data"),
        ("glitch_changes.png", "Trigger SNR before and after cleaning, per glitch"),
        ("glitch_power.png", "Whitened power removed per glitch, in noise standard deviations"),
    ):
        if (folder / name).is_file():
            report.figure(folder / name, caption)


def _glitch_verdicts(report: Report, snr: dict, power: dict | None) -> None:
    """The table "per glitch, from the data alone" (improved / untouched / worsened fractions by
    trigger SNR and by whitened power) and the outcome counts; "not recorded" where absent."""
    rows = [
        {
            "measure": f"trigger SNR (margin {snr.get('snr_margin', NOT_RECORDED)})",
            "glitches": snr.get("count"),
            **{k: snr.get(f"fraction_{k}") for k in CHANGES},
        }
    ]
    recorded = bool(power and power.get("recorded"))
    margin = (power or {}).get("margin_sigma")
    label = f"{margin:g} sigma" if margin is not None else f"margin {NOT_RECORDED}"
    rows.append(
        {
            "measure": f"whitened power ({label})",
            "glitches": (power or {}).get("count"),
            **{k: (power.get(f"fraction_{k}") if recorded else NOT_RECORDED) for k in CHANGES},
        }
    )
    report.table(
        rows,
        ["measure", "glitches", "improved", "untouched", "worsened"],
        caption="Per glitch, from the data alone: share improved / untouched / worsened",
        table_id="glitch_verdicts",
    )
    outcomes = (power or {}).get("outcomes") if recorded else None
    report.table(
        [
            {
                "outcome": name,
                "glitches": NOT_RECORDED if outcomes is None else outcomes.get(name, 0),
                "meaning": meaning,
            }
            for name, meaning in OUTCOME_MEANING.items()
        ],
        ["outcome", "glitches", "meaning"],
        caption="Per-glitch outcomes of the veto"
        + (
            f" (median share of the span's whitened power removed: "
            f"{power['median_fraction_power_removed']:.3g})"
            if recorded and power.get("median_fraction_power_removed") is not None
            else ""
        ),
        table_id="glitch_outcomes",
    )


def _truth_section(report: Report, folder: Path, result: dict) -> None:
    report.section("Cleaning against truth")
    report.paragraph(
        f"Scored over GPS [{result['span'][0]:.0f}, {result['span'][1]:.0f}) "
        f"({result['seconds']:g} s"
        + (
            "; held-out time that no training or validation window touched)"
            if result["span"][0] is not None
            else ")"
        )
        + ". Excess power removed = 1 - |w(coupled - prediction)|² / |w(coupled)|² per "
        "catalogue glitch, with the truth of the witnessed couplings; the ASD ratio compares "
        "cleaned and raw strain on the same Welch segments."
    )
    criteria = result.get("criteria", {})
    values, passed = {}, {}
    for name, c in criteria.items():
        value = c["value"]
        if isinstance(value, list):
            value = f"[{value[0]:.3f}, {value[1]:.3f}]"
        values[name] = value
        if c["pass"] is not None:
            passed[name] = c["pass"]
    report.metrics(values, passed)
    glitches = result.get("glitches", {})
    report.table(
        [
            {"family": fam, **{k: v for k, v in s.items()}}
            for fam, s in glitches.items()
            if fam != "criteria"
        ],
        [
            "family",
            "count",
            "median_fraction_removed",
            "residual_below_limit",
            "median_residual_snr",
        ],
        caption="Witnessed glitches per family (residual_below_limit: share with residual "
        "SNR < 5 among those with SNR <= 50)",
        table_id="families",
    )
    asd = result.get("asd_ratio", {})
    report.table(
        [
            {"stretches": key.replace("_", " "), **v}
            for key, v in asd.items()
            if isinstance(v, dict) and "min" in v
        ],
        ["stretches", "min", "max", "outside_0.98_1.02"],
        caption=f"ASD ratio cleaned / raw over {asd.get('band')} Hz "
        f"({asd.get('n_segments_quiet')} glitch-free and {asd.get('n_segments_overall')} "
        f"Welch segments in all; witnessed lines {asd.get('witnessed_lines')} Hz)",
        table_id="asd",
    )
    flags = result.get("flags", {})
    report.table(
        [{"flag": k, **v} for k, v in flags.items()],
        [
            "flag",
            "population",
            "efficiency",
            "deadtime",
            "efficiency_over_deadtime",
            "n_glitches",
            "catalogue_efficiency",
        ],
        caption="Flags against the truth (efficiency as hveto counts it: raw-strain triggers "
        "inside the flag's target glitches; catalogue_efficiency: truth glitches at catalogue SNR "
        ">= 8 whose peak the flag covers)",
        table_id="truth_flags",
    )
    inj = result.get("injections", {})
    if inj.get("id"):
        report.table(
            [{k: inj[k][i] for k in inj} for i in range(len(inj["id"]))],
            list(inj),
            caption="Injected signals: SNR before and after cleaning",
            table_id="injections",
        )
    captions = {
        "asd_ratio.png": "ASD ratio cleaned / raw (glitch-free stretches and overall)",
        "residual_snr.png": "Residual SNR of witnessed glitches after cleaning",
        "fraction_removed.png": "Fraction of excess power removed per glitch",
    }
    for name, caption in captions.items():
        if (folder / name).is_file():
            report.figure(folder / name, caption)
