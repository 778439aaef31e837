"""Core records shared by every stage: readings, grades, findings, warning events.

Nothing here does I/O. Structs are ``msgspec.Struct`` so the edges can encode
them without a second schema.
"""

from __future__ import annotations

import enum

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
    """

    kind: EventKind
    key: str
    incident: str
    rule: str
    rule_name: str
    hazard: str
    station: str
    grade: Grade
    previous: Grade
    ts: int
    value: float
    window: str
    reason: str
    emitted_ms: int = 0
    station_name: str = ""
    town: str = ""
    messages: dict[str, str] = {}  # the rule's own message per language (zh, en), if it has one


def warning_key(rule: str, station: str) -> str:
    """The identity of a warning: one rule at one station."""
    return f"{rule}@{station}"


def group_key(town: str, hazard: str, station: str = "") -> str:
    """The group of a warning: one region (镇街) and hazard, notified together.

    It is also the Kafka key of warnings and commands, so every warning of a group
    lands on the partition whose book groups it; every place that needs the key
    calls this one function. A station with no town is a group of its own.
    """
    return f"{town or station}|{hazard}"
