"""The arguments of the functions that look ahead: eta(), project(), sum_ahead() and
max_ahead(), and the rule that ties a duration to eta().

Apart from the grammar (``expr.py``) because these are the one place where a duration is
a value rather than a window (``eta(...) <= 2h``) and a metric may be a forecast
(``rain_mm_fcst``); their checks read as one piece here. ``expr.py``'s parser inherits
:class:`TrendArgs` and supplies ``additive`` (an eta() threshold is an expression).
"""

from __future__ import annotations

from dataclasses import replace

from yujing.rules.cursor import Cursor, ExprError
from yujing.rules.tree import COMPARATORS, Ahead, Binary, Dur, Trend, children, not_a_level, unparse


class TrendArgs(Cursor):
    """Reads the arguments of eta()/project() and of the forecast functions."""

    def additive(self) -> object:
        raise NotImplementedError("the grammar (expr._Parser) reads sums and products")

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


def limited(side: object, other: object) -> object:
    """An eta() compared with a duration knows it: only points whose trend could reach
    the threshold within that time need a fit (``trend.fit``)."""
    if isinstance(side, Trend) and side.fn == "eta" and isinstance(other, Dur):
        return replace(side, limit_ms=other.ms)
    return side


def check_durations(node: object, beside_eta: bool = False) -> None:
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
                    check_durations(side.threshold)
            return
    for child in children(node):
        check_durations(child)
