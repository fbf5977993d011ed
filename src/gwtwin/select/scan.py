"""Channel selection end to end: triggers -> rounds -> slides -> scores -> decisions.

:func:`select_channels` is what ``gwtwin scan`` runs: it lists and checks the channels of a
frame set (or simulator output), computes (or re-uses) every channel's triggers, and hands them
to :func:`select_from_triggers`, the pure part, which decides:

- **live time**: the intersection of every channel's analysed segments (gaps excluded);
- **rounds**: hveto's method on strain triggers ``snr >= strain_snr`` and auxiliary triggers
  ``snr >= min(thresholds)`` (:mod:`gwtwin.select.rounds`);
- **slides**: the false-selection rate and each channel's background (:mod:`.slides`);
- **selected**: a channel that wins a round with ``S >= min_significance`` *and* ``S`` above its
  slide background;
- **redundant**: a channel significant before some round whose significance falls by at least
  ``redundancy_drop`` (fraction) once that round's winner is vetoed, and that never wins itself;
  of a selected winner and a witness redundant of it, the one handed to training is the quieter
  sensor (larger median SNR of its triggers above the lowest threshold: the same disturbance over
  less sensor noise); when that is the redundant one the two swap roles (the round keeps its
  statistics, the entry records ``won_by``), since on hveto's statistic two sensors of one
  motion can rank either way;
- **scores**: per-channel coincidence scores with the delay histogram (:mod:`.coincidence`);
  the tolerance is the channel's winning (or best first-round) window / 2 unless configured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gwtwin.data import segments as sg
from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.select.coincidence import CoincidenceScores, coincidence_scores
from gwtwin.select.config import SelectConfig, load_config
from gwtwin.select.rounds import RoundsResult, _median_snr, run_rounds
from gwtwin.select.slides import SlideResult, time_slides

__all__ = ["Selection", "select_channels", "select_from_triggers"]

FORMAT = "gwtwin-selected-channels/1"


@dataclass
class Selection:
    """Everything the selection found (see :mod:`gwtwin.select.outputs` for the files)."""

    config: SelectConfig
    strain_channel: str
    span: tuple[float, float]
    live: np.ndarray
    rounds: RoundsResult
    slides: SlideResult | None
    scores: dict[str, CoincidenceScores]
    rows: list[dict]  # ranked channel table
    selected: list[dict]  # hand-off entries, in selection order
    redundant: list[dict]
    refused_unsafe: list[str]
    strain: np.ndarray  # strain triggers analysed (snr >= strain_snr, live)
    auxiliary: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def livetime(self) -> float:
        return sg.total(self.live)

    @property
    def selected_names(self) -> list[str]:
        return [c["name"] for c in self.selected]

    def handoff(self) -> dict:
        """The ``selected_channels.json`` content (format ``gwtwin-selected-channels/1``)."""
        return {
            "format": FORMAT,
            "strain_channel": self.strain_channel,
            "span": [self.span[0], self.span[1]],
            "channels": self.selected,
            "redundant": self.redundant,
            "refused_unsafe": self.refused_unsafe,
            "config": self.config.model_dump(mode="json"),
        }

    def glitch_table(self) -> np.ndarray:
        """Strain glitches with the round and witness that vetoed them ('' when none)."""
        dtype = [
            ("time", "f8"),
            ("frequency", "f8"),
            ("snr", "f8"),
            ("round", "i4"),
            ("witness", "U64"),
        ]
        out = np.zeros(len(self.strain), dtype=dtype)
        for col in ("time", "frequency", "snr"):
            out[col] = self.strain[col]
        for r in self.rounds.rounds:
            hit = np.isin(out["time"], r.vetoed_times) & (out["round"] == 0)
            out["round"][hit] = r.n
            out["witness"][hit] = r.winner
        return out


def _live_segments(triggers: dict) -> np.ndarray:
    live = None
    for found in triggers.values():
        segs = found.params.get("segments") or [list(found.segment)]
        segs = sg.coalesce(segs)
        live = segs if live is None else sg.intersect(live, segs)
    return live if live is not None else np.zeros((0, 2))


def _band(strain: np.ndarray, times: np.ndarray) -> list[float] | None:
    rows = strain[np.isin(strain["time"], times)]
    if not len(rows):
        return None
    lo = float(np.quantile(rows["fstart"], 0.05))
    hi = float(np.quantile(rows["fend"], 0.95))
    return [round(max(lo, 0.0), 2), round(hi, 2)]


def select_from_triggers(
    triggers: dict,
    config: SelectConfig | dict | None = None,
    *,
    strain_channel: str | None = None,
    refused_unsafe: Sequence[str] = (),
) -> Selection:
    """Select witness channels from per-channel triggers (``{channel: Triggers}``).

    ``triggers`` holds the strain channel and the auxiliary channels; each ``Triggers`` carries
    its analysed ``segments`` (and ``sample_rate``, ``unit``) in ``params``.  Raises
    :class:`GwtwinError` when the channels share no live time; with no strain trigger above the
    threshold the result is explicitly empty (``notes`` says why).
    """
    config = load_config(config)
    strain_channel = strain_channel or config.strain_channel
    if not strain_channel:
        raise ConfigError("no strain channel: give strain_channel (or scan.strain_channel)")
    if strain_channel not in triggers:
        raise GwtwinError(
            f"no triggers for the strain channel {strain_channel}; found {sorted(triggers)}"
        )
    live = _live_segments(triggers)
    livetime = sg.total(live)
    if livetime <= 0:
        spans = {c: t.params.get("segments") or [list(t.segment)] for c, t in triggers.items()}
        raise GwtwinError(
            "zero live time: the channels' analysed segments do not overlap (expected a common "
            f"span of > 0 s, found segments {spans})"
        )
    table = triggers[strain_channel][strain_channel]
    cut = (table["snr"] >= config.strain_snr) & sg.contains(live, table["time"])
    if config.strain_band is not None:
        lo, hi = config.strain_band
        cut &= (table["frequency"] >= lo) & (table["frequency"] <= hi)
    strain = np.sort(table[cut], order="time")
    lowest = min(config.thresholds)
    aux = {}
    for name, found in triggers.items():
        if name == strain_channel:
            continue
        t = found[name]
        aux[name] = np.sort(t[(t["snr"] >= lowest) & sg.contains(live, t["time"])], order="time")
    notes = []
    kwargs = {
        "thresholds": config.thresholds,
        "windows": config.windows,
        "min_significance": config.min_significance,
    }
    if len(strain) == 0:
        notes.append(
            f"no strain triggers with SNR >= {config.strain_snr:g} in {livetime:g} s of live "
            "time: nothing to explain, no channel selected"
        )
    rounds = run_rounds(strain, aux, live, **kwargs)
    slides = None
    if config.slides.count and len(strain) and aux:
        slides = time_slides(
            strain, aux, live, count=config.slides.count, step=config.slides.step, **kwargs
        )
    background = slides.background if slides else {c: 0.0 for c in aux}

    # decisions
    won = {r.winner: r for r in rounds.rounds}
    selected_rounds = [r for r in rounds.rounds if r.significance > background.get(r.winner, 0)]
    for r in rounds.rounds:
        if r not in selected_rounds:
            notes.append(
                f"{r.winner} won round {r.n} (S = {r.significance:.1f}) but does not beat its "
                f"time-slide background (S = {background[r.winner]:.1f}): not selected"
            )
    redundant, seen = [], set()
    for r in rounds.rounds:
        for c, s in r.significances.items():
            if c in won or c in seen or s < config.min_significance:
                continue
            drop = r.drop.get(c, 0.0) / s
            if drop >= config.redundancy_drop:
                seen.add(c)
                redundant.append({"name": c, "primary": r.winner, "drop": round(drop, 4)})

    # scores
    scores = {}
    for c, t in aux.items():
        rule = config.rule_for(c, float(triggers[c].params.get("sample_rate", 0.0)) or None)
        tol = (rule.tolerance if rule else None) or config.coincidence.tolerance
        if tol is None:
            tol = (won[c].window if c in won else rounds.first.get(c, (0, 0, 1.0))[2]) / 2
        thr = won[c].threshold if c in won else lowest
        scores[c] = coincidence_scores(
            c,
            strain,
            t[t["snr"] >= thr],
            tolerance=tol,
            livetime=livetime,
            band=rule.band if rule else None,
        )

    def meta(c):
        p = triggers[c].params
        return float(p.get("sample_rate", 0.0)), str(p.get("unit", "")), str(p.get("method", ""))

    selected = []
    for r in selected_rounds:
        rate, unit, _ = meta(r.winner)
        sc = scores[r.winner]
        selected.append(
            {
                "name": r.winner,
                "sample_rate": rate,
                "unit": unit,
                "delay": sc.median_delay if sc.median_delay is not None else 0.0,
                "band": _band(strain, r.vetoed_times),
                "round": r.n,
                "significance": r.significance,
                "threshold": r.threshold,
                "window": r.window,
                "efficiency": r.efficiency,
                "deadtime": r.deadtime_fraction,
            }
        )
    # of mutually redundant witnesses, hand training the quieter sensor
    for entry in selected:
        for d in redundant:
            if d["primary"] != entry["name"]:
                continue
            quiet_red = _median_snr(aux[d["name"]], lowest)
            quiet_win = _median_snr(aux[entry["name"]], lowest)
            if quiet_red > quiet_win:
                winner, other = entry["name"], d["name"]
                rate, unit, _ = meta(other)
                sc = scores[other]
                entry.update(
                    name=other,
                    sample_rate=rate,
                    unit=unit,
                    delay=sc.median_delay if sc.median_delay is not None else 0.0,
                    won_by=winner,
                )
                d.update(name=winner, primary=other)
                won[other] = won[winner]  # its row shows the round it stands for
                notes.append(
                    f"{other} is redundant of round winner {winner} but the quieter sensor "
                    f"(median trigger SNR {quiet_red:.1f} vs {quiet_win:.1f}): selected in "
                    "its place"
                )
                break
    sel_names = {s["name"] for s in selected}
    red = {d["name"]: d for d in redundant}
    rows = []
    for c in aux:
        rate, unit, method = meta(c)
        s1, thr1, win1 = rounds.first.get(c, (0.0, lowest, min(config.windows)))
        if c in sel_names:
            status = "selected"
        elif c in red:
            status = f"redundant of {red[c]['primary']}"
        elif c in won:
            status = "below slide background"
        elif c in red:
            status = f"redundant of {red[c]['primary']}"
        elif s1 >= config.min_significance:
            status = "significant, not a winner"
        else:
            status = "not significant"
        rows.append(
            {
                "channel": c,
                "status": status,
                "round": won[c].n if c in won else None,
                "significance": won[c].significance if c in won else s1,
                "first_significance": s1,
                "threshold": won[c].threshold if c in won else thr1,
                "window": won[c].window if c in won else win1,
                "slide_background": background.get(c, 0.0),
                "n_triggers": len(triggers[c][c]),
                "n_above_threshold": int(np.sum(aux[c]["snr"] >= lowest)),
                "method": method,
                "sample_rate": rate,
                "unit": unit,
                **{
                    k: v
                    for k, v in scores[c].summary(config.coincidence.delay_bins).items()
                    if k != "delay_histogram"
                },
                "redundant_of": red[c]["primary"] if c in red else None,
                "drop": red[c]["drop"] if c in red else None,
            }
        )
    order = {"selected": 0}
    rows.sort(
        key=lambda r: (
            order.get(r["status"], 1 if r["status"].startswith("redundant") else 2),
            r["round"] if r["round"] is not None else 10**6,
            -r["first_significance"],
            r["channel"],
        )
    )
    for i, row in enumerate(rows, 1):
        row["rank"] = i
    span = (float(live[0, 0]), float(live[-1, 1]))
    return Selection(
        config=config,
        strain_channel=strain_channel,
        span=span,
        live=live,
        rounds=rounds,
        slides=slides,
        scores=scores,
        rows=rows,
        selected=selected,
        redundant=redundant,
        refused_unsafe=list(refused_unsafe),
        strain=strain,
        auxiliary=aux,
        notes=notes,
    )


def _simulated_strain(source) -> str | None:
    """The strain channel recorded in a ``gwtwin simulate`` output's ``summary.json``."""
    import json

    summary = Path(source) / "summary.json"
    if not summary.is_file():
        return None
    try:
        channels = json.loads(summary.read_text()).get("channels", [])
    except (OSError, ValueError):
        return None
    return next((c["name"] for c in channels if c.get("role") == "strain"), None)


