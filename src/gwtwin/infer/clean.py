"""``gwtwin clean``: cleaned strain frames, the predicted noise, flags and per-glitch metadata.

:func:`clean_frames` takes frames (any GPS span, gaps allowed) and a registered twin model
(``models:/NAME@ALIAS``) and writes, into an output directory::

    frames/     cleaned strain  <STRAIN>_CLEANED  and the predicted noise  <STRAIN>_PREDICTION,
                same GPS span and rate as the strain (GWF by default), in files named with the
                input's observatory letter (``H-GWTWIN_CLEANED-<gps>-64.gwf`` for H1 input)
    flags/      <IFO>:GWTWIN-WITNESSED, -CLEANING_FAILED, -UNWITNESSED (LIGO_LW XML, HDF5,
                DQSEGDB JSON) and <IFO>:GWTWIN-CLEANING_APPLIED (where a prediction was
                subtracted), all version 1
    triggers/   Q-tile triggers of the raw and the cleaned strain (HDF5)
    metadata.csv  one row per strain glitch (GPS, cleaned?, residual SNR^2 and area, SNR before and
                after, predicted SNR, explaining witness)
    accuracy.csv  Glitchflow's veto and denoising accuracy per SNR^2 threshold
    images/     real / predicted / cleaned Q-spectrograms and time series of sample glitches (PNG,
                also in tensorboard/)
    clean.json  what was done: model, channels, spans, gaps, counts, timings

Cleaning (see :mod:`gwtwin.infer.predict`): the witnesses are conditioned exactly as in training,
the network runs on the global window grid keeping only the central part of each window, the
prediction (whitened strain) is coloured back with the inverse of the training whitening filter
and subtracted from the raw strain: ``cleaned = raw - colour(prediction)``.  Colouring is linear,
so this is the whitened-domain subtraction ``colour(white(raw) - prediction)`` without sending the
raw strain through a whitening round trip.  Long spans stream through in chunks
(``chunk_duration``) with bounded memory; the output does not depend on the chunk length (any
whole number of seconds >= 1).  Where no prediction can be made (the first and last
``context`` seconds of every data segment, around NaN/inf witness samples) the raw strain is
passed through unchanged and the time is left out of ``GWTWIN-CLEANING_APPLIED``; gaps in the
input are gaps in the output frames and in every flag's known segments.

The veto (:mod:`gwtwin.infer.veto`) then compares raw and cleaned strain, whitened with one
reference PSD per veto chunk (median Welch of the raw strain, robust to glitches).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from gwtwin.data import Block, find_frames, read
from gwtwin.data.block import concat_in_time
from gwtwin.data.channels import CLEANED_SUFFIX, cleaned_channel, flag_name, observatory
from gwtwin.data.frames import write_frames
from gwtwin.data.segments import merge_spans
from gwtwin.errors import ConfigError, GwtwinError
from gwtwin.infer.decide import DecisionSettings
from gwtwin.infer.predict import BINS_PER_SECOND, NS, GridPredictor
from gwtwin.signal._threads import torch_threads

CLEAN_FILE = "clean.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VetoSettings(_Model):
    """Veto thresholds (see :class:`gwtwin.infer.veto.VetoConfig`) and the trigger search."""

    snr_threshold: float = Field(8.0, gt=0)  # a strain trigger at or above this is a glitch
    trigger_snr: float = Field(5.5, gt=0)  # lowest tile SNR of the raw/cleaned trigger search
    snr2_threshold: float = Field(25.0, gt=0)  # residual Q-pixel SNR^2 that counts as left
    witnessed_fraction: float = Field(0.5, ge=0, le=1)
    min_predicted_snr: float = Field(4.0, ge=0)
    pad: float = Field(0.1, ge=0)
    #: a glitch's power drop (rise) is significant beyond this many standard deviations of
    #: the drop under a subtraction unrelated to strain (2 |subtracted|, whitened)
    margin_sigma: float = Field(3.0, ge=0)
    #: ... and beyond this share of the glitch's whitened power (1 %: 0.5 % of its SNR)
    change_tolerance: float = Field(0.01, ge=0, lt=1)
    image_duration: float = Field(32.0, gt=0)
    qrange: tuple[float, float] = (4.0, 32.0)
    frange: tuple[float, float] = (10.0, 1000.0)
    chunk_duration: float = Field(512.0, gt=0)  # s of strain analysed at once
    fftlength: float = Field(4.0, gt=0)  # reference PSD (median Welch) per veto chunk
    fduration: float = Field(2.0, gt=0)  # reference whitening filter length

    def veto_config(self):
        from gwtwin.infer.veto import VetoConfig

        return VetoConfig(
            snr_threshold=self.snr_threshold,
            snr2_threshold=self.snr2_threshold,
            witnessed_fraction=self.witnessed_fraction,
            min_predicted_snr=self.min_predicted_snr,
            margin_sigma=self.margin_sigma,
            change_tolerance=self.change_tolerance,
            pad=self.pad,
            image_duration=self.image_duration,
            qrange=tuple(self.qrange),
            frange=tuple(self.frange),
        )


class CleanConfig(_Model):
    """How ``gwtwin clean`` runs (every key has a default; unknown keys are refused).

    ``model`` None: the model the run's train step registered (``gwtwin run``) or ``--model``.
    """

    model: str | None = None
    tracking_uri: str | None = None
    start: float | None = None
    end: float | None = None
    #: cleaned channel: <strain channel><suffix>
    suffix: str = CLEANED_SUFFIX
    write_prediction: bool = True
    format: Literal["gwf", "hdf5"] = "gwf"
    frame_length: int = Field(64, gt=0)
    tag: str = "GWTWIN_CLEANED"
    chunk_duration: int = Field(256, ge=1)
    taper: float = Field(1.0, ge=0)
    batch_size: int = Field(16, ge=1)
    #: arithmetic of the conditioning and the network (float64: the output does not depend on
    #: the chunking, the batching or the thread count beyond float64 rounding, so offline and
    #: online cleaning agree to ~1e-15; see GridPredictor)
    precision: Literal["float64", "float32"] = "float64"
    attribute: bool = True
    attribution_threshold: float = Field(
        1.0,
        ge=0,
        description="with a linear stage: network-output energy per block (whitened SNR^2) "
        "from which the network's share is attributed by ablation (0: every block)",
    )
    decision: DecisionSettings = Field(default_factory=DecisionSettings)
    veto: VetoSettings = Field(default_factory=VetoSettings)
    images: int = Field(6, ge=0)
    tensorboard: bool = True
    torch_threads: int | None = Field(None, ge=1)


def load_clean_config(source=None, overrides: dict | None = None) -> CleanConfig:
    """A :class:`CleanConfig` from a YAML file (whole file or its ``clean:`` section), a
    mapping, or defaults; errors name the key and the value."""
    from gwtwin.configio import load_section

    return load_section(CleanConfig, "clean", source, overrides)


# -- frames in, frames out ------------------------------------------------------------------------
def data_segments(source, start=None, end=None) -> tuple[list[tuple[int, int]], list]:
    """Whole-second GPS segments ``[(lo, hi)]`` the frame files cover within ``[start, end)``,
    and the gaps ``[(lo, hi)]`` between them (or at the ends of the requested span)."""
    files = find_frames(source, start, end)
    if not files:
        span = f" in [{start}, {end})" if start is not None or end is not None else ""
        raise GwtwinError(f"no frame files in {source}{span}")
    lo_req = files[0].start_ns if start is None else int(round(float(start) * NS))
    hi_req = files[-1].end_ns if end is None else int(round(float(end) * NS))
    spans: list[list[int]] = []
    for f in files:
        a, b = max(f.start_ns, lo_req), min(f.end_ns, hi_req)
        if b <= a:
            continue
        if spans and a <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    segments = []
    for a, b in spans:
        a_s, b_s = -(-a // NS), b // NS  # whole seconds inside
        if b_s > a_s:
            segments.append((a_s, b_s))
    gaps, cursor = [], lo_req / NS
    for a, b in segments:
        if a > cursor:
            gaps.append((cursor, float(a)))
        cursor = float(b)
    if hi_req / NS > cursor:
        gaps.append((cursor, hi_req / NS))
    return segments, gaps


class _FrameWriter:
    """Buffers output Blocks and writes whole frame files as soon as they are complete."""

    def __init__(self, directory: Path, observatory: str, config: CleanConfig):
        self.directory = directory
        self.observatory = observatory
        self.config = config
        self.pending: list[list[Block]] = []
        self.paths: list[Path] = []

    def add(self, blocks: list[Block]) -> None:
        self.pending.append(blocks)
        end = blocks[0].end_ns
        boundary = end // (self.config.frame_length * NS) * self.config.frame_length * NS
        start = self.pending[0][0].t0_ns
        if boundary > start:
            self._write(boundary)

    def _write(self, upto_ns: int | None) -> None:
        if not self.pending:
            return
        joined = [concat_in_time([p[i] for p in self.pending]) for i in range(len(self.pending[0]))]
        keep = None
        if upto_ns is not None and upto_ns < joined[0].end_ns:
            keep = [b.crop(upto_ns // NS, None) for b in joined]
            joined = [b.crop(None, upto_ns // NS) for b in joined]
        self.paths += write_frames(
            joined,
            self.directory,
            observatory=self.observatory,
            tag=self.config.tag,
            frame_length=self.config.frame_length,
            format=self.config.format,
        )
        self.pending = [keep] if keep is not None else []

    def close(self) -> None:
        self._write(None)


def _observatory(source, strain_channel: str) -> str:
    """The input files' observatory letter(s), else the strain channel's (``H1`` -> ``H``)."""
    files = find_frames(source)
    if files and files[0].observatory:
        return files[0].observatory
    return observatory(strain_channel)


def _load_model(config: CleanConfig, model, tracking_uri):
    from gwtwin.models.twin import TwinModel

    if isinstance(model, TwinModel):
        return model, {"uri": None}
    uri = model or config.model
    if uri is None:
        raise ConfigError(
            "no model to clean with: give --model models:/NAME@ALIAS (or clean.model in the config)"
        )
    tracking = tracking_uri or config.tracking_uri
    return TwinModel.load(uri, tracking_uri=tracking), {"uri": uri, "tracking_uri": tracking}


@torch_threads()  # the caller's thread count comes back, whatever config.torch_threads sets
def clean_frames(
    source,
    output,
    config: CleanConfig | None = None,
    *,
    model=None,
    tracking_uri: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Clean the strain of frames in ``source`` with a twin model; see the module docstring.

    Parameters
    ----------
    source : path
        Frame directory (or file / list of files) holding the strain and the model's witnesses.
    output : path
        Directory to fill (created; existing outputs of a previous clean are replaced).
    config : CleanConfig, optional
    model : TwinModel or str, optional
        The model, or an MLflow URI overriding ``config.model``.
    tracking_uri : str, optional
        MLflow tracking/registry URI (e.g. ``sqlite:///train/mlflow.db``).
    progress : callable, optional
        ``progress(stage, done, total)`` with stages ``"clean"`` and ``"veto"``.

    Returns
    -------
    dict
        The content of ``clean.json``.
    """
    from gwtwin.infer.glitches import run_veto

    config = config or CleanConfig()
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    t_start = time.perf_counter()
    twin, model_info = _load_model(config, model, tracking_uri)
    model_info.update(
        {
            "name": twin.metadata.get("model", {}).get("name"),
            "channels": twin.channels,
            "run_id": twin.metadata.get("run_id"),
        }
    )
    predictor = GridPredictor(
        twin,
        taper=config.taper,
        batch_size=config.batch_size,
        attribute=config.attribute,
        attribution_threshold=config.attribution_threshold,
        precision=config.precision,
        decision=config.decision.decision(),
    )
    strain_channel = twin.spec.strain_channel
    if not config.suffix:
        raise ConfigError("clean.suffix must not be empty: the cleaned channel needs its own name")
    cleaned_name = cleaned_channel(strain_channel, config.suffix)
    output = Path(output)
    frames_dir = output / "frames"
    for old in frames_dir.glob("*") if frames_dir.is_dir() else []:
        old.unlink()
    segments, gaps = data_segments(source, config.start, config.end)
    total = sum(b - a for a, b in segments)
    writer = _FrameWriter(frames_dir, _observatory(source, strain_channel), config)
    applied: list[tuple[float, float]] = []
    bad_strain: list[tuple[float, float]] = []
    energies = []
    units: dict[str, list] = {}
    n_windows, done = 0, 0
    log(
        f"cleaning {strain_channel} over {len(segments)} segment(s), {total} s, with "
        f"{twin!r}; context {predictor.context_seconds} s each side of a chunk"
    )
    for seg in segments:
        for a in range(seg[0], seg[1], config.chunk_duration):
            b = min(a + config.chunk_duration, seg[1])
            wa, wb = predictor.witness_span(a, b, seg)
            witnesses = [
                read(source, [c], wa, wb, expected_rates=twin.sample_rates[c]).block
                for c in twin.channels
            ]
            span = read(source, [strain_channel], wa, wb, expected_rates=twin.spec.strain_rate)
            pred = predictor.predict_chunk(witnesses, a, b, seg, strain=span.block)
            raw = span.block.crop(a, b)
            bad_strain += [
                (max(float(s[0]), a), min(float(s[1]), b))
                for spans in span.nonfinite.values()
                for s in spans
                if s[1] > a and s[0] < b
            ]
            p = pred.strain.data[0].to(raw.data.dtype)
            cleaned = Block(
                raw.data - p[None], raw.t0_ns, raw.sample_rate, (cleaned_name,), raw.units
            )
            out = [cleaned]
            if config.write_prediction:
                out.append(
                    Block(p[None], raw.t0_ns, raw.sample_rate, pred.strain.channels, raw.units)
                )
            writer.add(out)
            applied += pred.active
            energies.append((a, pred.energy, pred.witness_energy, pred.applied_energy))
            if pred.decisions is not None:
                for key, values in pred.decisions.items():
                    units.setdefault(key, []).extend(values)
            n_windows += pred.n_windows
            done += b - a
            if progress:
                progress("clean", done, total)
        writer.close()
    t_clean = time.perf_counter() - t_start
    log(f"cleaned {total} s in {t_clean:.1f} s ({total / max(t_clean, 1e-9):.0f}x real time)")
    decisions = _write_decisions(output, units, config)
    attribution = _Attribution(energies, twin.channels)
    veto = run_veto(
        source,
        frames_dir,
        output,
        segments,
        strain_channel,
        cleaned_name,
        config,
        attribution=attribution,
        bad_strain=bad_strain,
        progress=progress,
        log=log,
    )
    summary = {
        "model": model_info,
        "source": str(Path(source).resolve()) if isinstance(source, (str, Path)) else None,
        "strain_channel": strain_channel,
        "cleaned_channel": cleaned_name,
        "prediction_channel": pred.strain.channels[0] if segments else None,
        "span": [segments[0][0], segments[-1][1]] if segments else None,
        "segments": [list(s) for s in segments],
        "gaps": [list(g) for g in gaps],
        "seconds": total,
        "cleaning_applied_seconds": float(sum(b - a for a, b in merge_spans(applied))),
        "cleaning_applied": [list(s) for s in merge_spans(applied)],
        "nonfinite_strain": [list(s) for s in merge_spans(bad_strain)],
        "decision": decisions,
        "context_seconds": predictor.context_seconds,
        "chunk_duration": config.chunk_duration,
        "n_windows": n_windows,
        "clean_seconds": t_clean,
        "speed_x_real_time": total / max(t_clean, 1e-9),
        "frames": [str(p.relative_to(output)) for p in writer.paths],
        "config": config.model_dump(mode="json"),
        **veto,
    }
    summary["elapsed"] = time.perf_counter() - t_start
    from gwtwin.data.flags import make_flag, write_flags

    flag = make_flag(
        flag_name(strain_channel, "CLEANING_APPLIED"),
        merge_spans(applied),
        [(float(a), float(b)) for a, b in segments],
        description="time where gwtwin subtracted a witness prediction from strain",
    )
    write_flags([flag], output / "flags" / "cleaning-applied", overwrite=True)
    (output / CLEAN_FILE).write_text(json.dumps(summary, indent=1, default=json_default))
    return summary


