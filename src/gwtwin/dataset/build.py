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

This module is the driver (channels, span, splits, filter edges, provenance attributes); the
passes are :mod:`gwtwin.dataset.survey` and :mod:`gwtwin.dataset.write`, over the chunked
reading of :mod:`gwtwin.dataset.chunks`.

Splits are contiguous blocks of time and are processed separately: no window, and no sample
that a window's filters use, belongs to both.  The split boundary, gaps and the ends of the data
cost ``need`` seconds (the conditioning's filter edges, whole seconds) on each side.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from gwtwin.data import (
    NS,
    MissingChannelError,
    SampleRateMismatchError,
    find_frames,
    list_channels,
    to_ns,
)
from gwtwin.dataset.chunks import Progress, plan_chunks, probe_rates
from gwtwin.dataset.config import DatasetConfig, load_dataset_config, read_selected
from gwtwin.dataset.hdf5 import DATASET_FORMAT
from gwtwin.dataset.survey import fit_spec, select_windows, survey
from gwtwin.dataset.windows import make_splits, whole_seconds_inward
from gwtwin.dataset.write import truth_channels_for, write_dataset
from gwtwin.errors import GwtwinError
from gwtwin.signal.conditioning import ConditioningSpec
from gwtwin.signal.conditioning_spec import fringe_lowpass_edge, length_scale
from gwtwin.signal.filters import resample_settle
from gwtwin.signal.scan import resolve_frames
from gwtwin.signal.whitening import whiten_edge_size


@dataclass
class DatasetSummary:
    """What :func:`build_dataset` wrote."""

    path: Path
    counts: dict = field(default_factory=dict)  # split -> {"windows", "glitch", "quiet"}
    n_skipped: dict = field(default_factory=dict)  # reason -> count
    spec: ConditioningSpec | None = None
    elapsed: float = 0.0


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
    lo = min(f.start_ns for f in files) if cfg.start is None else to_ns(cfg.start)
    hi = max(f.end_ns for f in files) if cfg.end is None else to_ns(cfg.end)
    span = whole_seconds_inward(lo, hi)
    if span is None:
        raise GwtwinError(f"the GPS span [{lo / NS}, {hi / NS}) holds no whole second")
    splits = make_splits(span, cfg.valid_fraction, cfg.valid_span)
    first = min((f.start_ns for f in files if f.end_ns > span[0]), default=span[0])
    units: dict[str, str] = {}
    rates = probe_rates(frames, channels, max(span[0], first), units)
    _check_selected_rates(selection, rates, frames)
    model_rate = cfg.conditioning.sample_rate
    pad_s = _pad_seconds(cfg, rates, units, witnesses)
    context_s = cfg.qimage.context if cfg.kind == "qimage" else 0.0
    need_ns = int(round((pad_s + context_s) * NS))
    window_ns = int(round(cfg.window_duration * NS))
    stride_ns = int(round(cfg.step * NS))

    truth_channels = truth_channels_for(strain, truth_dir) if is_sim else []

    # -- pass 1: survey, conditioning fit, labels and quiet sampling ------------------------
    plan = plan_chunks(splits, window_ns, stride_ns, need_ns, cfg.chunk_duration)
    found = survey(frames, channels, plan, window_ns, need_ns, cfg, progress)
    spec = fit_spec(found.fit_data, witnesses, strain, cfg)
    found.fit_data = {}  # not needed by the second pass
    assert spec.condition_edge_duration <= pad_s + 1e-9, (spec.condition_edge_duration, pad_s)
    keep, n_skipped, split_skipped = select_windows(
        found.surveys, found.times, found.snrs, window_ns, cfg
    )

    # -- pass 2: condition and write ---------------------------------------------------------
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
    output = Path(output)
    counts = write_dataset(
        output,
        attrs,
        spec,
        cfg,
        plan,
        keep,
        split_skipped,
        frames=frames,
        channels=channels,
        truth_dir=truth_dir,
        truth_channels=truth_channels,
        window_ns=window_ns,
        need_ns=need_ns,
        progress=progress,
    )
    return DatasetSummary(output, counts, n_skipped, spec, time.perf_counter() - t_start)


def _pad_seconds(
    cfg: DatasetConfig, rates: Mapping[str, float], units: Mapping[str, str], witnesses
) -> int:
    """The conditioning's filter edges (whitening, resampling, fringe low-pass), whole seconds."""
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
    return math.ceil(edge)


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
