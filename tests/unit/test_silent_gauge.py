"""A gauge that falls silent during a flood (issue 15 part 4): its no-data warning carries
the open warning's grade and names the last reading; the open warning is held while the
gauge is silent and continues, or clears by its rule, once data returns."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from yujing.domain import EventKind, Grade, Reading, Term
from yujing.envelope import decode, encode_readings
from yujing.pipeline import Pipeline
from yujing.pipeline.held import LastReadings
from yujing.rules.loader import load_rules
from yujing.rules.schema import Rule
from yujing.rules.wording import describe
from yujing.stations import Registry, Station

ROOT = Path(__file__).resolve().parents[2]
MIN = 60_000
T0 = int(datetime(2025, 6, 15, 5, 0, tzinfo=UTC).timestamp() * 1000)  # 13:00 in Shanghai
LEVELS = {"warning_level_m": 6.5, "guaranteed_level_m": 8.0, "historic_max_m": 8.6,
          "blue_margin_m": 0.3}
REG = Registry([
    Station(id="R", name="石龙", kind="river_gauge", town="石龙镇", expected_interval="5m",
            thresholds=LEVELS),
    Station(id="Q", name="雨量", kind="rain_gauge", town="石龙镇", expected_interval="5m"),
])
PEAK = T0 + 65 * MIN  # 14:05: the river's last reading before it falls silent
BACK = T0 + 190 * MIN  # 16:10: two hours of silence after the no-data limit passed


@pytest.fixture(scope="module")
def rules() -> list[Rule]:
    return load_rules(ROOT / "rules")


def river(after: list[float]) -> list[Reading]:
    """13:00 to 14:05 rising 7.0 → 8.2 m (orange at 8.0), silent until 16:10, then ``after``
    every 5 minutes; the rain gauge beside it reports 0 mm every 5 minutes throughout."""
    out = [Reading("R", "water_level_m", T0 + k * 5 * MIN, round(7.0 + k * 1.2 / 13, 3))
           for k in range(14)]
    out += [Reading("R", "water_level_m", BACK + k * 5 * MIN, v) for k, v in enumerate(after)]
    end = BACK + max(len(after), 1) * 5 * MIN
    out += [Reading("Q", "rain_mm", t, 0.0) for t in range(T0, end, 5 * MIN)]
    return sorted(out, key=lambda r: (r.ts, r.station))


def run(p: Pipeline, readings: list[Reading], step_min: int = 5) -> list:
    """Envelopes of ``step_min`` minutes, each followed by the event-time no-data check."""
    parts: dict[int, list[Reading]] = {}
    for r in readings:
        parts.setdefault((r.ts - T0) // (step_min * MIN), []).append(r)
    evs = []
    for k in sorted(parts):
        now = max(r.ts for r in parts[k])
        evs += p.handle(decode(encode_readings(parts[k])), now).events
        evs += p.check_nodata(now, clock="event")
    return evs


def of(evs: list, rule: str, station: str = "R") -> list:
    return [e for e in evs if e.rule == rule and e.station == station]


def test_silent_at_orange_raises_no_data_at_orange_naming_the_last_reading(rules):
    evs = run(Pipeline(rules, REG), river([]))
    (nd,) = of(evs, "nodata")
    assert (nd.kind, Grade(nd.grade), nd.ts) == (EventKind.RAISED, Grade.ORANGE, PEAK + 15 * MIN)
    assert nd.reason_zh == "水位站已15分钟无数据；最后读数8.20米（14:05），当时为橙色预警"
    assert nd.reason_en.startswith("Water level gauge silent for 15 min; last reading 8.20 m (14:05)")
    assert nd.measure_zh == "15分钟无数据，最后8.20米"
    # the river warning itself is neither cleared nor downgraded by two hours of silence
    level = of(evs, "river-level")
    assert [e.kind for e in level] == [EventKind.RAISED, EventKind.UPGRADED]
    assert Grade(level[-1].grade) == Grade.ORANGE


def test_data_back_high_clears_no_data_once_and_the_orange_warning_continues(rules):
    evs = run(Pipeline(rules, REG), river([8.3, 8.25, 8.1]))
    nd = of(evs, "nodata")
    assert [(e.kind, e.ts) for e in nd] == [(EventKind.RAISED, PEAK + 15 * MIN),
                                            (EventKind.CLEARED, BACK)]
    assert nd[1].reason_zh.startswith("数据恢复")
    level = of(evs, "river-level")
    assert [e.kind for e in level] == [EventKind.RAISED, EventKind.UPGRADED]  # still open


def test_data_back_low_clears_no_data_and_the_river_warning_by_its_rule(rules):
    evs = run(Pipeline(rules, REG), river([5.0] * 9))
    assert [e.kind for e in of(evs, "nodata")] == [EventKind.RAISED, EventKind.CLEARED]
    level = of(evs, "river-level")
    assert [e.kind for e in level] == [EventKind.RAISED, EventKind.UPGRADED, EventKind.CLEARED]
    assert level[-1].ts == BACK + 30 * MIN  # the rule's clear: under the line for 30 minutes


def test_a_station_with_no_open_warning_gets_the_plain_blue_no_data(rules):
    quiet = [Reading("R", "water_level_m", T0 + k * 5 * MIN, 5.0) for k in range(14)]
    quiet += [Reading("Q", "rain_mm", t, 0.0) for t in range(T0, T0 + 120 * MIN, 5 * MIN)]
    evs = run(Pipeline(rules, REG), sorted(quiet, key=lambda r: r.ts))
    (nd,) = of(evs, "nodata")
    assert Grade(nd.grade) == Grade.BLUE
    assert nd.reason_zh == "超过15分钟未收到数据"


@pytest.mark.parametrize("step", [1, 30, 60 * 24])
def test_the_same_no_data_warning_however_the_readings_were_cut(rules, step):
    """One large chunk (the backtest) finds the silence inside the data, after the chunk's
    later events were applied; it must grade it as of the silence, as the timer did."""
    want = [(e.kind, int(e.grade), e.ts, e.reason_zh)
            for e in of(run(Pipeline(rules, REG), river([5.0] * 9)), "nodata")]
    got = [(e.kind, int(e.grade), e.ts, e.reason_zh)
           for e in of(run(Pipeline(rules, REG), river([5.0] * 9), step), "nodata")]
    assert got == want


def test_a_restored_pipeline_keeps_the_grade_and_the_last_reading(rules):
    data = river([8.3])
    before = [r for r in data if r.ts <= PEAK + 5 * MIN]
    after = [r for r in data if r.ts > PEAK + 5 * MIN]
    a = Pipeline(rules, REG)
    run(a, before)
    b = Pipeline(rules, REG)
    b.restore(a.snapshot())
    (nd,) = [e for e in of(run(b, after), "nodata") if e.kind == EventKind.RAISED]
    assert Grade(nd.grade) == Grade.ORANGE and "最后读数8.20米（14:05）" in nd.reason_zh


def test_a_checkpoint_of_before_restores_with_the_grade_and_no_reading(rules):
    """A snapshot written before open warnings were kept (no ``held``): the grade comes
    from the lifecycle's open warnings; the reading is not known, its time is."""
    data = river([])
    a = Pipeline(rules, REG)
    run(a, [r for r in data if r.ts <= PEAK + 5 * MIN])
    snap = msgspec.msgpack.decode(a.snapshot())
    del snap["held"]
    b = Pipeline(rules, REG)
    b.restore(msgspec.msgpack.encode(snap))
    (nd,) = of(run(b, [r for r in data if r.ts > PEAK + 5 * MIN]), "nodata")
    assert Grade(nd.grade) == Grade.ORANGE
    assert nd.reason_zh == "站点已15分钟无数据；最后读数时间14:05，当时为橙色预警"


