"""The rule language, as pydantic models (unknown keys are rejected).

A rule watches one metric at the stations its selector picks, computes
event-time sliding-window aggregates, and grades the result blue..red.
Each grade has its own condition and window, as the national rainstorm
signals do (blue 50 mm in 12 h ... red 100 mm in 3 h). The warning clears when
the ``clear`` condition holds and no grade's condition does (hysteresis).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..durations import format_duration, parse_duration_ms

AGGREGATES = ("sum", "mean", "max", "min", "last", "count")
OPERATORS = (">=", ">", "<=", "<")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class Condition(BaseModel):
    """``agg`` over ``window`` compared with ``value`` by ``op``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    agg: Literal["sum", "mean", "max", "min", "last", "count"]
    window: str = Field(description="event-time sliding window, e.g. 10m, 3h, 12h")
    op: Literal[">=", ">", "<=", "<"] = ">="
    value: float

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        ms = parse_duration_ms(v)
        if ms <= 0:
            raise ValueError("window must be longer than zero, e.g. 10m")
        return v

    @property
    def window_ms(self) -> int:
        return parse_duration_ms(self.window)

    def describe(self) -> str:
        return f"{self.agg}({format_duration(self.window_ms)}) {self.op} {self.value:g}"


class Grades(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    blue: Condition | None = None
    yellow: Condition | None = None
    orange: Condition | None = None
    red: Condition | None = None

    def items(self) -> list[tuple[str, Condition]]:
        return [(n, c) for n in ("blue", "yellow", "orange", "red")
                if (c := getattr(self, n)) is not None]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    name: str
    hazard: str = Field(description="hazard family, e.g. rainstorm, wind, flood")
    metric: str
    stations: list[str] | None = Field(None, description="station ids; omitted means all")
    grades: Grades
    clear: Condition
    source: str = Field("", description="where the thresholds come from (STANDARDS.md)")
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError("rule id must be lower-case letters, digits, '-' or '_', e.g. rain-3h")
        return v

    @model_validator(mode="after")
    def _has_grade(self) -> "Rule":
        if not self.grades.items():
            raise ValueError("give at least one grade (blue, yellow, orange or red) with a condition")
        return self


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] = Field(default_factory=list)
