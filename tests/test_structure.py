"""The package's structure, checked from its source with ``ast``: no import cycles, modules of a
readable size, and no detector's channel name as a default outside the simulator.

Run alone with ``python -m pytest tests/test_structure.py``. An import counts wherever it is
written (module level or inside a function: a lazy import still ties the two modules together),
except under ``if TYPE_CHECKING:``, which never runs.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "gwtwin"
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def import_graph() -> dict[str, set[str]]:
    """``{module: {gwtwin modules it imports}}`` (a package import counts as its ``__init__``)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skip = _type_checking_lines(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    deps.add(full if full in modules else base)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_between_modules():
    # a package's __init__ re-exporting its submodules is not a cycle of concepts: drop the
    # edges from a submodule up to its own package's __init__
    graph = {
        m: {d for d in deps if not m.startswith(d + ".")} for m, deps in import_graph().items()
    }
    assert _cycles(graph) == []


def test_no_import_cycles_between_packages():
    packages: dict[str, set[str]] = {}
    for module, deps in import_graph().items():
        a = ".".join(module.split(".")[:2])
        for dep in deps:
            b = ".".join(dep.split(".")[:2])
            if a != b and b != "gwtwin":
                packages.setdefault(a, set()).add(b)
    assert _cycles(packages) == []
    # the layering of docs/ARCHITECTURE.md: cleaning never reaches up to evaluation or the run
    assert not packages.get("gwtwin.infer", set()) & {
        "gwtwin.evaluate",
        "gwtwin.report",
        "gwtwin.run",
        "gwtwin.simulate",
    }
    assert packages.get("gwtwin.data", set()) <= {"gwtwin.errors"}


def test_the_cycle_checker_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_modules_stay_readable():
    long = {
        _module_name(p): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """String literals of a module that are not docstrings or comments: ``(line, text)``."""
    tree = ast.parse(path.read_text())
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docs.add(body[0].lineno)
    out = []
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    for tok in tokens:
        if tok.type == tokenize.STRING and tok.start[0] not in docs:
            out.append((tok.start[0], tok.string))
    return out


def test_v1_only_in_the_simulator_defaults_and_docstrings():
    """The issue's check, ``grep -rn "V1:" src/gwtwin``, as a test: outside the simulator's
    scenario defaults, the Virgo prefix appears in docstrings only."""
    allowed = {"gwtwin.simulate.config", "gwtwin.simulate.styles"}
    found = [
        f"{_module_name(path)}:{line}: {text[:80]}"
        for path in PACKAGE.rglob("*.py")
        if _module_name(path) not in allowed
        for line, text in _code_strings(path)
        if "V1:" in text
    ]
    assert found == []


def _default_values(tree: ast.AST):
    """Constants that are defaults: function argument defaults, class and module attribute
    values (pydantic fields included, ``Field(default)`` and ``default_factory`` lambdas)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from node.args.defaults
            yield from (d for d in node.args.kw_defaults if d is not None)
        elif isinstance(node, (ast.ClassDef, ast.Module)):
            for stmt in node.body:
                if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                    yield stmt.value


def test_no_detector_name_as_a_default_outside_the_simulator():
    allowed = {"gwtwin.simulate.config", "gwtwin.simulate.styles"}
    name = re.compile(r"^[A-Z][A-Z0-9]:[A-Za-z]")
    found = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        if module in allowed:
            continue
        for value in _default_values(ast.parse(path.read_text())):
            for node in ast.walk(value):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    if name.match(node.value):
                        found.append(f"{module}:{node.lineno}: {node.value!r}")
    assert found == []


def test_the_default_check_sees_a_default():
    tree = ast.parse("def f(x='H1:GDS-CALIB_STRAIN'):\n    pass\nclass C:\n    s: str = 'V1:X'\n")
    values = [
        n.value for v in _default_values(tree) for n in ast.walk(v) if isinstance(n, ast.Constant)
    ]
    assert values == ["H1:GDS-CALIB_STRAIN", "V1:X"]
