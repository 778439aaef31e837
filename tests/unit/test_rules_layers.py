"""yujing.rules sits low in the layers: it imports only the layers below it (never models,
pipeline or backtest), at module level (no import hidden in a function to dodge a cycle),
and its own modules import each other without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "yujing" / "rules"
BELOW = {"yujing.domain", "yujing.clock", "yujing.durations", "yujing.yamlsrc",
         "yujing.envelope", "yujing.metrics", "yujing.readings_csv", "yujing.stations"}


def yujing_imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, module, at module level) of every yujing import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("yujing"):
            mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names
                                    if node.module == "yujing.rules"]
        elif isinstance(node, ast.Import):
            mods = [a.name for a in node.names if a.name.startswith("yujing")]
        else:
            continue
        out += [(node.lineno, m, id(node) in top) for m in mods if m != "yujing.rules"]
    return out


def test_rules_import_only_lower_layers_at_module_level():
    bad = []
    for path in sorted(RULES.glob("*.py")):
        for line, mod, at_top in yujing_imports(path):
            if not at_top:
                bad.append(f"{path.name}:{line} imports {mod} inside a function")
            elif not (mod in BELOW or mod.startswith("yujing.rules.")):
                bad.append(f"{path.name}:{line} imports {mod} (above rules)")
    assert bad == []


def test_rules_modules_import_each_other_without_a_cycle():
    graph = {p.stem: {m.split(".")[2] for _, m, _ in yujing_imports(p)
                      if m.startswith("yujing.rules.")} for p in RULES.glob("*.py")}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join(path + (name,))
        if name in done:
            return
        for dep in graph.get(name, ()):
            visit(dep, path + (name,))
        done.add(name)

    for name in graph:
        visit(name, ())
