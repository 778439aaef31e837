"""The rule expression language: a small grammar of our own, never eval().

    sum(rain_mm, 3h) >= 50
    last(water_level_m) >= station.warning_level_m and rate(water_level_m, 1h) > 0.3
    max(dust_inlet_temp_c, 1m) > 70 and count(spark, 10m) >= 1
    fire_index(max(temperature_c, 24h), min(humidity_pct, 24h),
               days_since(rain_mm, 0.1), max(wind_speed_ms, 24h)) >= 73
    count_stations(max(smoke, 10m) >= 0.5, 10m, town) >= 2

Parsing turns the text into a tree of plain dataclasses (``tree.py``, whose
names are re-exported here); ``interpret.py`` maps that tree onto numpy
arrays. Errors carry the column of the offending token so the loader can
point at it.

One module over the 400-line guide on purpose: it is one recursive-descent grammar (the
tokenizer, the precedence levels and each function's argument checks call each other),
and a grammar split over files is harder to read whole than to read long.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace

from yujing.durations import parse_duration_ms
from yujing.rules.tree import (  # noqa: F401 - re-exported: ex.Node, ex.walk … are the parser's public names
    AHEAD_FUNCS,
    COMPARATORS,
    GROUP_FUNCS,
    MODEL_FUNCS,
    NUMERIC_FUNCS,
    SERIES_FUNCS,
    TIME_FUNCS,
    TREND_FUNCS,
    UNBOUNDED_MS,
    WINDOW_AGGS,
    Agg,
    Ahead,
    Anomaly,
    Binary,
    Call,
    Dur,
    Expr,
    GroupCount,
    Num,
    SeriesFn,
    StationField,
    TimeOf,
    Trend,
    Unary,
    children,
    first_window_ms,
    not_a_level,
    primary,
    unparse,
)


class ExprError(ValueError):
    def __init__(self, message: str, col: int) -> None:
        self.col = col
        super().__init__(f"col {col + 1}: {message}")


# ---- tokens -----------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<duration>\d+(?:\.\d+)?(?:ms|s|m|h|d|w)(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))*(?![A-Za-z0-9_]))
  | (?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>>=|<=|==|!=|[-+*/(),.<>=])
""", re.VERBOSE)
_KEYWORDS = {"and", "or", "not"}


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str
    col: int


