"""The rule language's syntax tree: plain frozen dataclasses, and walks over them.

``expr.py`` parses text into these nodes, ``interpret.py`` maps them onto numpy
arrays, and reasons quote them back as text (``unparse``, ``primary``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from yujing.durations import format_duration

# Aggregates over one metric's event-time window: name -> needs a window?
WINDOW_AGGS = {"sum": True, "mean": True, "max": True, "min": True, "count": True,
               "first": True, "last": False, "delta": True, "rate": True, "spread": True}
SERIES_FUNCS = {"jump", "days_since"}
NUMERIC_FUNCS = {"abs": 1, "fire_index": (4, 5), "beaufort": 1, "default": 2}
TIME_FUNCS = {"month", "hour"}  # of the evaluation time, in the engine's zone (Asia/Shanghai)
GROUP_FUNCS = {"count_stations"}
MODEL_FUNCS = {"anomaly"}
TREND_FUNCS = {"eta", "project"}  # look ahead along a window's robust trend (trend.py)
AHEAD_FUNCS = {"sum_ahead", "max_ahead"}  # over forecast valid times ahead (forecast.py)
COMPARATORS = (">=", "<=", "==", "!=", ">", "<")
UNBOUNDED_MS = 100 * 365 * 86_400_000  # last(x) with no window: anything retained


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class StationField:
    name: str


@dataclass(frozen=True)
class Agg:
    """``fn(metric, window)``; window_ms is UNBOUNDED_MS for last(metric)."""

    fn: str
    metric: str
    window_ms: int


@dataclass(frozen=True)
class SeriesFn:
    """jump(metric) or days_since(metric, threshold[, horizon])."""

    fn: str
    metric: str
    threshold: float = 0.0
    horizon_ms: int = 10 * 86_400_000


@dataclass(frozen=True)
class Trend:
    """``eta(metric, threshold, window)``: hours until the window's Theil–Sen trend reaches
    ``threshold`` (an expression of numbers and station fields) from below, or with
    ``falling`` (``eta(metric, threshold, window, falling)``) from above; or
    ``project(metric, window, horizon)``: the trend's value ``horizon_ms`` ahead."""

    fn: str
    metric: str
    window_ms: int
    threshold: object = None
    horizon_ms: int = 0
    limit_ms: int = 0  # eta: the duration it is compared with (the parser sets it)
    falling: bool = False  # eta: towards a low threshold (a drawdown, a recession)


@dataclass(frozen=True)
class Ahead:
    """``sum_ahead(metric, W)`` / ``max_ahead(metric, W)``: a forecast metric (``…_fcst``)
    over the valid times in (t, t + W] of its newest issues (:mod:`yujing.rules.forecast`)."""

    fn: str
    metric: str
    window_ms: int


@dataclass(frozen=True)
class Dur:
    """A duration compared with eta() (``eta(...) <= 2h``); evaluates to hours, eta's unit."""

    ms: int
    col: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple


@dataclass(frozen=True)
class Unary:
    op: str  # '-' or 'not'
    arg: object


@dataclass(frozen=True)
class Binary:
    op: str  # + - * / and or, comparators
    left: object
    right: object


@dataclass(frozen=True)
class TimeOf:
    """month() 1..12 or hour() 0..23 of the evaluation time in the engine's time zone
    (``Engine(tz=...)``, default Asia/Shanghai)."""

    fn: str


@dataclass(frozen=True)
class Anomaly:
    """The score in [0, 1] of the named anomaly model for the station's newest reading."""

    model: str


@dataclass(frozen=True)
class GroupCount:
    """Distinct stations with the same registry ``by`` field where ``cond`` held in the window."""

    cond: object
    window_ms: int
    by: str


@dataclass
class Expr:
    text: str
    tree: object
    metrics: set[str] = field(default_factory=set)
    forecasts: set[str] = field(default_factory=set)  # forecast metrics read by *_ahead()
    station_fields: set[str] = field(default_factory=set)
    aggs: set[Agg] = field(default_factory=set)
    models: set[str] = field(default_factory=set)
    optional_fields: set[str] = field(default_factory=set)  # only inside default(...)
    horizon_ms: int = 0
    is_condition: bool = False

    def __str__(self) -> str:
        return self.text


