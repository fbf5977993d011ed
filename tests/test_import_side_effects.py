"""Importing gwtwin, or any of its subpackages, changes no global state of the importing program.

Each import runs in a fresh interpreter: a snapshot of matplotlib's rc parameters, the logging
tree (root logger and every logger that already exists), the warnings filters, torch's thread
counts and default dtype, numpy's error state and the environment is taken, the module is
imported, and the snapshot is taken again.  Both must be equal.

Third-party libraries that gwtwin needs at import time and that change some of that state when
*they* are imported are imported before the first snapshot, each for a stated reason: what they
do is their own business and would happen to any program using them.  gwpy is deliberately not
among them: ``import gwpy`` restyles matplotlib (``gwpy.plot`` updates ``rcParams``), so gwtwin
imports gwpy only inside functions, through :func:`gwtwin.data._quiet.quiet_gwpy`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

SUBPACKAGES = [
    "gwtwin",
    "gwtwin.data",
    "gwtwin.signal",
    "gwtwin.simulate",
    "gwtwin.select",
    "gwtwin.dataset",
    "gwtwin.models",
    "gwtwin.train",
    "gwtwin.infer",
    "gwtwin.evaluate",
    "gwtwin.report",
    "gwtwin.pipeline",
    "gwtwin.config",
    "gwtwin.run",
    "gwtwin.cli",
]

# - scipy.special adds an "always" filter for its own SpecialFunctionWarning, and scipy.sparse
#   ignores numpy's "matrix subclass" PendingDeprecationWarning that its own code raises; scipy
#   is imported at module level by the signal kernels (filters, Welch PSDs) that everything uses.
ALLOWED = ["scipy.special", "scipy.sparse"]
# - Lightning (and the sympy it pulls in) add warnings filters for their own deprecations and
#   one torch FSDP message; gwtwin.train's modules subclass LightningModule, so the packages
#   that import gwtwin.train at module level cannot avoid it.  Everything else must not import
#   Lightning at all, so it is allowed only for these.
ALLOWED_FOR = {"gwtwin.train": ["lightning"], "gwtwin.config": ["lightning"]}

SNAPSHOT = """
import importlib, json, logging, os, sys, warnings
import matplotlib
import numpy
import torch
for name in {allowed!r}:
    importlib.import_module(name)


def snapshot():
    loggers = {{
        name: (lg.level, list(lg.handlers), lg.propagate, lg.disabled)
        for name, lg in logging.root.manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    }}
    return {{
        # dict.items: the stored values (RcParams.__getitem__ would resolve the backend)
        "rcParams": dict(dict.items(matplotlib.rcParams)),
        "root logger": (logging.root.level, list(logging.root.handlers)),
        "logging.disable": logging.root.manager.disable,
        "loggers": loggers,
        "warnings.filters": list(warnings.filters),
        "torch threads": (torch.get_num_threads(), torch.get_num_interop_threads()),
        "torch default dtype": torch.get_default_dtype(),
        "numpy errstate": numpy.geterr(),
        "environment": dict(os.environ),
    }}


def changes(before, after):
    out = {{}}
    for key in ("rcParams", "environment"):
        b, a = before[key], after[key]
        diff = {{k: [repr(b.get(k)), repr(a.get(k))] for k in b.keys() | a.keys()
                if b.get(k) != a.get(k)}}
        if diff:
            out[key] = diff
    b, a = before["loggers"], after["loggers"]
    diff = {{n: [repr(b[n]), repr(a.get(n))] for n in b if a.get(n) != b[n]}}
    # a new gwtwin logger may exist, but must not be configured (handlers are the program's)
    diff.update({{
        n: ["(new)", repr(a[n])] for n in a.keys() - b.keys()
        if n.split(".")[0] == "gwtwin"
        and (a[n][0] or any(not isinstance(h, logging.NullHandler) for h in a[n][1]))
    }})
    if diff:
        out["loggers"] = diff
    if before["warnings.filters"] != after["warnings.filters"]:
        out["warnings.filters"] = {{
            "added": [repr(f) for f in after["warnings.filters"]
                      if f not in before["warnings.filters"]],
            "removed": [repr(f) for f in before["warnings.filters"]
                        if f not in after["warnings.filters"]],
        }}
    for key in ("root logger", "logging.disable", "torch threads", "torch default dtype",
                "numpy errstate"):
        if before[key] != after[key]:
            out[key] = [repr(before[key]), repr(after[key])]
    return out


before = snapshot()
{action}
print(json.dumps(changes(before, snapshot())))
"""


def _changes(action: str, allowed=()) -> dict:
    code = SNAPSHOT.format(allowed=list(allowed), action=action)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_import_changes_no_global_state(name):
    allowed = ALLOWED + ALLOWED_FOR.get(name, [])
    assert _changes(f"importlib.import_module({name!r})", allowed) == {}


def test_snapshot_sees_a_restyle():
    # the check can fail: importing gwpy itself restyles matplotlib
    changes = _changes("import gwpy", ALLOWED)
    assert "font.size" in changes.get("rcParams", {})


@pytest.fixture(scope="module")
def gwpy_frames(tmp_path_factory):
    """One second of one channel, written by gwpy itself as HDF5 and as GWF."""
    from gwtwin.data._quiet import quiet_gwpy

    with quiet_gwpy():  # this test process's matplotlib is shared with the other tests
        from gwpy.timeseries import TimeSeries, TimeSeriesDict

    out = tmp_path_factory.mktemp("gwpy-frames")
    series = TimeSeries(
        np.random.default_rng(5).normal(size=256),
        t0=1_400_000_000,
        sample_rate=256,
        name="V1:ENV_TEST",
        channel="V1:ENV_TEST",
        unit="m",
    )
    paths = {}
    for fmt, ext in (("hdf5", "h5"), ("gwf", "gwf")):
        paths[fmt] = out / f"V-TEST-1400000000-1.{ext}"
        TimeSeriesDict({"V1:ENV_TEST": series}).write(paths[fmt], format=fmt, overwrite=True)
    return paths


@pytest.mark.parametrize("fmt", ["hdf5", "gwf"])
def test_reading_frames_keeps_rcparams(gwpy_frames, fmt):
    # reading goes through gwpy (segments, units), whose first import restyles matplotlib
    path = str(gwpy_frames[fmt])
    action = (
        "import gwtwin.data\n"
        "before = snapshot()\n"
        f"data = gwtwin.data.read({path!r}, ['V1:ENV_TEST'])\n"
        "assert data.block.data.shape == (1, 256), data.block.data.shape\n"
        "assert 'gwpy.plot' in sys.modules  # gwpy was imported: the check means something"
    )
    changes = _changes(action, ALLOWED)
    # What gwpy's first import does besides restyling is left to it, as gwtwin cannot read
    # frames without gwpy: gwpy, astropy, requests and urllib3 add "always"/"default"/"ignore"
    # filters for their own warning classes, and gwpy.segments sets DEFAULT_SEGMENT_SERVER
    # (read when gwpy queries a segment database; removing it would break that default).
    own = ("gwpy.", "astropy.", "requests.", "urllib3.")
    filters = changes.pop("warnings.filters", {"added": [], "removed": []})
    assert filters["removed"] == []
    assert [f for f in filters["added"] if not any(f"<class '{m}" in f for m in own)] == []
    environment = changes.pop("environment", {})
    assert set(environment) <= {"DEFAULT_SEGMENT_SERVER"}
    assert changes == {}  # above all, no rcParams