TIMED = Rule.model_validate({"id": "level-timed", "name": "水位（定时）", "hazard": "flood",
                             "select": {"kind": "river_gauge"}, "evaluate_every": "5m",
                             "grades": {"orange": "max(water_level_m, 30m) >= 8"}})
# a rule on the rain gauge, so its readings move the engine's event time on
RAIN = Rule.model_validate({"id": "rain-any", "name": "雨", "hazard": "rainstorm",
                            "grades": {"blue": "last(rain_mm) > 1000"}})


def test_a_timed_rule_is_not_cleared_by_its_window_emptying_while_silent():
    plain = Registry([s.model_copy(update={"expected_interval": None})
                      if s.id == "R" else s for s in REG.stations.values()])
    # without the no-data watch the emptying window clears the warning: what is held here
    unwatched = of(run(Pipeline([TIMED, RAIN], plain), river([])), "level-timed")
    assert [e.kind for e in unwatched] == [EventKind.RAISED, EventKind.CLEARED]
    watched = of(run(Pipeline([TIMED, RAIN], REG), river([])), "level-timed")
    assert [e.kind for e in watched] == [EventKind.RAISED]
    # data back at a high level: the warning continues; data back low: the rule clears it
    high = of(run(Pipeline([TIMED, RAIN], REG), river([8.3] * 3)), "level-timed")
    assert [e.kind for e in high] == [EventKind.RAISED]
    low = of(run(Pipeline([TIMED, RAIN], REG), river([5.0] * 9)), "level-timed")
    assert [e.kind for e in low] == [EventKind.RAISED, EventKind.CLEARED]
    assert low[-1].ts >= BACK


