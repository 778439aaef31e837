"""The layer rule: a module imports only from its own layer's peers or lower layers, and the
subpackages never import each other in a cycle.

Layers, lowest first (DESIGN.md "Layout"; issue 10):
  0  domain, clock, durations, yamlsrc, envelope, metrics, readings_csv, stations, malloc
  1  rules, models, alerts
  2  pipeline (a module or a package), config, kafka_settings
  3  streams, connectors, console, backtest, sim, supervisor, watchdog
  4  cli
yujing/__init__.py and __main__.py stand outside. Every import counts, including those
inside functions and under TYPE_CHECKING: a lazy import still ties the two modules together.
The import parser is test_purity's (ast, relative imports resolved).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tests.unit.test_purity import PKG, imports

LAYER_NAMES: list[list[str]] = [
    ["domain", "clock", "durations", "yamlsrc", "envelope", "metrics", "readings_csv", "stations",
     "malloc"],
    ["rules", "models", "alerts"],
    ["pipeline", "config", "kafka_settings"],
    ["streams", "connectors", "console", "backtest", "sim", "supervisor", "watchdog"],
    ["cli"],
]
LAYERS: dict[str, int] = {name: n for n, names in enumerate(LAYER_NAMES) for name in names}
OUTSIDE = frozenset({"__init__", "__main__"})


@dataclass(frozen=True)
class Edge:
    """One import between two units (a root module or a subpackage of the package)."""

    src: str        # unit of the importing file
    dst: str        # unit of the imported module
    importer: str   # dotted name of the importing module
    imported: str   # dotted name as imported
    where: str      # file:line, the file relative to the package's parent

    def __str__(self) -> str:
        return f"{self.where}: {self.importer} imports {self.imported}"


def unit_of(parts: list[str], pkg: Path) -> str:
    """The unit of a module given by its dotted parts below the package ("rules.engine" ->
    rules); a name that is no module of the package is an attribute of its __init__."""
    if not parts:
        return "__init__"
    head = parts[0]
    if (pkg / f"{head}.py").is_file() or (pkg / head / "__init__.py").is_file():
        return head
    return "__init__"


def modules(pkg: Path) -> list[tuple[Path, str, str]]:
    """(file, dotted module name, package it resolves relative imports in) for every file."""
    out = []
    for path in sorted(pkg.rglob("*.py")):
        parts = list(path.relative_to(pkg.parent).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        if is_init:
            parts.pop()
        name = ".".join(parts)
        out.append((path, name, name if is_init else name.rpartition(".")[0]))
    return out


def units(pkg: Path) -> dict[str, list[str]]:
    """unit -> the files in it (relative to the package's parent)."""
    out: dict[str, list[str]] = defaultdict(list)
    for path, _, _ in modules(pkg):
        rel = path.relative_to(pkg)
        unit = rel.parts[0].removesuffix(".py") if len(rel.parts) == 1 else rel.parts[0]
        out[unit].append(str(path.relative_to(pkg.parent)))
    return dict(out)


def is_module(parts: list[str], pkg: Path) -> bool:
    rel = Path(pkg, *parts)
    return rel.with_suffix(".py").is_file() or (rel / "__init__.py").is_file()


def edges(pkg: Path) -> list[Edge]:
    """Every import of a module of the package by a module of another unit, one per line
    and imported unit ("from yujing.rules import engine" names yujing.rules.engine)."""
    root = pkg.name
    best: dict[tuple[str, str], Edge] = {}
    for path, name, package in modules(pkg):
        src = unit_of(name.split(".")[1:], pkg)
        for line, target in imports(path, package):
            parts = target.split(".")
            if parts[0] != root or len(parts) == 1:
                continue
            dst = unit_of(parts[1:], pkg)
            if dst == src:
                continue
            edge = Edge(src, dst, name, target, f"{path.relative_to(pkg.parent)}:{line}")
            old = best.get((edge.where, dst))
            # the deepest name that is a module (not an attribute imported from it)
            if old is None or (is_module(parts[1:], pkg)
                               and len(parts) > len(old.imported.split("."))):
                best[(edge.where, dst)] = edge
    return list(best.values())


def unassigned(pkg: Path, layers: dict[str, int]) -> list[str]:
    """Files whose unit has no layer (a new module must be placed in the table)."""
    return sorted(f for unit, files in units(pkg).items()
                  if unit not in layers and unit not in OUTSIDE for f in files)


def upward(pkg: Path, layers: dict[str, int]) -> list[str]:
    """Imports of a higher layer's module, each with its file and line."""
    return [f"{e} (layer {layers[e.src]} -> {layers[e.dst]})" for e in edges(pkg)
            if e.src in layers and e.dst in layers and layers[e.dst] > layers[e.src]]


def cycles(pkg: Path, limit: int = 200) -> list[str]:
    """Every elementary cycle of the unit graph (root modules and subpackages), each edge
    with the file:line of its imports; at most ``limit`` of them."""
    sites: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in edges(pkg):
        if e.src not in OUTSIDE and e.dst not in OUTSIDE:
            sites[(e.src, e.dst)].append(e.where)
    graph: dict[str, set[str]] = defaultdict(set)
    for src, dst in sites:
        graph[src].add(dst)
    found: list[list[str]] = []
    # each cycle once: from its smallest node, through larger nodes only
    for start in sorted(graph):
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        while stack and len(found) < limit:
            node, path = stack.pop()
            for nxt in sorted(graph[node], reverse=True):
                if nxt == start:
                    found.append(path)
                elif nxt > start and nxt not in path:
                    stack.append((nxt, path + [nxt]))
    out = []
    for cyc in sorted(found, key=lambda c: (len(c), c)):
        hops = []
        for a, b in zip(cyc, cyc[1:] + cyc[:1]):
            where = sites[(a, b)]
            more = f" +{len(where) - 3} more" if len(where) > 3 else ""
            hops.append(f"{a} -> {b} ({', '.join(where[:3])}{more})")
        out.append(" | ".join(hops))
    return out


def report(title: str, lines: list[str]) -> str:
    return f"{len(lines)} {title}:\n  " + "\n  ".join(lines)


# --- the real package ----------------------------------------------------------------------

def test_every_module_has_a_layer():
    """A new module (or subpackage) cannot escape the check: it must be put in a layer."""
    assert unassigned(PKG, LAYERS) == [], "add these to LAYER_NAMES in tests/unit/test_layers.py"


def test_every_layer_name_is_a_module_or_package():
    assert sorted(set(LAYERS) - set(units(PKG))) == []


def test_no_module_imports_a_higher_layer():
    found = upward(PKG, LAYERS)
    assert found == [], report("imports of a higher layer", found)


def test_no_import_cycle_between_subpackages():
    found = cycles(PKG)
    assert found == [], report("cycles between subpackages", found)


# --- the checker itself, on a fake package -------------------------------------------------

def fake_package(tmp: Path, files: dict[str, str]) -> Path:
    pkg = tmp / "yujing"
    for rel, text in {"__init__.py": "", **files}.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return pkg


FAKE_LAYERS = {"domain": 0, "rules": 1, "pipeline": 2, "streams": 3}


def test_the_checker_finds_an_upward_import_even_inside_a_function(tmp_path):
    pkg = fake_package(tmp_path, {
        "domain.py": "import os\n\ndef f():\n    from yujing.rules import engine\n",
        "rules/__init__.py": "",
        "rules/engine.py": "from ..domain import Reading\nfrom yujing import pipeline\n",
        "pipeline.py": "from yujing.rules.engine import Engine\n",
    })
    found = upward(pkg, FAKE_LAYERS)
    assert found == [
        "yujing/domain.py:4: yujing.domain imports yujing.rules.engine (layer 0 -> 1)",
        "yujing/rules/engine.py:2: yujing.rules.engine imports yujing.pipeline (layer 1 -> 2)",
    ]


def test_the_checker_finds_a_cycle_between_subpackages_with_its_lines(tmp_path):
    pkg = fake_package(tmp_path, {
        "domain.py": "",
        "rules/__init__.py": "from . import engine\n",
        "rules/engine.py": "import yujing.domain\nfrom yujing.streams.app import run\n",
        "pipeline.py": "from yujing.rules import engine\n",
        "streams/__init__.py": "",
        "streams/app.py": "import os\n\n\ndef run():\n    from ..pipeline import Pipeline\n",
    })
    assert cycles(pkg) == [
        "pipeline -> rules (yujing/pipeline.py:1)"
        " | rules -> streams (yujing/rules/engine.py:2)"
        " | streams -> pipeline (yujing/streams/app.py:5)",
    ]
    # within one subpackage is no cycle between subpackages
    pkg2 = fake_package(tmp_path / "b", {"rules/__init__.py": "from .a import x\n",
                                         "rules/a.py": "from yujing.rules import b\n",
                                         "rules/b.py": "from yujing.rules import a\n"})
    assert cycles(pkg2) == []


def test_the_checker_finds_a_module_without_a_layer(tmp_path):
    pkg = fake_package(tmp_path, {"domain.py": "", "__main__.py": "from yujing.cli import main\n",
                                  "newthing.py": "", "extras/__init__.py": "",
                                  "extras/x.py": ""})
    assert unassigned(pkg, FAKE_LAYERS) == ["yujing/extras/__init__.py", "yujing/extras/x.py",
                                            "yujing/newthing.py"]


def test_a_package_attribute_belongs_to_the_package_init(tmp_path):
    pkg = fake_package(tmp_path, {"__init__.py": "VERSION = '1'\n",
                                  "domain.py": "from yujing import VERSION\n"})
    assert [(e.src, e.dst) for e in edges(pkg)] == [("domain", "__init__")]
    assert upward(pkg, FAKE_LAYERS) == [] and cycles(pkg) == []
