"""Calling gwtwin changes no global state of the calling program (issue 14, extended to calls).

A notebook or a GUI program that calls gwtwin keeps its matplotlib backend, its rc parameters
and its torch thread count: gwtwin draws on :class:`matplotlib.figure.Figure` objects (no pyplot,
no ``matplotlib.use``), imports gwpy (whose first import restyles matplotlib) through
:func:`gwtwin.data._quiet.quiet_gwpy`, and gives back the thread count that a config's
``torch_threads`` or a one-thread trigger job sets (:func:`gwtwin.signal._threads.torch_threads`).

The calls run in a fresh interpreter that first picks a backend other than Agg (``svg``: what a
program might have chosen, and one that exists headless) and a thread count that is neither
torch's default here nor the 1 that gwtwin sets.  Each call starts from that state (so that one
call's change cannot hide the next's), and around it the backend, the stored rcParams, the
thread count and pyplot's list of open figures are compared; a control step that does change
them shows that the comparison can fail.  Two ``ast`` scans check the rules for code that no
call here reaches: every gwpy import is inside ``with quiet_gwpy():``, and nothing imports
pyplot or calls ``matplotlib.use``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gwtwin"
START = 1_400_000_000

SCRIPT = r"""
import io, json, sys
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("svg")
import numpy as np
import torch

torch.set_num_threads(3)
work, sim, START = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])


def state():
    plt = sys.modules.get("matplotlib.pyplot")  # never imported by gwtwin; gwpy may
    return {
        "backend": matplotlib.get_backend(),
        "rcParams": dict(dict.items(matplotlib.rcParams)),  # stored values, backend unresolved
        "torch threads": torch.get_num_threads(),
        "pyplot figures": list(plt.get_fignums()) if plt is not None else [],
    }


def diff(before, after):
    out = {}
    for key in before:
        b, a = before[key], after[key]
        if key == "rcParams":
            changed = {k: [repr(b.get(k)), repr(a.get(k))] for k in b.keys() | a.keys()
                       if b.get(k) != a.get(k)}
            if changed:
                out[key] = changed
        elif b != a:
            out[key] = [repr(b), repr(a)]
    return out


report = {}


def reset(to):
    # every step starts from the same state, so that one step's change does not hide the next's
    matplotlib.use(to["backend"])
    matplotlib.rcParams.update({k: v for k, v in to["rcParams"].items() if k != "backend"})
    torch.set_num_threads(to["torch threads"])
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def step(name, call):
    reset(first)
    before = state()
    assert before == first, diff(first, before)
    call()
    report[name] = diff(before, state())


def control():
    matplotlib.use("agg")
    matplotlib.rcParams["font.size"] = 13.0
    torch.set_num_threads(1)


first = state()
step("control", control)

# -- gwpy: the first import, through gwtwin, restyles nothing
from gwtwin.signal.triggers_table import TRIGGER_DTYPE, Triggers, write_triggers

rows = np.zeros(3, TRIGGER_DTYPE)
rows["time"] = START + np.array([3.0, 9.5, 20.0])
rows["frequency"] = [40.0, 120.0, 300.0]
rows["q"] = 8.0
rows["snr"] = [6.0, 12.0, 40.0]
triggers = Triggers({"X1:STRAIN": rows}, (START, START + 32.0), {})
step("Triggers.to_eventtable (first gwpy import)", lambda: triggers.to_eventtable("X1:STRAIN"))
assert "gwpy.plot" in sys.modules  # gwpy was imported: the step means something

# -- figures
from gwtwin.evaluate.plots import truth_plots

freq = np.geomspace(10, 1000, 50)
asd = {"table": {"frequency": freq, "overall": np.full(50, 0.9), "quiet": np.ones(50)}}
scores = {
    "family": np.array(["blip", "em", "em"]),
    "residual_snr": np.array([1.0, 3.0, 12.0]),
    "snr": np.array([10.0, 20.0, 50.0]),
    "fraction_removed": np.array([0.5, 0.95, 0.99]),
}
cfg = SimpleNamespace(band=(20.0, 500.0), residual_limit=5.0)
(work / "evaluate").mkdir()
step("evaluate.truth_plots", lambda: truth_plots(work / "evaluate", scores, asd, cfg, [50.0]))

