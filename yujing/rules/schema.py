"""The rule file format, as pydantic models (unknown keys are rejected).

A rule selects stations (by id or by registry fields), grades them with one
condition per grade, and clears with its own condition (hysteresis). A
condition is an expression of the rule language (``expr.py``), e.g.
``sum(rain_mm, 3h) >= 50``, or the structured shorthand
``{agg: sum, window: 3h, op: ">=", value: 50}`` on the rule's ``metric``.
A grade may carry ``for:`` (the condition must hold that long first; until then
the warning is pending) and the clear condition a ``for:`` (minimum clear time).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_serializer,
    model_validator,
)

from yujing.durations import Duration, format_duration
from yujing.rules.messages import check_template

AGGREGATES = ("sum", "mean", "max", "min", "last", "count")
OPERATORS = (">=", ">", "<=", "<")
GRADE_ORDER = ("blue", "yellow", "orange", "red")
_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")


class Condition(BaseModel):
    """Shorthand: ``agg`` of the rule's metric over ``window`` compared with ``value``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    agg: Literal["sum", "mean", "max", "min", "last", "count"]
    window: Duration = Field(description="event-time sliding window, e.g. 10m, 3h, 12h")
    op: Literal[">=", ">", "<=", "<"] = ">="
    value: float

    @field_validator("window")
    @classmethod
    def _window(cls, v: Duration) -> Duration:
        if v.ms <= 0:
            raise ValueError("window must be longer than zero, e.g. 10m")
        return v

    @property
    def window_ms(self) -> int:
        return self.window.ms

    def describe(self) -> str:
        return f"{self.agg}({format_duration(self.window_ms)}) {self.op} {self.value:g}"

    def to_expr(self, metric: str) -> str:
        return f"{self.agg}({metric}, {self.window}) {self.op} {self.value:g}"


class Timed(BaseModel):
    """A condition with a hold time: ``{when: "...", for: 10m}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    when: str
    for_: Duration | None = Field(None, alias="for")


def _spec_kind(v: object) -> str:
    if isinstance(v, str):
        return "text"
    if isinstance(v, dict):
        return "timed" if "when" in v else "shorthand"
    if isinstance(v, Timed):
        return "timed"
    return "shorthand" if isinstance(v, Condition) else "text"


# A condition is text, a timed condition {when, for}, or the {agg, window, op, value} shorthand;
# the shape picks the model, so an error names the real mistake, not every alternative.
Spec = Annotated[Annotated[str, Tag("text")] | Annotated[Timed, Tag("timed")]
                 | Annotated[Condition, Tag("shorthand")], Discriminator(_spec_kind)]


class Grades(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    blue: Spec | None = None
    yellow: Spec | None = None
    orange: Spec | None = None
    red: Spec | None = None

    def items(self) -> list[tuple[str, Spec]]:
        return [(n, c) for n in GRADE_ORDER if (c := getattr(self, n)) is not None]


class Select(BaseModel):
    """Which stations a rule watches; every given field must match (registry fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    stations: list[str] | None = None
    kind: list[str] | None = None
    town: list[str] | None = None
    tags: list[str] | None = Field(None, description="any of these tags")
    enterprise: list[str] | None = None
    group: list[str] | None = Field(None, description="registry field group (a neighbour group)")
    # stations whose registry thresholds carry every one of these fields: an opt-in by
    # setting, e.g. `has: [projection]` for the projection rules (`projection: 1`)
    has: list[str] | None = None

    @field_validator("kind", "town", "tags", "enterprise", "group", "stations", "has",
                     mode="before")
    @classmethod
    def _listify(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @model_serializer(mode="wrap")
    def _without_unset_has(self, handler: Any) -> dict:
        """``has`` and ``group`` came later: left out while unset, so a rule's dump (its state
        fingerprint in checkpoints) is what it was before the fields existed."""
        out = handler(self)
        for later in ("has", "group"):
            if isinstance(out, dict) and out.get(later) is None:
                out.pop(later, None)
        return out

    def is_empty(self) -> bool:
        return not any((self.stations, self.kind, self.town, self.tags, self.enterprise,
                        self.group, self.has))


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    id: str
    name: str
    hazard: str = Field(description="hazard family, e.g. rainstorm, wind, flood, nodata")
    category: Literal["hazard", "quality"] = Field(
        "hazard", description="quality: a data-quality warning with its own route")
    metric: str | None = Field(None, description="the metric of shorthand conditions")
    stations: list[str] | None = Field(None, description="station ids (same as select.stations)")
    select: Select = Select()
    grades: Grades
    clear: Spec | None = Field(None, description="omitted: clears when no grade holds")
    for_: Duration | None = Field(None, alias="for",
                                  description="default hold time for every grade")
    downgrade: bool = Field(False, description="lower the grade when only a lower grade holds")
    evaluate_every: Duration | None = Field(
        None, description="also evaluate a raised or pending warning on this event-time grid "
                          "without new readings (rules on event metrics such as spark: the "
                          "clear comes from time passing); None: only when readings arrive")
    message: dict[Literal["zh", "en"], str] | None = None
    source: str = Field("", description="where the thresholds come from (STANDARDS.md)")
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.fullmatch(v):
            raise ValueError("rule id must be lower-case letters, digits, '-' or '_', e.g. rain-3h")
        return v

    @field_validator("evaluate_every")
    @classmethod
    def _every(cls, v: Duration | None) -> Duration | None:
        if v is not None and v.ms < 1000:
            raise ValueError("evaluate_every must be at least 1s, e.g. 1m")
        return v

    @field_validator("message")
    @classmethod
    def _message(cls, v: dict | None) -> dict | None:
        for text in (v or {}).values():
            check_template(text)
        return v

    @model_validator(mode="after")
    def _check(self) -> Rule:
        if not self.grades.items():
            raise ValueError("give at least one grade (blue, yellow, orange or red) with a condition")
        specs = [s for _, s in self.grades.items()] + ([self.clear] if self.clear else [])
        if any(isinstance(s, Condition) for s in specs) and not self.metric:
            raise ValueError("a shorthand condition {agg, window, op, value} needs the rule's "
                             "'metric:'; or write the condition as text, e.g. "
                             "\"sum(rain_mm, 3h) >= 50\"")
        return self

    def station_ids(self) -> list[str] | None:
        ids = (self.stations or []) + (self.select.stations or [])
        return ids or None


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] = Field(default_factory=list)
