"""YAML rule tests, in the spirit of ``promtool test rules``.

A ``*.test.yaml`` file next to the rules gives input series in a compact
notation, times to look at, and the warnings expected to be active then (and,
optionally, the exact transitions). The runner feeds the series through the
same Pipeline the worker uses, so a passing test says what production will do.

Series notation (values at ``interval`` steps from ``start``)::

    "1 2 3"       explicit values
    "0+5x4"       0 5 10 15 20   (start, step, count: count+1 values)
    "10-1x3"      10 9 8 7
    "2x3"         2 2 2 2
    "_ _x2"       no reading for 1, then 3 steps

Forecasts (``forecasts:``) use the same notation for their values at valid times
``issued + first``, ``+ interval`` …; an issue reaches the rules at its issue time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from yujing.domain import Forecast, Reading
from yujing.durations import format_duration, parse_duration_ms
from yujing.envelope import decode, encode_readings
from yujing.pipeline import Pipeline
from yujing.rules.loader import load_rules
from yujing.stations import Registry, Station, load_registry
from yujing.yamlsrc import Problem, SourceError, load_yaml, validate

_TERM = re.compile(r"^(?P<a>-?\d+(?:\.\d+)?)(?:(?P<sign>[+-])(?P<b>\d+(?:\.\d+)?))?x(?P<n>\d+)$")
_NUM = re.compile(r"^-?\d+(?:\.\d+)?$")
_MISSING = re.compile(r"^_(?:x(?P<n>\d+))?$")


def expand(notation: str) -> list[float | None]:
    """Values of a series notation; None marks a step without a reading."""
    out: list[float | None] = []
    for term in str(notation).split():
        if _NUM.match(term):
            out.append(float(term))
            continue
        m = _MISSING.match(term)
        if m:
            out.extend([None] * (int(m.group("n") or 0) + 1))
            continue
        m = _TERM.match(term)
        if not m:
            raise ValueError(f"bad series term {term!r}: write values like '1 2 3', '0+5x4', "
                             "'10-1x3', '2x3' or '_' for a missing step")
        a, n = float(m.group("a")), int(m.group("n"))
        b = float(m.group("b") or 0) * (-1 if m.group("sign") == "-" else 1)
        out.extend(round(a + b * k, 9) for k in range(n + 1))
    return out


class SeriesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    station: str
    metric: str
    values: str
    interval: str | None = None
    offset: str = Field("0m", description="first value at start + offset")

    @field_validator("values")
    @classmethod
    def _values(cls, v: str) -> str:
        expand(v)
        return v


class ForecastSpec(BaseModel):
    """One forecast issue: values at valid times issued + first, + interval, …"""

    model_config = ConfigDict(extra="forbid")
    station: str
    metric: str = Field(description="a forecast metric, e.g. rain_mm_fcst")
    issued: str = Field(description="issue time after start, e.g. 1h")
    values: str
    interval: str = Field("1h", description="between valid times")
    first: str | None = Field(None, description="first valid time after the issue (default: interval)")

    @field_validator("values")
    @classmethod
    def _values(cls, v: str) -> str:
        expand(v)
        return v


class Expected(BaseModel):
    model_config = ConfigDict(extra="forbid")
    station: str
    rule: str
    grade: Literal["blue", "yellow", "orange", "red"]


class Check(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: str = Field(description="time after start, e.g. 3h30m")
    active: list[Expected]


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: str
    station: str
    rule: str
    event: str
    grade: Literal["blue", "yellow", "orange", "red"]


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    start: str = "2025-06-01T00:00:00+08:00"
    interval: str = "5m"
    stations: list[dict] = Field(default_factory=list, description="registry entries for this test")
    series: list[SeriesSpec]
    forecasts: list[ForecastSpec] = Field(default_factory=list)
    expect: list[Check] = Field(default_factory=list)
    transitions: list[Transition] | None = None


class RuleTestFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    registry: str | None = Field(None, description="registry file, relative to this file")
    tests: list[Case]


@dataclass
class Result:
    file: str
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _start_ms(text: str) -> int:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError("start needs a UTC offset, e.g. 2025-06-01T00:00:00+08:00")
    return int(dt.timestamp()) * 1000


def _readings(case: Case, start: int) -> list[Reading]:
    out = []
    for s in case.series:
        step = parse_duration_ms(s.interval or case.interval)
        t0 = start + parse_duration_ms(s.offset)
        for k, value in enumerate(expand(s.values)):
            if value is not None:
                out.append(Reading(s.station, s.metric, t0 + k * step, value))
    for f in case.forecasts:
        issued = start + parse_duration_ms(f.issued)
        step = parse_duration_ms(f.interval)
        t0 = issued + parse_duration_ms(f.first or f.interval)
        for k, value in enumerate(expand(f.values)):
            if value is not None:
                out.append(Forecast(f.station, f.metric, t0 + k * step, value, issued))
    out.sort(key=_arrival)
    return out


def _arrival(r: Reading) -> int:
    """When a test's item reaches the rules: a reading at its time, a forecast when issued."""
    return r.issued if isinstance(r, Forecast) else r.ts


