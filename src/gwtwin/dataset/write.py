"""The build's second pass: condition each contiguous good span once and write the kept windows.

Each chunk of the plan that holds a kept window is read again; every good span in it (no gap,
no NaN/inf sample, whole seconds) is conditioned alone, so filters never see a gap or the other
split, and the kept windows are cut out at their exact GPS start (a whole number of model-rate
samples from the span's start) and appended to the ``gwtwin-dataset/1`` file.  For simulations
the truth (:data:`TRUTH_WITNESSED` couplings, blips) is conditioned exactly like the target.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from gwtwin.data import NS, Block, MissingChannelError, list_channels
from gwtwin.dataset.chunks import (
    Chunk,
    Progress,
    bad_time,
    chunk_range,
    crop,
    good_spans,
    read_channels,
)
from gwtwin.dataset.config import DatasetConfig
from gwtwin.dataset.hdf5 import DatasetWriter
from gwtwin.dataset.qimages import qimage_axes, qimage_tiles
from gwtwin.errors import GwtwinError
from gwtwin.signal.conditioning import ConditioningSpec, condition_strain, condition_witnesses

TRUTH_WITNESSED = ("SCATTER", "EM", "POWERLINE")
TRUTH_UNWITNESSED = ("BLIP", "INJECTION", "LINES")


def truth_channels_for(strain: str, truth_dir: Path) -> list[str]:
    """The simulator's truth channels, ``<IFO>:TRUTH_<FAMILY>`` with the strain channel's
    detector prefix, checked to be in ``truth_dir``."""
    prefix = strain.split(":", 1)[0] + ":" if ":" in strain else ""
    names = [f"{prefix}TRUTH_{n}" for n in TRUTH_WITNESSED + TRUTH_UNWITNESSED]
    held = set(list_channels(truth_dir))
    absent = [c for c in names if c not in held]
    if absent:
        raise MissingChannelError(f"truth channel(s) {absent} are not in {truth_dir}")
    return names


def window_shapes(cfg: DatasetConfig, rows: int, size: int, truth: bool) -> dict[str, tuple]:
    """Per-window array shapes: ``size`` samples (time series) or a Q-image tile, ``rows``
    witness features; ``truth`` (and ``blip`` for time series) when the source is simulated."""
    if cfg.kind == "timeseries":
        shapes = {"witness": (rows, size), "target": (size,)}
        if truth:
            shapes.update({"truth": (size,), "blip": (size,)})
    else:
        nf, nt = cfg.qimage.nfreq, cfg.qimage.ntime
        shapes = {"witness": (rows, nf, nt), "target": (nf, nt)}
        if truth:
            shapes["truth"] = (nf, nt)
    return shapes


def write_dataset(
    output: Path,
    attrs: Mapping,
    spec: ConditioningSpec,
    cfg: DatasetConfig,
    plan: Sequence[Chunk],
    keep: dict[str, dict[int, float]],
    split_skipped: dict[str, dict[str, int]],
    *,
    frames: Path,
    channels: Sequence[str],
    truth_dir: Path,
    truth_channels: Sequence[str],
    window_ns: int,
    need_ns: int,
    progress: Progress | None = None,
) -> dict[str, dict[str, int]]:
    """Second pass: write the windows in ``keep`` (``{split: {start ns: max SNR}}``) to
    ``output``; ``channels`` is the strain channel followed by the witnesses.

    Returns
    -------
    counts : {split: {"windows", "glitch", "quiet"}}
    """
    model_rate = cfg.conditioning.sample_rate
    rows = len(spec.feature_names)
    size = int(round(cfg.window_duration * model_rate))
    shapes = window_shapes(cfg, rows, size, bool(truth_channels))
    output.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    with DatasetWriter(output, dict(attrs), shapes) as writer:
        writer.write_psd(spec)
        if cfg.kind == "qimage":
            writer.write_qimage_axes(*qimage_axes(cfg, model_rate))
        total = sum(1 for split, _, starts in plan if any(st in keep[split] for st in starts))
        done = 0
        for split, piece, starts in plan:
            mine = [st for st in starts if st in keep[split]]
            if not mine:
                continue
            write_chunk(
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
    return counts


def write_chunk(
    writer: DatasetWriter,
    split: str,
    piece,
    starts: Sequence[int],
    max_snr: Mapping[int, float],
    spec: ConditioningSpec,
    cfg: DatasetConfig,
    frames: Path,
    truth_dir: Path,
    channels: Sequence[str],
    truth_channels: Sequence[str],
    window_ns: int,
    need_ns: int,
) -> None:
    """Condition each good span of one chunk and append its windows ``starts`` (GPS ns)."""
    rlo, rhi = chunk_range(piece, starts, window_ns, need_ns)
    datas = read_channels(frames, channels, rlo, rhi)
    gaps, bad = bad_time(datas)
    truth = read_channels(truth_dir, truth_channels, rlo, rhi) if truth_channels else {}
    rate = spec.sample_rate
    size = int(round(cfg.window_duration * rate))
    for a, b in good_spans(rlo, rhi, gaps, bad):
        mine = [st for st in starts if st - need_ns >= a and st + window_ns + need_ns <= b]
        if not mine:
            continue
        witness = condition_witnesses([crop(datas[c], a, b) for c in channels[1:]], spec)
        target = condition_strain(crop(datas[channels[0]], a, b), spec)
        extra = {}
        if truth:
            parts = {c.rsplit("_", 1)[-1]: crop(truth[c], a, b) for c in truth_channels}
            extra = truth_series(parts, crop(datas[channels[0]], a, b), spec, cfg.kind)
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


def truth_series(parts: dict[str, Block], strain: Block, spec, kind: str) -> dict:
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
