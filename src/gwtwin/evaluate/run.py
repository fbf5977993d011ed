"""``gwtwin evaluate``: score a cleaning of simulated data against the simulator's truth.

Inputs: the simulator's output directory (``frames/``, ``truth/``, ``catalogue.h5``,
``config.yaml``) and the output directory of ``gwtwin clean`` on those frames.  Over the
evaluation span (``start``/``end``, default everything cleaned; use held-out time for the real
measure), in pieces of ``chunk_duration`` seconds (plus whitening context), with the reference
whitening of each piece (median Welch PSD of the raw strain):

- **per witnessed glitch** (catalogue families scatter, em, powerline; the truth of the coupled
  noise is ``TRUTH_SCATTER + TRUTH_EM + TRUTH_POWERLINE``): SNR, residual SNR and fraction of
  excess power removed (:func:`gwtwin.evaluate.metrics.score_glitches`), summarised per family;
  glitches and injections not wholly inside the time a prediction was subtracted (the clean
  step's ``cleaning_applied``: not the first and last context seconds of a data segment) are
  left out and listed (``outside_cleaned_time``);
- **signal safety**: each injection's matched SNR before and after, and the fraction of its SNR
  the cleaning took beyond the witnessed glitches (the subtracted prediction less the coupled
  truth, projected on the signal: removing a glitch that overlaps a signal is not a loss).  The
  criterion holds for injections clear of witnessed glitches; where one overlaps (its id in
  ``overlapping_glitch``), that projection is the glitch's cleaning residual, not signal taken,
  and it is reported apart (``injection_max_snr_loss_under_glitches``);
- **ASD ratio** cleaned/raw on the same Welch segments, over glitch-free stretches (``quiet_pad``
  seconds away from any strain glitch or injection, and where a prediction was applied) and over
  everything.  The simulated power-line coupling is *continuous* (the mains line modulated by the
  angular drift): cleaning rightly lowers the 50 Hz line and its odd harmonics in glitch-free
  time too.  Those bins (``line_width`` Hz around each witnessed line) are reported apart; the
  "no added noise" criterion holds for every other bin of ``band``;
- **flags** (from the clean step), as hveto measures a veto: efficiency on the raw-strain
  triggers with SNR >= ``flag_snr`` that lie in witnessed glitches (``GWTWIN-WITNESSED``) or in
  blips (``GWTWIN-UNWITNESSED``), and deadtime; the share of truth glitches at catalogue SNR >=
  ``flag_snr`` whose peak the flag covers is reported beside it (``catalogue_efficiency``).

Outputs in the output directory: ``evaluate.json`` (everything, with a ``headline`` and the
acceptance ``criteria``), ``per_glitch.csv``, ``injections.csv``, ``asd_ratio.csv`` and plots
(``asd_ratio.png``, ``residual_snr.png``, ``fraction_removed.png``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gwtwin.data import segments as sg
from gwtwin.data.channels import FLAG_GROUP
from gwtwin.data.segments import efficiency_deadtime
from gwtwin.errors import GwtwinError
from gwtwin.evaluate.metrics import (
    WITNESSED_FAMILIES,
    injection_safety,
    quiet_segments,
    score_glitches,
    summarise_scores,
    welch_powers,
)
from gwtwin.infer.clean import json_default
from gwtwin.infer.glitches import write_columns
from gwtwin.signal.whitening import Whitener

EVALUATE_FILE = "evaluate.json"
STRAIN_FAMILIES = (*WITNESSED_FAMILIES, "blip", "injection")  #: what shows in strain


class EvaluateConfig(BaseModel):
    """How ``gwtwin evaluate`` scores a cleaning (unknown keys are refused)."""

    model_config = ConfigDict(extra="forbid")

    start: float | None = None
    end: float | None = None
    pad: float = Field(0.25, ge=0)  # s added to each catalogue glitch window
    quiet_pad: float = Field(2.0, ge=0)  # glitch-free = this far from any strain event
    fftlength: float = Field(4.0, gt=0)  # ASD-ratio Welch segments
    band: tuple[float, float] = (10.0, 1000.0)
    #: Hz each side of a witnessed power line; None: the largest continuous modulation frequency
    #: of the simulated coupling (its sidebands) plus two Welch bins
    line_width: float | None = Field(None, ge=0)
    snr_max: float = Field(50.0, gt=0)  # residual criterion population: SNR <= snr_max
    residual_limit: float = Field(5.0, gt=0)
    flag_snr: float = Field(8.0, ge=0)
    chunk_duration: float = Field(512.0, gt=0)
    psd_fftlength: float = Field(4.0, gt=0)
    fduration: float = Field(2.0, gt=0)


def load_evaluate_config(source=None, overrides: dict | None = None) -> EvaluateConfig:
    """An :class:`EvaluateConfig` from YAML (whole file or its ``evaluate:`` section), a mapping
    or defaults; errors name the key and the value."""
    from gwtwin.configio import load_section

    return load_section(EvaluateConfig, "evaluate", source, overrides)


def _witnessed_lines(simulation: Path, config: EvaluateConfig) -> tuple[list[float], float]:
    """Frequencies of the continuously coupled (witnessed) power lines of the simulation and
    the half-width (Hz) their modulation sidebands occupy."""
    from gwtwin.simulate import load_config

    cfg = load_config(simulation / "config.yaml")
    pl = cfg.powerline
    if not pl.enabled:
        return [], 0.0
    width = config.line_width
    if width is None:
        width = max(pl.modulation_frequencies, default=0.0) + 2.0 / config.fftlength
    return [pl.mains_frequency * (2 * k + 1) for k in range(1 + len(pl.harmonics))], width


def _intersect(a, b) -> list[tuple[float, float]]:
    """``a & b`` of two span lists, as ``(start, end)`` tuples."""
    return sg.merge_spans(sg.intersect(sg.coalesce(a), sg.coalesce(b)), tolerance=0.0)


def evaluate_run(simulation, clean, output, config: EvaluateConfig | None = None, *, log=print):
    """Score the cleaning in ``clean`` against the truth in ``simulation``; see the module doc.

    Returns the content of ``evaluate.json``.
    """
    from gwtwin.data import read
    from gwtwin.data.flags import read_flags
    from gwtwin.signal.spectral import psd_block
    from gwtwin.simulate.engine import read_catalogue

    config = config or EvaluateConfig()
    simulation, clean, output = Path(simulation), Path(clean), Path(output)
    for need in (simulation / "truth", simulation / "catalogue.h5", clean / "clean.json"):
        if not need.exists():
            raise GwtwinError(
                f"gwtwin evaluate needs {need}: "
                + (
                    "a gwtwin simulate output (truth exists only for simulated data)"
                    if "clean.json" not in str(need)
                    else "the output directory of gwtwin clean"
                )
            )
    info = json.loads((clean / "clean.json").read_text())
    strain, cleaned_name = info["strain_channel"], info["cleaned_channel"]
    ifo = strain.split(":", 1)[0]
    segments = [tuple(s) for s in info["segments"]]
    lo = config.start if config.start is not None else segments[0][0]
    hi = config.end if config.end is not None else segments[-1][1]
    spans = _intersect(segments, [(lo, hi)])
    if not spans:
        raise GwtwinError(
            f"the evaluation span [{lo}, {hi}) does not overlap the cleaned segments {segments}"
        )
    applied = [tuple(s) for s in info.get("cleaning_applied", [])]
    table = read_catalogue(simulation)
    family = np.asarray(table["family"]).astype(str)
    in_strain = table[np.isin(family, STRAIN_FAMILIES)]
    witnessed_ev = table[np.isin(family, WITNESSED_FAMILIES)]
    injections = table[family == "injection"]
    truth_names = [f"{ifo}:TRUTH_{f.upper()}" for f in (*WITNESSED_FAMILIES, "injection")]
    scores: list[dict] = []
    safety: list[dict] = []
    outside: list[int] = []  # catalogue ids left out: not wholly inside the cleaned time
    p_quiet = p_all = None
    n_quiet = n_all = 0
    freqs = None
    ctx = math.ceil(config.fduration + 2)
    chunk = config.chunk_duration
    for s0, s1 in spans:
        c = s0
        while c < s1:
            d = min(c + chunk, s1)
            r0, r1 = max(s0, c - ctx), min(s1, d + ctx)
            # read on whole seconds that hold the piece
            g0, g1 = math.floor(r0), math.ceil(r1)
            raw = read(simulation / "frames", [strain], g0, g1).block
            cln = read(clean / "frames", [cleaned_name], g0, g1).block
            truth = read(simulation / "truth", truth_names, g0, g1, sample_rate=raw.sample_rate)
            truth = truth.block
            rate = raw.sample_rate
            r, cl = raw.data[0].numpy(), cln.data[0].numpy()
            coupled = truth.data[:3].sum(dim=0).numpy()
            inj = truth.data[3].numpy()
            psd = psd_block(raw, config.psd_fftlength)
            whiten = Whitener((psd.freqs, psd.values[0]), rate, config.fduration, config.band[0])
            t0 = float(g0)

            def _core(events, c=c, d=d):
                peak = np.asarray(events["gps_peak"], np.float64)
                return events[(peak >= c) & (peak < d)]

            def _applied(events):
                """Events wholly inside the time a prediction was subtracted."""
                lo = np.asarray(events["gps_start"], np.float64) - config.pad
                hi = np.asarray(events["gps_end"], np.float64) + config.pad
                ok = np.zeros(len(events), bool)
                for a, b in applied:
                    ok |= (lo >= a) & (hi <= b)
                outside.extend(np.asarray(events["id"])[~ok].tolist())
                return events[ok]

            ev = _applied(_core(witnessed_ev))
            if len(ev):
                scores.append(score_glitches(r, cl, coupled, t0, whiten, ev, pad=config.pad))
            ij = _applied(_core(injections))
            if len(ij):
                safety.append(injection_safety(r, cl, inj, t0, whiten, ij, coupled=coupled))
            edge = whiten.edge_size / rate
            core = [(max(c, t0 + edge), min(d, g1 - edge))]
            quiet = quiet_segments(core[0], in_strain, config.quiet_pad)
            quiet = _intersect([tuple(q) for q in quiet], applied)
            f, pc, pr, n = welch_powers(
                r, cl, t0, rate, fftlength=config.fftlength, segments=np.asarray(quiet)
            )
            freqs = f
            p_quiet = (pc, pr) if p_quiet is None else (p_quiet[0] + pc, p_quiet[1] + pr)
            n_quiet += n
            f, pc, pr, n = welch_powers(
                r, cl, t0, rate, fftlength=config.fftlength, segments=np.asarray(core)
            )
            p_all = (pc, pr) if p_all is None else (p_all[0] + pc, p_all[1] + pr)
            n_all += n
            c = d
    merged = _concat(scores, ("id", "family", "gps_peak", "snr_catalogue", "snr", "residual_snr"))
    if scores:
        merged["fraction_removed"] = np.concatenate([s["fraction_removed"] for s in scores])
    inj_rows = _concat(
        safety, ("id", "gps_peak", "snr_optimal", "snr_before", "snr_after", "snr_loss")
    )
    inj_rows["overlapping_glitch"] = _overlapping_glitch(inj_rows, table, config.flag_snr)
    summary = summarise_scores(merged, snr_max=config.snr_max, residual_limit=config.residual_limit)
    lines, width = _witnessed_lines(simulation, config)
    asd = _asd_summary(freqs, p_quiet, n_quiet, p_all, n_all, config, lines, width)
    flags = _flag_figures(clean, table, config, read_flags, spans)
    headline = _headline(summary, inj_rows, asd, flags)
    result = {
        "span": [lo, hi],
        "evaluated": [list(s) for s in spans],
        "seconds": float(sum(b - a for a, b in spans)),
        "glitches": summary,
        "outside_cleaned_time": outside,
        "injections": {k: np.asarray(v).tolist() for k, v in inj_rows.items()},
        "asd_ratio": asd["summary"],
        "flags": flags,
        "headline": headline,
        "criteria": _criteria(headline),
        "config": config.model_dump(mode="json"),
        "clean": str(clean),
        "simulation": str(simulation),
    }
    output.mkdir(parents=True, exist_ok=True)
    write_columns(output / "per_glitch.csv", merged)
    write_columns(output / "injections.csv", inj_rows)
    write_columns(output / "asd_ratio.csv", asd["table"])
    _plots(output, merged, asd, config, lines)
    (output / EVALUATE_FILE).write_text(json.dumps(result, indent=1, default=json_default))
    for key, value in headline.items():
        log(f"{key}: {value}")
    return result


def _concat(parts: list[dict], keys) -> dict:
    if not parts:
        return {k: np.zeros(0, dtype=(str if k == "family" else float)) for k in keys}
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in keys}


def _asd_summary(freqs, p_quiet, n_quiet, p_all, n_all, config, lines, width):
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


def _flag_figures(clean: Path, table, config, read_flags, spans) -> dict:
    """Efficiency/deadtime of the clean step's flags, as hveto measures a veto.

    The population is the raw-strain triggers (``clean/triggers/raw.h5``) with SNR >=
    ``flag_snr`` inside the flag's known time (within the evaluated ``spans``) whose peak falls
    inside a truth glitch of the flag's target families (``pad`` seconds around its span);
    efficiency = the share of them inside the flag's active segments, deadtime = the active
    share of the known time.  Also
    reported (``catalogue_*``): the share of truth glitches with catalogue SNR >= ``flag_snr``
    whose catalogue peak lies inside the flag.  That figure counts glitches no trigger
    generator sees: a catalogue SNR is computed with the simulator's noise PSD, without the
    strain's lines, so a power-line episode at the 50 Hz line can hold catalogue SNR 30 and no
    trigger at all, and a 9 s scattered-light arch train peaks at a time its Q-tiles need not
    cover.
    """
    path = clean / "flags" / "gwtwin-veto.h5"
    if not path.is_file():
        return {}
    from gwtwin.signal.triggers import read_triggers

    flags = read_flags(path)
    family = np.asarray(table["family"]).astype(str)
    snr = np.asarray(table["snr"], np.float64)
    peak = np.asarray(table["gps_peak"], np.float64)
    lo = np.asarray(table["gps_start"], np.float64) - config.pad
    hi = np.asarray(table["gps_end"], np.float64) + config.pad
    trig_path = clean / "triggers" / "raw.h5"
    trig_time = np.zeros(0)
    if trig_path.is_file():
        trig = read_triggers(trig_path)
        rows = np.concatenate([trig[c] for c in trig.channels]) if trig.channels else None
        if rows is not None and rows.size:
            trig_time = rows["time"][rows["snr"] >= config.flag_snr]
    targets = {
        "WITNESSED": np.isin(family, WITNESSED_FAMILIES),
        "UNWITNESSED": family == "blip",
        "CLEANING_FAILED": np.isin(family, WITNESSED_FAMILIES),
    }
    out = {}
    for name, target in targets.items():
        flag = _flag_by_name(flags, name)
        if flag is None:
            continue
        known = _intersect([(float(a), float(b)) for a, b in flag.known], spans)
        known = np.asarray(known, np.float64).reshape(-1, 2)
        active = _intersect([(float(a), float(b)) for a, b in flag.active], known.tolist())
        active = np.asarray(active, np.float64).reshape(-1, 2)
        if not len(known):
            continue

        def _in(times, spans):
            inside = np.zeros(times.size, bool)
            for a, b in spans:
                inside |= (times >= a) & (times < b)
            return inside

        in_target = np.zeros(trig_time.size, bool)
        for a, b in zip(lo[target], hi[target], strict=True):
            in_target |= (trig_time >= a) & (trig_time < b)
        population = trig_time[in_target & _in(trig_time, known)]
        figures = efficiency_deadtime(active, known, population)
        cat = target & _in(peak, known) & (snr >= config.flag_snr)
        cat_figures = efficiency_deadtime(active, known, peak[cat])
        out[flag.name] = {
            **figures,
            "catalogue_efficiency": cat_figures["efficiency"],
            "catalogue_n_glitches": cat_figures["n_glitches"],
            "catalogue_n_vetoed": cat_figures["n_vetoed"],
            "population": _population(name),
        }
    return out


def _flag_by_name(flags: dict, name: str):
    """The flag ``<IFO>:GWTWIN-<name>:<version>`` of a mapping keyed by full flag names."""
    return next(
        (f for key, f in flags.items() if key.split(":")[1] == f"{FLAG_GROUP}-{name}"), None
    )


def _population(name: str) -> str:
    return {
        "WITNESSED": "raw-strain triggers in witnessed glitches (scatter, em, powerline)",
        "UNWITNESSED": "raw-strain triggers in blips (no witness)",
        "CLEANING_FAILED": "raw-strain triggers in witnessed glitches",
    }[name]


def _overlapping_glitch(inj: dict, table, snr_min: float) -> np.ndarray:
    """Per injection, the catalogue id of the loudest witnessed glitch (SNR >= ``snr_min``)
    that overlaps it, or -1."""
    ids = np.asarray(inj.get("id", []), np.int64)
    out = np.full(ids.size, -1, np.int64)
    family = np.asarray(table["family"]).astype(str)
    tid = np.asarray(table["id"], np.int64)
    start = np.asarray(table["gps_start"], np.float64)
    end = np.asarray(table["gps_end"], np.float64)
    snr = np.asarray(table["snr"], np.float64)
    glitch = np.isin(family, WITNESSED_FAMILIES) & (snr >= snr_min)
    for k, i in enumerate(ids):
        (row,) = np.nonzero(tid == i)
        if not row.size:
            continue
        hit = glitch & (start < end[row[0]]) & (end > start[row[0]])
        if hit.any():
            out[k] = tid[hit][np.argmax(snr[hit])]
    return out


def _headline(summary, inj, asd, flags) -> dict:
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
        "witnessed_flag_efficiency_over_deadtime": (_flag_by_name(flags, "WITNESSED") or {}).get(
            "efficiency_over_deadtime"
        ),
        "unwitnessed_flag_efficiency": (_flag_by_name(flags, "UNWITNESSED") or {}).get(
            "efficiency"
        ),
    }


def _criteria(h: dict) -> dict:
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


def _plots(output: Path, scores: dict, asd: dict, config, lines) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    t = asd["table"]
    fig, ax = plt.subplots(figsize=(8, 4), constrained_layout=True)
    band = (t["frequency"] >= config.band[0]) & (t["frequency"] <= config.band[1])
    ax.semilogx(t["frequency"][band], t["overall"][band], lw=0.8, label="overall", color="C1")
    ax.semilogx(t["frequency"][band], t["quiet"][band], lw=0.8, label="glitch-free", color="C0")
    ax.axhspan(0.98, 1.02, color="0.85", zorder=0, label="[0.98, 1.02]")
    for f0 in lines:
        ax.axvline(f0, color="0.5", ls=":", lw=0.8)
    ax.set_xlabel("frequency [Hz]")
    ax.set_ylabel("ASD cleaned / raw")
    ax.set_ylim(0, 1.2)
    ax.legend(fontsize=8)
    ax.set_title("ASD ratio (dotted: witnessed power lines)")
    fig.savefig(output / "asd_ratio.png", dpi=90)
    plt.close(fig)
    fams = sorted(set(np.asarray(scores["family"]).tolist()))
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    if len(scores["residual_snr"]):
        edges = np.linspace(0, max(10.0, float(np.max(scores["residual_snr"]))), 31)
        bottom = np.zeros(edges.size - 1)
        for k, f in enumerate(fams):  # stacked by hand (gwpy's Axes.hist takes one array)
            counts, _ = np.histogram(scores["residual_snr"][scores["family"] == f], edges)
            ax.stairs(bottom + counts, edges, baseline=bottom, fill=True, label=f, color=f"C{k}")
            bottom = bottom + counts
        ax.axvline(config.residual_limit, color="k", ls="--", lw=0.8)
        ax.legend(fontsize=8)
    ax.set_xlabel("residual SNR after cleaning")
    ax.set_ylabel("witnessed glitches")
    fig.savefig(output / "residual_snr.png", dpi=90)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    for k, f in enumerate(fams):
        sel = scores["family"] == f
        ax.scatter(scores["snr"][sel], scores["fraction_removed"][sel], s=12, label=f, c=f"C{k}")
    ax.axhline(0.9, color="k", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_ylim(-0.5, 1.05)
    ax.set_xlabel("glitch SNR (truth)")
    ax.set_ylabel("fraction of excess power removed")
    ax.legend(fontsize=8)
    fig.savefig(output / "fraction_removed.png", dpi=90)
    plt.close(fig)
