"""The dependency rule: the pure core never imports the I/O libraries.

DESIGN.md: domain, clock, rules, models and alerts (except alerts/notify.py) never
import faust, paho, aiohttp, influxdb_client or apprise; aiokafka belongs with them.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "yujing"
FORBIDDEN = frozenset({"faust", "paho", "aiohttp", "influxdb_client", "apprise", "aiokafka"})


def pure_files() -> list[Path]:
    files: list[Path] = []
    for sub in ("rules", "models", "alerts", "pipeline"):
        files += sorted((PKG / sub).rglob("*.py"))
    files = [f for f in files if f != PKG / "alerts" / "notify.py"]
    files += [PKG / name for name in ("domain.py", "clock.py", "envelope.py", "stations.py")]
    return files


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(path: Path) -> str:
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports(path: Path, package: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file, relative ones resolved.

    Imports inside functions count too: they run the moment the function does.
    """
    package = package_of(path) if package is None else package
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            # "from . import nodata" or "from .connectors import kafka" name submodules
            out += [(node.lineno, f"{mod}.{alias.name}") for alias in node.names]
    return out


def forbidden_in(path: Path, package: str | None = None) -> list[str]:
    return [f"{path.name}:{line} imports {mod}"
            for line, mod in imports(path, package) if mod.split(".")[0] in FORBIDDEN]


def source_of(module: str) -> Path | None:
    rel = Path(*module.split("."))
    for candidate in (PKG.parent / rel.with_suffix(".py"), PKG.parent / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def reachable_violations(start: Path, package: str | None = None) -> list[str]:
    """Forbidden imports anywhere in the yujing modules that ``start`` imports, transitively."""
    seen: set[Path] = set()
    chains: list[str] = []
    stack: list[tuple[Path, str | None, tuple[str, ...]]] = [(start, package, (start.name,))]
    while stack:
        path, pkg, chain = stack.pop()
        if path in seen:
            continue
        seen.add(path)
        for line, mod in imports(path, pkg):
            if mod.split(".")[0] in FORBIDDEN:
                chains.append(" -> ".join(chain) + f" -> {mod} (line {line})")
            elif mod == "yujing" or mod.startswith("yujing."):
                parts = mod.split(".")
                # every package on the way is executed too (its __init__)
                for i in range(1, len(parts) + 1):
                    dep = source_of(".".join(parts[:i]))
                    if dep is not None and dep not in seen:
                        stack.append((dep, None, chain + (".".join(parts[:i]),)))
    return chains


def test_the_pure_file_list_is_what_we_think_it_is():
    names = {str(p.relative_to(PKG.parent)) for p in pure_files()}
    assert {"yujing/rules/engine.py", "yujing/rules/windows.py", "yujing/alerts/lifecycle.py",
            "yujing/domain.py", "yujing/clock.py", "yujing/pipeline/core.py", "yujing/envelope.py",
            "yujing/stations.py"} <= names
    assert "yujing/alerts/notify.py" not in names
    assert all(p.is_file() for p in pure_files())


@pytest.mark.parametrize("path", pure_files(), ids=lambda p: str(p.relative_to(PKG.parent)))
def test_pure_module_does_not_import_io_libraries(path):
    assert forbidden_in(path) == []


@pytest.mark.parametrize("path", pure_files(), ids=lambda p: str(p.relative_to(PKG.parent)))
def test_pure_module_does_not_reach_io_libraries_through_yujing_modules(path):
    assert reachable_violations(path) == []


def test_the_checker_catches_every_import_form(tmp_path):
    """The ast check itself must see plain, dotted, aliased and from-imports, at any depth."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nimport faust\nimport paho.mqtt.client as mqtt\n"
                   "from aiohttp import web\nfrom influxdb_client.client import write_api\n"
                   "def f():\n    import apprise\n    from aiokafka import AIOKafkaProducer\n"
                   "import faustish\nfrom . import domain\n", encoding="utf-8")
    found = forbidden_in(bad, "yujing")
    assert {f.split(" imports ")[1].split(".")[0] for f in found} == FORBIDDEN
    assert "bad.py:2 imports faust" in found
    assert "bad.py:7 imports apprise" in found
    assert not any("faustish" in f for f in found)
    assert not any("os" == f.split(" imports ")[1] for f in found)


def test_the_checker_follows_relative_imports_into_io_modules(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("from ..connectors import kafka\nfrom .windows import merge\n",
                      encoding="utf-8")
    assert (1, "yujing.connectors.kafka") in imports(sneaky, "yujing.rules")
    assert (2, "yujing.rules.windows") in imports(sneaky, "yujing.rules")
    assert forbidden_in(sneaky, "yujing.rules") == []  # no direct violation ...
    chains = reachable_violations(sneaky, "yujing.rules")
    assert any("yujing.connectors.kafka -> aiokafka" in c for c in chains)  # ... but a reached one


def test_importing_the_core_loads_no_io_library():
    """Import the engine and lifecycle afresh and look at what landed in sys.modules."""
    def dropped(name: str) -> bool:
        top = name.split(".")[0]
        return top in FORBIDDEN or top == "yujing"

    saved = {name: mod for name, mod in sys.modules.items() if dropped(name)}
    for name in saved:
        del sys.modules[name]
    try:
        importlib.import_module("yujing.rules.engine")
        importlib.import_module("yujing.alerts.lifecycle")
        assert "yujing.rules.engine" in sys.modules  # the import really ran afresh
        loaded = sorted(n for n in sys.modules if n.split(".")[0] in FORBIDDEN)
        assert loaded == []
    finally:
        for name in [n for n in sys.modules if dropped(n)]:
            del sys.modules[name]
        sys.modules.update(saved)
