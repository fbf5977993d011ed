"""Channel selection: ``gwtwin scan`` timed end to end, and gwtwin's rounds against hveto's.

Simulates a scenario (default: the built-in 2048 s one, 20 decoys; ``--decoys N`` makes N decoys
by repeating the default decoy list under new names), runs :func:`gwtwin.select.select_channels`
from scratch (triggers for every channel in ``--workers`` processes, rounds, 10 time slides,
scores, files, plots), then on the very same triggers times gwtwin's rounds
(:func:`gwtwin.select.run_rounds`) against hveto's own round functions
(:func:`gwtwin.select.compare.hveto_rounds`, ``hveto.core``), and checks the result against the
truth catalogue.

    python benchmarks/bench_select.py                                  # 2048 s, 25 channels
    python benchmarks/bench_select.py --duration 1800 --seed 2         # 1 strain + 24 ch x 30 min
    python benchmarks/bench_select.py --duration 1800 --decoys 95      # ~100 channels

Prints per-round winners with cumulative efficiency/deadtime for both, the ratio
``hveto rounds time / gwtwin rounds time``, the scan time per channel, and the acceptance checks.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

COUPLED = {
    "V1:SBE_SDB1_DISP_X",
    "V1:SBE_SDB1_LVDT_X",
    "V1:ENV_CEB_MAG_N",
    "V1:ENV_CEB_UPS_VOLT_R",
    "V1:ASC_NE_TX_CORR",
}


def scenario(duration: int, seed: int, decoys: int | None):
    from gwtwin.simulate import SimulationConfig
    from gwtwin.simulate.config import _default_decoys

    overrides: dict = {"duration": duration, "seed": seed}
    if duration % 64:  # 30 min = 30 frames of 60 s
        overrides["frame_length"] = 60 if duration % 60 == 0 else duration
    if decoys is not None:
        base = _default_decoys()
        chans = []
        for i in range(decoys):
            d = base[i % len(base)].model_dump()
            if i >= len(base):
                d["name"] = f"{d['name']}_{i // len(base)}"
            chans.append(d)
        overrides["decoys"] = {"channels": chans}
    return SimulationConfig.model_validate(overrides)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--decoys", type=int, default=None, help="decoy channels (default 20)")
    parser.add_argument("--workers", type=int, default=0, help="processes (0: all cores)")
    parser.add_argument("--keep", help="directory to keep the simulation and outputs in")
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    from gwtwin.select import run_rounds, select_channels
    from gwtwin.select.compare import hveto_rounds
    from gwtwin.simulate import Simulator, read_catalogue

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-select-"))
    sim = root / "sim"
    if not (sim / "summary.json").is_file():
        t = time.perf_counter()
        Simulator(scenario(args.duration, args.seed, args.decoys)).run(sim, progress=False)
        print(f"simulated {args.duration} s in {time.perf_counter() - t:.1f} s")
    out = root / f"out-{time.strftime('%H%M%S')}"
    t = time.perf_counter()
    sel = select_channels(sim, {"workers": args.workers}, out)
    scan_s = time.perf_counter() - t
    n_chan = len(sel.auxiliary) + 1
    print(
        f"scan: {n_chan} channels (1 strain + {n_chan - 1}) x {sel.livetime:.0f} s live in "
        f"{scan_s:.1f} s ({scan_s / n_chan:.2f} s per channel, workers={args.workers or 'all'})"
    )

    # rounds only, same triggers: gwtwin vs hveto.core (best of 3 for gwtwin, 1 for hveto)
    best = []
    for _ in range(3):
        t = time.perf_counter()
        ours = run_rounds(sel.strain, sel.auxiliary, sel.live)
        best.append(time.perf_counter() - t)
    t_ours = min(best)
    t = time.perf_counter()
    ref = hveto_rounds(sel.strain, sel.auxiliary, sel.live, strain_channel=sel.strain_channel)
    t_ref = time.perf_counter() - t
    print(
        f"{'round':>5} {'gwtwin winner':<24} {'hveto winner':<24} "
        f"{'eff% g/h':>13} {'dead% g/h':>13} {'eff/dead g/h':>13}"
    )
    for i in range(max(len(ours.rounds), len(ref))):
        g = ours.rounds[i] if i < len(ours.rounds) else None
        h = ref[i] if i < len(ref) else None
        ge, gd = (100 * g.cum_efficiency, 100 * g.cum_deadtime) if g else (np.nan, np.nan)
        he, hd = (100 * h["cum_efficiency"], 100 * h["cum_deadtime"]) if h else (np.nan, np.nan)
        print(
            f"{i + 1:>5} {g.winner if g else '-':<24} {h['winner'] if h else '-':<24} "
            f"{ge:6.2f}/{he:6.2f} {gd:6.3f}/{hd:6.3f} {ge / gd:6.1f}/{he / hd:6.1f}"
        )
    same = [r.winner for r in ours.rounds] == [str(r["winner"]) for r in ref]
    print(f"same winners in the same order: {same}")
    print(
        f"rounds time: gwtwin {t_ours * 1e3:.1f} ms, hveto {t_ref * 1e3:.1f} ms, "
        f"ratio hveto/gwtwin {t_ref / t_ours:.1f}"
    )

    # acceptance against the truth
    cat = read_catalogue(sim / "catalogue.h5")
    names = sel.selected_names
    decoys = sorted(set(names) - COUPLED)
    g = sel.glitch_table()
    blip = cat[cat["family"] == "blip"]
    is_blip = np.array(
        [np.any((blip["gps_start"] - 0.5 <= t) & (blip["gps_end"] + 0.5 >= t)) for t in g["time"]]
    )
    blips_vetoed = int(np.sum(g["witness"][is_blip] != ""))
    fsr = sel.slides.false_selection_rate
    print(f"selected: {names}")
    print(f"redundant: {sel.redundant}")
    print(
        f"decoys selected: {decoys}; blip glitches vetoed: {blips_vetoed}/{int(is_blip.sum())}"
        f"; slide false-selection rate: {100 * fsr:.2f} % "
        f"({sel.slides.false_selections}/{len(sel.slides.shifts) * sel.slides.n_channels})"
    )
    figures = {
        "duration": args.duration,
        "seed": args.seed,
        "channels": n_chan,
        "scan_s": scan_s,
        "rounds_gwtwin_s": t_ours,
        "rounds_hveto_s": t_ref,
        "same_winners": same,
        "selected": names,
        "redundant": sel.redundant,
        "decoys_selected": decoys,
        "blips_vetoed": [blips_vetoed, int(is_blip.sum())],
        "false_selection_rate": fsr,
        "gwtwin": [
            r.summary() | {"significances": None, "significance_drop": None, "veto_segments": None}
            for r in ours.rounds
        ],
        "hveto": ref,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
