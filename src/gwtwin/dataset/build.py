"""``build_dataset``: frames + selected witnesses -> one HDF5 training set with full provenance.

Two passes over the span, chunk by chunk (``chunk_duration`` seconds of windows at a time, so
memory does not grow with the span):

1. **survey**: read every channel, note gaps and NaN/inf samples, find strain triggers on the
   good data (or take them from a triggers file), and collect the training data the
   conditioning is fitted on.  Every candidate window gets a label (loudest strain trigger SNR
   inside it) or the reason it cannot be used (gap, nonfinite, edge).  Quiet windows are then
   drawn (seeded) to the configured ``quiet_fraction``.
2. **write**: read again, condition each contiguous good span once (so filters never see a gap
   or the other split), cut the kept windows out at their exact GPS start and append them.

Splits are contiguous blocks of time and are processed separately: no window, and no sample
that a window's filters use, belongs to both.  The split boundary, gaps and the ends of the data
cost ``need`` seconds (the conditioning's filter edges, whole seconds) on each side.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from gwtwin.data import (
    NS,
    Block,
    MissingChannelError,
    SampleRateMismatchError,
    find_frames,
    list_channels,
    read,
)
from gwtwin.data.block import ns_to_gps
from gwtwin.dataset.config import DatasetConfig, load_dataset_config, read_selected
from gwtwin.dataset.hdf5 import DATASET_FORMAT, DatasetWriter
from gwtwin.dataset.qimages import qimage_axes, qimage_tiles
from gwtwin.dataset.windows import (
    QUIET,
    Survey,
    classify,
    loudest,
    make_splits,
    sample_quiet,
    subtract,
    union,
    whole_seconds_inward,
    window_starts,
)
from gwtwin.errors import GwtwinError
from gwtwin.signal.conditioning import (
    ConditioningSpec,
    condition_strain,
    condition_witnesses,
    fit_conditioning,
)
from gwtwin.signal.conditioning_spec import fringe_lowpass_edge, length_scale
from gwtwin.signal.filters import resample_settle
from gwtwin.signal.scan import resolve_frames
from gwtwin.signal.whitening import whiten_edge_size

TRUTH_WITNESSED = ("SCATTER", "EM", "POWERLINE")
TRUTH_UNWITNESSED = ("BLIP", "INJECTION", "LINES")

Progress = Callable[[str, int, int], None]


@dataclass
class DatasetSummary:
    """What :func:`build_dataset` wrote."""

    path: Path
    counts: dict = field(default_factory=dict)  # split -> {"windows", "glitch", "quiet"}
    n_skipped: dict = field(default_factory=dict)  # reason -> count
    spec: ConditioningSpec | None = None
    elapsed: float = 0.0


# -- reading -----------------------------------------------------------------------------------
def _read(frames: Path, channels: Sequence[str], lo: int, hi: int):
    """Each channel read alone (native rates differ) over GPS ns ``[lo, hi)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # lalframe unit notes
        return {c: read(frames, [c], ns_to_gps(lo), ns_to_gps(hi)) for c in channels}


def _bad_time(datas) -> tuple[list, list]:
    from gwtwin.data import to_ns

    gaps, bad = [], []
    for d in datas.values():
        gaps += [(to_ns(g[0]), to_ns(g[1])) for g in d.gaps]
        for segs in d.nonfinite.values():
            bad += [(to_ns(s[0]), to_ns(s[1])) for s in segs]
    return union(gaps), union(bad)


def _good_spans(lo: int, hi: int, gaps, bad) -> list[tuple[int, int]]:
    out = []
    for a, b in subtract((lo, hi), list(gaps) + list(bad)):
        span = whole_seconds_inward(a, b)
        if span:
            out.append(span)
    return out


def _crop(fd, lo: int, hi: int) -> Block:
    """The piece of a channel's FrameData covering GPS ns ``[lo, hi)``."""
    for seg in fd.segments:
        if seg.t0_ns <= lo and seg.end_ns >= hi:
            return seg.crop(ns_to_gps(lo), ns_to_gps(hi))
    raise GwtwinError(f"no contiguous data for {fd.channels} over [{lo / NS}, {hi / NS})")