def _write_decisions(output: Path, units: dict, config: CleanConfig) -> dict:
    """``decisions.csv`` (one row per unit) and the summary of the subtraction decision."""
    from gwtwin.infer.decide import REASONS, UNIT_COLUMNS
    from gwtwin.infer.glitches import write_columns

    path = output / "decisions.csv"
    if not units:
        path.unlink(missing_ok=True)
        return {"enabled": False, "config": config.decision.model_dump()}
    columns = {c: units[c] for c in UNIT_COLUMNS}
    columns["kept"] = ["yes" if k else "no" for k in columns["kept"]]
    write_columns(path, columns)
    reason = np.asarray(units["reason"], str)
    predicted = np.asarray(units["predicted"], float)
    kept = np.asarray(units["kept"], bool)
    tried = predicted > 0
    return {
        "enabled": True,
        "table": path.name,
        "units": int(reason.size),
        "units_with_prediction": int(tried.sum()),
        "units_kept": int(kept.sum()),
        "kept_fraction_of_predicted": float(kept.sum() / tried.sum()) if tried.any() else None,
        "reasons": {r: int(np.sum(reason == r)) for r in REASONS},
        "predicted_energy_withheld": float(predicted[tried & ~kept].sum()),
        "predicted_energy_kept": float(predicted[kept].sum()),
        # band-seconds the local check withheld inside kept bands (decide.local_mask)
        "withheld_band_seconds": float(np.sum(np.asarray(units["withheld"], float))),
        "config": config.decision.model_dump(),
    }