from gwtwin.simulate.quicklook import quicklook

step("simulate.quicklook", lambda: quicklook(sim, work / "quicklook.png"))

from gwtwin.select.plots import write_plots

selection = SimpleNamespace(
    strain_channel="X1:STRAIN",
    rows=[
        {"channel": "X1:WIT_A", "first_significance": 30.0, "slide_background": 1.0,
         "status": "selected"},
        {"channel": "X1:WIT_B", "first_significance": 3.0, "slide_background": 0.5,
         "status": "redundant with X1:WIT_A"},
    ],
    scores={
        "X1:WIT_A": SimpleNamespace(delays=np.array([-0.01, 0.0, 0.002]), tolerance=0.05),
        "X1:WIT_B": SimpleNamespace(delays=np.array([0.01]), tolerance=0.05),
    },
    config=SimpleNamespace(min_significance=5.0, coincidence=SimpleNamespace(delay_bins=10)),
    rounds=SimpleNamespace(
        rounds=[SimpleNamespace(n=1, winner="X1:WIT_A", cum_deadtime=0.01, cum_efficiency=0.5)]
    ),
)
step("select.write_plots", lambda: write_plots(selection, work / "select"))

from gwtwin.report.cleaning import _accuracy_plot
from gwtwin.report.run import build_report

(work / "run").mkdir()
write_triggers(work / "run" / "triggers.h5", triggers)
step("report.build_report (triggers)", lambda: build_report(work / "run"))
(work / "accuracy.csv").write_text(
    "threshold,veto_accuracy,denoising_accuracy\n25,0.5,0.4\n100,0.8,nan\n"
)
step("report accuracy plot", lambda: _accuracy_plot(work / "accuracy.csv", work / "plots"))

from gwtwin.train.panels import qimage_panels

windows = torch.rand(2, 4, 8)
step(
    "train.qimage_panels",
    lambda: qimage_panels(torch.nn.Identity(), windows, windows, ["a", "b"]).savefig(
        io.BytesIO(), format="png"
    ),
)

from gwtwin.infer.images import glitch_figure

rate = 256.0
w_raw = np.random.default_rng(1).standard_normal(int(4 * rate))
glitch = {"gps": START + 2.0, "snr_before": 12.0, "snr_after": 3.0, "predicted_snr": 11.0,
          "residual_snr2": 9.0, "residual_area": 2, "witness": "X1:WIT_A"}
veto = SimpleNamespace(frange=(10.0, 1000.0), qrange=(4.0, 32.0))
step(
    "infer.glitch_figure",
    lambda: glitch_figure(w_raw, 0.5 * w_raw, rate, glitch, "cleaned", veto).savefig(
        io.BytesIO(), format="png"
    ),
)

# -- torch threads: each of these sets the count (to 1) before it returns or fails
from gwtwin.errors import GwtwinError
from gwtwin.infer.clean import CleanConfig, clean_frames


def clean_without_model():
    try:  # sets config.torch_threads, then finds that no model was given
        clean_frames(sim / "frames", work / "clean", CleanConfig(torch_threads=1), log=print)
    except GwtwinError as exc:
        assert "no model" in str(exc), exc
    else:
        raise AssertionError("clean_frames ran without a model")


step("infer.clean_frames (torch_threads=1)", clean_without_model)

from gwtwin.signal.conditioning import fit_conditioning
from gwtwin.data import Block
import h5py

rng = np.random.default_rng(2)
blocks = [
    Block.create(rng.standard_normal(16 * 512) * 1e-22, START, 512, "X1:STRAIN", ["strain"]),
    Block.create(rng.standard_normal(16 * 256), START, 256, "X1:WIT_A", ["V"]),
]
spec = fit_conditioning(blocks, ["X1:WIT_A"], "X1:STRAIN", sample_rate=256.0, fftlength=4.0,
                        fduration=1.0, highpass=None)
empty = work / "empty-dataset.h5"  # a dataset's attributes without any windows
with h5py.File(empty, "w") as h5:
    h5.attrs.update({
        "format": "gwtwin-dataset/1", "kind": "timeseries", "strain_channel": "X1:STRAIN",
        "conditioning": spec.to_json(), "source": "synthetic", "config": "{}",
        "created": "2026-01-01T00:00:00", "sample_rate": 256.0, "window_duration": 4.0,
        "target_duration": 2.0, "feature_names": json.dumps(spec.feature_names),
        "n_skipped": "{}",
    })

