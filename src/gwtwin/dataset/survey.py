"""The build's first pass: what every candidate window is, and what the conditioning is fitted on.

:func:`survey` reads every chunk of the plan once and records, per split, each window's skip
reason (gap, nonfinite, edge) or that it is usable; it finds the strain triggers on the good
data (unless a triggers file gives them) and collects up to ``fit_duration`` seconds of good
training data.  :func:`fit_spec` fits the :class:`ConditioningSpec` on that data and
:func:`select_windows` labels the windows (loudest strain trigger SNR inside each) and draws
the quiet ones (seeded) to the configured ``quiet_fraction``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gwtwin.data import NS, Block
from gwtwin.dataset.chunks import (
    Chunk,
    Progress,
    bad_time,
    chunk_range,
    core_end,
    crop,
    good_spans,
    join_abutting,
    read_channels,
)
from gwtwin.dataset.config import DatasetConfig
from gwtwin.dataset.windows import (
    QUIET,
    Survey,
    classify,
    loudest,
    sample_quiet,
    whole_seconds_inward,
)
from gwtwin.errors import GwtwinError
from gwtwin.signal.conditioning import ConditioningSpec, fit_conditioning


@dataclass
class SurveyResult:
    """What the first pass found: per-split window surveys, strain triggers (peak GPS time in
    s, SNR) and the training data the conditioning is fitted on (per channel, joined blocks)."""

    surveys: dict[str, Survey]
    times: np.ndarray
    snrs: np.ndarray
    fit_data: dict[str, list[Block]]


def survey(
    frames: Path,
    channels: Sequence[str],
    plan: Sequence[Chunk],
    window_ns: int,
    need_ns: int,
    cfg: DatasetConfig,
    progress: Progress | None = None,
) -> SurveyResult:
    """First pass over ``plan``; ``channels`` is the strain channel followed by the witnesses.

    Raises
    ------
    GwtwinError
        No whole second of training data is free of gaps and NaN/inf samples.
    """
    strain = channels[0]
    triggers = triggers_from_file(cfg, strain)
    found_t, found_s = [], []
    surveys: dict[str, Survey] = {"train": Survey(), "valid": Survey()}
    fit_data: dict[str, list[Block]] = {c: [] for c in channels}
    fit_budget = cfg.conditioning.fit_duration
    fit_seconds = 0.0
    total = len(plan)
    for i, (split, piece, starts) in enumerate(plan):
        rlo, rhi = chunk_range(piece, starts, window_ns, need_ns)
        datas = read_channels(frames, channels, rlo, rhi)
        gaps, bad = bad_time(datas)
        good = good_spans(rlo, rhi, gaps, bad)
        first_in_piece = i == 0 or plan[i - 1][1] != piece
        core = (rlo if first_in_piece else starts[0], core_end(plan, i, rhi))
        if triggers is None:
            t, s = find_strain_triggers(datas[strain], good, core, cfg)
            found_t.append(t)
            found_s.append(s)
        for st in starts:
            surveys[split].add(st, classify(st, window_ns, need_ns, gaps, bad), 0.0)
        if split == "train" and (fit_budget is None or fit_seconds < fit_budget):
            for a, b in good:
                piece_span = whole_seconds_inward(max(a, core[0]), min(b, core[1]))
                if piece_span is None:
                    continue
                if fit_budget is not None:
                    left = int(math.ceil(fit_budget - fit_seconds)) * NS
                    piece_span = (piece_span[0], min(piece_span[1], piece_span[0] + left))
                for c in channels:
                    fit_data[c].append(crop(datas[c], *piece_span))
                fit_seconds += (piece_span[1] - piece_span[0]) / NS
        if progress:
            progress("survey", i + 1, total)
    if triggers is None:
        times = np.concatenate(found_t) if found_t else np.zeros(0)
        snrs = np.concatenate(found_s) if found_s else np.zeros(0)
    else:
        times, snrs = triggers
    if not fit_data[strain]:
        raise GwtwinError("no usable training data (every second is in a gap or NaN span)")
    # pieces of one good span cut at chunk boundaries are joined again, so the fit does not
    # depend on the chunking
    fit_data = {c: join_abutting(blocks) for c, blocks in fit_data.items()}
    return SurveyResult(surveys, times, snrs, fit_data)


def fit_spec(
    fit_data: dict[str, list[Block]], witnesses: Sequence[str], strain: str, cfg: DatasetConfig
) -> ConditioningSpec:
    """:func:`~gwtwin.signal.conditioning.fit_conditioning` with the config's conditioning."""
    cond = cfg.conditioning
    return fit_conditioning(
        fit_data,
        witnesses,
        strain,
        sample_rate=cond.sample_rate,
        fftlength=cond.fftlength,
        fduration=cond.fduration,
        highpass=cond.highpass,
        harmonics=cond.harmonics,
        wavelength=cond.wavelength,
        fringe_lowpass=cond.fringe_lowpass,
        transforms=cond.transforms,
    )


