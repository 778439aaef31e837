"""The edges' layering, read from the source: connectors and console do not import each
other (the gateway command composes them), only yujing/clock.py reads the clock, and an
import inside a function is there for a heavy library and says so."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "yujing"
EDGES = ("cli", "connectors", "console", "sim")
EDGE_FILES = sorted(f for sub in EDGES for f in (PKG / sub).rglob("*.py")) + [
    PKG / "supervisor.py", PKG / "config.py"]


def imported(path: Path) -> list[tuple[int, str, bool]]:
    """(line, module, inside a function) of every import in a file; ``from a import b``
    also yields ``a.b`` (it may name a submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inner = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out += [(n.lineno, a.name, id(n) in inner) for a in n.names]
        elif isinstance(n, ast.ImportFrom) and n.module:
            out.append((n.lineno, n.module, id(n) in inner))
            out += [(n.lineno, f"{n.module}.{a.name}", id(n) in inner) for a in n.names]
    return out


def reaches(path: Path, package: str) -> list[str]:
    return [f"{path.name}:{line} imports {mod}"
            for line, mod, _ in imported(path)
            if mod == package or mod.startswith(package + ".")]


def rel(path: Path) -> str:
    return str(path.relative_to(PKG.parent))


@pytest.mark.parametrize("path", sorted((PKG / "connectors").rglob("*.py")), ids=rel)
def test_connectors_import_neither_the_console_nor_the_cli(path):
    assert reaches(path, "yujing.console") + reaches(path, "yujing.cli") == []


@pytest.mark.parametrize("path", sorted((PKG / "console").rglob("*.py")), ids=rel)
def test_the_console_imports_neither_the_connectors_nor_the_cli(path):
    assert reaches(path, "yujing.connectors") + reaches(path, "yujing.cli") == []


def test_the_gateway_command_is_where_ingest_and_console_meet():
    users = {rel(f) for f in PKG.rglob("*.py")
             if reaches(f, "yujing.connectors") and reaches(f, "yujing.console")}
    assert users == {"yujing/cli/serve.py"}


@pytest.mark.parametrize("path", EDGE_FILES, ids=rel)
def test_only_the_clock_module_reads_the_clock(path):
    """time.time(), time.monotonic(), datetime.now() and the event loop's time() all go
    through yujing.clock (now_ms, monotonic) so a test can control them."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    reads = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and n.attr in ("time", "monotonic", "now", "utcnow",
                                                         "time_ns", "monotonic_ns"):
            base = n.value
            name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
            call = getattr(base, "func", None)
            if name in ("time", "datetime", "loop") or (call is not None and
                                                 getattr(call, "attr", "") == "get_running_loop"):
                reads.append(f"{rel(path)}:{n.lineno} {ast.unparse(n)}")
    assert reads == []


def lazy_reason(lines: list[str], line: int) -> bool:
    """'lazy' on the import's line or on a line above it in the same block of imports and
    comments (blank lines between import groups, as isort writes them, stay in the block;
    other code ends it)."""
    i = line - 1
    while i >= 0:
        text = lines[i].strip()
        if "lazy" in text.lower():
            return True
        if i < line - 1 and text and not text.startswith(("#", "import ", "from ")):
            return False
        i -= 1
    return False


@pytest.mark.parametrize("path", EDGE_FILES, ids=rel)
def test_an_import_inside_a_function_says_why(path):
    """Lazy imports are for heavy libraries a command may not need; each says so."""
    lines = path.read_text(encoding="utf-8").splitlines()
    unexplained = [f"{rel(path)}:{line} {mod}" for line, mod, inside in imported(path)
                   if inside and not lazy_reason(lines, line)]
    assert unexplained == []


def test_the_checks_see_what_they_look_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom yujing.console import state\n"
                   "def f():\n    from yujing.connectors.kafka import producer\n"
                   "    return time.monotonic()\n", encoding="utf-8")
    found = imported(bad)
    assert (2, "yujing.console.state", False) in found
    assert (4, "yujing.connectors.kafka", True) in found
    assert any("yujing.console" in r for r in reaches(bad, "yujing.console"))
    lines = ["def f():", "    # lazy: pandas is heavy", "    import pandas", "    import numpy",
             "", "    import yaml", "    x = 1", "    import csv", "    import json  # lazy too"]
    # a blank line between import groups keeps the block; code ends it
    assert [lazy_reason(lines, n) for n in (3, 4, 6, 8, 9)] == [True, True, True, False, True]
