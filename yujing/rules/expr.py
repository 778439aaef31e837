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

This module is the recursive-descent grammar: the precedence levels and the
arguments of each function. The tokens and the cursor over them are ``cursor.py``
(``ExprError`` is re-exported here); the arguments of eta(), project() and the
forecast functions, and where a duration may stand, are ``trendargs.py``.
"""

from __future__ import annotations

import difflib

from yujing.durations import parse_duration_ms
from yujing.rules.cursor import KEYWORDS, ExprError, Tok
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
from yujing.rules.trendargs import TrendArgs, check_durations, limited


class _Parser(TrendArgs):
    """The grammar, lowest precedence first; the cursor and the eta()/forecast arguments
    are ``TrendArgs``'s."""

    def parse(self) -> Expr:
        tree = self.or_expr()
        t = self.peek()
        if t.kind != "end":
            raise ExprError(f"unexpected {t.text!r} after a complete expression", t.col)
        check_durations(tree)
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
            return Binary(t.text, limited(left, right), limited(right, left))
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
        if t.kind == "duration":  # only beside eta(): check_durations says so otherwise
            return Dur(parse_duration_ms(t.text), t.col)
        if t.kind == "name" and t.text not in KEYWORDS:
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
