"""The rule evaluator (yujing.rules.engine): findings at grade changes, split-invariance, replay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.columns import columns
from yujing.domain import Finding, Grade, Reading
from yujing.rules.engine import Engine
from yujing.rules.loader import load_rules
from yujing.rules.schema import Rule

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
MIN = 60_000
H = 3_600_000
T0 = 1_750_000_000_000 - 1_750_000_000_000 % H  # an hour boundary in June 2025


def run(engine: Engine, readings: list[Reading]) -> tuple[list[Finding], list[int]]:
    return engine.process(*columns(readings))


def rule(**kw) -> Rule:
    base = {"id": "r", "name": "test rule", "hazard": "test", "metric": "level_m",
            "grades": {"orange": {"agg": "last", "window": "1h", "op": ">=", "value": 5}},
            "clear": {"agg": "last", "window": "1h", "op": "<", "value": 3}}
    base.update(kw)
    return Rule.model_validate(base)


def rain(station: str, minutes: list[int], mm: list[float]) -> list[Reading]:
    return [Reading(station, "rain_mm", T0 + m * MIN, float(x)) for m, x in zip(minutes, mm)]


@pytest.fixture(scope="module")
def file_rules() -> dict[str, Rule]:
    return {r.id: r for r in load_rules(RULES_DIR)}


@pytest.fixture(scope="module")
def national(file_rules) -> Rule:
    # Off by default in the file (Dongguan uses Guangdong's levels); switch it on to test it.
    return file_rules["rainstorm-national"].model_copy(update={"enabled": True})


@pytest.fixture(scope="module")
def guangdong(file_rules) -> Rule:
    return file_rules["rainstorm-guangdong"]


def summary(findings: list[Finding]) -> list[tuple[int, str]]:
    """(minute after T0, grade name or 'clear') per finding."""
    return [((f.ts - T0) // MIN, "clear" if f.clear else f.grade.label) for f in findings]


# --- national rainstorm rule -----------------------------------------------------------------


def test_national_rule_is_in_the_file_with_its_cma_thresholds(national):
    grades = dict(national.grades.items())
    assert (grades["blue"].window, grades["blue"].value) == ("12h", 50)
    assert (grades["yellow"].window, grades["yellow"].value) == ("6h", 50)
    assert (grades["orange"].window, grades["orange"].value) == ("3h", 50)
    assert (grades["red"].window, grades["red"].value) == ("3h", 100)


def test_national_rule_orange_then_red(national):
    """2 h dry, then 10 mm every 10 min: 50 mm in 50 min is orange, 100 mm in 100 min is red."""
    minutes = list(range(0, 240, 10))
    mm = [0.0] * 12 + [10.0] * 12
    findings, late = run(Engine([national]), rain("g1", minutes, mm))
    assert late == []
    # the first reading: 12 h sum 0 < 10 holds the clear condition; no grade yet
    assert summary(findings) == [(0, "clear"), (160, "orange"), (210, "red")]
    orange, red = findings[1], findings[2]
    assert (orange.rule, orange.station, orange.grade, orange.clear) == (
        "rainstorm-national", "g1", Grade.ORANGE, False)
    assert orange.value == 50.0 and orange.window == "3h"
    assert orange.reason == "sum(rain_mm, 3h) = 50 (orange: sum(rain_mm, 3h) >= 50)"
    assert red.value == 100.0 and red.grade == Grade.RED
    assert red.reason == "sum(rain_mm, 3h) = 100 (red: sum(rain_mm, 3h) >= 100)"


def test_national_rule_with_tenth_mm_tips_reaches_orange_at_exactly_50(national):
    """A tipping-bucket gauge reports 0.1 mm per tip: orange when 3 h hold 500 tips, not later."""
    # 3 h of a tip every 30 s, then a tip every 20 s: the 3 h window that first holds 500
    # tips starts in the middle of the series, where a plain prefix sum falls short of 50.
    ts = [T0 + i * 30_000 for i in range(360)]
    ts += [ts[-1] + (i + 1) * 20_000 for i in range(500)]
    readings = [Reading("g1", "rain_mm", t, 0.1) for t in ts]
    tips = [sum(1 for s in ts if t - 3 * H < s <= t) for t in ts]
    first = next(i for i, n in enumerate(tips) if n >= 500)
    assert ts[0] < ts[first] - 3 * H  # the window does not start at the first reading
    csum = np.concatenate(([0.0], np.cumsum([0.1] * len(ts))))
    lo = next(i for i, s in enumerate(ts) if s > ts[first] - 3 * H)
    assert csum[first + 1] - csum[lo] < 50  # the trap this test guards against

    findings, _ = run(Engine([national]), readings)
    orange = [f for f in findings if f.grade == Grade.ORANGE]
    assert orange[0].ts == ts[first]
    assert orange[0].value == 50.0


def test_disabled_rule_is_ignored(file_rules):
    engine = Engine(list(file_rules.values()))
    assert "rainstorm-national" not in engine.rules
    findings, _ = run(engine, rain("g1", list(range(0, 60, 5)), [10.0] * 12))
    rules = {f.rule for f in findings}
    assert "rainstorm-guangdong" in rules and "rainstorm-national" not in rules


# --- findings only where the graded outcome changes ---------------------------------------------


def test_findings_only_at_grade_changes(guangdong):
    # 30 min of 10 mm readings every 5 min: orange from 50 mm, red from 100 mm, then steady red.
    findings, _ = run(Engine([guangdong]), rain("g1", list(range(0, 150, 5)), [10.0] * 30))
    assert summary(findings) == [(20, "orange"), (45, "red")]


@pytest.mark.parametrize("levels, expected", [
    # hysteresis: 3 <= level < 5 is the band where nothing is said
    ([1, 6, 4, 4, 2], ["clear", "orange", None, None, "clear"]),
    # orange again while still orange (no clear in between) is not news
    ([6, 4, 6, 4, 2, 4, 6], ["orange", None, None, None, "clear", None, "orange"]),
    ([4, 4, 4], [None, None, None]),
    ([2, 1, 0, 2], ["clear", None, None, None]),
    ([5, 9, 5.5], ["orange", None, None]),
])
def test_clear_with_hysteresis(levels, expected):
    engine = Engine([rule()])
    readings = [Reading("s", "level_m", T0 + i * MIN, float(x)) for i, x in enumerate(levels)]
    findings, _ = run(engine, readings)
    got = {(f.ts - T0) // MIN: ("clear" if f.clear else f.grade.label) for f in findings}
    assert [got.get(i) for i in range(len(levels))] == expected
    for f in findings:
        assert f.clear == (f.grade == Grade.NONE)


def test_guangdong_rule_clears_only_below_10mm(guangdong):
    """Orange, then the 3 h sum sinks through the 10..50 mm band (no finding) to a clear."""
    minutes = list(range(0, 60, 10)) + list(range(60, 400, 20))
    mm = [10.0] * 6 + [0.0] * (len(minutes) - 6)
    findings, _ = run(Engine([guangdong]), rain("g1", minutes, mm))
    # 3 h sums: 50 at minute 40 (orange); under 50 from 200 (band); under 10 from 240 (clear)
    assert summary(findings) == [(40, "orange"), (240, "clear")]
    assert findings[-1].value == 0.0 and findings[-1].grade == Grade.NONE


def test_each_rule_and_station_keeps_its_own_state():
    r1 = rule(id="high", grades={"red": {"agg": "max", "window": "10m", "value": 8}})
    r2 = rule(id="low")
    engine = Engine([r1, r2])
    readings = [Reading("a", "level_m", T0, 6.0), Reading("b", "level_m", T0, 9.0)]
    findings, _ = run(engine, readings)
    assert [(f.rule, f.station, f.grade) for f in findings] == [
        ("high", "b", Grade.RED), ("low", "a", Grade.ORANGE), ("low", "b", Grade.ORANGE)]


# --- envelope boundaries must not matter ----------------------------------------------------


def _split_runs(rules: list[Rule], readings: list[Reading], cuts: list[int]):
    single, late1 = run(Engine(rules), readings)
    engine = Engine(rules)
    split: list[Finding] = []
    late2: list[int] = []
    bounds = [0] + sorted(set(c for c in cuts if 0 < c < len(readings))) + [len(readings)]
    for a, b in zip(bounds, bounds[1:]):
        f, late = run(engine, readings[a:b])
        split.extend(f)
        late2.extend(i + a for i in late)
    return single, late1, split, late2


def test_one_envelope_or_one_per_reading_give_the_same_findings(national, guangdong):
    minutes = list(range(0, 24 * 60, 10))  # a day: longer than lateness and every window
    mm = [0.0] * 24 + [6.0] * 30 + [0.0] * (len(minutes) - 54)
    readings = rain("g1", minutes, mm)
    # with downgrades on, the national rule walks down every grade: the richest sequence
    national = national.model_copy(update={"downgrade": True})
    single, late1, split, late2 = _split_runs([national, guangdong], readings,
                                              list(range(len(readings))))
    assert late1 == late2 == []
    assert split == single
    assert [g for _, g in summary([f for f in single if f.rule == "rainstorm-national"])] == [
        "clear", "orange", "red", "orange", "yellow", "blue", "clear"]


@st.composite
def station_streams(draw):
    """Readings of up to 3 gauges, in event-time order, strictly increasing per gauge."""
    n_stations = draw(st.integers(1, 3))
    readings = []
    for k in range(n_stations):
        steps = draw(st.lists(st.integers(1, 40), min_size=1, max_size=40))  # minutes apart
        tenths = draw(st.lists(st.integers(0, 150), min_size=len(steps), max_size=len(steps)))
        t = T0
        for dt, x in zip(steps, tenths):
            t += dt * MIN
            readings.append(Reading(f"g{k}", "rain_mm", t, x / 10))
    readings.sort(key=lambda r: r.ts)  # stable: gauges interleave as they would on the wire
    cuts = draw(st.lists(st.integers(1, max(1, len(readings) - 1)), max_size=12))
    return readings, cuts


@settings(max_examples=150, deadline=None)
@given(station_streams())
def test_findings_do_not_depend_on_envelope_boundaries(national, guangdong, stream):
    readings, cuts = stream
    tight = rule(id="tight", metric="rain_mm",
                 grades={"yellow": {"agg": "mean", "window": "30m", "value": 4},
                         "red": {"agg": "max", "window": "20m", "value": 12}},
                 clear={"agg": "count", "window": "1h", "op": "<", "value": 2})
    single, late1, split, late2 = _split_runs([national, guangdong, tight], readings, cuts)
    assert late1 == late2 == []
    def key(f):
        return (f.ts, f.rule, f.station)

    assert single == sorted(single, key=key)  # event-time order from one envelope
    assert sorted(split, key=key) == single


@settings(max_examples=60, deadline=None)
@given(offsets=st.lists(st.integers(0, 300), min_size=1, max_size=40),
       cuts=st.lists(st.integers(1, 39), max_size=8))
def test_late_readings_do_not_depend_on_envelope_boundaries(offsets, cuts):
    """Out of order arrival: a reading is late against what arrived before it, not after."""
    readings = [Reading("s", "level_m", T0 + m * MIN, 1.0) for m in offsets]
    engine_rules = [rule()]
    single, late1, split, late2 = _split_runs(engine_rules, readings, cuts)
    seen = None
    expected = []
    for i, m in enumerate(offsets):
        seen = m if seen is None else max(seen, m)
        if m < seen - 60:
            expected.append(i)
    assert late1 == late2 == expected


# --- replay and lateness ------------------------------------------------------------------


def test_replaying_an_envelope_gives_no_new_findings(guangdong):
    engine = Engine([guangdong])
    readings = rain("g1", list(range(0, 60, 5)), [10.0] * 12)
    first, late = run(engine, readings)
    assert summary(first) == [(20, "orange"), (45, "red")] and late == []
    again, late = run(engine, readings)
    assert again == [] and late == []
    # and a replay of the first part after newer readings arrived: still nothing
    more, _ = run(engine, rain("g1", [60, 65], [0.0, 0.0]))
    assert more == []
    assert run(engine, readings[2:6]) == ([], [])  # minutes 10..25, within lateness


def test_replaying_a_long_envelope_gives_no_new_findings(national):
    engine = Engine([national.model_copy(update={"downgrade": True})])
    readings = rain("g1", list(range(0, 600, 10)), [0.0] * 12 + [10.0] * 12 + [0.0] * 36)
    first, _ = run(engine, readings)
    assert summary(first) == [(0, "clear"), (160, "orange"), (210, "red"), (320, "orange"),
                              (370, "yellow"), (550, "blue")]
    again, late = run(engine, readings)
    assert again == []
    # readings further back than lateness (1 h) behind the newest are refused as late
    assert late == [i for i, r in enumerate(readings) if r.ts < readings[-1].ts - H]


def test_late_reading_is_returned_counted_and_not_merged():
    engine = Engine([rule()], lateness_ms=H)
    run(engine, [Reading("s", "level_m", T0 + 2 * H, 1.0)])
    findings, late = run(engine, [Reading("s", "level_m", T0 + 90 * MIN, 2.0),  # 30 min behind: ok
                                  Reading("s", "level_m", T0 + 30 * MIN, 9.0),  # 90 min behind: late
                                  Reading("s", "level_m", T0 + H, 9.0)])  # exactly 1 h: ok
    assert late == [1]
    assert engine.stats.late == 1
    assert engine.stats.readings == 4
    series = engine.series[("s", "level_m")]
    assert (T0 + 30 * MIN) not in series.ts.tolist()
    assert (T0 + H) in series.ts.tolist()


def test_lateness_is_judged_in_arrival_order_within_an_envelope():
    engine = Engine([rule()], lateness_ms=H)
    _, late = run(engine, [Reading("s", "level_m", T0, 1.0), Reading("s", "level_m", T0 + 3 * H, 1.0)])
    assert late == []  # the first arrived before anything newer: not late
    engine = Engine([rule()], lateness_ms=H)
    _, late = run(engine, [Reading("s", "level_m", T0 + 3 * H, 1.0), Reading("s", "level_m", T0, 1.0)])
    assert late == [1]
    assert engine.stats.late == 1


def test_out_of_order_reading_within_lateness_updates_the_current_grade(guangdong):
    engine = Engine([guangdong])
    first, _ = run(engine, rain("g1", [0, 20], [20.0, 20.0]))  # 40 mm: below orange
    assert [g for _, g in summary(first)] == []
    late_one, late = run(engine, rain("g1", [10], [20.0]))  # arrives late: 60 mm by minute 20
    assert late == []
    assert summary(late_one) == [(20, "orange")]
    assert late_one[0].value == 60.0


def test_same_timestamp_again_with_a_new_value_replaces_it():
    engine = Engine([rule()])
    run(engine, [Reading("s", "level_m", T0, 1.0)])
    findings, _ = run(engine, [Reading("s", "level_m", T0, 7.0)])
    assert summary(findings) == [(0, "orange")]
    assert engine.series[("s", "level_m")].v.tolist() == [7.0]


def test_series_state_is_trimmed_to_the_longest_window_plus_lateness(national):
    engine = Engine([national], lateness_ms=H)
    run(engine, rain("g1", list(range(0, 48 * 60, 30)), [0.0] * 96))
    ts = engine.series[("g1", "rain_mm")].ts
    assert ts[-1] - ts[0] <= 13 * H
    assert ts[-1] - ts[0] >= 12 * H  # still enough for a 12 h window of a late reading


# --- selectors and bookkeeping ------------------------------------------------------------


def test_station_selector_limits_a_rule_to_its_stations():
    engine = Engine([rule(stations=["a", "c"])])
    readings = [Reading(s, "level_m", T0, 9.0) for s in ("a", "b", "c")]
    findings, _ = run(engine, readings)
    assert sorted(f.station for f in findings) == ["a", "c"]


def test_readings_of_metrics_without_rules_are_counted_as_unmatched():
    engine = Engine([rule()])
    findings, late = run(engine, [Reading("s", "wind_speed_ms", T0, 30.0),
                                  Reading("s", "wind_speed_ms", T0 + MIN, 31.0),
                                  Reading("s", "level_m", T0, 9.0)])
    assert [f.rule for f in findings] == ["r"] and late == []
    assert engine.stats.unmatched == 2
    assert engine.stats.readings == 3
    assert ("s", "wind_speed_ms") not in engine.series


def test_empty_envelope():
    engine = Engine([rule()])
    empty = (["s"], np.empty(0, np.uint32), ["level_m"], np.empty(0, np.uint32),
             np.empty(0, np.int64), np.empty(0, np.float64))
    assert engine.process(*empty) == ([], [])
    assert engine.stats.readings == 0


def test_without_downgrade_the_grade_holds_until_the_clear(national):
    """The default: red stays red while the rain eases, until the clear condition holds."""
    readings = rain("g1", list(range(0, 24 * 60, 10)), [0.0] * 12 + [10.0] * 12 + [0.0] * 120)
    findings, _ = run(Engine([national]), readings)
    assert summary(findings) == [(0, "clear"), (160, "orange"), (210, "red"), (950, "clear")]
    stepped, _ = run(Engine([national.model_copy(update={"downgrade": True})]), readings)
    assert [g for _, g in summary(stepped)] == ["clear", "orange", "red", "orange", "yellow",
                                                "blue", "clear"]