def select_channels(
    source,
    config: SelectConfig | dict | str | Path | None = None,
    output: str | Path | None = None,
    *,
    channels: Sequence[str] | None = None,
    strain_channel: str | None = None,
    progress: Callable[[str, bool], None] | None = None,
    on_channels: Callable[[int], None] | None = None,
    write: bool = True,
) -> Selection:
    """Select the witness channels of strain glitches in a frame set.

    Parameters
    ----------
    source : path
        Frame file or directory, or a ``gwtwin simulate`` output directory.
    config : SelectConfig, dict, YAML path or None
        Selection config (defaults when None).
    output : path, optional
        Output directory (triggers cache, tables, flags, plots); None: nothing written.
    channels, strain_channel : optional
        Override the config's channel list and strain channel (a full name or a glob matching
        one channel; without one, a simulation output's own strain channel).
    progress : callable, optional
        ``progress(channel, cached)`` after each channel's triggers.
    on_channels : callable, optional
        Called once with the number of channels to process (to size a progress bar).
    """
    from gwtwin.data import list_channels
    from gwtwin.data.channels import resolve_channel
    from gwtwin.data.errors import MissingChannelError
    from gwtwin.select.triggers import channel_jobs, compute_triggers
    from gwtwin.signal.scan import resolve_frames

    overrides = {}
    if channels is not None:
        overrides["channels"] = list(channels)
    if strain_channel is not None:
        overrides["strain_channel"] = strain_channel
    config = load_config(config, overrides)
    frames = resolve_frames(source)
    available = list(list_channels(frames))
    if not config.strain_channel:
        # a gwtwin simulate output says which of its channels is strain
        strain = _simulated_strain(source)
        if strain:
            config = config.model_copy(update={"strain_channel": strain})
    if not config.strain_channel:
        raise ConfigError(
            "scan.strain_channel is not set: name the strain channel of the frames (a full "
            f"name or a glob such as '*:GDS-CALIB_STRAIN*'); they hold {len(available)} "
            f"channels: {', '.join(available[:30])}"
        )
    try:
        strain = resolve_channel(config.strain_channel, available)
    except GwtwinError as exc:
        raise MissingChannelError(f"{exc} in {frames}") from None
    config = config.model_copy(update={"strain_channel": strain})
    if config.channels is None:
        wanted = [c for c in available if c != strain and "TRUTH_" not in c]
    else:
        wanted = list(dict.fromkeys(config.channels))
        missing = [c for c in wanted if c not in available]
        if missing:
            raise MissingChannelError(
                f"channels not found in the frames {frames}: {', '.join(missing)} (expected "
                f"names from the {len(available)} channels they hold, e.g. "
                f"{', '.join(available[:8])})"
            )
    refused = [c for c in wanted if config.is_unsafe(c)]
    aux = [c for c in wanted if c not in refused]
    if not aux:
        raise GwtwinError(
            f"no auxiliary channels left to analyse (requested {wanted}, unsafe {refused})"
        )
    if on_channels:
        on_channels(len(aux) + 1)
    jobs = channel_jobs(frames, [strain, *aux], config, strain=strain)
    out = Path(output) if output is not None else None
    triggers = compute_triggers(
        jobs,
        out / "triggers" if out is not None and write else None,
        workers=config.workers,
        scheduler=config.dask.scheduler,
        progress=progress,
    )
    selection = select_from_triggers(
        triggers, config, strain_channel=strain, refused_unsafe=refused
    )
    if config.coherence.enabled:
        _add_coherent(selection, frames, strain, aux, config)
    if out is not None and write:
        from gwtwin.select.outputs import write_outputs

        write_outputs(selection, out)
    return selection


