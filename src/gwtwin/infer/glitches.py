"""The veto pass of ``gwtwin clean``: triggers, per-glitch metadata, flags and images over frames.

Raw strain (the input frames) and cleaned strain (the frames just written) are read in veto
chunks (``veto.chunk_duration`` s of core, plus the context the reference whitening and the
residual Q-images need, clipped to the data segment).  In each chunk both are whitened with one
reference filter (median Welch PSD of the raw strain: robust to the glitches themselves), Q-tile
triggers are found in both, and :func:`gwtwin.infer.veto.glitch_metadata` scores every raw
trigger at or above ``veto.snr_threshold`` whose time falls in the chunk's core.  The known
(analysed) time of the flags is the union of the cores less the whitening edges at the ends of
each data segment and less NaN/inf strain samples (with the filter length around them).

Each glitch is scored over ``[tstart - pad, tend + pad]`` in that reference whitening (see
:mod:`gwtwin.infer.veto`): the power the cleaning removed (``power_before - power_after`` of the
whitened raw and cleaned strain) and its significance ``removed_sigma`` against a subtraction
unrelated to the noise; a glitch is *witnessed* when the prediction explains a significant part
of its power (``removed_sigma >= veto.margin_sigma`` and a removed power of at least
``max(min_predicted_snr, witnessed_fraction * snr_before)²``). The energy the model *tried* to
subtract there, before the cleaning's subtraction decision, comes from ``attribution.energy``
(``attempted_snr``), and with it each glitch's ``outcome``: ``cleaned``, ``residual``,
``withheld`` (tried, not subtracted), ``not_improved`` (tried and subtracted without a
significant drop, or made worse) or ``unwitnessed`` (nothing predicted); and its ``change``
(``improved`` / ``worsened`` / ``untouched`` beyond ``margin_sigma``). CLEANING_FAILED flags the
``residual``, ``withheld`` and ``not_improved`` glitches, UNWITNESSED every glitch not witnessed
(so the tried-and-failed ones are in both). The witness is named for the witnessed glitches only.
"""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from gwtwin.data import Block, read
from gwtwin.data import segments as sg
from gwtwin.data.flags import write_flags
from gwtwin.data.segments import efficiency_deadtime, merge_spans
from gwtwin.infer.veto import (
    CHANGES,
    FAILED_OUTCOMES,
    FLAG_NAMES,
    METADATA_COLUMNS,
    OUTCOMES,
    accuracy_curves,
    failed_mask,
    glitch_metadata,
    typed_metadata,
    veto_flags,
)
from gwtwin.signal.spectral import psd_block
from gwtwin.signal.triggers import find_triggers, write_triggers
from gwtwin.signal.whitening import Whitener

SNIPPET = 4.0  #: seconds each side of a glitch kept for its image
CATEGORIES = ("cleaning failed", "unwitnessed", "cleaned")


def _veto_band(frange, qrange, sample_rate: float, duration: float, log) -> tuple[float, float]:
    """``frange`` with its upper edge lowered, when needed, to the highest frequency the Q
    tiling allows at the strain's rate (``qtiling.frequency_limits``): 1000 Hz suits 4 kHz
    strain, 2 kHz strain reaches only ~650 Hz at Q 4. The change is logged and recorded."""
    from gwtwin.signal.qtiling import frequency_limits

    f_max = frequency_limits(duration, sample_rate, qrange)[1]
    if frange[1] <= f_max:
        return (float(frange[0]), float(frange[1]))
    log(
        f"veto: frange upper edge {frange[1]:g} Hz lowered to {f_max:.1f} Hz, the highest the Q "
        f"tiling allows at {sample_rate:g} Hz for q >= {qrange[0]:g}"
    )
    return (float(frange[0]), float(f_max))


