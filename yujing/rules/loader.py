"""Load every ``*.yaml`` rule file in a folder, collecting all located errors.

``check_references`` then checks the rules against the station registry: a
selector value no station has ("twon"), a station id that is not registered,
a ``station.<field>`` that an eligible station lacks, or a field name (in
``station.<field>``, ``default(station.<field>, …)`` or ``select: has:``) that
neither the glossary nor any station of the registry knows (a misspelling)
would otherwise make a rule silently never fire, or fall back to its default
for ever. ``field_warnings`` says what is suspect but may be meant: without a
registry, a field the glossary does not know (a site's own threshold, or a
typo); with one, a known field no station carries yet (the rule is dormant).

A field is *known* when the glossary names it (``glossary.yaml`` ``fields:``,
the fields the shipped packs read and the duty officer sees in words) or it is
a numeric attribute of every :class:`~yujing.stations.Station` (``lat``,
``lon``); with a registry, every threshold key a station carries is known too.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yujing.rules.compiled import CompiledRule, CompileError, compile_rule
from yujing.rules.glossary import glossary
from yujing.rules.schema import Rule, RuleFile
from yujing.stations import Station
from yujing.yamlsrc import Located, Problem, SourceError, load_yaml, validate

# count_stations(…, by) groups by a registry attribute (lookup.group_code reads it)
GROUP_FIELDS = tuple(n for n, f in Station.model_fields.items() if f.annotation is str)


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
                compiled = compile_rule(rule)
            except CompileError as exc:
                key = f"rules[{i}]." + ".".join(str(p) for p in exc.path)
                problems.append(Problem(str(path), origin.line(*exc.path), key, str(exc)))
                continue
            bad_groups = _group_problems(compiled, origin)
            if bad_groups:
                problems.extend(bad_groups)
                continue
            rules.append((rule, origin))
    if problems:
        raise SourceError(problems)
    return rules


def load_rules(folder: str | Path) -> list[Rule]:
    """All rules under ``folder``; raises SourceError listing every problem found."""
    return [r for r, _ in load_rules_located(folder)]


def _group_problems(compiled: CompiledRule, origin: Origin) -> list[Problem]:
    """``count_stations(…, by)`` names a registry attribute; another name groups nothing."""
    out = []
    for by in sorted(compiled.group_fields - set(GROUP_FIELDS)):
        close = difflib.get_close_matches(by, GROUP_FIELDS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(GROUP_FIELDS)}"
        out.append(Problem(origin.file, origin.line("grades"), f"rules[{origin.index}].grades",
                           f"rule {compiled.id}: count_stations() groups by {by!r}, which is not "
                           f"a station attribute: {hint}"))
    return out


@dataclass(frozen=True)
class FieldUse:
    """One place a rule names a station field: where (line, key) and how (``has`` or
    ``station.<name>``, as the message should quote it)."""

    name: str
    line: int
    key: str
    written: str
    selects: bool = False   # in select.has (only threshold keys count there)


def field_uses(rule: Rule, origin: Origin) -> list[FieldUse]:
    """Every station field a rule names, with the line and key it is written at."""
    uses = [FieldUse(name, origin.line("select", "has", k), f"rules[{origin.index}].select.has",
                     f"has: [{name}]", selects=True)
            for k, name in enumerate(rule.select.has or [])]
    compiled = compile_rule(rule)
    specs = list(rule.grades.items()) + ([("clear", rule.clear)] if rule.clear is not None else [])
    checks = [c for _, c in compiled.grades] + ([compiled.clear] if compiled.clear else [])
    for (name, spec), check in zip(specs, checks, strict=True):
        path = ("clear",) if name == "clear" else ("grades", name)
        path += ("when",) if hasattr(spec, "when") else ()
        key = f"rules[{origin.index}]." + ".".join(path)
        uses += [FieldUse(f, origin.line(*path), key, f"station.{f}")
                 for f in sorted(check.expr.station_fields)]
    return uses


def model_uses(rule: Rule, origin: Origin) -> list[tuple[str, int, str]]:
    """Every anomaly model a rule names: (name, line, key) where it is written."""
    compiled = compile_rule(rule)
    specs = list(rule.grades.items()) + ([("clear", rule.clear)] if rule.clear is not None else [])
    checks = [c for _, c in compiled.grades] + ([compiled.clear] if compiled.clear else [])
    out = []
    for (name, spec), check in zip(specs, checks, strict=True):
        path = ("clear",) if name == "clear" else ("grades", name)
        path += ("when",) if hasattr(spec, "when") else ()
        out += [(m, origin.line(*path), f"rules[{origin.index}]." + ".".join(path))
                for m in sorted(check.expr.models)]
    return out


def check_models(rules: list[tuple[Rule, Origin]], load: Any) -> list[Problem]:
    """Problems where an enabled rule names an anomaly model that does not load: ``load(name)``
    gives the model or raises with the reason (a missing version, a bad signature). Such a
    rule never fires in the worker, which only logs it."""
    problems, said = [], set()
    for rule, origin in rules:
        if not rule.enabled:
            continue
        for name, line, key in model_uses(rule, origin):
            try:
                load(name)
            except Exception as exc:  # whatever the registry says is the reason to print
                if (origin.file, line, name) not in said:
                    said.add((origin.file, line, name))
                    problems.append(Problem(origin.file, line, key,
                                            f"rule {rule.id}: anomaly model {name!r} does not "
                                            f"load, so the rule never fires: {exc}"))
    return problems


def known_fields() -> set[str]:
    """Fields any registry may be expected to carry: the glossary's and Station's numbers."""
    numeric = {n for n, f in Station.model_fields.items() if f.annotation in (float, float | None)}
    return set(glossary().fields) | numeric


def registry_fields(registry: Any) -> set[str]:
    """Fields some station of the registry carries (threshold keys, numeric attributes set)."""
    out: set[str] = set()
    for s in registry.stations.values():
        out |= set(s.thresholds)
        out |= {n for n in ("lat", "lon") if getattr(s, n, None) is not None}
    return out


def _hint(name: str, candidates: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.75)
    return f"did you mean {close[0]!r}?" if close else ""


def _misspelt(rules: list[tuple[Rule, Origin]], registry: Any) -> list[Problem]:
    """Field names neither the glossary nor any station of ``registry`` knows."""
    known = known_fields() | registry_fields(registry)
    problems = []
    for rule, origin in rules:
        for use in field_uses(rule, origin):
            if use.name in known:
                continue
            hint = _hint(use.name, known) or ("put it in the thresholds of the stations the rule "
                                              "is for, or fix the name")
            problems.append(Problem(origin.file, use.line, use.key,
                                    f"rule {rule.id}: {use.written}: no station of the registry "
                                    f"carries {use.name!r} and the glossary does not know it: "
                                    f"{hint}"))
    return problems


def field_warnings(rules: list[tuple[Rule, Origin]], registry: Any | None = None) -> list[Problem]:
    """Field names that may be meant but look wrong: not errors, told at load.

    Without a registry: a name the glossary does not know (a typo, or a site's own
    threshold key: only the registry can tell). With one: a name no station carries
    (the rule is dormant here: its ``has:`` selects nothing, its ``default()`` always
    falls back) unless ``check_references`` already refuses it.
    """
    known = known_fields()
    carried = registry_fields(registry) if registry is not None else set()
    out = []
    for rule, origin in rules:
        if not rule.enabled:
            continue
        said = _said_by_references(rule, registry)
        for use in field_uses(rule, origin):
            if not use.selects and use.name in said:
                continue
            if registry is None and use.name not in known:
                hint = _hint(use.name, known)
                out.append(Problem(origin.file, use.line, use.key,
                                   f"rule {rule.id}: {use.written}: the glossary does not know "
                                   f"{use.name!r}: {hint + ' ' if hint else ''}(a site's own "
                                   "field: check the rules against the registry with --registry)"))
            elif registry is not None and use.name in known and use.name not in carried:
                hint = _hint(use.name, carried)
                effect = ("the rule watches no station here" if use.selects else
                          "its default() always stands in, or the condition never holds")
                out.append(Problem(origin.file, use.line, use.key,
                                   f"rule {rule.id}: {use.written}: no station of the registry "
                                   f"carries {use.name!r}, so {effect}: add "
                                   f"thresholds.{use.name} to the stations it is for"
                                   + (f" ({hint})" if hint else "")))
    return out


def _said_by_references(rule: Rule, registry: Any | None) -> set[str]:
    """Required fields ``check_references`` reports as missing at the rule's stations (the
    rule watches some): not told twice."""
    if registry is None:
        return set()
    compiled = compile_rule(rule)
    required = compiled.station_fields - compiled.optional_fields
    if required and any(compiled.eligible(s.id, s) for s in registry.stations.values()):
        return required
    return set()


def check_references(rules: list[tuple[Rule, Origin]], registry: Any) -> list[Problem]:
    """Problems where an enabled rule refers to something the registry does not have."""
    problems: list[Problem] = _misspelt(rules, registry)
    misspelt = {(p.file, p.key.split(".")[0]) for p in problems}
    stations = list(registry.stations.values())
    known = {
        "kind": {s.kind for s in stations},
        "town": {s.town for s in stations if s.town},
        "tags": {t for s in stations for t in s.tags},
        "enterprise": {getattr(s, "enterprise", "") for s in stations} - {""},
        "group": {getattr(s, "group", "") for s in stations} - {""},
    }
    for rule, origin in rules:
        if not rule.enabled:
            continue
        sel = rule.select
        for name in ("kind", "town", "tags", "enterprise", "group"):
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
        if not compiled.station_fields or (origin.file, f"rules[{origin.index}]") in misspelt:
            continue  # a misspelt field is said once, above
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
