"""Do no harm (issue 21): cleaning on data the simulator did not write, and with a wrong model.

A. **Noisy witnesses** (``tests/scenarios/noisy_witness.py``, numpy/scipy/gwpy only: LIGO-style
   names at ``X1``, witnesses without units, a magnetometer whose white sensor-noise floor does
   not couple, one linear coupling 25-250 Hz with a 7 ms delay): ``gwtwin run`` with the demo's
   config otherwise (frames source, the last 308 s held out), then the truth metrics on the
   held-out time (median whitened excess power removed at the visible coupled glitches, the
   glitch-free ASD ratio per 10-1000 Hz bin, the largest glitch power rise over its margin),
   with the run's model cleaning with the subtraction decision (the default) and without it.
B. **A wrong model**: the tiny run's network trained on another simulated instrument
   (``instrument_seed`` 7: other coupling constants and fringe phases) cleans the demo's held-out
   time, without and with the decision; ``gwtwin evaluate`` against the demo's truth gives the
   glitch-free ASD ratio off the witnessed lines, and the metadata the glitches whose whitened
   power rose beyond the stated margin (3 x 2 |subtracted|).

    .venv/bin/python benchmarks/bench_do_no_harm.py [--run-dir demo-run]
        [--workdir /tmp/bench-no-harm] [--duration 1024] [--skip-a] [--skip-b]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT = 308  # s at the end, as the demo


def _quiet(msg: str) -> None:
    pass


def noisy_witness(work: Path, duration: int) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from gwtwin.config import load_run_config
    from gwtwin.data import read
    from gwtwin.infer.clean import clean_frames, load_clean_config
    from gwtwin.run.pipeline import run_pipeline
    from scenarios.noisy_witness import score, write_scenario

    scen = work / "noisy-witness"
    truth = write_scenario(scen, duration=duration)
    start = truth["start"]
    split = start + duration - HELD_OUT
    config = load_run_config(
        {
            "source": {
                "kind": "frames",
                "path": str(scen / "frames"),
                "strain_channel": "*:GDS-CALIB_STRAIN",
            },
            "dataset": {"end": split, "stride": 2.0, "quiet_fraction": None},
            "evaluate": {"start": split},
            "parallelism": {"torch_threads": 2},
        }
    )
    run_dir = work / "noisy-witness-run"
    t0 = time.perf_counter()
    run_pipeline(config, run_dir, log=_quiet, progress=False)
    elapsed = time.perf_counter() - t0
    raw = read(scen / "frames", [truth["strain_channel"]]).block.data[0].numpy()
    name = truth["strain_channel"] + "_CLEANED"
    out = {"run_seconds": elapsed, "scenario": {"bursts": len(truth["bursts"])}}
    result = json.loads((run_dir / "train" / "result.json").read_text())
    for label, decision in (("decision", {}), ("no_decision", {"enabled": False})):
        clean_dir = run_dir / "clean" if label == "decision" else work / "nw-clean-off"
        if label != "decision":
            cfg = load_clean_config(
                {"decision": decision, "images": 0, "tensorboard": False, "start": split}
            )
            clean_frames(
                scen / "frames",
                clean_dir,
                cfg,
                model=result["model_uri"],
                tracking_uri=result["tracking_uri"],
                log=_quiet,
            )
        block = read(clean_dir / "frames", [name]).block
        cleaned = raw.copy()
        i = round((block.t0_ns / 1e9 - start) * truth["rate"])
        cleaned[i : i + block.size] = block.data[0].numpy()
        s = score(truth, raw, cleaned, split, start + duration)
        s.pop("removed")
        summary = json.loads((clean_dir / "clean.json").read_text())
        s["decision"] = {
            k: summary["decision"].get(k)
            for k in ("units", "units_kept", "reasons", "kept_fraction_of_predicted")
        }
        s["glitch_counts"] = summary["veto"]["counts"]
        out[label] = s
    ev = json.loads((run_dir / "evaluate" / "evaluate.json").read_text())
    out["evaluate_without_truth"] = {
        k: v for k, v in ev.get("headline", {}).items() if not isinstance(v, dict)
    }
    train = result.get("validation", {}) or result.get("best_val", {})
    out["train"] = {k: v for k, v in train.items() if "quiet" in k or k == "loss"}
    out["gate"] = result.get("witness_gate")
    return out


def wrong_model(work: Path, demo: Path) -> dict:
    import yaml

    from gwtwin.config import load_run_config
    from gwtwin.evaluate.run import evaluate_run
    from gwtwin.infer.clean import clean_frames, load_clean_config
    from gwtwin.infer.glitches import read_metadata
    from gwtwin.run.pipeline import run_pipeline

    tiny = yaml.safe_load((ROOT / "configs" / "run-tiny.yaml").read_text())
    tiny["simulate"]["instrument_seed"] = 7
    run_dir = work / "wrong-model-run"
    run_pipeline(
        load_run_config(tiny), run_dir, "simulate,scan,dataset,train", log=_quiet, progress=False
    )
    result = json.loads((run_dir / "train" / "result.json").read_text())
    demo_cfg = yaml.safe_load((demo / "config.yaml").read_text())
    split = demo_cfg["evaluate"]["start"]
    out = {"model_witnesses": None}
    for label, decision in (("no_decision", {"enabled": False}), ("decision", {})):
        clean_dir = work / f"wrong-{label}"
        cfg = load_clean_config(
            {"decision": decision, "images": 0, "tensorboard": False, "start": split}
        )
        summary = clean_frames(
            demo / "simulation" / "frames",
            clean_dir,
            cfg,
            model=result["model_uri"],
            tracking_uri=result["tracking_uri"],
            log=_quiet,
        )
        out["model_witnesses"] = summary["model"]["channels"]
        ev = evaluate_run(demo / "simulation", clean_dir, work / f"wrong-eval-{label}", log=_quiet)
        meta = read_metadata(clean_dir / "metadata.csv")
        rise = -np.asarray(meta["power_removed"], float)
        noise = 3.0 * 2.0 * np.asarray(meta["predicted_snr"], float)  # the noise margin alone
        tolerance = cfg.veto.change_tolerance * np.asarray(meta["power_before"], float)
        margin = np.maximum(noise, tolerance)
        head = ev.get("headline", ev)
        out[label] = {
            "asd_ratio_quiet_off_lines": head.get("asd_ratio_quiet_off_lines"),
            "glitches": int(len(rise)),
            "worse_beyond_margin": int(np.sum(rise > margin)),
            "worse_beyond_noise_margin_alone": int(np.sum(rise > noise)),
            "rises_beyond_noise_margin_alone": [
                {"power_before": float(b), "rise": float(x), "noise_margin": float(m)}
                for b, x, m in zip(
                    meta["power_before"][rise > noise],
                    rise[rise > noise],
                    noise[rise > noise],
                    strict=True,
                )
            ],
            "largest_rise_over_margin": float(np.max(rise - margin)) if rise.size else None,
            "changes": summary["veto"]["counts"].get("changes"),
            "decision": {k: summary["decision"].get(k) for k in ("units", "units_kept", "reasons")},
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="demo-run")
    parser.add_argument("--workdir", default="/tmp/bench-no-harm")
    parser.add_argument("--duration", type=int, default=1024)
    parser.add_argument("--skip-a", action="store_true")
    parser.add_argument("--skip-b", action="store_true")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    report = {}
    if not args.skip_a:
        report["noisy_witness"] = noisy_witness(work, args.duration)
        print(json.dumps({"noisy_witness": report["noisy_witness"]}, indent=1, default=str))
    if not args.skip_b:
        report["wrong_model"] = wrong_model(work, Path(args.run_dir))
        print(json.dumps({"wrong_model": report["wrong_model"]}, indent=1, default=str))
    (work / "report.json").write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
