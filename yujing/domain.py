"""Core records shared by every stage: readings, grades, findings, warning events.

Nothing here does I/O. Structs are ``msgspec.Struct`` so the edges can encode
them without a second schema.
"""

from __future__ import annotations

import enum
import time

import msgspec


class Grade(enum.IntEnum):
    """China's four warning levels; a higher number is more severe.

    red = I (特别严重), orange = II (严重), yellow = III (较重), blue = IV (一般).
    NONE means no warning; it is never sent as a grade.
    """

    NONE = 0
    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def roman(self) -> str:
        return {0: "", 1: "IV", 2: "III", 3: "II", 4: "I"}[int(self)]

    @property
    def zh(self) -> str:
        return {0: "无", 1: "蓝色", 2: "黄色", 3: "橙色", 4: "红色"}[int(self)]

    @classmethod
    def parse(cls, text: str) -> Grade:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown grade {text!r}: write one of blue, yellow, orange, red"
            ) from None


GRADE_NAMES = ("blue", "yellow", "orange", "red")


class Reading(msgspec.Struct, frozen=True):
    """One measurement. ``ts`` is event time in epoch milliseconds (UTC)."""

    station: str
    metric: str
    ts: int
    value: float


class Forecast(Reading, frozen=True):
    """A forecast value: ``ts`` is its valid time, ``issued`` when the forecast was issued
    (epoch ms). It travels with the readings (same partition, same envelope; a column of
    its own) and lands in the engine's forecast table, never in a station's observed
    series. Its metric ends in ``_fcst`` (``rain_mm_fcst``)."""

    issued: int


class Term(msgspec.Struct, frozen=True, omit_defaults=True):
    """One comparison of the condition that decided a finding, as it stood at that point:
    what a reason in words is made of (:mod:`yujing.rules.wording`), so a duty officer
    reads 「过去3小时累计雨量52.5毫米」 and not ``sum(rain_mm, 3h)``.

    ``fn`` is what the measured side is: an aggregate (``sum``, ``max``, ``last`` … of
    ``metric`` over ``window_ms``), or a function of one (``beaufort``, ``fire_index``,
    ``deviation`` for abs(x - station field), ``count_stations``, ``jump``, ``days_since``,
    ``anomaly``), or ``expr`` for anything else. ``raw`` is the aggregate under a function
    (the gust in m/s under its Beaufort force). The threshold side is ``threshold``, and
    ``field`` (with ``field_value``) when it is read from the station registry; ``offset``
    and ``scale`` say how (``warning_level_m - 0.5``: offset -0.5; ``0.2 * baseline``: scale
    0.2). ``op`` is the comparison that held (a ``not`` is folded in: ``not (x >= 1)`` is
    ``x < 1``). Missing numbers are None (JSON has no NaN).
    """

    fn: str
    op: str
    metric: str = ""
    window_ms: int = 0
    value: float | None = None
    raw: float | None = None
    threshold: float | None = None
    field: str = ""
    field_value: float | None = None
    offset: float = 0.0
    scale: float = 1.0
    by: str = ""                                  # count_stations: the registry field grouped by
    metrics: list[str] = msgspec.field(default_factory=list)  # every metric the side reads
    at_ms: int = 0                                # no_data during a warning: the last reading's time
    horizon_ms: int = 0                           # eta, project: how far ahead the trend looked


class Finding(msgspec.Struct, frozen=True):
    """What a rule concluded about one station at one event time.

    ``grade`` NONE with ``clear`` True means the rule's clear condition held.
    ``pending`` means the grade's condition holds but its ``for:`` duration has
    not yet elapsed (the lifecycle's pending state; nobody is notified).
    """

    rule: str
    station: str
    ts: int
    grade: Grade
    clear: bool
    value: float
    window: str
    reason: str
    pending: bool = False
    terms: list[Term] = []   # the comparisons of the branch that held, for reasons in words
    hold_ms: int = 0         # the deciding check's for: duration


class EventKind(str, enum.Enum):
    PENDING = "pending"        # the condition holds but its ``for:`` has not elapsed; nobody is told
    RAISED = "raised"
    UPGRADED = "upgraded"
    DOWNGRADED = "downgraded"
    CLEARED = "cleared"


class WarningEvent(msgspec.Struct, frozen=True):
    """A warning transition, as published on ``yujing.warnings``.

    ``ts`` is the event time of the reading that caused it; ``emitted_ms`` is
    the wall-clock time the worker produced it.

    The worker does not name incidents: the warning book does (one place, see
    :mod:`yujing.alerts.book`). An event names its *episode* instead, one
    warning key from the finding that opened it (pending or raise) to its
    clear: ``opened_ts`` is that finding's event time, and ``episode`` the same
    as text (:func:`episode_ref`), which the book, the InfluxDB sink and the
    backtest show. On the wire ``episode`` keeps its old name ``incident``, so
    a book or sink of before the change reads it as the proposed incident id it
    used to be (unique per warning key and time, so that stays correct). An
    event of an older worker has ``opened_ts`` 0 and a proposed id in
    ``incident``.

    ``value`` is None when the finding has none (a clear by a rule without a
    clear condition): JSON has no NaN.
    """

    kind: EventKind
    key: str
    episode: str = msgspec.field(name="incident")
    rule: str
    rule_name: str
    hazard: str
    station: str
    grade: Grade
    previous: Grade
    ts: int
    value: float | None
    window: str
    reason: str
    emitted_ms: int = 0
    station_name: str = ""
    town: str = ""
    enterprise: str = ""           # the station's owning enterprise, from the registry
    messages: dict[str, str] = {}  # the rule's own message per language (zh, en), if it has one
    opened_ts: int = 0             # event time the episode opened; 0 from an older worker
    # The reason in words (Chinese, English) and the measured value alone (「3小时雨量103.5毫米」,
    # for SMS), from ``terms``; ``reason`` stays the rule expression, a detail for analysts.
    reason_zh: str = ""
    reason_en: str = ""
    measure_zh: str = ""
    measure_en: str = ""
    terms: list[Term] = []


def warning_key(rule: str, station: str) -> str:
    """The identity of a warning: one rule at one station."""
    return f"{rule}@{station}"


def episode_ref(key: str, opened_ts: int) -> str:
    """A warning episode as text: its key and the UTC event time it opened, to the ms
    (``rain@DG-HM-R01@20250601T080000.000Z``). A key's next episode opens at a later
    reading than the previous one did, so this names an episode in every process without
    asking anybody (the one exception is in :mod:`yujing.alerts.lifecycle`)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(opened_ts // 1000))
    return f"{key}@{stamp}.{opened_ts % 1000:03d}Z"


def group_key(town: str, hazard: str, station: str = "") -> str:
    """The group of a warning: one region (镇街) and hazard, notified together.

    It is also the Kafka key of warnings and commands, so every warning of a group
    lands on the partition whose book groups it; every place that needs the key
    calls this one function. A station with no town is a group of its own.
    """
    return f"{town or station}|{hazard}"