def unparse(node: object) -> str:
    """Readable text of a (sub)tree, for reasons and messages."""
    if isinstance(node, Num):
        return f"{node.value:g}"
    if isinstance(node, StationField):
        return f"station.{node.name}"
    if isinstance(node, Agg):
        if node.window_ms >= UNBOUNDED_MS:
            return f"{node.fn}({node.metric})"
        return f"{node.fn}({node.metric}, {format_duration(node.window_ms)})"
    if isinstance(node, SeriesFn):
        if node.fn == "jump":
            return f"jump({node.metric})"
        return f"days_since({node.metric}, {node.threshold:g})"
    if isinstance(node, Call):
        return f"{node.fn}({', '.join(unparse(a) for a in node.args)})"
    if isinstance(node, Trend):
        if node.fn == "eta":
            return (f"eta({node.metric}, {unparse(node.threshold)}, {format_duration(node.window_ms)}"
                    + (", falling)" if node.falling else ")"))
        return (f"project({node.metric}, {format_duration(node.window_ms)}, "
                f"{format_duration(node.horizon_ms)})")
    if isinstance(node, Ahead):
        return f"{node.fn}({node.metric}, {format_duration(node.window_ms)})"
    if isinstance(node, Dur):
        return format_duration(node.ms)
    if isinstance(node, GroupCount):
        return f"count_stations({unparse(node.cond)}, {format_duration(node.window_ms)}, {node.by})"
    if isinstance(node, Anomaly):
        return f"anomaly(model={node.model})"
    if isinstance(node, TimeOf):
        return f"{node.fn}()"
    if isinstance(node, Unary):
        return f"not {unparse(node.arg)}" if node.op == "not" else f"-{unparse(node.arg)}"
    if isinstance(node, Binary):
        return f"{_paren(node.left, node.op)} {node.op} {_paren(node.right, node.op)}"
    return str(node)


def _paren(node: object, parent: str) -> str:
    text = unparse(node)
    if isinstance(node, Binary) and node.op in ("and", "or") and parent not in ("and", "or"):
        return f"({text})"
    if isinstance(node, Binary) and node.op == "or" and parent == "and":
        return f"({text})"
    return text


def primary(node: object, truth=None) -> object | None:
    """The measured side of the comparison a reason should quote.

    With ``truth`` (node → bool at the point in question), an ``or`` quotes the
    branch that held, so a gust-triggered warning names the gust, not the mean.
    """
    if isinstance(node, Binary):
        if node.op in COMPARATORS:
            return node.left if not isinstance(node.left, (Num, Dur)) else node.right
        if node.op == "or" and truth is not None and not truth(node.left) and truth(node.right):
            return primary(node.right, truth) or primary(node.left, truth)
        return primary(node.left, truth) or primary(node.right, truth)
    if isinstance(node, Unary):
        return primary(node.arg, truth)
    return None


def first_window_ms(node: object) -> int:
    if isinstance(node, Agg):
        return node.window_ms if node.window_ms < UNBOUNDED_MS else 0
    if isinstance(node, (GroupCount, Trend)):
        return node.window_ms
    for child in children(node):
        w = first_window_ms(child)
        if w:
            return w
    return 0


def children(node: object) -> tuple:
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Unary):
        return (node.arg,)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, GroupCount):
        return (node.cond,)
    if isinstance(node, Trend) and node.threshold is not None:
        return (node.threshold,)
    return ()


def group_nodes(trees: list[object]) -> list[GroupCount]:
    """The count_stations nodes of some trees, each once, in a stable order (their state
    is stored by this position in snapshots)."""
    out: list[GroupCount] = []
    seen: set[int] = set()

    def walk(node: object) -> None:
        if isinstance(node, GroupCount) and id(node) not in seen:
            seen.add(id(node))
            out.append(node)
        for child in children(node):
            walk(child)

    for tree in trees:
        walk(tree)
    return out


def not_a_level(node: object) -> str:
    """What in an eta() threshold is not a number or a station field ('' if all is)."""
    if isinstance(node, (Num, StationField)):
        return ""
    if isinstance(node, Binary) and node.op in ("+", "-", "*", "/"):
        return not_a_level(node.left) or not_a_level(node.right)
    if isinstance(node, Unary) and node.op == "-":
        return not_a_level(node.arg)
    if isinstance(node, Call) and node.fn == "default":
        return not_a_level(node.args[0]) or not_a_level(node.args[1])
    return repr(unparse(node))