def test_last_readings_keep_the_newest_per_watched_series_and_ignore_late_ones():
    last = LastReadings()
    for i in range(10):   # more series than the first allocation
        last.watch(f"S{i}", "water_level_m")
    r = [Reading("S1", "water_level_m", 3 * MIN, 7.5), Reading("S1", "water_level_m", 1 * MIN, 9.9),
         Reading("S1", "rain_mm", 4 * MIN, 2.0), Reading("X", "water_level_m", 5 * MIN, 1.0),
         Reading("S9", "water_level_m", 2 * MIN, 6.0)]
    last.update(decode(encode_readings(r)))
    assert last.get("S1", "water_level_m") == (3 * MIN, 7.5)
    assert last.get("S9", "water_level_m") == (2 * MIN, 6.0)
    assert last.get("S2", "water_level_m") is None and last.get("X", "water_level_m") is None
    last.update(decode(encode_readings([Reading("S1", "water_level_m", 2 * MIN, 0.1)])))
    assert last.get("S1", "water_level_m") == (3 * MIN, 7.5)   # late: not the last reading
    last.unwatch("S1", "water_level_m")
    last.watch("S1", "water_level_m")                            # a fresh series, nothing yet
    assert last.get("S1", "water_level_m") is None
    assert last.items() == {"S9": {"water_level_m": [2 * MIN, 6.0]}}


def test_a_last_reading_of_another_day_carries_its_date_on_the_officers_clock():
    at = int(datetime(2020, 1, 22, 22, 40, tzinfo=UTC).timestamp() * 1000)   # 23:40 in Paris
    term = Term("no_data", ">", metric="water_level_m", window_ms=30 * MIN, value=30.0, raw=7.423,
                at_ms=at)
    paris = describe("raised", Grade.ORANGE, [term], zone="Europe/Paris")
    assert paris.zh == "水位站已30分钟无数据；最后读数7.42米（1月22日23:40），当时为橙色预警"
    assert paris.en == ("Water level gauge silent for 30 min; last reading 7.42 m (22 Jan 23:40), "
                        "under the orange warning then")
    shanghai = describe("raised", Grade.ORANGE, [term])   # 06:40 and 07:10 on the 23rd
    assert "最后读数7.42米（06:40）" in shanghai.zh