def _add_coherent(selection: Selection, frames, strain: str, aux, config: SelectConfig) -> None:
    """Add the channels coherent with strain that trigger coincidence did not select.

    Uses the longest gap-free stretch of strain in the selection span (at most
    ``coherence.max_duration`` s); each such channel is appended to ``selection.selected`` with
    ``method: "coherence"``, its significant bands and maximum coherence.
    """
    from gwtwin.data import read
    from gwtwin.select.coherence import coherence_with_strain

    cfg = config.coherence
    taken = set(selection.selected_names) | {d["name"] for d in selection.redundant}
    candidates = [c for c in aux if c not in taken]
    if not candidates:
        return
    data = read(frames, [strain], selection.span[0], selection.span[1])
    if not data.segments:
        return
    piece = max(data.segments, key=lambda b: b.duration)
    start = piece.t0_ns / 1e9
    end = min(start + cfg.max_duration, start + piece.duration)
    piece = piece.crop(start, end) if end < start + piece.duration else piece
    x = piece.data[0].numpy()
    rows = {r["channel"]: r for r in selection.rows}
    for name in candidates:
        w = read(frames, [name], start, end)
        if not w.segments:
            continue
        block = w.segments[0]
        result = coherence_with_strain(
            name,
            block.data[0].numpy(),
            block.sample_rate,
            x,
            piece.sample_rate,
            fftlength=cfg.fftlength,
            frange=cfg.frange,
            alpha=cfg.alpha,
        )
        if name in rows:
            rows[name]["coherence"] = result.max_coherence
        if not result.significant:
            continue
        selection.selected.append(
            {
                "name": name,
                "sample_rate": float(block.sample_rate),
                "unit": block.units[0] if block.units else "",
                "delay": 0.0,
                "band": [result.bands[0][0], result.bands[-1][1]],
                "round": None,
                "significance": None,
                "threshold": None,
                "window": None,
                "efficiency": None,
                "deadtime": None,
                "method": "coherence",
                "coherence": result.max_coherence,
                "coherence_frequency": result.frequency,
                "coherence_bands": result.bands,
                "coherence_threshold": result.threshold,
            }
        )
        if name in rows:
            rows[name]["status"] = "selected (coherence)"
        selection.notes.append(
            f"{name}: coherence {result.max_coherence:.3f} with strain at "
            f"{result.frequency:g} Hz (threshold {result.threshold:.3f}): a continuous-coupling "
            "witness, selected"
        )