def _world(case: Case, base_registry: Registry | None) -> Registry:
    """The test's world: stations it feeds or declares, so the no-data check does not
    warn about every other station of the shared registry."""
    fed = {s.station for s in case.series} | {f.station for f in case.forecasts}
    stations = {k: v for k, v in base_registry.stations.items() if k in fed} \
        if base_registry is not None else {}
    for entry in case.stations:
        st = Station.model_validate(entry)
        stations[st.id] = st
    return Registry(list(stations.values()))


def _compare_transitions(case: Case, seen: list[tuple[int, str, str, str, str]]) -> str | None:
    """The failure text when the transitions of the rules the case names differ, else None."""
    want_t = [(parse_duration_ms(t.at), t.station, t.rule, t.event, t.grade)
              for t in case.transitions or []]
    rules_named = {t[2] for t in want_t}
    got_t = [s for s in seen if s[2] in rules_named]
    if want_t == got_t:
        return None
    return "transitions differ:\n    expected " + _fmt_t(want_t) + "\n    got      " + _fmt_t(got_t)


def run_case(case: Case, rules: list, base_registry: Registry | None, file: str) -> Result:
    pipeline = Pipeline(rules, _world(case, base_registry))
    start = _start_ms(case.start)
    readings = _readings(case, start)
    result = Result(file, case.name)
    active: dict[tuple[str, str], str] = {}
    seen: list[tuple[int, str, str, str, str]] = []
    checks = sorted(case.expect, key=lambda c: parse_duration_ms(c.at))
    marks = sorted({parse_duration_ms(c.at) for c in checks} |
                   {(_arrival(readings[-1]) - start) if readings else 0})
    pos = 0

    def apply(events) -> None:
        for ev in events:
            key = (ev.station, ev.rule)
            kind = ev.kind.value if hasattr(ev.kind, "value") else str(ev.kind)
            seen.append((ev.ts - start, ev.station, ev.rule, kind, ev.grade.label))
            if kind == "cleared":
                active.pop(key, None)
            elif kind not in ("pending", "acknowledged", "note", "notified", "escalated"):
                active[key] = ev.grade.label

    for mark in marks:
        upto = start + mark
        chunk = []
        while pos < len(readings) and _arrival(readings[pos]) <= upto:
            chunk.append(readings[pos])
            pos += 1
        if chunk:
            apply(pipeline.handle(decode(encode_readings(chunk)), 0).events)
        apply(pipeline.check_nodata(upto, "wall"))
        for c in checks:
            if parse_duration_ms(c.at) != mark:
                continue
            want = {(e.station, e.rule): e.grade for e in c.active}
            got = dict(active)
            if want != got:
                result.failures.append(
                    f"at {c.at}: expected active {_fmt(want)}, got {_fmt(got)}")
    if case.transitions is not None and (diff := _compare_transitions(case, seen)):
        result.failures.append(diff)
    return result


def _fmt(d: dict) -> str:
    if not d:
        return "nothing"
    return ", ".join(f"{st}/{rule}={g}" for (st, rule), g in sorted(d.items()))


def _fmt_t(items: list) -> str:
    return "; ".join(f"{format_duration(a) if a else '0m'} {st} {r} {e} {g}"
                     for a, st, r, e, g in items) or "nothing"


def rule_test_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.test.yaml"))


def run_folder(folder: str | Path, registry_path: str | Path | None = None) -> list[Result]:
    """Run every ``*.test.yaml`` in the folder against the rules in the same folder."""
    folder = Path(folder)
    rules = load_rules(folder)
    results: list[Result] = []
    problems: list[Problem] = []
    for path in rule_test_files(folder):
        try:
            src = load_yaml(path)
            spec: RuleTestFile = validate(RuleTestFile, src)
        except SourceError as exc:
            problems.extend(exc.problems)
            continue
        reg_path = (path.parent / spec.registry) if spec.registry else registry_path
        registry = load_registry(reg_path) if reg_path else None
        for case in spec.tests:
            try:
                results.append(run_case(case, rules, registry, path.name))
            except (ValueError, SourceError) as exc:
                results.append(Result(path.name, case.name, [f"could not run: {exc}"]))
    if problems:
        raise SourceError(problems)
    return results
