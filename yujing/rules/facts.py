"""The comparisons behind a finding, as data: which branch of a condition held and what
stood on each side of its comparisons at that point (:class:`yujing.domain.Term`).

A reason in words (``wording.py``) is made from these rather than from the
expression text, so it can name the metric, the window, the unit and the
threshold in the duty officer's language. The walk follows the truth of the
tree at one point: an ``and`` gives the terms of both sides, an ``or`` the
terms of the branch that held, a ``not`` turns its comparison round
(``not (x >= 1)`` reads as ``x < 1``). Comparisons of station fields alone
(``not (station.blue_margin_m >= 0)``) are configuration, not measurements,
and are left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from yujing.domain import Term
from yujing.rules import tree as ex

NEGATED = {">=": "<", ">": "<=", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}
FLIPPED = {">=": "<=", ">": "<", "<": ">", "<=": ">=", "==": "==", "!=": "!="}

Truth = Callable[[object], bool]      # node -> did it hold at the point
Value = Callable[[object], float]     # node -> its number at the point


def terms(tree: object, truth: Truth, value: Value, negate: bool = False) -> list[Term]:
    """The terms of the branch of ``tree`` that held at the point (``negate``: of the
    branch that made ``not tree`` hold)."""
    if isinstance(tree, ex.Unary) and tree.op == "not":
        return terms(tree.arg, truth, value, not negate)
    if isinstance(tree, ex.Binary) and tree.op in ("and", "or"):
        both = (tree.op == "and") != negate  # not (a or b) = not a and not b
        if both:
            return terms(tree.left, truth, value, negate) + terms(tree.right, truth, value, negate)
        # one branch decided it: the first that held (or, under not, the first that failed)
        for side in (tree.left, tree.right):
            if truth(side) != negate:
                return terms(side, truth, value, negate)
        return terms(tree.left, truth, value, negate)
    if isinstance(tree, ex.Binary) and tree.op in ex.COMPARATORS:
        term = comparison(tree, value, negate)
        return [term] if term is not None else []
    return []


def comparison(node: ex.Binary, value: Value, negate: bool = False) -> Term | None:
    """One comparison as a Term, the measured side first; None for station fields alone."""
    left, right, op = node.left, node.right, node.op
    if not _measures(left) and _measures(right):
        left, right, op = right, left, FLIPPED[op]
    if not _measures(left):
        return None
    if negate:
        op = NEGATED[op]
    if _counts(left) and _counts(right) and len(_counts(left)) == len(_counts(right)) == 1:
        # count(x, 2h) > count(x, 1h45m): a reading arrived in the last 15 minutes
        (a,), (b,) = _counts(left), _counts(right)
        return Term(fn="fresh", op=op, metric=a.metric, window_ms=abs(a.window_ms - b.window_ms),
                    value=_num(value(left)), threshold=_num(value(right)), metrics=[a.metric])
    if isinstance(left, ex.Trend) and left.fn == "eta":
        return _eta_term(left, op, value(left), value(right), value)
    term = _subject(left, value)
    field, field_value, offset, scale = _threshold_shape(right, value)
    return Term(fn=term["fn"], op=op, metric=term.get("metric", ""),
                window_ms=term.get("window_ms", 0), value=_num(value(left)),
                raw=term.get("raw"), threshold=_num(value(right)), field=field,
                field_value=field_value, offset=offset, scale=scale, by=term.get("by", ""),
                metrics=sorted(_metrics(left)), horizon_ms=term.get("horizon_ms", 0))


def _eta_term(node: ex.Trend, op: str, hours: float, limit: float, value: Value) -> Term:
    """eta(m, level, W) <= H: the value is the hours to go (None: never, on this trend),
    the threshold H in hours, ``raw`` the level it would reach and ``field`` where that
    level comes from; ``horizon_ms`` is H, the time the projection looked ahead. A falling
    eta is ``falling:eta`` (backtest's lead time counts rising crossings only)."""
    field, field_value, offset, scale = _threshold_shape(node.threshold, value)
    hours_f = float(hours)
    return Term(fn="falling:eta" if node.falling else "eta", op=op, metric=node.metric,
                window_ms=node.window_ms,
                value=_num(hours_f) if math.isfinite(hours_f) else None,
                raw=_num(value(node.threshold)), threshold=_num(limit), field=field,
                field_value=field_value, offset=offset, scale=scale, metrics=[node.metric],
                horizon_ms=int(round(float(limit) * 3_600_000)) if math.isfinite(limit) else 0)


def _subject(node: object, value: Value) -> dict:
    """What the measured side is: its function, metric, window and the raw aggregate."""
    if isinstance(node, ex.Agg):
        window = node.window_ms if node.window_ms < ex.UNBOUNDED_MS else 0
        return {"fn": node.fn, "metric": node.metric, "window_ms": window}
    if isinstance(node, ex.SeriesFn):
        return {"fn": node.fn, "metric": node.metric}
    if isinstance(node, ex.Trend):
        return {"fn": node.fn, "metric": node.metric, "window_ms": node.window_ms,
                "horizon_ms": node.horizon_ms}
    if isinstance(node, ex.Ahead):
        return {"fn": node.fn, "metric": node.metric, "horizon_ms": node.window_ms}
    past_ahead = _past_ahead(node)
    if past_ahead is not None:
        past, ahead = past_ahead
        return {"fn": "sum_past_ahead", "metric": past.metric, "window_ms": past.window_ms,
                "horizon_ms": ahead.window_ms, "raw": _num(value(ahead))}
    if isinstance(node, ex.Anomaly):
        return {"fn": "anomaly"}
    if isinstance(node, ex.GroupCount):
        return {"fn": "count_stations", "window_ms": node.window_ms, "by": node.by}
    if isinstance(node, ex.Call) and node.fn == "beaufort" and isinstance(node.args[0], ex.Agg):
        inner = _subject(node.args[0], value)
        return {**inner, "fn": f"beaufort:{inner['fn']}", "raw": _num(value(node.args[0]))}
    if isinstance(node, ex.Call) and node.fn == "fire_index":
        return {"fn": "fire_index"}
    counts = _counts(node)
    if counts and len(counts) > 1:
        return {"fn": "count", "window_ms": counts[0].window_ms}
    deviation = _deviation(node)
    if deviation is not None:
        inner = _subject(deviation, value)
        return {**inner, "fn": f"deviation:{inner['fn']}", "raw": _num(value(deviation))}
    return {"fn": "expr"}


def _past_ahead(node: object) -> tuple[ex.Agg, ex.Ahead] | None:
    """sum(m, W1) + sum_ahead(m_fcst, W2) (either order): observed past and forecast ahead
    added up, the forecast-driven rainstorm signal's measure."""
    if isinstance(node, ex.Binary) and node.op == "+":
        for a, b in ((node.left, node.right), (node.right, node.left)):
            a, b = _undefault(a), _undefault(b)
            if isinstance(a, ex.Agg) and a.fn == "sum" and isinstance(b, ex.Ahead) \
                    and b.fn == "sum_ahead":
                return a, b
    return None


def _undefault(node: object) -> object:
    """default(x, 0) reads as x (a gauge with no reading in the window counts as dry)."""
    if isinstance(node, ex.Call) and node.fn == "default":
        return node.args[0]
    return node


def _deviation(node: object) -> ex.Agg | None:
    """abs(agg - station.field): how far a measurement is from its station's baseline."""
    if isinstance(node, ex.Call) and node.fn == "abs" and isinstance(node.args[0], ex.Binary):
        inner = node.args[0]
        if inner.op == "-" and isinstance(inner.left, ex.Agg) and \
                isinstance(inner.right, ex.StationField):
            return inner.left
    return None


def _threshold_shape(node: object, value: Value) -> tuple[str, float | None, float, float]:
    """(station field, its value, offset, scale) of a threshold side; a plain number has
    no field. Shapes: field, field ± number, field - field, number * field."""
    if isinstance(node, ex.StationField):
        return node.name, _num(value(node)), 0.0, 1.0
    if isinstance(node, ex.Binary) and node.op in ("+", "-") and \
            isinstance(node.left, ex.StationField):
        base = node.left
        if isinstance(node.right, (ex.Num, ex.StationField, ex.Binary)):
            shift = _num(value(node.right))
            if shift is not None:
                return (base.name, _num(value(base)), shift if node.op == "+" else -shift, 1.0)
    if isinstance(node, ex.Binary) and node.op in ("+", "-") and isinstance(node.left, ex.Binary):
        name, fv, offset, scale = _threshold_shape(node.left, value)
        shift = _num(value(node.right))
        if name and shift is not None and scale == 1.0:
            return name, fv, offset + (shift if node.op == "+" else -shift), 1.0
    if isinstance(node, ex.Binary) and node.op == "*":
        num, fld = (node.left, node.right) if isinstance(node.left, ex.Num) else (node.right, node.left)
        if isinstance(num, ex.Num) and isinstance(fld, ex.StationField):
            return fld.name, _num(value(fld)), 0.0, num.value
    return "", None, 0.0, 1.0


def _counts(node: object) -> list[ex.Agg]:
    """The count() aggregates of a side made only of counts added up, else []."""
    if isinstance(node, ex.Agg):
        return [node] if node.fn == "count" else []
    if isinstance(node, ex.Binary) and node.op == "+":
        left, right = _counts(node.left), _counts(node.right)
        return left + right if left and right else []
    return []


def _measures(node: object) -> bool:
    """Does this side read a measurement (a metric, a model, a group count)?"""
    if isinstance(node, (ex.Agg, ex.SeriesFn, ex.Anomaly, ex.GroupCount, ex.Trend, ex.Ahead)):
        return True
    return any(_measures(child) for child in ex.children(node))


def _metrics(node: object) -> set[str]:
    out = {node.metric} if isinstance(node, (ex.Agg, ex.SeriesFn, ex.Trend, ex.Ahead)) else set()
    for child in ex.children(node):
        out |= _metrics(child)
    return out


def _num(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x
