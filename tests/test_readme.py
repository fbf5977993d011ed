"""The README's examples are tests (issue 14, item 5), so the README cannot drift from the code.

Every fenced block of README.md tagged ``bash`` or ``python`` runs, in README order, in one
temporary working directory that holds a copy of ``configs/`` and ``examples/`` (later blocks
read what earlier ones wrote: ``sim/``, ``scan/``, ``run/`` ...), with the venv's ``bin`` first
on ``PATH``:

- a ``bash`` block runs as one script under ``bash -euo pipefail``, its commands as written
  (trailing ``# comments`` and ``\\`` continuations included), so any failing command fails it;
- a ``python`` block runs on its own with the venv's interpreter (it imports what it uses);
- blocks that show output rather than commands are tagged ``text`` or ``console``; the few that
  cannot run here (``make`` targets, servers) are tagged ``bash notest`` and are listed;
- a failing block fails the test with its heading, its line in README.md, the exit status and
  the tail of its stderr; later blocks are not run (they read what it should have written).

Inline references to the library (```gwtwin.run.run_pipeline(...)```) must name objects that
exist. The run takes ~3-4 min on 2 cores (tiny scenarios); per-block times are printed.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: the venv's executables: the repository's .venv, else the interpreter running the tests
BIN = ROOT / ".venv" / "bin" if (ROOT / ".venv" / "bin").is_dir() else Path(sys.executable).parent
RUNNABLE = ("bash", "python")
OUTPUT = ("text", "console")
#: the README may hold only a handful of blocks that no test runs
MAX_NOTEST = 4
#: seconds one block may take (the whole README runs in ~3-4 min on 2 cores)
BLOCK_TIMEOUT = 300
STDERR_TAIL = 40  # lines of a failing block's stderr in the failure message

FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
HEADING = re.compile(r"^(#{1,6})\s+(?P<title>.+?)\s*#*\s*$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: its language, extra tags, the heading it sits under and its text."""

    lang: str
    tags: tuple[str, ...]
    heading: str
    line: int  # 1-based line of the opening fence in the file
    code: str
    path: str = "README.md"

    @property
    def runnable(self) -> bool:
        return self.lang in RUNNABLE and "notest" not in self.tags

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line} (under '{self.heading}')"


def parse_blocks(text: str, path: str = "README.md") -> list[CodeBlock]:
    """Every fenced code block of a Markdown text, in order, with the heading above it.

    The info string's first word is the language (empty when untagged), the rest are tags
    (``bash notest``). Raises ValueError on a fence that is never closed.
    """
    blocks = []
    heading = "(top of file)"
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            title = HEADING.match(lines[i])
            if title:
                heading = title.group("title")
            i += 1
            continue
        fence, words = match.group("fence"), match.group("info").split()
        start = i
        body = []
        i += 1
        while i < len(lines) and not (
            lines[i].strip().startswith(fence) and set(lines[i].strip()) == {fence[0]}
        ):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"{path}:{start + 1}: code fence {fence} is never closed")
        blocks.append(
            CodeBlock(
                lang=words[0] if words else "",
                tags=tuple(words[1:]),
                heading=heading,
                line=start + 1,
                code="\n".join(body) + "\n",
                path=path,
            )
        )
        i += 1
    return blocks


