"""The model lifecycle: retrain on recent data, compare champion and challenger, promote.

Couplings drift with the interferometer's state, so a twin is retrained on a rolling buffer of
the most recent data and replaces the model in service only when it is measurably better on data
neither model trained on.  :func:`retrain` (``gwtwin retrain CONFIG --run-dir DIR``, and what a
scheduler or the online service calls) does, in a run directory:

1. **spans**: the data end (``lifecycle.end``, else the end of the newest frame file) less the
   newest ``lifecycle.validation`` seconds is the *validation span*; the ``lifecycle.buffer``
   seconds before it are the *buffer* the challenger trains on;
2. **dataset**: the run's current witness selection (``scan/selected_channels.json``) over the
   buffer, with the run's dataset section (its own early-stopping split inside the buffer);
3. **train**: the run's train section, warm-started from the champion (its learnt weights; the
   closed-form linear stage and the witness gate are refitted on the buffer), registered in the
   run's MLflow store with alias ``challenger``; a champion on other witnesses than the
   selection trains from scratch and says so;
4. **compare**: both models clean the validation span with the run's clean section and are
   scored with ``gwtwin evaluate`` (against truth for simulated data, from the data alone
   otherwise): the *primary score* is the median share of the glitches' excess power removed;
   the *safety criteria* are the quiet-time ASD ratio within ``1 +- asd_tolerance``, the
   injections' SNR loss below ``injection_tolerance`` (where injections are known) and at most
   ``max_worsened`` glitches made worse.  The challenger is promoted (the champion alias moves
   to it) only when it passes every safety criterion *and* beats the champion's primary score
   by ``margin``;
5. **record**: the decision, both scores and the spans go to ``lifecycle/<stamp>/decision.json``
   and to an MLflow run in the experiment ``<train experiment>-lifecycle`` (params, metrics,
   the decision as a tag and the JSON as an artifact).  ``gwtwin models rollback NAME`` moves
   the alias back; the online service, which follows the alias, hot-reloads either way.

The champion is ``models:/<name>@<champion_alias>``; before the alias exists (a run's first
retrain) it is the version the run's train step registered (``train/result.json``), and the
first promotion sets the alias.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gwtwin.errors import GwtwinError

LIFECYCLE_DIR = "lifecycle"


class LifecycleConfig(BaseModel):
    """The ``lifecycle:`` section of a run config (:func:`retrain`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    champion_alias: str = "production"
    challenger_alias: str = "challenger"
    buffer: float = Field(1536.0, gt=0, description="s of recent data the challenger trains on")
    validation: float = Field(
        512.0, gt=0, description="newest s, held out: both models are scored on it"
    )
    end: float | None = Field(None, description="GPS end of the data used; null: newest frame")
    warm_start: bool = True
    max_epochs: int | None = Field(None, ge=1, description="null: train.max_epochs")
    margin: float = Field(
        0.01,
        ge=0,
        description="the challenger's share of glitch power removed must exceed "
        "the champion's by this much",
    )
    asd_tolerance: float = Field(0.02, gt=0, description="quiet ASD ratio within 1 +- this")
    injection_tolerance: float = Field(0.01, gt=0, description="max injection SNR loss")
    max_worsened: int = Field(0, ge=0, description="glitches the challenger may make worse")
    promote: bool = Field(True, description="false: compare and record only")


def lifecycle_spans(frames, config: LifecycleConfig) -> dict[str, list[float]]:
    """``{"buffer": [a, b], "validation": [b, c]}`` in GPS s (module docstring, step 1)."""
    from gwtwin.data import find_frames

    files = find_frames(frames)
    if not files:
        raise GwtwinError(f"no frame files in {frames}: nothing to retrain on")
    first = min(float(f.start_ns) / 1e9 for f in files)
    last = max(float(f.end_ns) / 1e9 for f in files)
    end = last if config.end is None else float(config.end)
    start = end - config.validation - config.buffer
    if end > last or start < first:
        raise GwtwinError(
            f"the lifecycle needs [{start:.15g}, {end:.15g}) (buffer {config.buffer:g} s + "
            f"validation {config.validation:g} s), found frames covering "
            f"[{first:.15g}, {last:.15g})"
        )
    mid = end - config.validation
    return {"buffer": [start, mid], "validation": [mid, end]}


def champion_uri(run_dir: Path, config) -> tuple[str, str, int, str]:
    """``(model URI, tracking URI, version, registered name)`` of the champion."""
    from gwtwin.train.tracking import _alias_version, client

    result_file = run_dir / "train" / "result.json"
    if not result_file.is_file():
        raise GwtwinError(f"{result_file} does not exist: run the train step before retraining")
    result = json.loads(result_file.read_text())
    name, uri = result.get("registered_model_name"), result["tracking_uri"]
    if not name:
        raise GwtwinError(f"{result_file} names no registered model: nothing to retrain")
    alias = config.lifecycle.champion_alias
    version = _alias_version(client(uri), name, alias)
    if version is None:
        return f"models:/{name}/{result['version']}", uri, int(result["version"]), name
    return f"models:/{name}@{alias}", uri, int(version), name


def score_model(model_uri, tracking_uri, config, run_dir: Path, span, output: Path) -> dict:
    """Clean ``span`` with a model and score it (``gwtwin evaluate``); the scores as a dict."""
    from gwtwin.evaluate.run import evaluate_run
    from gwtwin.infer.clean import clean_frames

    simulated = config.source.kind == "simulator"
    source = run_dir / "simulation" if simulated else Path(config.source.path)
    frames = source / "frames" if simulated else source
    clean_cfg = config.clean.model_copy(update={"start": span[0], "end": span[1]})
    clean_frames(
        frames,
        output / "clean",
        clean_cfg,
        model=model_uri,
        tracking_uri=tracking_uri,
        log=lambda _: None,
    )
    eval_cfg = config.evaluate.model_copy(update={"start": span[0], "end": span[1]})
    result = evaluate_run(
        source if simulated else None,
        output / "clean",
        output / "evaluate",
        eval_cfg,
        frames=frames,
        log=lambda _: None,
    )
    return scores_from_evaluation(result)


def scores_from_evaluation(result: dict) -> dict[str, Any]:
    """The lifecycle's scores from an ``evaluate.json`` mapping (truth where it has it)."""
    free = result.get("without_truth", {})
    power = free.get("glitch_power", {})
    worsened = power.get("worsened") if power.get("recorded") else None
    if result.get("truth"):
        h = result["headline"]
        return {
            "truth": True,
            "power_removed": h.get("median_fraction_removed"),
            "per_family_power_removed": h.get("per_family_median_fraction_removed", {}),
            "residual_snr_below_5": h.get("residual_snr_below_5"),
            "glitches": h.get("witnessed_glitches"),
            "asd_ratio_quiet": h.get("asd_ratio_quiet_off_lines"),
            "injection_max_snr_loss": h.get("injection_max_snr_loss"),
            "glitches_worsened": worsened,
        }
    h = result["headline"]
    return {
        "truth": False,
        "power_removed": h.get("median_fraction_power_removed"),
        "glitches": h.get("glitches"),
        "asd_ratio_quiet": h.get("asd_ratio_quiet"),
        "injection_max_snr_loss": None,
        "glitches_worsened": worsened,
    }


def decide(champion: dict, challenger: dict, config: LifecycleConfig) -> dict[str, Any]:
    """Promote or not, with every criterion's value and verdict (module docstring, step 4)."""

    def number(x):
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

    checks: dict[str, dict] = {}
    lo_hi = challenger.get("asd_ratio_quiet") or [None, None]
    ok_asd = None
    if lo_hi[0] is not None:
        ok_asd = 1 - config.asd_tolerance <= lo_hi[0] and lo_hi[1] <= 1 + config.asd_tolerance
    checks[f"quiet ASD ratio in 1 +- {config.asd_tolerance:g}"] = {"value": lo_hi, "pass": ok_asd}
    loss = number(challenger.get("injection_max_snr_loss"))
    checks[f"injection SNR loss < {config.injection_tolerance:g}"] = {
        "value": loss,
        "pass": None if loss is None else loss < config.injection_tolerance,
    }
    worse = challenger.get("glitches_worsened")
    checks[f"glitches made worse <= {config.max_worsened}"] = {
        "value": worse,
        "pass": None if worse is None else worse <= config.max_worsened,
    }
    new, old = number(challenger.get("power_removed")), number(champion.get("power_removed"))
    gain = None if new is None or old is None else new - old
    checks[f"power removed beats the champion's by >= {config.margin:g}"] = {
        "value": gain,
        "pass": None if gain is None else gain >= config.margin,
    }
    failed = [k for k, c in checks.items() if c["pass"] is False]
    unknown = [k for k, c in checks.items() if c["pass"] is None]
    # a criterion that cannot be measured here (no injections in real data) does not block;
    # the primary score must be measured
    wins = gain is not None and not failed
    return {"promote": bool(wins), "checks": checks, "failed": failed, "not_measured": unknown}


def _dataset(config, run_dir: Path, span, output: Path) -> Path:
    from gwtwin.dataset import build_dataset
    from gwtwin.run.steps import strain_triggers_path

    simulated = config.source.kind == "simulator"
    source = run_dir / "simulation" if simulated else Path(config.source.path)
    selection = run_dir / "scan" / "selected_channels.json"
    if not selection.is_file():
        raise GwtwinError(f"{selection} does not exist: run the scan step before retraining")
    cfg = config.dataset.model_copy(update={"start": span[0], "end": span[1], "valid_span": None})
    if cfg.triggers_file is None:
        triggers = run_dir / strain_triggers_path(config)
        cfg = cfg.model_copy(update={"triggers_file": str(triggers)})
    path = output / "dataset.h5"
    build_dataset(source, selection, path, cfg)
    return path


def retrain(config, run_dir, *, end: float | None = None, promote: bool | None = None, log=print):
    """Retrain, compare and (maybe) promote in a run directory; returns the decision record.

    Parameters
    ----------
    config : RunConfig
        The run's config (its ``lifecycle`` section, and the dataset/train/clean/evaluate ones).
    run_dir : path
        A run directory where scan and train ran.
    end : float, optional
        GPS end of the data to use (overrides ``lifecycle.end``).
    promote : bool, optional
        Overrides ``lifecycle.promote``.
    """
    from gwtwin.train import load_twin, train
    from gwtwin.train.config import load_train_config
    from gwtwin.train.tracking import promote as move_alias
    from gwtwin.train.warm import WarmStartError

    run_dir = Path(run_dir)
    lc = config.lifecycle
    if end is not None:
        lc = lc.model_copy(update={"end": float(end)})
    if promote is not None:
        lc = lc.model_copy(update={"promote": bool(promote)})
    simulated = config.source.kind == "simulator"
    frames = run_dir / "simulation" / "frames" if simulated else Path(config.source.path)
    spans = lifecycle_spans(frames, lc)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    out = run_dir / LIFECYCLE_DIR / stamp
    out.mkdir(parents=True, exist_ok=False)
    champ_uri, tracking_uri, champ_version, name = champion_uri(run_dir, config)
    log(
        f"[retrain] champion {champ_uri} (version {champ_version}); buffer {spans['buffer']}, "
        f"validation {spans['validation']}"
    )

    dataset = _dataset(config, run_dir, spans["buffer"], out)
    overrides: dict[str, Any] = {
        "tracking": {
            "tracking_uri": tracking_uri,
            "alias": lc.challenger_alias,
            "registered_model_name": name,
        },
        "progress": False,
    }
    if lc.max_epochs is not None:
        overrides["max_epochs"] = lc.max_epochs
    cfg = load_train_config(config.train.model_dump(mode="json"), overrides)
    champion = load_twin(champ_uri, tracking_uri=tracking_uri)
    warm = champion if lc.warm_start else None
    note = None
    tags = {"gwtwin.lifecycle.champion": str(champ_version), "gwtwin.lifecycle.stamp": stamp}
    try:
        result = train(dataset, out / "train", cfg, warm_start=warm, tags=tags)
    except WarmStartError as exc:
        note = f"trained from scratch: {exc}"
        log(f"[retrain] {note}")
        result = train(dataset, out / "train", cfg, tags=tags)
    log(f"[retrain] challenger version {result.version} ({result.model_uri})")

    scores = {}
    for role, uri in (("champion", champ_uri), ("challenger", result.model_uri)):
        scores[role] = score_model(
            uri, tracking_uri, config, run_dir, spans["validation"], out / role
        )
        log(f"[retrain] {role}: power removed {scores[role]['power_removed']}")
    decision = decide(scores["champion"], scores["challenger"], lc)
    promoted = bool(decision["promote"] and lc.promote)
    if promoted:
        move_alias(name, result.version, lc.champion_alias, tracking_uri)
    record = {
        "stamp": stamp,
        "registered_model_name": name,
        "champion": {"uri": champ_uri, "version": champ_version},
        "challenger": {
            "uri": result.model_uri,
            "version": result.version,
            "run_id": result.run_id,
            "warm_start": warm is not None and note is None,
        },
        "note": note,
        "spans": spans,
        "scores": scores,
        "decision": decision,
        "promoted": promoted,
        "alias": lc.champion_alias,
        "config": lc.model_dump(mode="json"),
    }
    # embedded store: the decision's artifacts beside the run's other MLflow artifacts
    artifacts = None
    if config.train.tracking.tracking_uri is None:
        from gwtwin.train.tracking import artifact_location_for

        artifacts = artifact_location_for(run_dir / "train")
    record["mlflow_run_id"] = _log_decision(
        record, tracking_uri, config.train.tracking.experiment, artifacts
    )
    (out / "decision.json").write_text(json.dumps(record, indent=1, default=str))
    verdict = "promoted" if promoted else "not promoted"
    why = "" if promoted else f" (failed: {decision['failed'] or 'promotion off'})"
    log(f"[retrain] challenger v{result.version} {verdict} to @{lc.champion_alias}{why}")
    return record


def _log_decision(record: dict, tracking_uri: str, experiment: str, artifacts) -> str:
    """An MLflow run in ``<experiment>-lifecycle`` holding the decision; returns its id."""
    from gwtwin.train import tracking

    c = tracking.client(tracking_uri)
    exp = tracking.ensure_experiment(tracking_uri, f"{experiment}-lifecycle", artifacts)
    run = c.create_run(exp, run_name=f"retrain-{record['stamp']}")
    rid = run.info.run_id
    tracking.log_params(
        rid,
        tracking_uri,
        {
            "model": record["registered_model_name"],
            "champion_version": record["champion"]["version"],
            "challenger_version": record["challenger"]["version"],
            "spans": record["spans"],
            "lifecycle": record["config"],
        },
    )
    for role in ("champion", "challenger"):
        for key, value in record["scores"][role].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
                c.log_metric(rid, f"{role}_{key}", float(value))
    c.set_tag(rid, "gwtwin.lifecycle.decision", "promoted" if record["promoted"] else "kept")
    c.log_dict(rid, json.loads(json.dumps(record, default=str)), "decision.json")
    c.set_terminated(rid)
    return rid


__all__ = [
    "LifecycleConfig",
    "champion_uri",
    "decide",
    "lifecycle_spans",
    "retrain",
    "score_model",
    "scores_from_evaluation",
]