def json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")


class _Attribution:
    """Prediction energies in 1/64 s bins, looked up by GPS interval, in the model's whitening
    (whitened SNR^2): the model's whole prediction before the subtraction decision (``energy``:
    what the model tried to subtract), what was subtracted (``applied``) and, with
    attribution, each witness's part of the former (``explain``)."""

    def __init__(self, energies, channels):
        self.channels = list(channels)
        self.pieces = list(energies)  # (gps, energy, witness_energy or None, applied_energy)

    @staticmethod
    def _bins(a, n, tstart, tend):
        i0 = max(int(math.floor((tstart - a) * BINS_PER_SECOND)), 0)
        i1 = min(int(math.ceil((tend - a) * BINS_PER_SECOND)), n)
        return i0, i1

    def _sum(self, which: int, tstart: float, tend: float) -> float:
        total = 0.0
        for piece in self.pieces:
            a, e = piece[0], piece[which]
            i0, i1 = self._bins(a, e.size, tstart, tend)
            if i1 > i0:
                total += float(e[i0:i1].sum())
        return total

    def energy(self, tstart: float, tend: float) -> float:
        """Energy of the model's prediction before the decision in ``[tstart, tend]``."""
        return self._sum(1, tstart, tend)

    def applied(self, tstart: float, tend: float) -> float:
        """Energy of the subtracted (decided) prediction in ``[tstart, tend]``."""
        return self._sum(3, tstart, tend)

    def explain(self, tstart: float, tend: float) -> str:
        """The witness carrying most of the prediction's energy in ``[tstart, tend]`` ("" when
        none, or without attribution)."""
        total = np.zeros(len(self.channels))
        for a, _, w, _ in self.pieces:
            if w is None:
                continue
            i0, i1 = self._bins(a, w.shape[1], tstart, tend)
            if i1 > i0:
                total += w[:, i0:i1].sum(axis=1)
        if not total.any():
            return ""
        return self.channels[int(np.argmax(total))]
