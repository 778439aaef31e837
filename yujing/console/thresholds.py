"""Threshold lines for the warning chart, read off a rule's grade conditions. Pure.

A grade condition that compares one aggregate of one metric with a number or
a station field — ``sum(rain_mm, 3h) >= 50``, the shorthand
``{agg: sum, window: 3h, op: ">=", value: 50}``, ``last(water_level_m) >=
station.warning_level_m`` — gives a line; the station field is resolved from
the registry. Where a condition is an ``or`` of comparisons, each comparison
that stands alone gives a line. Anything richer (arithmetic on the right-hand
side, ratios, anomaly scores) gives no line: the chart then shows the
condition's text only, rather than a line that would mislead.

``rolling`` computes the windowed aggregate a line is compared with (a 3-hour
rain sum, a 10-minute mean) so the chart can draw the curve that crossed it.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from yujing.durations import parse_duration_ms
from yujing.rules import windows

_GRADES = {"blue": 1, "yellow": 2, "orange": 3, "red": 4}
_CMP = re.compile(
    r"(?<![\w.])(sum|mean|max|min|last|count)\(\s*([a-z][a-z0-9_]*)\s*(?:,\s*([0-9]+[smhd]))?\s*\)"
    r"\s*(>=|>|<=|<)\s*(station\.[a-z][a-z0-9_]*|-?[0-9]+(?:\.[0-9]+)?)"
    r"(?=\s*(?:$|\bor\b|\band\b|\)))")


def _text(rule: Any, spec: Any) -> str:
    if isinstance(spec, str):
        return spec
    if hasattr(spec, "when"):
        return spec.when
    return spec.to_expr(rule.metric or "")


def lines_for(rule: Any, station: Any) -> list[dict]:
    """Threshold lines of ``rule`` (a rules.schema.Rule) at ``station`` (a registry Station)."""
    out: list[dict] = []
    thresholds = dict(getattr(station, "thresholds", {}) or {})
    for grade, spec in rule.grades.items():
        text = _text(rule, spec)
        for m in _CMP.finditer(text):
            agg, metric, window, op, rhs = m.groups()
            if rhs.startswith("station."):
                field = rhs[len("station."):]
                if field not in thresholds:
                    continue
                value, source = float(thresholds[field]), field
            else:
                value, source = float(rhs), ""
            out.append({"grade": _GRADES[grade], "agg": agg, "metric": metric,
                        "window": window or "", "op": op, "value": value, "source": source,
                        "text": m.group(0)})
    return out


def conditions(rule: Any) -> list[dict]:
    """Every grade's condition text (shown beside the chart)."""
    return [{"grade": _GRADES[g], "text": _text(rule, s)} for g, s in rule.grades.items()]


def metrics_of(rule: Any) -> list[str]:
    """The metrics a rule reads, in order of appearance."""
    seen: list[str] = [rule.metric] if rule.metric else []
    for _, spec in rule.grades.items():
        for m in re.finditer(r"\b(?:sum|mean|max|min|last|count|rate|delta|first)\(\s*"
                             r"([a-z][a-z0-9_]*)", _text(rule, spec)):
            if m.group(1) not in seen:
                seen.append(m.group(1))
    return seen


def rolling(ts: np.ndarray, val: np.ndarray, agg: str, window: str) -> np.ndarray:
    """The ``agg`` over the trailing ``window`` (event time) at each reading, computed as
    the engine computes it."""
    return windows.rolling(ts, val, agg, parse_duration_ms(window))