def run_veto(
    source,
    cleaned_source,
    output: Path,
    segments,
    strain_channel: str,
    cleaned_channel: str,
    config,
    *,
    attribution=None,
    bad_strain=(),
    progress=None,
    log=print,
) -> dict:
    """Triggers, metadata, flags, accuracy curves and images; returns the summary entries."""
    from gwtwin.signal.triggers import Triggers

    vs = config.veto
    # margin_sigma: from the settings once they carry it (VetoSettings), else the default
    veto = vs.veto_config()
    veto = replace(veto, margin_sigma=float(getattr(vs, "margin_sigma", veto.margin_sigma)))
    rate = None
    ctx = math.ceil(vs.image_duration / 2 + vs.fduration + 1.0)
    bad = [(a - vs.fduration, b + vs.fduration) for a, b in bad_strain]
    tables: dict[str, list[np.ndarray]] = {"raw": [], "cleaned": []}
    rows: dict[str, list] = {c: [] for c in METADATA_COLUMNS}
    known: list[tuple[float, float]] = []
    snippets: dict[str, list] = {c: [] for c in CATEGORIES}
    total = sum(b - a for a, b in segments)
    done = 0
    chunk = max(int(vs.chunk_duration), 1)
    # shortest analysable stretch: one residual image, and the longest Q tile at the lowest f
    need = max(vs.image_duration, 50 * vs.qrange[1] / (2 * math.pi * vs.frange[0]))
    skipped: list[tuple[float, float]] = []
    for seg in segments:
        for c in range(seg[0], seg[1], chunk):
            d = min(c + chunk, seg[1])
            lo, hi = max(seg[0], c - ctx), min(seg[1], d + ctx)
            if hi - lo - 2 * vs.fduration < need:
                skipped.append((float(c), float(d)))  # too short to analyse: not in known time
                done += d - c
                continue
            raw = read(source, [strain_channel], lo, hi).block
            cleaned = read(cleaned_source, [cleaned_channel], lo, hi).block
            if rate is None:
                band = _veto_band(vs.frange, vs.qrange, raw.sample_rate, hi - lo, log)
                veto = replace(veto, frange=band)
            rate = raw.sample_rate
            x = torch.stack([raw.data[0], cleaned.data[0]]).to(torch.float64)
            x = torch.where(torch.isfinite(x), x, torch.zeros_like(x))
            psd = psd_block(
                Block(x[:1], raw.t0_ns, rate, (strain_channel,), raw.units), vs.fftlength
            )
            whiten = Whitener((psd.freqs, psd.values[0]), rate, vs.fduration, vs.frange[0])
            edge = whiten.edge_size
            w_raw = whiten(x[0].numpy())[edge:-edge]
            w_clean = whiten(x[1].numpy())[edge:-edge]
            t0 = lo + edge / rate
            t1 = t0 + w_raw.size / rate
            core = (max(float(c), t0), min(float(d), t1))
            if core[1] <= core[0]:
                done += d - c
                continue
            good = merge_spans(sg.subtract(sg.coalesce([core]), sg.coalesce(bad)))
            known += good
            block = Block.create(
                torch.from_numpy(np.stack([w_raw, w_clean])), t0, rate, ["RAW", "CLEANED"]
            )
            trig = find_triggers(
                block,
                whiten=False,
                snr_threshold=vs.trigger_snr,
                frange=veto.frange,
                qrange=tuple(vs.qrange),
            )
            t_raw, t_clean = trig["RAW"], trig["CLEANED"]
            inside = np.zeros(len(t_raw), bool)
            for a, b in good:
                inside |= (t_raw["time"] >= a) & (t_raw["time"] < b)
            t_raw = t_raw[inside]
            keep_clean = np.zeros(len(t_clean), bool)
            for a, b in good:
                keep_clean |= (t_clean["time"] >= a) & (t_clean["time"] < b)
            tables["raw"].append(t_raw)
            tables["cleaned"].append(t_clean[keep_clean])
            glitches = np.sort(t_raw[t_raw["snr"] >= vs.snr_threshold], order="time")
            spans = [(g["tstart"] - vs.pad, g["tend"] + vs.pad) for g in glitches]
            witness = attempted = applied = None
            if attribution is not None:
                witness = [attribution.explain(a, b) for a, b in spans]
                if hasattr(attribution, "energy"):
                    attempted = [attribution.energy(a, b) for a, b in spans]
                if hasattr(attribution, "applied"):
                    applied = [attribution.applied(a, b) for a, b in spans]
            if len(glitches):
                meta = glitch_metadata(
                    w_raw,
                    w_clean,
                    t0,
                    rate,
                    t_raw,
                    t_clean,
                    veto,
                    witness=witness,
                    attempted=attempted,
                    applied=applied,
                )
                meta["witness"] = np.where(meta["witnessed"], meta["witness"], "")
                for col in METADATA_COLUMNS:
                    rows[col] += meta[col].tolist()
                _keep_snippets(snippets, meta, w_raw, w_clean, t0, rate, config.images)
            done += d - c
            if progress:
                progress("veto", done, total)
    metadata = {c: np.asarray(v) for c, v in rows.items()}
    metadata = typed_metadata(metadata) if len(metadata["gps"]) else _empty_metadata()
    ifo = strain_channel.split(":", 1)[0]
    known = merge_spans(known)
    flags = veto_flags(metadata, known, ifo, pad=vs.pad) if known else []
    paths = {}
    if flags:
        paths = write_flags(flags, output / "flags" / "gwtwin-veto", overwrite=True)
    _write_metadata(output / "metadata.csv", metadata)
    curves = accuracy_curves(metadata)
    write_columns(output / "accuracy.csv", curves)
    trig_dir = output / "triggers"
    trig_dir.mkdir(parents=True, exist_ok=True)
    span = (known[0][0], known[-1][1]) if known else (0.0, 0.0)
    for name, channel in (("raw", strain_channel), ("cleaned", cleaned_channel)):
        table = np.concatenate(tables[name]) if tables[name] else _empty_triggers()
        write_triggers(
            trig_dir / f"{name}.h5",
            Triggers({channel: table}, span, {"snr_threshold": vs.trigger_snr}),
            overwrite=True,
        )
    images = _write_images(snippets, output, config, rate) if config.images else []
    figures = {}
    if known:
        for short, flag in zip(FLAG_NAMES, flags, strict=True):
            sel = _population(metadata, short)
            figures[flag.name] = efficiency_deadtime(
                np.asarray([[s[0], s[1]] for s in flag.active], float).reshape(-1, 2),
                np.asarray(known, float),
                metadata["gps"][sel],
            )
    counts = {
        "glitches": int(len(metadata["gps"])),
        "witnessed": int(np.sum(metadata["witnessed"])),
        "cleaned": int(np.sum(metadata["cleaned"])),
        "cleaning_failed": int(np.sum(failed_mask(metadata))),
        "unwitnessed": int(np.sum(~metadata["witnessed"])),
        "outcomes": {o: int(np.sum(metadata["outcome"] == o)) for o in OUTCOMES},
        "changes": {c: int(np.sum(metadata["change"] == c)) for c in CHANGES},
    }
    if skipped:
        log(f"veto: {len(skipped)} stretch(es) shorter than {need:.1f} s not analysed: {skipped}")
    log(
        "glitches: {glitches} (witnessed {witnessed}, cleaned {cleaned}, cleaning failed "
        "{cleaning_failed}, unwitnessed {unwitnessed}); ".format(**counts)
        + ", ".join(f"{k} {v}" for k, v in counts["outcomes"].items())
        + f"; power change beyond {veto.margin_sigma:g} sigma: "
        + ", ".join(f"{k} {v}" for k, v in counts["changes"].items())
    )
    return {
        "veto": {
            "known": [list(s) for s in known],
            "known_seconds": float(sum(b - a for a, b in known)),
            "skipped_short_segments": [list(s) for s in merge_spans(skipped)],
            "counts": counts,
            "flags": {
                f.name: {
                    "active_seconds": float(
                        sum(float(s[1] - s[0]) for s in f.active)  # gwpy segments
                    ),
                    **figures.get(f.name, {}),
                }
                for f in flags
            },
            "flag_files": {k: [str(p.relative_to(output)) for p in v] for k, v in paths.items()},
            "metadata": "metadata.csv",
            "accuracy": "accuracy.csv",
            "images": images,
            "config": vs.model_dump(mode="json"),
            "frange_used": list(veto.frange),
            "margin_sigma": veto.margin_sigma,
            "change_tolerance": veto.change_tolerance,
        }
    }