def tokenize(text: str) -> list[Tok]:
    pos, out = 0, []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ExprError(f"unexpected character {text[pos]!r}", pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(Tok(kind, m.group(), pos))
        pos = m.end()
    out.append(Tok("end", "", len(text)))
    return out


# ---- parser -----------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.info = Expr(text, None)
        self._in_default = 0
        self._required: set[str] = set()

    def peek(self) -> Tok:
        return self.toks[self.i]

    def take(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, text: str) -> Tok:
        t = self.take()
        if t.text != text:
            found = "the end" if t.kind == "end" else repr(t.text)
            raise ExprError(f"expected {text!r} but found {found}", t.col)
        return t

    def parse(self) -> Expr:
        tree = self.or_expr()
        t = self.peek()
        if t.kind != "end":
            raise ExprError(f"unexpected {t.text!r} after a complete expression", t.col)
        _check_durations(tree)
        self.info.tree = tree
        self.info.is_condition = _is_bool(tree)
        self.info.optional_fields = self.info.station_fields - self._required
        return self.info

    def or_expr(self) -> object:
        left = self.and_expr()
        while self.peek().text == "or":
            self.take()
            left = Binary("or", left, self.and_expr())
        return left

    def and_expr(self) -> object:
        left = self.not_expr()
        while self.peek().text == "and":
            self.take()
            left = Binary("and", left, self.not_expr())
        return left

    def not_expr(self) -> object:
        if self.peek().text == "not":
            self.take()
            return Unary("not", self.not_expr())
        return self.comparison()

    def comparison(self) -> object:
        left = self.additive()
        t = self.peek()
        if t.text in COMPARATORS:
            self.take()
            right = self.additive()
            if self.peek().text in COMPARATORS:
                raise ExprError("chained comparisons are not allowed: join them with 'and'",
                                self.peek().col)
            return Binary(t.text, _limited(left, right), _limited(right, left))
        return left

    def additive(self) -> object:
        left = self.term()
        while self.peek().text in ("+", "-"):
            op = self.take().text
            left = Binary(op, left, self.term())
        return left

    def term(self) -> object:
        left = self.unary()
        while self.peek().text in ("*", "/"):
            op = self.take().text
            left = Binary(op, left, self.unary())
        return left

    def unary(self) -> object:
        if self.peek().text == "-":
            self.take()
            return Unary("-", self.unary())
        return self.atom()

    def atom(self) -> object:
        t = self.take()
        if t.kind == "number":
            return Num(float(t.text))
        if t.text == "(":
            inner = self.or_expr()
            self.expect(")")
            return inner
        if t.kind == "duration":  # only beside eta(): _check_durations says so otherwise
            return Dur(parse_duration_ms(t.text), t.col)
        if t.kind == "name" and t.text not in _KEYWORDS:
            if t.text == "station":
                self.expect(".")
                f = self.take()
                if f.kind != "name":
                    raise ExprError("write station.<field>, e.g. station.warning_level_m", f.col)
                self.info.station_fields.add(f.text)
                if not self._in_default:
                    self._required.add(f.text)
                return StationField(f.text)
            if self.peek().text == "(":
                return self.call(t)
            raise ExprError(f"bare name {t.text!r}: metrics go inside a function, e.g. "
                            f"last({t.text}) or sum({t.text}, 1h)", t.col)
        found = "the end of the expression" if t.kind == "end" else repr(t.text)
        raise ExprError(f"expected a number, a function or '(' but found {found}", t.col)

    def _metric(self) -> str:
        t = self.take()
        if t.kind != "name" or t.text in _KEYWORDS or t.text == "station":
            raise ExprError("expected a metric name such as rain_mm", t.col)
        self.info.metrics.add(t.text)
        return t.text

    def _duration(self) -> int:
        t = self.take()
        if t.kind != "duration":
            raise ExprError("expected a window such as 10m, 3h or 1d", t.col)
        ms = parse_duration_ms(t.text)
        if ms <= 0:
            raise ExprError("a window must be longer than zero", t.col)
        return ms

    def _number(self) -> float:
        neg = False
        if self.peek().text == "-":
            self.take()
            neg = True
        t = self.take()
        if t.kind != "number":
            raise ExprError("expected a number", t.col)
        return -float(t.text) if neg else float(t.text)

    def _horizon(self, ms: int) -> None:
        self.info.horizon_ms = max(self.info.horizon_ms, ms if ms < UNBOUNDED_MS else 0)

    def call(self, name: Tok) -> object:
        fn = name.text
        self.expect("(")
        if fn in WINDOW_AGGS:
            return self._agg(fn)
        if fn == "jump":
            metric = self._metric()
            self.expect(")")
            return SeriesFn("jump", metric)
        if fn == "days_since":
            return self._days_since()
        if fn == "anomaly":
            return self._anomaly()
        if fn == "count_stations":
            return self._count_stations(name)
        if fn in TREND_FUNCS:
            return self._trend(fn)
        if fn in AHEAD_FUNCS:
            return self._ahead(fn)
        if fn in TIME_FUNCS:
            self.expect(")")
            return TimeOf(fn)
        if fn in NUMERIC_FUNCS:
            return self._numeric(fn)
        known = sorted([*WINDOW_AGGS, *SERIES_FUNCS, *NUMERIC_FUNCS, *GROUP_FUNCS, *MODEL_FUNCS,
                        *TIME_FUNCS, *TREND_FUNCS, *AHEAD_FUNCS])
        close = difflib.get_close_matches(fn, known, n=1)
        hint = f"did you mean {close[0]}()?" if close else f"known: {', '.join(known)}"
        raise ExprError(f"unknown function {fn!r}: {hint}", name.col)

    def _agg(self, fn: str) -> Agg:
        metric = self._metric()
        if self.peek().text == ",":
            self.take()
            window = self._duration()
        elif WINDOW_AGGS[fn]:
            raise ExprError(f"{fn}() needs a window: {fn}({metric}, 1h)", self.peek().col)
        else:
            window = UNBOUNDED_MS
        self.expect(")")
        self._horizon(window)
        agg = Agg(fn, metric, window)
        self.info.aggs.add(agg)
        return agg

    def _trend(self, fn: str) -> Trend:
        """eta(metric, threshold, window[, falling]) or project(metric, window, horizon)."""
        metric = self._metric()
        self.expect(",")
        if fn == "eta":
            at = self.peek()
            threshold = self.additive()
            bad = not_a_level(threshold)
            if bad:
                raise ExprError(f"the threshold of eta() is a number or a station field, not "
                                f"{bad}: eta({metric}, station.warning_level_m, 1h)", at.col)
            self.expect(",")
            window = self._duration()
            way = self.take() if self.peek().text == "," else None  # a direction may follow
            way = way and self.take()
            if way and way.text not in ("falling", "rising"):
                raise ExprError(f"eta() looks rising or falling, not {way.text!r}: eta({metric}, "
                                "station.level_min_m, 1h, falling)", way.col)
            self.expect(")")
            self._horizon(window)
            return Trend("eta", metric, window, threshold, falling=bool(way) and way.text == "falling")
        window = self._duration()
        self.expect(",")
        horizon = self._duration()
        self.expect(")")
        self._horizon(window)
        return Trend("project", metric, window, None, horizon)

    def _ahead(self, fn: str) -> Ahead:
        """sum_ahead(metric_fcst, W) / max_ahead(metric_fcst, W): forecasts, not readings
        (they look forward, so they add nothing to how far back the rule reads)."""
        t = self.take()
        if t.kind != "name" or not t.text.endswith("_fcst"):
            raise ExprError(f"{fn}() reads a forecast metric, whose name ends in _fcst: "
                            f"{fn}(rain_mm_fcst, 3h)", t.col)
        self.expect(",")
        window = self._duration()
        self.expect(")")
        self.info.forecasts.add(t.text)
        return Ahead(fn, t.text, window)

    def _days_since(self) -> SeriesFn:
        metric = self._metric()
        self.expect(",")
        thr = self._number()
        horizon = 10 * 86_400_000
        if self.peek().text == ",":
            self.take()
            horizon = self._duration()
        self.expect(")")
        self._horizon(horizon)
        return SeriesFn("days_since", metric, thr, horizon)

    def _anomaly(self) -> Anomaly:
        if self.peek().text == "model" and self.toks[self.i + 1].text == "=":
            self.take()
            self.take()
        start = self.peek()
        parts = []
        while self.peek().text != ")" and self.peek().kind != "end":
            t = self.take()
            if t.kind not in ("name", "number", "duration") and t.text not in ("-", "."):
                raise ExprError(f"unexpected {t.text!r} in a model name: write "
                                "anomaly(model=water-level-if)", t.col)
            parts.append(t.text)
        if not parts:
            raise ExprError("anomaly() needs a model name: anomaly(model=water-level-if)",
                            start.col)
        self.expect(")")
        name = "".join(parts)
        self.info.models.add(name)
        return Anomaly(name)

    def _count_stations(self, name: Tok) -> GroupCount:
        cond = self.or_expr()
        if not _is_bool(cond):
            raise ExprError("count_stations() takes a condition first, e.g. "
                            "count_stations(max(smoke, 10m) >= 0.5, 10m, town)", name.col)
        self.expect(",")
        window = self._duration()
        self.expect(",")
        by = self.take()
        if by.kind != "name":
            raise ExprError("the last argument of count_stations() is a registry field "
                            "such as town", by.col)
        self.expect(")")
        self._horizon(window)
        return GroupCount(cond, window, by.text)

    def _numeric(self, fn: str) -> Call:
        self._in_default += fn == "default"  # default(station.f, x): f may be missing
        args = [self.additive()]
        self._in_default -= fn == "default"
        while self.peek().text == ",":
            self.take()
            args.append(self.additive())
        close = self.expect(")")
        want = NUMERIC_FUNCS[fn]
        lo, hi = (want, want) if isinstance(want, int) else want
        if not lo <= len(args) <= hi:
            raise ExprError(f"{fn}() takes {lo if lo == hi else f'{lo} to {hi}'} "
                            f"argument(s), got {len(args)}", close.col)
        return Call(fn, tuple(args))


def _is_bool(node: object) -> bool:
    if isinstance(node, Binary):
        return node.op in COMPARATORS or node.op in ("and", "or")
    return isinstance(node, Unary) and node.op == "not"


def _limited(side: object, other: object) -> object:
    """An eta() compared with a duration knows it: only points whose trend could reach
    the threshold within that time need a fit (``trend.fit``)."""
    if isinstance(side, Trend) and side.fn == "eta" and isinstance(other, Dur):
        return replace(side, limit_ms=other.ms)
    return side


def _check_durations(node: object, beside_eta: bool = False) -> None:
    """A duration stands only as one side of a comparison whose other side is eta(), and
    eta() is only compared with a duration: its hours are not a number to reckon with."""
    if isinstance(node, Dur) and not beside_eta:
        raise ExprError(f"a duration ({unparse(node)}) only goes inside a window function, "
                        "e.g. sum(rain_mm, 3h), or compared with eta(), e.g. "
                        "eta(water_level_m, station.warning_level_m, 1h) <= 2h", node.col)
    if isinstance(node, Trend) and node.fn == "eta" and not beside_eta:
        raise ExprError(f"compare {unparse(node)} with a duration, e.g. {unparse(node)} <= 2h",
                        0)
    if isinstance(node, Binary) and node.op in COMPARATORS:
        pair = {type(node.left), type(node.right)}
        eta = any(isinstance(s, Trend) and s.fn == "eta" for s in (node.left, node.right))
        if eta and pair == {Trend, Dur}:
            for side in (node.left, node.right):
                if isinstance(side, Trend):
                    _check_durations(side.threshold)
            return
    for child in children(node):
        _check_durations(child)


def parse(text: str) -> Expr:
    """Parse a rule expression; raises ExprError with the column of the problem."""
    if not isinstance(text, str) or not text.strip():
        raise ExprError("empty expression", 0)
    return _Parser(text).parse()


def parse_condition(text: str) -> Expr:
    e = parse(text)
    if not e.is_condition:
        raise ExprError("this is a number, not a condition: compare it, e.g. "
                        f"{text.strip()} >= 50", 0)
    return e
