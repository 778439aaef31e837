"""A validated Rule turned into parsed expressions ready for the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from yujing.domain import Grade
from yujing.durations import Duration
from yujing.rules import expr as ex
from yujing.rules.schema import Condition, Rule, Spec, Timed
from yujing.rules.tree import children


class CompileError(ValueError):
    """An expression error with the path of the key inside the rule."""

    def __init__(self, path: tuple, message: str) -> None:
        self.path = path
        super().__init__(message)


@dataclass
class Check:
    expr: ex.Expr
    hold_ms: int

    @property
    def text(self) -> str:
        return self.expr.text


@dataclass(eq=False)
class CompiledRule:
    rule: Rule
    grades: list[tuple[Grade, Check]]
    clear: Check | None
    metrics: set[str]
    station_fields: set[str]
    horizon_ms: int
    group_fields: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)
    optional_fields: set[str] = field(default_factory=set)
    tick_ms: int = 0
    forecasts: set[str] = field(default_factory=set)  # forecast metrics of sum_ahead()/max_ahead()

    @property
    def id(self) -> str:
        return self.rule.id

    def eligible(self, station_id: str, entry: Any | None) -> bool:
        """Does the selector pick this station? ``entry`` is its registry record or None."""
        ids = self.rule.station_ids()
        if ids is not None and station_id not in ids:
            return False
        sel = self.rule.select
        if sel.kind is None and sel.town is None and sel.tags is None and sel.enterprise is None \
                and sel.group is None and sel.has is None:
            return True
        if entry is None:
            return False  # a registry selector cannot match an unregistered station
        if sel.kind is not None and getattr(entry, "kind", None) not in sel.kind:
            return False
        if sel.town is not None and getattr(entry, "town", None) not in sel.town:
            return False
        if sel.enterprise is not None and getattr(entry, "enterprise", None) not in sel.enterprise:
            return False
        if sel.group is not None and getattr(entry, "group", None) not in sel.group:
            return False
        if sel.tags is not None and not set(getattr(entry, "tags", []) or []) & set(sel.tags):
            return False
        if sel.has is not None and not set(sel.has) <= set(getattr(entry, "thresholds", {}) or {}):
            return False
        return True


def _spec_text(rule: Rule, spec: Spec) -> tuple[str, Duration | None]:
    if isinstance(spec, Condition):
        return spec.to_expr(rule.metric or ""), None
    if isinstance(spec, Timed):
        return spec.when, spec.for_
    return spec, None


def _check(rule: Rule, spec: Spec, path: tuple, default_for: Duration | None) -> Check:
    text, hold = _spec_text(rule, spec)
    try:
        e = ex.parse_condition(text)
    except ex.ExprError as exc:
        where = path + (("when",) if isinstance(spec, Timed) else ())
        raise CompileError(where, f"{exc} in {text!r}") from None
    hold = hold if hold is not None else default_for
    return Check(e, hold.ms if hold is not None else 0)


def _group_fields(node: object, out: set[str]) -> None:
    if isinstance(node, ex.GroupCount):
        out.add(node.by)
    for child in children(node):
        _group_fields(child, out)


def compile_rule(rule: Rule) -> CompiledRule:
    grades = [(Grade.parse(name), _check(rule, spec, ("grades", name), rule.for_))
              for name, spec in rule.grades.items()]
    clear = _check(rule, rule.clear, ("clear",), None) if rule.clear is not None else None
    checks = [c for _, c in grades] + ([clear] if clear else [])
    metrics: set[str] = set()
    forecasts: set[str] = set()
    fields: set[str] = set()
    groups: set[str] = set()
    models: set[str] = set()
    optional: set[str] = set()
    horizon = 0
    for c in checks:
        metrics |= c.expr.metrics
        forecasts |= c.expr.forecasts
        models |= c.expr.models
        optional |= c.expr.optional_fields
        fields |= c.expr.station_fields
        horizon = max(horizon, c.expr.horizon_ms + c.hold_ms)
        _group_fields(c.expr.tree, groups)
    if not metrics and not models and not forecasts:
        raise CompileError(("grades",), "the rule reads no metric: use a window function such "
                                        "as sum(rain_mm, 3h) in a condition")
    required = set()
    for c in checks:  # a field read outside default() anywhere is required
        required |= c.expr.station_fields - c.expr.optional_fields
    tick = rule.evaluate_every.ms if rule.evaluate_every is not None else 0
    return CompiledRule(rule, grades, clear, metrics, fields, horizon, groups, models,
                        fields - required, tick, forecasts)
