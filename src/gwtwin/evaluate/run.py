"""``gwtwin evaluate``: score a cleaning against the simulator's truth, and from the data alone.

Inputs: the output directory of ``gwtwin clean`` and, for simulated data, the simulator's output
directory (``frames/``, ``truth/``, ``catalogue.h5``, ``config.yaml``). Without a simulation
(real data) only the truth-free metrics are computed (:mod:`gwtwin.evaluate.datadriven`: ASD
ratio over quiet and all time, per-glitch improved / worsened / untouched verdicts by trigger SNR
before/after and by the whitened power the clean step recorded, with its margin in standard
deviations and the count of each outcome), and ``evaluate.json`` lists under
``not_computed_without_truth`` what needs truth and why; with a simulation both are computed,
side by side (``without_truth``).  Over the evaluation span (``start``/``end``, default
everything cleaned; use held-out time for the real measure), in pieces of ``chunk_duration``
seconds (plus whitening context), with the reference whitening of each piece (median Welch PSD
of the raw strain):

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
(``asd_ratio.png``, ``residual_snr.png``, ``fraction_removed.png``); from the data alone
(``without_truth``: ``asd_ratio``, ``glitches`` by trigger SNR, ``glitch_power`` by whitened
power) ``asd_ratio_data.csv``, ``glitch_changes.csv`` and ``asd_ratio_data.png``,
``glitch_changes.png`` and, where the metadata records it, ``glitch_power.png``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from gwtwin.data import segments as sg
from gwtwin.errors import GwtwinError
from gwtwin.evaluate.config import EVALUATE_FILE, EvaluateConfig, load_evaluate_config
from gwtwin.evaluate.datadriven import not_computable, truth_free
from gwtwin.evaluate.flags import flag_figures
from gwtwin.evaluate.metrics import (
    WITNESSED_FAMILIES,
    injection_safety,
    quiet_segments,
    score_glitches,
    summarise_scores,
    welch_powers,
)
from gwtwin.evaluate.plots import data_plots, truth_plots
from gwtwin.evaluate.summary import asd_summary, criteria, headline
from gwtwin.infer.clean import json_default
from gwtwin.infer.glitches import write_columns
from gwtwin.signal.whitening import Whitener

__all__ = ["EVALUATE_FILE", "EvaluateConfig", "evaluate_run", "load_evaluate_config"]

STRAIN_FAMILIES = (*WITNESSED_FAMILIES, "blip", "injection")  #: what shows in strain


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


def evaluate_run(
    simulation, clean, output, config: EvaluateConfig | None = None, *, frames=None, log=print
):
    """Score the cleaning in ``clean``; see the module docstring.

    ``simulation``: a ``gwtwin simulate`` output (truth metrics), or None for real data (the
    truth-free metrics only). ``frames``: the raw strain the cleaning read (default: the
    simulation's frames, else the source recorded in ``clean.json``). Returns the content of
    ``evaluate.json``.
    """
    config = config or EvaluateConfig()
    clean, output = Path(clean), Path(output)
    if not (clean / "clean.json").is_file():
        raise GwtwinError(
            f"gwtwin evaluate needs {clean / 'clean.json'}: the output directory of gwtwin clean"
        )
    info = json.loads((clean / "clean.json").read_text())
    if simulation is not None:
        simulation = Path(simulation)
        for need in (simulation / "truth", simulation / "catalogue.h5"):
            if not need.exists():
                raise GwtwinError(
                    f"gwtwin evaluate needs {need}: a gwtwin simulate output (truth exists only "
                    "for simulated data; leave the simulation out to score real data without it)"
                )
    raw_source = frames or (simulation / "frames" if simulation is not None else info.get("source"))
    if raw_source is None:
        raise GwtwinError(
            f"{clean / 'clean.json'} does not record the frames it cleaned: give frames= (the raw "
            "strain's frame directory)"
        )
    segments = [tuple(s) for s in info["segments"]]
    lo = config.start if config.start is not None else segments[0][0]
    hi = config.end if config.end is not None else segments[-1][1]
    spans = sg.intersect_spans(segments, [(lo, hi)])
    if not spans:
        raise GwtwinError(
            f"the evaluation span [{lo}, {hi}) does not overlap the cleaned segments {segments}"
        )
    result = {
        "span": [lo, hi],
        "evaluated": [list(s) for s in spans],
        "seconds": float(sum(b - a for a, b in spans)),
        "truth": simulation is not None,
    }
    output.mkdir(parents=True, exist_ok=True)
    free = truth_free(raw_source, clean, info, spans, config)
    write_columns(output / "asd_ratio_data.csv", free["asd_table"])
    write_columns(output / "glitch_changes.csv", free["glitch_table"])
    data_plots(output, free, config)
    if simulation is not None:
        result.update(_against_truth(simulation, clean, output, info, spans, config))
    else:
        result["not_computed_without_truth"] = not_computable()
        result["headline"] = _truth_free_headline(free["summary"])
    result["without_truth"] = free["summary"]
    result.update(
        {"config": config.model_dump(mode="json"), "clean": str(clean), "frames": str(raw_source)}
    )
    if simulation is not None:
        result["simulation"] = str(simulation)
    (output / EVALUATE_FILE).write_text(json.dumps(result, indent=1, default=json_default))
    for key, value in result["headline"].items():
        log(f"{key}: {value}")
    return result


def _truth_free_headline(summary: dict) -> dict:
    asd, g = summary["asd_ratio"], summary["glitches"]
    p = summary.get("glitch_power", {})
    power = (
        {f"glitches_{k}_power": p.get(k) for k in ("improved", "worsened", "untouched")}
        if p.get("recorded")
        else {"glitches_power_verdicts": "not recorded"}
    )
    return {
        "asd_ratio_quiet": [asd["quiet"]["min"], asd["quiet"]["max"]],
        "asd_ratio_overall_median": asd["overall"]["median"],
        "glitches": g["count"],
        "glitches_improved": g["improved"],
        "glitches_worsened": g["worsened"],
        "glitches_untouched": g["untouched"],
        "median_trigger_power_removed": g["median_power_removed"],
        **power,
        "median_fraction_power_removed": p.get("median_fraction_power_removed"),
        "power_margin_sigma": p.get("margin_sigma"),
    }


def _against_truth(simulation: Path, clean: Path, output: Path, info, spans, config) -> dict:
    """The truth metrics (module docstring) over ``spans``; writes their tables and plots."""
    from gwtwin.data import read
    from gwtwin.data.flags import read_flags
    from gwtwin.signal.spectral import psd_block
    from gwtwin.simulate.engine import read_catalogue

    strain, cleaned_name = info["strain_channel"], info["cleaned_channel"]
    ifo = strain.split(":", 1)[0]
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
            quiet = sg.intersect_spans([tuple(q) for q in quiet], applied)
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
    asd = asd_summary(freqs, p_quiet, n_quiet, p_all, n_all, config, lines, width)
    flags = flag_figures(clean, table, config, read_flags, spans)
    head = headline(summary, inj_rows, asd, flags)
    write_columns(output / "per_glitch.csv", merged)
    write_columns(output / "injections.csv", inj_rows)
    write_columns(output / "asd_ratio.csv", asd["table"])
    truth_plots(output, merged, asd, config, lines)
    return {
        "glitches": summary,
        "outside_cleaned_time": outside,
        "injections": {k: np.asarray(v).tolist() for k, v in inj_rows.items()},
        "asd_ratio": asd["summary"],
        "flags": flags,
        "headline": head,
        "criteria": criteria(head),
    }


def _concat(parts: list[dict], keys) -> dict:
    if not parts:
        return {k: np.zeros(0, dtype=(str if k == "family" else float)) for k in keys}
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in keys}


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