def block_env() -> dict[str, str]:
    """The environment of the README's commands: the venv first, headless, no telemetry."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(BIN.parent)
    env.update(MLFLOW_DISABLE_TELEMETRY="true", MPLBACKEND="Agg", COLUMNS="120")
    env.pop("PYTHONPATH", None)
    return env


def run_block(
    block: CodeBlock, workdir: Path, scripts: Path, timeout: float = BLOCK_TIMEOUT
) -> str | None:
    """Run one block in ``workdir``; None when it succeeds, else the failure message."""
    script = scripts / f"block-{block.line}.{'sh' if block.lang == 'bash' else 'py'}"
    script.write_text(block.code)
    if block.lang == "bash":
        argv = ["bash", "-euo", "pipefail", str(script)]
    else:
        argv = [str(BIN / "python") if (BIN / "python").exists() else sys.executable, str(script)]
    try:
        proc = subprocess.run(
            argv,
            cwd=workdir,
            env=block_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        return failure_message(block, f"timed out after {timeout:g} s", err or "")
    if proc.returncode != 0:
        return failure_message(block, f"exit status {proc.returncode}", proc.stderr, proc.stdout)
    return None


def failure_message(block: CodeBlock, what: str, stderr: str, stdout: str = "") -> str:
    """What a failing README block reports: where it is, the block, how it failed, the tails."""
    err = "\n".join(stderr.rstrip().splitlines()[-STDERR_TAIL:]) or "(empty)"
    out = "\n".join(stdout.rstrip().splitlines()[-8:])
    code = "\n".join(f"    {line}" for line in block.code.rstrip().splitlines())
    text = f"README block at {block.where} failed: {what}\n{block.lang} block:\n{code}\n"
    text += f"stderr (last {STDERR_TAIL} lines):\n{err}\n"
    if out:
        text += f"stdout (last 8 lines):\n{out}\n"
    return text


@pytest.fixture(scope="module")
def blocks() -> list[CodeBlock]:
    return parse_blocks(README.read_text(encoding="utf-8"))


# -- the README itself ---------------------------------------------------------------------------
def test_every_block_says_what_it_is(blocks):
    """An untagged block could be commands or output: each says ``bash``/``python`` (run),
    ``bash notest`` (not run, listed), or ``text``/``console`` (output, never run)."""
    bad = [b.where for b in blocks if b.lang not in (*RUNNABLE, *OUTPUT, "yaml")]
    assert not bad, f"blocks without a known language tag (use text/console for output): {bad}"
    odd = [b.where for b in blocks if b.tags and b.tags != ("notest",)]
    assert not odd, f"unknown block tags (only 'notest'): {odd}"
    assert sum(b.runnable for b in blocks) >= 10, "the README's runnable blocks were not found"


def test_only_a_handful_of_blocks_are_not_run(blocks):
    notest = [b for b in blocks if "notest" in b.tags]
    listing = "\n".join(f"  {b.where}: {b.code.splitlines()[0]}" for b in notest)
    print(f"README blocks not run ({len(notest)}):\n{listing}")
    assert len(notest) <= MAX_NOTEST, f"too many 'notest' blocks (at most {MAX_NOTEST}):\n{listing}"


def test_inline_library_names_exist():
    """Every ``gwtwin.<module>.<name>`` in the README's inline code resolves in the library."""
    text = README.read_text(encoding="utf-8")
    names = sorted(set(re.findall(r"`[^`\n]*?\b(gwtwin(?:\.[A-Za-z_]\w*)+)", text)))
    assert names, "no inline gwtwin.<module> references found"
    missing = [name for name in names if not _resolves(name)]
    assert not missing, f"README names library objects that do not exist: {missing}"


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:n]))
        except ImportError:
            continue
        for attr in parts[n:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


# -- the runner, on blocks that must fail --------------------------------------------------------
def test_runner_fails_naming_the_block_and_stderr(tmp_path):
    """A failing command fails its block (``-e``, ``pipefail``); the message names the heading,
    the line and the stderr tail; a continued line and a trailing comment run as written."""
    ok = CodeBlock("bash", (), "Fine", 3, 'x=1 \\\n  && test "$x" = 1   # a comment\n')
    assert run_block(ok, tmp_path, tmp_path) is None
    bad = CodeBlock("bash", (), "Broken example", 42, "echo out\necho boom >&2\nfalse\ntouch x\n")
    message = run_block(bad, tmp_path, tmp_path)
    assert message is not None
    assert "README.md:42 (under 'Broken example')" in message and "exit status 1" in message
    assert "boom" in message and not (tmp_path / "x").exists()
    piped = CodeBlock("bash", (), "Pipe", 7, "false | cat\n")
    assert "exit status 1" in (run_block(piped, tmp_path, tmp_path) or "")
    py = CodeBlock("python", (), "Py", 9, "import sys\nsys.exit('python failed here')\n")
    assert "python failed here" in (run_block(py, tmp_path, tmp_path) or "")


def test_parser_keeps_order_headings_lines_and_tags():
    text = (
        "# Title\n\n## First\n\n```bash\necho a \\\n  b\n```\n\n"
        "```text\nerror: x\n```\n\n### Second\n\n````bash notest\nmake demo\n````\n"
    )
    got = parse_blocks(text)
    assert [(b.lang, b.tags, b.heading, b.line) for b in got] == [
        ("bash", (), "First", 5),
        ("text", (), "First", 10),
        ("bash", ("notest",), "Second", 16),
    ]
    assert got[0].code == "echo a \\\n  b\n" and [b.runnable for b in got] == [True, False, False]
    with pytest.raises(ValueError, match="never closed"):
        parse_blocks("```bash\nls\n")


# -- the examples --------------------------------------------------------------------------------
def test_readme_blocks_run_in_order(blocks, tmp_path):
    if not (BIN / "gwtwin").exists():
        pytest.skip(f"the gwtwin command is not installed in {BIN} (pip install -e .)")
    workdir = tmp_path / "work"
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    shutil.copytree(ROOT / "configs", workdir / "configs")
    shutil.copytree(ROOT / "examples", workdir / "examples")
    times = []
    for block in (b for b in blocks if b.runnable):
        t0 = time.perf_counter()
        message = run_block(block, workdir, scripts)
        times.append((time.perf_counter() - t0, block))
        if message is not None:
            pytest.fail(message + _timings(times), pytrace=False)
    print(_timings(times))


def _timings(times) -> str:
    rows = "\n".join(f"  {t:6.1f} s  {b.where}" for t, b in times)
    return f"README blocks run ({sum(t for t, _ in times):.0f} s in all):\n{rows}"
