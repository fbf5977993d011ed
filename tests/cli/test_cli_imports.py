"""Start-up cost of the ``gwtwin`` command: building the parser imports no heavy library, and a
command imports only the libraries of its own step.

Each check runs in a fresh interpreter (``sys.modules`` of the test process holds everything).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

#: Libraries that cost from 0.1 s (matplotlib) to several seconds (torch, Lightning, MLflow).
HEAVY = ("torch", "lightning", "mlflow", "gwpy", "matplotlib", "scipy", "dask")

HELPS = [
    [],
    ["simulate"],
    ["triggers"],
    ["scan"],
    ["dataset"],
    ["train"],
    ["report"],
    ["models", "list"],
    ["models", "promote"],
    ["clean"],
    ["evaluate"],
    ["config", "show"],
    ["config", "validate"],
    ["run"],
]


def _python(code: str):
    """Run ``code`` in a fresh interpreter; it prints one JSON value as its last line."""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _heavy_after(statements: str) -> list[str]:
    return _python(
        f"import json, sys\n{statements}\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )


def test_build_parser_imports_no_heavy_library():
    assert _heavy_after("import gwtwin.cli\ngwtwin.cli.build_parser()") == []


def test_help_of_every_command_imports_no_heavy_library():
    code = f"""
import contextlib, io, json, sys
from gwtwin.cli import main
heavy = {{}}
for argv in {HELPS!r}:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main([*argv, "--help"])
    heavy[" ".join(argv)] = sorted(m for m in {HEAVY!r} if m in sys.modules)
print(json.dumps(heavy))
"""
    heavy = _python(code)
    assert list(heavy) == [" ".join(argv) for argv in HELPS]  # every --help ran
    assert heavy == {name: [] for name in heavy}


def _main_then_heavy(argv: list[str]) -> tuple[int, list[str]]:
    code = f"""
import contextlib, io, json, sys
from gwtwin.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    rc = main({argv!r})
print(json.dumps([rc, sorted(m for m in {HEAVY!r} if m in sys.modules)]))
"""
    rc, heavy = _python(code)
    return rc, heavy


def test_argument_errors_are_reported_before_any_library_import(tmp_path):
    # a work directory without mlflow.db: the check needs neither MLflow nor Lightning
    assert _main_then_heavy(["models", "list", "--workdir", str(tmp_path)]) == (2, [])
    assert _main_then_heavy(["run"]) == (2, [])


@pytest.mark.slow
def test_triggers_imports_neither_lightning_nor_mlflow(tmp_path):
    from gwtwin.data import Block, write_frame

    rng = np.random.default_rng(3)
    block = Block.create(rng.normal(size=(1, 64 * 256)), 1_400_000_000, 256.0, "V1:ENV_TEST")
    frame = write_frame(tmp_path / "V-T-1400000000-64.h5", block)
    out = tmp_path / "triggers.h5"
    rc, heavy = _main_then_heavy(
        ["triggers", str(frame), "-o", str(out), "--segment-duration", "32", "--quiet"]
    )
    assert rc == 0 and out.is_file()
    assert "torch" in heavy  # the command did run its library code
    assert not {"lightning", "mlflow"} & set(heavy)


def test_config_show_imports_no_mlflow():
    # gwtwin.config composes TrainConfig, and the gwtwin.train package imports Lightning at
    # module level, so Lightning (and torch) do load here; MLflow must not.
    rc, heavy = _main_then_heavy(["config", "show"])
    assert rc == 0
    assert "mlflow" not in heavy