from gwtwin.train import train


def train_on_nothing():
    try:  # sets torch_threads, then finds no windows to train on (h5py: no "train" group)
        train(empty, work / "train", {"torch_threads": 1, "progress": False})
    except (GwtwinError, KeyError):
        pass
    else:
        raise AssertionError("train ran on an empty dataset")


step("train.train (torch_threads=1)", train_on_nothing)

from gwtwin.select.config import SelectConfig
from gwtwin.select.triggers import channel_jobs, channel_triggers

job = channel_jobs(sim / "frames", ["V1:ENV_CEB_MAG_N"], SelectConfig())[0]
step("select channel_triggers (one thread per job)", lambda: channel_triggers(job))

print(json.dumps(report))
"""

STEPS = [
    "Triggers.to_eventtable (first gwpy import)",
    "evaluate.truth_plots",
    "simulate.quicklook",
    "select.write_plots",
    "report.build_report (triggers)",
    "report accuracy plot",
    "train.qimage_panels",
    "infer.glitch_figure",
    "infer.clean_frames (torch_threads=1)",
    "train.train (torch_threads=1)",
    "select channel_triggers (one thread per job)",
]


@pytest.fixture(scope="module")
def tiny_simulation(tmp_path_factory):
    """32 s with a few EM glitches (witnessed) and blips (not): the quicklook draws both."""
    from gwtwin.simulate import SimulationConfig, Simulator

    out = tmp_path_factory.mktemp("sim-call-effects")
    config = SimulationConfig.model_validate(
        {
            "duration": 32,
            "frame_length": 32,
            "start": START,
            "seed": 11,
            "edge_margin": 2.0,
            "scatter": {"enabled": False},
            "powerline": {"enabled": False},
            "em": {"rate": 400.0},
            "blip": {"rate": 400.0},
            "decoys": {"enabled": False},
            "injections": {"enabled": False},
        }
    )
    Simulator(config).run(out, workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def changes(tiny_simulation, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("call-effects")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the script picks svg
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(work), str(tiny_simulation), str(START)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
        cwd=work,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_comparison_sees_a_change(changes):
    # the check can fail: switching the backend, restyling and setting threads are all seen
    assert set(changes["control"]) == {"backend", "rcParams", "torch threads"}
    assert set(changes["control"]["rcParams"]) == {"backend", "font.size"}


@pytest.mark.parametrize("name", STEPS)
def test_a_call_changes_no_global_state(changes, name):
    assert changes[name] == {}


def _inside_quiet_gwpy(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any(
            "quiet_gwpy" in ast.unparse(item.context_expr) for item in node.items
        ):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def test_every_gwpy_import_goes_through_quiet_gwpy():
    """Whichever gwtwin call imports gwpy first, it restyles nothing: every import of gwpy, or
    of a package that imports gwpy (hveto), is inside ``with quiet_gwpy():``."""
    gwpy_importers = ("gwpy", "hveto")
    bare, seen = [], 0
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        quiet = _inside_quiet_gwpy(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            if any(n.split(".")[0] in gwpy_importers for n in names):
                seen += 1
                if node.lineno not in quiet:
                    bare.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert seen > 10  # the scan finds gwtwin's gwpy imports: it can fail
    assert bare == []


def test_no_library_code_picks_a_backend_or_uses_pyplot():
    """Figures are ``matplotlib.figure.Figure`` objects: nothing in gwtwin calls
    ``matplotlib.use`` or imports pyplot (which would tie figures to the caller's backend)."""
    found = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names]
                module = node.module if isinstance(node, ast.ImportFrom) else ""
                if (
                    "matplotlib.pyplot" in names
                    or module == "matplotlib.pyplot"
                    or (module == "matplotlib" and "pyplot" in names)
                ):
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} imports pyplot")
            elif isinstance(node, ast.Call) and ast.unparse(node.func) == "matplotlib.use":
                found.append(f"{path.relative_to(SRC)}:{node.lineno} calls matplotlib.use")
    assert found == []