def _join_abutting(blocks: list[Block]) -> list[Block]:
    out: list[Block] = []
    for b in sorted(blocks, key=lambda b: b.t0_ns):
        if out and out[-1].end_ns == b.t0_ns:
            out[-1] = out[-1].replace(data=torch.cat([out[-1].data, b.data], dim=1))
        else:
            out.append(b)
    return out


def _probe(
    frames: Path, channels: Sequence[str], start_ns: int, units: dict | None = None
) -> dict[str, float]:
    """Native rate of each channel (one second read); fills ``units`` when given."""
    datas = _read(frames, channels, start_ns, start_ns + NS)
    rates = {}
    for c, d in datas.items():
        if d.sample_rate is None:
            raise GwtwinError(f"cannot tell the sample rate of {c} from {frames}")
        rates[c] = float(d.sample_rate)
        if units is not None:
            units[c] = d.units[0] if d.units else ""
    return rates


# -- the build ---------------------------------------------------------------------------------
def build_dataset(
    source,
    selected,
    output,
    config: DatasetConfig | Mapping | str | Path | None = None,
    *,
    progress: Progress | None = None,
) -> DatasetSummary:
    """Build a training/validation set and write it to one HDF5 file.

    Parameters
    ----------
    source : path
        A frame directory (or file), or a ``gwtwin simulate`` output directory; for the latter
        the noise-free witnessed couplings (``truth``) and blips (``blip``) are written too,
        conditioned exactly like the target.
    selected : path, mapping or sequence of str
        ``selected_channels.json`` (format ``gwtwin-selected-channels/1``), its mapping, or the
        witness channel names in model order.
    output : path
        HDF5 file to write (replaced if it exists).
    config : DatasetConfig, mapping, YAML path or None
        See :class:`~gwtwin.dataset.config.DatasetConfig`.
    progress : callable(stage, done, total), optional

    Returns
    -------
    DatasetSummary

    Raises
    ------
    MissingChannelError
        A selected channel (or the strain channel) is not in the frames.
    SampleRateMismatchError
        A channel's rate is not a power of two times the model rate.
    """
    t_start = time.perf_counter()
    cfg = load_dataset_config(config)
    frames = resolve_frames(source)
    source_dir = Path(source)
    truth_dir = source_dir / "truth"
    is_sim = truth_dir.is_dir() and (source_dir / "summary.json").is_file()
    strain_sel, witnesses, selection = read_selected(
        selected, include_redundant=cfg.include_redundant
    )
    strain = cfg.strain_channel or strain_sel
    if not strain:
        raise GwtwinError(
            "no strain channel: set strain_channel in the dataset config, or give a "
            "selected_channels.json that names it"
        )
    channels = [strain, *witnesses]
    available = set(list_channels(frames))
    missing = [c for c in channels if c not in available]
    if missing:
        raise MissingChannelError(
            f"channel(s) {missing} are not in the frames {frames}; they hold "
            f"{sorted(c for c in available if 'TRUTH_' not in c)}"
        )
    files = find_frames(frames)
    lo = min(f.start_ns for f in files) if cfg.start is None else _ns(cfg.start)
    hi = max(f.end_ns for f in files) if cfg.end is None else _ns(cfg.end)
    span = whole_seconds_inward(lo, hi)
    if span is None:
        raise GwtwinError(f"the GPS span [{lo / NS}, {hi / NS}) holds no whole second")
    splits = make_splits(span, cfg.valid_fraction, cfg.valid_span)
    first = min((f.start_ns for f in files if f.end_ns > span[0]), default=span[0])
    units: dict[str, str] = {}
    rates = _probe(frames, channels, max(span[0], first), units)
    _check_selected_rates(selection, rates, frames)
    model_rate = cfg.conditioning.sample_rate
    for r in rates.values():
        if r != model_rate:
            resample_settle(r, model_rate)  # refuses ratios that are not powers of two
    edge = whiten_edge_size(model_rate, cfg.conditioning.fduration, exact=True) / model_rate
    edge += max(
        (resample_settle(r, model_rate).duration for r in rates.values() if r != model_rate),
        default=0.0,
    )
    cond = cfg.conditioning
    fringe = [
        c
        for c in witnesses
        if cond.transforms.get(c, "fringe" if length_scale(units.get(c, "")) else "") == "fringe"
    ]
    if cond.fringe_lowpass and cond.harmonics and fringe:
        edge += fringe_lowpass_edge(model_rate)
    pad_s = math.ceil(edge)
    context_s = cfg.qimage.context if cfg.kind == "qimage" else 0.0
    need_ns = int(round((pad_s + context_s) * NS))
    window_ns = int(round(cfg.window_duration * NS))
    stride_ns = int(round(cfg.step * NS))

    truth_channels = []
    if is_sim:
        prefix = strain.split(":", 1)[0] + ":" if ":" in strain else ""
        truth_channels = [f"{prefix}TRUTH_{n}" for n in TRUTH_WITNESSED + TRUTH_UNWITNESSED]
        held = set(list_channels(truth_dir))
        absent = [c for c in truth_channels if c not in held]
        if absent:
            raise MissingChannelError(f"truth channel(s) {absent} are not in {truth_dir}")

    # -- pass 1: survey -------------------------------------------------------------------
    triggers = _triggers_from_file(cfg, strain)
    found_t, found_s = [], []
    surveys: dict[str, Survey] = {"train": Survey(), "valid": Survey()}
    fit_data: dict[str, list[Block]] = {c: [] for c in channels}
    fit_budget = cfg.conditioning.fit_duration
    fit_seconds = 0.0
    plan = _plan(splits, window_ns, stride_ns, need_ns, cfg)
    total = len(plan)
    for i, (split, piece, starts) in enumerate(plan):
        rlo, rhi = _range(piece, starts, window_ns, need_ns)
        datas = _read(frames, channels, rlo, rhi)
        gaps, bad = _bad_time(datas)
        good = _good_spans(rlo, rhi, gaps, bad)
        first_in_piece = i == 0 or plan[i - 1][1] != piece
        core = (rlo if first_in_piece else starts[0], _core_end(plan, i, rhi))
        if triggers is None:
            t, s = _find_strain_triggers(datas[strain], good, core, cfg)
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
                    fit_data[c].append(_crop(datas[c], *piece_span))
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
    fit_data = {c: _join_abutting(blocks) for c, blocks in fit_data.items()}
    spec = fit_conditioning(
        fit_data,
        witnesses,
        strain,
        sample_rate=model_rate,
        fftlength=cfg.conditioning.fftlength,
        fduration=cfg.conditioning.fduration,
        highpass=cfg.conditioning.highpass,
        harmonics=cfg.conditioning.harmonics,
        wavelength=cfg.conditioning.wavelength,
        fringe_lowpass=cfg.conditioning.fringe_lowpass,
        transforms=cfg.conditioning.transforms,
    )
    del fit_data
    assert spec.condition_edge_duration <= pad_s + 1e-9, (spec.condition_edge_duration, pad_s)

    # labels and quiet sampling
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

    # -- pass 2: condition and write ---------------------------------------------------------
    rows = len(spec.feature_names)
    size = int(round(cfg.window_duration * model_rate))
    attrs = {
        "format": DATASET_FORMAT,
        "kind": cfg.kind,
        "strain_channel": strain,
        "witness_channels": json.dumps(witnesses),
        "conditioning": spec.to_json(),
        "source": str(Path(source).resolve()),
        "config": cfg.model_dump_json(),
        "selection": json.dumps(selection, default=str),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sample_rate": model_rate,
        "window_duration": cfg.window_duration,
        "target_duration": cfg.target_duration,
        "stride": cfg.step,
        "feature_names": json.dumps(spec.feature_names),
        "n_skipped": json.dumps(n_skipped),
        "snr_threshold": cfg.snr_threshold,
        "quiet_fraction": -1.0 if cfg.quiet_fraction is None else cfg.quiet_fraction,
        "edge_duration": float(pad_s + context_s),
        "splits": json.dumps(
            {k: [[a, b] for a, b in getattr(splits, k)] for k in ("train", "valid")}
        ),
        "triggers": cfg.triggers_file or "computed (gwtwin.signal.find_triggers on strain)",
        "truth_channels": json.dumps(truth_channels[:3]),
        "simulation": is_sim,
    }
    if cfg.kind == "timeseries":
        shapes = {"witness": (rows, size), "target": (size,)}
        if is_sim:
            shapes.update({"truth": (size,), "blip": (size,)})
    else:
        nf, nt = cfg.qimage.nfreq, cfg.qimage.ntime
        shapes = {"witness": (rows, nf, nt), "target": (nf, nt)}
        if is_sim:
            shapes["truth"] = (nf, nt)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    with DatasetWriter(output, attrs, shapes) as writer:
        writer.write_psd(spec)
        if cfg.kind == "qimage":
            writer.write_qimage_axes(*qimage_axes(cfg, model_rate))
        total = sum(1 for split, _, starts in plan if any(st in keep[split] for st in starts))
        done = 0
        for split, piece, starts in plan:
            mine = [st for st in starts if st in keep[split]]
            if not mine:
                continue
            _write_chunk(
                writer,
                split,
                piece,
                mine,
                keep[split],
                spec,
                cfg,
                frames,
                truth_dir,
                channels,
                truth_channels,
                window_ns,
                need_ns,
                pad_s,
            )
            done += 1
            if progress:
                progress("write", done, total)
        for split in ("train", "valid"):
            gl = sum(1 for m in keep[split].values() if m >= cfg.snr_threshold)
            counts[split] = {
                "windows": len(keep[split]),
                "glitch": gl,
                "quiet": len(keep[split]) - gl,
            }
        writer.set_attr("counts", json.dumps(counts))
        for split, skipped in split_skipped.items():
            writer.h5[split].attrs["n_skipped"] = json.dumps(skipped)
    return DatasetSummary(output, counts, n_skipped, spec, time.perf_counter() - t_start)


