"""Load every ``*.yaml`` rule file in a folder, collecting all located errors.

``check_references`` then checks the rules against the station registry: a
selector value no station has ("twon"), a station id that is not registered,
or a ``station.<field>`` that an eligible station lacks would otherwise make
a rule silently never fire.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yujing.rules.compiled import CompileError, compile_rule
from yujing.rules.schema import Rule, RuleFile
from yujing.yamlsrc import Located, Problem, SourceError, load_yaml, validate


@dataclass(frozen=True)
class Origin:
    """Where a rule was written: its file and the parsed source for line lookups."""

    file: str
    index: int
    src: Located

    def line(self, *path: Any) -> int:
        return self.src.line_of(("rules", self.index) + tuple(path))


def rule_files(folder: Path) -> list[Path]:
    """Rule files in a folder; ``*.test.yaml`` files are rule tests, not rules."""
    return sorted(p for p in folder.glob("*.yaml") if not p.name.endswith(".test.yaml"))


def load_rules_located(folder: str | Path) -> list[tuple[Rule, Origin]]:
    """All rules under ``folder`` with their origin; raises SourceError listing every problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError([Problem(str(folder), 0, "", "rules folder not found: set "
                                   "worker.rules_dir in config.yaml to a folder of *.yaml rule files")])
    problems: list[Problem] = []
    rules: list[tuple[Rule, Origin]] = []
    seen: dict[str, str] = {}
    for path in rule_files(folder):
        try:
            src = load_yaml(path)
            parsed: RuleFile = validate(RuleFile, src)
        except SourceError as exc:
            problems.extend(exc.problems)
            continue
        for i, rule in enumerate(parsed.rules):
            origin = Origin(str(path), i, src)
            where = f"{path}:{origin.line('id')}"
            if rule.id in seen:
                problems.append(Problem(str(path), origin.line("id"), f"rules[{i}].id",
                                        f"rule id {rule.id!r} is already used at {seen[rule.id]}: "
                                        "give each rule its own id"))
                continue
            seen[rule.id] = where
            try:
                compile_rule(rule)
            except CompileError as exc:
                key = f"rules[{i}]." + ".".join(str(p) for p in exc.path)
                problems.append(Problem(str(path), origin.line(*exc.path), key, str(exc)))
                continue
            rules.append((rule, origin))
    if problems:
        raise SourceError(problems)
    return rules


def load_rules(folder: str | Path) -> list[Rule]:
    """All rules under ``folder``; raises SourceError listing every problem found."""
    return [r for r, _ in load_rules_located(folder)]


def check_references(rules: list[tuple[Rule, Origin]], registry: Any) -> list[Problem]:
    """Problems where an enabled rule refers to something the registry does not have."""
    problems: list[Problem] = []
    stations = list(registry.stations.values())
    known = {
        "kind": {s.kind for s in stations},
        "town": {s.town for s in stations if s.town},
        "tags": {t for s in stations for t in s.tags},
        "enterprise": {getattr(s, "enterprise", "") for s in stations} - {""},
    }
    for rule, origin in rules:
        if not rule.enabled:
            continue
        sel = rule.select
        for name in ("kind", "town", "tags", "enterprise"):
            for value in getattr(sel, name) or []:
                if value not in known[name]:
                    close = difflib.get_close_matches(value, sorted(known[name]), n=1)
                    hint = f"did you mean {close[0]!r}?" if close else (
                        f"the registry has: {', '.join(sorted(known[name])) or 'none'}")
                    problems.append(Problem(origin.file, origin.line("select", name),
                                            f"rules[{origin.index}].select.{name}",
                                            f"rule {rule.id}: unknown station {name} {value!r}: {hint}"))
        for sid in rule.station_ids() or []:
            if registry.get(sid) is None:
                close = difflib.get_close_matches(sid, sorted(registry.stations), n=1)
                hint = f"did you mean {close[0]!r}?" if close else "add it to the registry"
                problems.append(Problem(origin.file, origin.line("select") or origin.line("stations"),
                                        f"rules[{origin.index}].stations",
                                        f"rule {rule.id}: station {sid!r} is not in the registry: {hint}"))
        compiled = compile_rule(rule)
        if not compiled.station_fields:
            continue
        eligible = [s for s in stations if compiled.eligible(s.id, s)]
        for field in sorted(compiled.station_fields - compiled.optional_fields):
            lacking = [s.id for s in eligible
                       if field not in s.thresholds and not isinstance(getattr(s, field, None), (int, float))]
            if lacking:
                shown = ", ".join(lacking[:5]) + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else "")
                problems.append(Problem(origin.file, origin.line("grades"), f"rules[{origin.index}]",
                                        f"rule {rule.id}: station.{field} is missing at {shown}: "
                                        f"add thresholds.{field} to those stations, or narrow the "
                                        "rule's select (the rule never fires where it is missing)"))
    return problems