def _population(metadata, flag: str) -> np.ndarray:
    """Glitches a flag is meant to catch (its efficiency denominator): the witnessed ones, the
    CLEANING_FAILED outcomes (residual, withheld, not_improved), the glitches not witnessed."""
    witnessed = np.asarray(metadata["witnessed"], bool)
    if flag == "WITNESSED":
        return witnessed
    if flag == "CLEANING_FAILED":
        return failed_mask(metadata)
    return ~witnessed


def _empty_metadata():
    return typed_metadata({c: np.zeros(0) for c in METADATA_COLUMNS})


def _empty_triggers():
    from gwtwin.signal.triggers import TRIGGER_DTYPE

    return np.zeros(0, dtype=TRIGGER_DTYPE)


def write_columns(path: Path, columns: dict) -> None:
    """Equal-length columns ``{name: values}`` as a CSV table with a header row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(columns)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for row in zip(*(np.asarray(columns[n]).tolist() for n in names), strict=True):
            writer.writerow(row)


def _write_metadata(path: Path, metadata) -> None:
    """``metadata.csv``: the columns of :data:`METADATA_COLUMNS` in that order (booleans as
    yes/no; ``outcome`` and ``change`` one word each)."""
    out = typed_metadata({c: metadata[c] for c in METADATA_COLUMNS})
    for key in ("witnessed", "cleaned"):
        out[key] = np.where(np.asarray(out[key], bool), "yes", "no")
    write_columns(path, out)


def read_metadata(path) -> dict[str, np.ndarray]:
    """Read ``metadata.csv`` back into typed columns.

    Columns a file does not hold (one written by an older gwtwin, before ``power_before`` ...
    ``change``) are absent from the result: readers treat them as not recorded.
    """
    with Path(path).open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        header = set(reader.fieldnames or ())
    out = {}
    for col in METADATA_COLUMNS:
        if col not in header:
            continue
        values = [r[col] for r in rows]
        if col in ("witnessed", "cleaned"):
            out[col] = np.asarray([v == "yes" for v in values], bool)
        elif col in ("witness", "outcome", "change"):
            out[col] = np.asarray(values, str)
        elif col == "residual_area":
            out[col] = np.asarray(values, np.int64)
        else:
            out[col] = np.asarray(values, np.float64)
    return out


def _category(outcome: str) -> str:
    """The image category of an outcome: cleaned, cleaning failed (residual, withheld,
    not_improved) or unwitnessed."""
    if outcome == "cleaned":
        return "cleaned"
    return "cleaning failed" if outcome in FAILED_OUTCOMES else "unwitnessed"


def _keep_snippets(snippets, meta, w_raw, w_clean, t0, rate, limit: int) -> None:
    """Keep the loudest ``limit`` glitches of each category with +-SNIPPET s of whitened data."""
    if limit <= 0:
        return
    half = int(round(SNIPPET * rate))
    for k in range(len(meta["gps"])):
        cat = _category(str(meta["outcome"][k]))
        i = int(round((meta["gps"][k] - t0) * rate))
        if i - half < 0 or i + half > w_raw.size:
            continue
        row = {c: meta[c][k].item() for c in METADATA_COLUMNS}
        entry = (row["snr_before"], row, w_raw[i - half : i + half], w_clean[i - half : i + half])
        snippets[cat].append(entry)
        snippets[cat].sort(key=lambda e: -e[0])
        del snippets[cat][limit:]


def _write_images(snippets, output: Path, config, rate) -> list[dict]:
    """Real / predicted / cleaned Q-images and time series of sample glitches (PNG + TB)."""
    from gwtwin.infer.images import glitch_figure

    chosen = []
    lists = [list(snippets[c]) for c in CATEGORIES]
    while len(chosen) < config.images and any(lists):
        for cat, items in zip(CATEGORIES, lists, strict=True):
            if items and len(chosen) < config.images:
                chosen.append((cat, *items.pop(0)))
    folder = output / "images"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("glitch-*.png"):
        old.unlink()
    writer = None
    if config.tensorboard and chosen:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(output / "tensorboard"))
    out = []
    for k, (cat, _, row, w_raw, w_clean) in enumerate(chosen):
        fig = glitch_figure(w_raw, w_clean, rate, row, cat, config.veto)
        name = f"glitch-{row['gps']:.3f}.png"
        fig.savefig(folder / name, dpi=90)
        if writer is not None:
            writer.add_figure(f"glitches/{cat}", fig, global_step=k)
        out.append({"file": f"images/{name}", "category": cat, **row})
    if writer is not None:
        writer.close()
    return out