def _check_selected_rates(selection: Mapping, rates: dict[str, float], frames) -> None:
    """The selection file's rates (when it gives them) must be what the frames hold."""
    for entry in selection.get("channels", []):
        if not isinstance(entry, Mapping) or not entry.get("sample_rate"):
            continue  # no rate given (or 0: unknown to the selection)
        name, declared = entry.get("name"), float(entry["sample_rate"])
        if name in rates and abs(rates[name] - declared) > 1e-9 * declared:
            raise SampleRateMismatchError(
                f"sample rates do not match: the selection expects {name} at {declared:g} Hz, "
                f"the frames in {frames} hold it at {rates[name]:g} Hz"
            )


def _ns(gps) -> int:
    from gwtwin.data import to_ns

    return to_ns(gps)


def _plan(splits, window_ns, stride_ns, need_ns, cfg: DatasetConfig):
    """``(split, piece, starts)`` per chunk of consecutive windows."""
    per = max(1, int(cfg.chunk_duration * NS // stride_ns))
    plan = []
    for split, piece in splits.pieces():
        starts = window_starts(piece, window_ns, stride_ns, need_ns)
        for k in range(0, len(starts), per):
            plan.append((split, piece, starts[k : k + per]))
    return plan


def _range(piece, starts, window_ns, need_ns) -> tuple[int, int]:
    return max(piece[0], starts[0] - need_ns), min(piece[1], starts[-1] + window_ns + need_ns)


def _core_end(plan, i, rhi) -> int:
    """Triggers and fit data of chunk ``i`` end where the next chunk's windows start."""
    split, piece, _ = plan[i]
    if i + 1 < len(plan) and plan[i + 1][1] == piece:
        return plan[i + 1][2][0]
    return rhi


def _triggers_from_file(cfg: DatasetConfig, strain: str):
    if cfg.triggers_file is None:
        return None
    from gwtwin.signal import read_triggers

    table = read_triggers(cfg.triggers_file, [strain])[strain]
    return np.asarray(table["time"], dtype=np.float64), np.asarray(table["snr"], np.float64)


def _find_strain_triggers(fd, good, core, cfg: DatasetConfig):
    """Strain triggers (peak time, SNR) on each good span, those peaking in ``core``."""
    from gwtwin.signal import find_triggers

    # refinement (sub-tile time, frequency, Q) does not change which window a trigger is in
    options = {"snr_threshold": min(5.5, cfg.snr_threshold), "refine": False, **cfg.trigger_options}
    fdur = float(options.get("fduration", 2.0))
    times, snrs = [], []
    for a, b in good:
        if (b - a) / NS < 2 * fdur + 4:
            continue
        block = _crop(fd, a, b)
        table = find_triggers(block, **options).tables[block.channels[0]]
        sel = (table["time"] >= core[0] / NS) & (table["time"] < core[1] / NS)
        times.append(np.asarray(table["time"][sel], np.float64))
        snrs.append(np.asarray(table["snr"][sel], np.float64))
    if not times:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(times), np.concatenate(snrs)


def _write_chunk(
    writer,
    split,
    piece,
    starts,
    max_snr,
    spec,
    cfg,
    frames,
    truth_dir,
    channels,
    truth_channels,
    window_ns,
    need_ns,
    pad_s,
):
    rlo, rhi = _range(piece, starts, window_ns, need_ns)
    datas = _read(frames, channels, rlo, rhi)
    gaps, bad = _bad_time(datas)
    truth = _read(truth_dir, truth_channels, rlo, rhi) if truth_channels else {}
    rate = spec.sample_rate
    size = int(round(cfg.window_duration * rate))
    for a, b in _good_spans(rlo, rhi, gaps, bad):
        mine = [st for st in starts if st - need_ns >= a and st + window_ns + need_ns <= b]
        if not mine:
            continue
        witness = condition_witnesses([_crop(datas[c], a, b) for c in channels[1:]], spec)
        target = condition_strain(_crop(datas[channels[0]], a, b), spec)
        extra = {}
        if truth:
            parts = {c.rsplit("_", 1)[-1]: _crop(truth[c], a, b) for c in truth_channels}
            extra = _truth_series(parts, _crop(datas[channels[0]], a, b), spec, cfg.kind)
        offsets = []
        for st in mine:
            num = (st - a) * int(rate)
            if num % NS:
                raise GwtwinError(
                    f"window start {st / NS} is not on the {rate:g} Hz sample grid of the "
                    f"span starting {a / NS}; use a stride that is a whole number of samples"
                )
            offsets.append(num // NS)
        if cfg.kind == "timeseries":
            arrays = {
                "witness": torch.stack([witness[:, o : o + size] for o in offsets]),
                "target": torch.stack([target[o : o + size] for o in offsets]),
            }
            for name, series in extra.items():
                arrays[name] = torch.stack([series[o : o + size] for o in offsets])
        else:
            arrays = qimage_tiles(witness, target, extra.get("truth"), offsets, size, spec, cfg)
        arrays = {k: v.to(torch.float32).numpy() for k, v in arrays.items()}
        snr = np.array([max_snr[st] for st in mine], dtype=np.float32)
        writer.append(
            split,
            arrays,
            gps_ns=np.array(mine, dtype=np.int64),
            glitch=snr >= cfg.snr_threshold,
            max_snr=snr,
        )


def _truth_series(parts: dict[str, Block], strain: Block, spec, kind: str) -> dict:
    """Conditioned truth: ``truth`` (witnessed couplings) and ``blip`` for time series; for
    Q-images ``truth`` is the whitened strain without its unwitnessed transients (blips,
    injections), i.e. noise, lines and witnessed couplings, so that its image is normalised
    like the target's (a median-normalised image of a noise-free coupling would be undefined)."""

    def as_strain(x: torch.Tensor) -> Block:
        return strain.replace(data=x.reshape(1, -1).to(torch.float64))

    witnessed = sum(parts[n].data[0].to(torch.float64) for n in TRUTH_WITNESSED)
    if kind == "timeseries":
        return {
            "truth": condition_strain(as_strain(witnessed), spec),
            "blip": condition_strain(as_strain(parts["BLIP"].data[0]), spec),
        }
    # the stationary lines stay: removing them would change the rows' median normalisation
    transients = sum(parts[n].data[0].to(torch.float64) for n in ("BLIP", "INJECTION"))
    return {"truth": condition_strain(as_strain(strain.data[0] - transients), spec)}
