"""Load every ``*.yaml`` rule file in a folder, collecting all located errors."""

from __future__ import annotations

from pathlib import Path

from ..yamlsrc import Problem, SourceError, load_yaml, validate
from .compiled import CompileError, compile_rule
from .schema import Rule, RuleFile


def rule_files(folder: Path) -> list[Path]:
    """Rule files in a folder; ``*.test.yaml`` files are rule tests, not rules."""
    return sorted(p for p in folder.glob("*.yaml") if not p.name.endswith(".test.yaml"))


def load_rules(folder: str | Path) -> list[Rule]:
    """All rules under ``folder``; raises SourceError listing every problem found."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError([Problem(str(folder), 0, "", "rules folder not found: set "
                                   "worker.rules_dir in config.yaml to a folder of *.yaml rule files")])
    problems: list[Problem] = []
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for path in rule_files(folder):
        try:
            src = load_yaml(path)
            parsed: RuleFile = validate(RuleFile, src)
        except SourceError as exc:
            problems.extend(exc.problems)
            continue
        for i, rule in enumerate(parsed.rules):
            where = f"{path}:{src.line_of(('rules', i, 'id'))}"
            if rule.id in seen:
                problems.append(Problem(str(path), src.line_of(("rules", i, "id")), f"rules[{i}].id",
                                        f"rule id {rule.id!r} is already used at {seen[rule.id]}: "
                                        "give each rule its own id"))
                continue
            seen[rule.id] = where
            try:
                compile_rule(rule)
            except CompileError as exc:
                loc = ("rules", i) + exc.path
                key = "rules[%d]." % i + ".".join(str(p) for p in exc.path)
                problems.append(Problem(str(path), src.line_of(loc), key, str(exc)))
                continue
            rules.append(rule)
    if problems:
        raise SourceError(problems)
    return rules