def select_windows(
    surveys: dict[str, Survey],
    times: np.ndarray,
    snrs: np.ndarray,
    window_ns: int,
    cfg: DatasetConfig,
) -> tuple[dict[str, dict[int, float]], dict[str, int], dict[str, dict[str, int]]]:
    """Labels (loudest trigger SNR with peak in each window of ``window_ns``) and quiet sampling.

    Returns
    -------
    keep : {split: {window start (GPS ns): loudest trigger SNR}}
        The windows to write.
    n_skipped : {reason: count}
        Over both splits.
    split_skipped : {split: {reason: count}}
    """
    n_skipped: dict[str, int] = {}
    split_skipped: dict[str, dict[str, int]] = {}
    keep: dict[str, dict[int, float]] = {}
    for k, (split, sv) in enumerate(surveys.items()):
        max_snr = loudest(times, snrs, sv.starts, window_ns)
        usable = np.array(sv.ok, dtype=bool)
        glitch = max_snr >= cfg.snr_threshold
        kept = sample_quiet(glitch, usable, cfg.quiet_fraction, cfg.seed + k)
        mine = split_skipped[split] = {}
        for reason in sv.reason:
            if reason:
                mine[reason] = mine.get(reason, 0) + 1
        dropped = int((usable & ~kept).sum())
        if dropped:
            mine[QUIET] = dropped
        for reason, n in mine.items():
            n_skipped[reason] = n_skipped.get(reason, 0) + n
        keep[split] = {
            st: float(m) for st, m, kk in zip(sv.starts, max_snr, kept, strict=True) if kk
        }
    return keep, n_skipped, split_skipped


def triggers_from_file(cfg: DatasetConfig, strain: str):
    """``(times, snrs)`` of the strain triggers in ``cfg.triggers_file``, or None."""
    if cfg.triggers_file is None:
        return None
    from gwtwin.signal import read_triggers

    table = read_triggers(cfg.triggers_file, [strain])[strain]
    return np.asarray(table["time"], dtype=np.float64), np.asarray(table["snr"], np.float64)


def find_strain_triggers(fd, good, core, cfg: DatasetConfig):
    """Strain triggers (peak time, SNR) on each good span, those peaking in ``core``."""
    from gwtwin.signal import find_triggers

    # refinement (sub-tile time, frequency, Q) does not change which window a trigger is in
    options = {"snr_threshold": min(5.5, cfg.snr_threshold), "refine": False, **cfg.trigger_options}
    fdur = float(options.get("fduration", 2.0))
    times, snrs = [], []
    for a, b in good:
        if (b - a) / NS < 2 * fdur + 4:
            continue
        block = crop(fd, a, b)
        table = find_triggers(block, **options).tables[block.channels[0]]
        sel = (table["time"] >= core[0] / NS) & (table["time"] < core[1] / NS)
        times.append(np.asarray(table["time"][sel], np.float64))
        snrs.append(np.asarray(table["snr"][sel], np.float64))
    if not times:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(times), np.concatenate(snrs)
