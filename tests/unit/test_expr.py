"""The rule expression language: parsing, located errors, and evaluation through the engine."""

from __future__ import annotations

import numpy as np
import pytest

from yujing.domain import Grade, Reading
from yujing.rules import expr as ex
from yujing.rules.engine import Engine
from yujing.rules.indices import beaufort, fire_index, fire_level
from yujing.rules.schema import Rule
from yujing.stations import Registry, Station

MIN = 60_000
H = 60 * MIN
T0 = 1_750_000_000_000 - 1_750_000_000_000 % H


# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, metrics, horizon", [
    ("sum(rain_mm, 3h) >= 50", {"rain_mm"}, 3 * H),
    ("last(water_level_m) >= station.warning_level_m", {"water_level_m"}, 0),
    ("max(dust_inlet_temp_c, 1m) > 70 and count(spark, 10m) >= 1", {"dust_inlet_temp_c", "spark"}, 10 * MIN),
    ("not (mean(wind_speed_ms, 10m) < 10.8) or max(wind_gust_ms, 10m) >= 13.9",
     {"wind_speed_ms", "wind_gust_ms"}, 10 * MIN),
    ("fire_index(max(temperature_c, 24h), min(humidity_pct, 24h), days_since(rain_mm, 0.1), "
     "max(wind_speed_ms, 24h)) >= 73", {"temperature_c", "humidity_pct", "rain_mm", "wind_speed_ms"},
     240 * H),
    ("count_stations(max(smoke, 10m) >= 0.5, 10m, town) >= 2", {"smoke"}, 10 * MIN),
    ("abs(last(dust_dp_pa) - station.dust_dp_baseline_pa) > 0.2 * station.dust_dp_baseline_pa",
     {"dust_dp_pa"}, 0),
    ("rate(water_level_m, 1h) > 0.3 and -delta(water_level_m, 1h) < 2", {"water_level_m"}, H),
])
def test_valid_conditions_parse(text, metrics, horizon):
    e = ex.parse_condition(text)
    assert e.metrics == metrics
    assert e.horizon_ms == horizon
    assert e.is_condition


@pytest.mark.parametrize("text, col, fragment", [
    ("summ(rain_mm, 3h) >= 50", 1, "unknown function 'summ': did you mean sum()?"),
    ("sum(rain_mm) >= 50", 12, "sum() needs a window"),
    ("sum(rain_mm, 3h)", 1, "this is a number, not a condition"),
    ("rain_mm > 3", 1, "bare name 'rain_mm'"),
    ("sum(rain_mm, 3h) >= 50 and", 27, "expected a number, a function or '('"),
    ("sum(rain_mm, 3h) >= ", 21, "expected a number"),
    ("1 < 2 < 3", 7, "chained comparisons"),
    ("sum(rain_mm, 3x) > 1", 14, "expected a window"),
    ("last(level_m) > 3h", 17, "a duration (3h) only goes inside a window function"),
    ("station.warning_level_m > last(x) )", 35, "unexpected ')'"),
    ("fire_index(1, 2) > 3", 16, "fire_index() takes 4 to 5 argument(s), got 2"),
])
def test_errors_name_the_column_and_the_fix(text, col, fragment):
    with pytest.raises(ex.ExprError) as info:
        ex.parse_condition(text)
    assert info.value.col + 1 == col, str(info.value)
    assert fragment in str(info.value)


@pytest.mark.parametrize("attack", [
    "__import__('os').system('touch /tmp/pwned') > 0",
    "exec('1') > 0",
    "eval(\"1\") > 0",
    "last(x).__class__ > 0",
    "open('/etc/passwd') > 0",
    "[c for c in ().__class__.__base__.__subclasses__()] > 0",
    "lambda: 1 > 0",
])
def test_code_injection_gets_a_located_error_and_runs_nothing(attack, tmp_path, monkeypatch):
    import builtins
    called = []
    for name in ("eval", "exec", "__import__", "compile", "open"):
        original = getattr(builtins, name)
        monkeypatch.setattr(builtins, name, lambda *a, _o=original, _n=name, **k: (
            called.append(_n) if _n in ("eval", "exec", "compile") else None) or _o(*a, **k))
    with pytest.raises(ex.ExprError) as info:
        ex.parse_condition(attack)
    assert str(info.value).startswith("col ")
    assert "eval" not in called and "exec" not in called and "compile" not in called


def test_unparse_round_trips_to_the_same_tree():
    text = "max(a_c, 1h) > 70 and (count(spark, 10m) >= 1 or not last(b_pa) < station.x_pa * 1.2)"
    e = ex.parse_condition(text)
    assert ex.parse_condition(ex.unparse(e.tree)).tree == e.tree


# --- evaluation through the engine ---------------------------------------------------------


def rule(grades: dict, clear: str | None = None, **kw) -> Rule:
    return Rule.model_validate({"id": "r", "name": "n", "hazard": "h", "grades": grades,
                                **({"clear": clear} if clear else {}), **kw})


def cols(readings: list[Reading]):
    st: dict[str, int] = {}
    me: dict[str, int] = {}
    si = [st.setdefault(r.station, len(st)) for r in readings]
    mi = [me.setdefault(r.metric, len(me)) for r in readings]
    return (list(st), np.asarray(si, np.uint32), list(me), np.asarray(mi, np.uint32),
            np.asarray([r.ts for r in readings], np.int64), np.asarray([r.value for r in readings]))


def findings(engine: Engine, readings: list[Reading]):
    f, _ = engine.process(*cols(sorted(readings, key=lambda r: r.ts)))
    return [((x.ts - T0) // MIN, x.station, "clear" if x.clear else x.grade.label + (
        "?" if x.pending else "")) for x in f]


def series(station: str, metric: str, values: list[float], step_min: int = 1, start: int = 0):
    return [Reading(station, metric, T0 + (start + i * step_min) * MIN, float(v))
            for i, v in enumerate(values)]


def test_for_keeps_a_grade_pending_until_it_has_held():
    r = rule({"red": {"when": "last(level_m) >= 5", "for": "3m"}}, "last(level_m) < 4")
    got = findings(Engine([r]), series("s", "level_m", [1, 6, 6, 6, 6, 3, 6, 6, 6, 6, 6]))
    # pending at 1, red once held 3 minutes (at 4); dips at 5 (clear band: < 4) ...
    assert got == [(0, "s", "clear"), (1, "s", "red?"), (4, "s", "red"), (5, "s", "clear"),
                   (6, "s", "red?"), (9, "s", "red")]


def test_for_is_the_same_when_split_into_envelopes():
    r = rule({"red": {"when": "last(level_m) >= 5", "for": "3m"}}, "last(level_m) < 4")
    data = series("s", "level_m", [1, 6, 6, 6, 6, 3, 6, 6, 6, 6, 6])
    whole = findings(Engine([r]), data)
    e = Engine([r])
    split = [x for reading in data for x in findings(e, [reading])]
    assert split == whole


def test_clear_for_is_a_minimum_clear_time():
    r = rule({"orange": "last(level_m) >= 5"}, {"when": "last(level_m) < 4", "for": "2m"})
    got = findings(Engine([r]), series("s", "level_m", [6, 3, 3, 6, 3, 3, 3]))
    assert got == [(0, "s", "orange"), (6, "s", "clear")]


def test_station_fields_come_from_the_registry_per_station():
    reg = Registry([Station(id="a", name="A", kind="river_gauge", thresholds={"warn_m": 5}),
                    Station(id="b", name="B", kind="river_gauge", thresholds={"warn_m": 8})])
    r = rule({"yellow": "last(level_m) >= station.warn_m"}, "last(level_m) < station.warn_m - 1")
    got = findings(Engine([r], registry=reg),
                   series("a", "level_m", [6]) + series("b", "level_m", [6], start=1)
                   + series("c", "level_m", [99], start=2))
    # b is under its own level; c has no level in the registry, so it never fires
    assert [x for x in got if x[2] != "clear"] == [(0, "a", "yellow")]
    assert (1, "b", "clear") in got and not any(x[1] == "c" for x in got)


def test_compound_condition_over_two_metrics_of_one_station():
    r = rule({"red": "max(dust_inlet_temp_c, 5m) > 70 and count(spark, 10m) >= 1"},
             "max(dust_inlet_temp_c, 5m) <= 60")
    data = (series("f1", "dust_inlet_temp_c", [65, 72, 73, 74, 55, 50, 50, 50, 50, 50])
            + [Reading("f1", "spark", T0 + 3 * MIN + 30_000, 1.0)])
    # hot from minute 1, but red only once the spark arrives (3.5 min); clear when the
    # 5-minute maximum is back under 60 (minute 8: the 74 at minute 3 has left the window)
    assert findings(Engine([r]), data) == [(3, "f1", "red"), (8, "f1", "clear")]
    # heat alone, or a spark alone, is not the compound warning
    assert findings(Engine([r]), data[:-1]) == [(8, "f1", "clear")]
    assert all(g != "red" for _, _, g in findings(
        Engine([r]), [Reading("f1", "spark", T0, 1.0), *series("f1", "dust_inlet_temp_c", [40])]))


def test_selectors_pick_stations_by_registry_fields():
    reg = Registry([Station(id="w1", name="W", kind="wind", town="虎门镇", tags=["coast"]),
                    Station(id="w2", name="W", kind="wind", town="清溪镇"),
                    Station(id="r1", name="R", kind="rain_gauge", town="虎门镇", tags=["coast"])])
    r = rule({"blue": "last(x) >= 1"}, select={"kind": "wind", "tags": ["coast"]})
    got = findings(Engine([r], registry=reg), [Reading(s, "x", T0, 5.0) for s in ("w1", "w2", "r1", "zz")])
    assert got == [(0, "w1", "blue")]


def test_count_stations_upgrades_when_two_cameras_of_a_town_see_smoke():
    reg = Registry([Station(id=c, name=c, kind="camera", town=t) for c, t in
                    (("c1", "清溪镇"), ("c2", "清溪镇"), ("c3", "凤岗镇"))])
    r = rule({"yellow": "max(smoke, 10m) >= 0.5",
              "orange": "count_stations(max(smoke, 10m) >= 0.5, 10m, town) >= 2"},
             "max(smoke, 30m) < 0.5")
    data = [Reading("c1", "smoke", T0, 0.9), Reading("c3", "smoke", T0 + 2 * MIN, 0.8),
            Reading("c2", "smoke", T0 + 5 * MIN, 0.7)]
    got = findings(Engine([r], registry=reg), data)
    assert got == [(0, "c1", "yellow"), (2, "c3", "yellow"), (5, "c2", "orange")]


def test_rate_delta_jump_spread_and_days_since():
    values = [1.0, 1.1, 1.3, 1.6, 2.0, 2.0, 2.0]
    checks = {
        "rate": ("rate(level_m, 4m) >= 16", 4),      # per hour: (2.0-1.1) m in 3 min = 18 m/h
        "jump": ("jump(level_m) >= 0.35", 4),         # 1.6 → 2.0
        "delta": ("delta(level_m, 10m) >= 1", 4),     # 2.0 - 1.0
        "spread": ("count(level_m, 3m) >= 3 and spread(level_m, 3m) == 0", 6),  # flatline
    }
    for name, (cond, first) in checks.items():
        got = findings(Engine([rule({"blue": cond})]), series("s", "level_m", values))
        raised = [m for m, _, g in got if g == "blue"]
        assert raised and raised[0] == first, (name, got)
    rain = series("s", "rain_mm", [5, 0, 0, 0], step_min=24 * 60)
    got = findings(Engine([rule({"yellow": "days_since(rain_mm, 0.1) >= 3"})]), rain)
    assert [(m // (24 * 60), g) for m, _, g in got if g == "yellow"] == [(3, "yellow")]


def test_fire_index_components_follow_the_standard_tables():
    # hot (30 °C → 20), dry (20 % → 20), 10 dry days (→ 50), force 8 wind (→ 40) = 130
    assert fire_index(np.array([30.0]), np.array([20.0]), np.array([10.0]), np.array([18.0]))[0] == 130
    # cool and humid, rain today, calm: 0
    assert fire_index(np.array([4.0]), np.array([80.0]), np.array([0.0]), np.array([0.2]))[0] == 0
    assert fire_level(np.array([25, 26, 50, 51, 72, 73, 90, 91])).tolist() == [1, 2, 2, 3, 3, 4, 4, 5]
    assert beaufort(np.array([0.0, 10.8, 13.8, 17.2, 32.7, 60.0])).tolist() == [0, 6, 6, 8, 12, 17]


def test_nan_never_raises():
    r = rule({"red": "last(level_m) >= station.nope"})
    assert findings(Engine([r]), series("s", "level_m", [1e9])) == [(0, "s", "clear")]


# --- message templates --------------------------------------------------------------------


def test_rule_message_is_rendered_into_the_event_with_station_details():
    from yujing.envelope import decode, encode_readings
    from yujing.pipeline import Pipeline
    reg = Registry([Station(id="g", name="虎门雨量站", kind="rain_gauge", town="虎门镇",
                            plan="转移低洼地带群众")])
    r = rule({"orange": "sum(rain_mm, 3h) >= 50"}, message={
        "zh": "{town}{station_name}过去{window}雨量{value:.1f}毫米，{grade_zh}预警。{plan}",
        "en": "{station_name}: {value} mm in {window} ({grade})"})
    p = Pipeline([r], reg)
    out = p.handle(decode(encode_readings(series("g", "rain_mm", [25, 26]))), 0)
    [ev] = out.events
    assert ev.messages["zh"] == "虎门镇虎门雨量站过去3h雨量51.0毫米，橙色预警。转移低洼地带群众"
    assert ev.messages["en"] == "虎门雨量站: 51 mm in 3h (orange)"


@pytest.mark.parametrize("template, fragment", [
    ("{station.__class__}", "unknown placeholder {station.__class__}"),
    ("{value!r}", "conversions are not allowed"),
    ("{town:>{value}}", "only {value} takes a format"),
    ("{nope}", "unknown placeholder {nope}"),
    ("{", "bad template"),
])
def test_bad_templates_fail_at_load(template, fragment):
    with pytest.raises(Exception) as info:
        rule({"red": "last(x) > 1"}, message={"zh": template})
    assert fragment in str(info.value)


# --- anomaly models in rules ---------------------------------------------------------------


def test_anomaly_parses_with_and_without_model_keyword():
    a = ex.parse_condition("anomaly(model=water-level-if) >= 0.9")
    b = ex.parse_condition("anomaly(water-level-if) >= 0.9")
    assert a.tree == b.tree and a.models == {"water-level-if"}
    with pytest.raises(ex.ExprError, match="needs a model name"):
        ex.parse_condition("anomaly() > 1")


def test_a_rule_fires_on_an_anomaly_score_held_for_a_while():
    import pandas as pd

    from yujing.models import make_detector

    rng = np.random.default_rng(3)
    n = 600
    history = pd.DataFrame({"ts": T0 - (n - np.arange(n)) * MIN, "station": "s",
                            "metric": "level_m", "value": 2.0 + rng.normal(0, 0.01, n)})
    model = make_detector("spike").fit(history, metric="level_m")
    r = rule({"yellow": {"when": "anomaly(model=lvl-spike) >= 0.9", "for": "2m"}},
             "anomaly(model=lvl-spike) < 0.5")
    calm = list(2.0 + rng.normal(0, 0.01, 30))
    surge = [2.0 + 0.5 * (i + 1) for i in range(6)]  # a sudden rise the history never had
    data = series("s", "level_m", calm + surge)
    with_model = findings(Engine([r], models={"lvl-spike": model}), data)
    graded = [(m, g) for m, _, g in with_model if g != "clear"]
    assert graded and graded[0][1] == "yellow?" and any(g == "yellow" for _, g in graded)
    assert graded[0][0] >= 30  # nothing during the calm part
    # the same data split reading by reading gives the same findings
    e = Engine([r], models={"lvl-spike": model})
    assert [x for reading in data for x in findings(e, [reading])] == with_model
    # without the model (not trained yet) the rule never fires
    assert findings(Engine([r], models={}), data) == []


# --- evaluate_every, default(), month()/hour(), explanations ---------------------------------


def test_evaluate_every_lets_time_alone_clear_an_event_rule():
    r = rule({"orange": "max(spark, 10m) >= 1"}, "not (max(spark, 30m) >= 1)",
             evaluate_every="1m")
    data = [Reading("f", "spark", T0, 1.0), Reading("f", "spark", T0 + 2 * H, 1.0),
            Reading("f", "temp_c", T0 + 3 * H, 20.0)]  # another metric moves event time on
    other = rule({"blue": "last(temp_c) > 100"}, "last(temp_c) < -100", id="other")
    e = Engine([r, other])
    got = findings(e, data)
    assert [x for x in got if x[2] != "clear" or x[0] > 0] == [
        (0, "f", "orange"), (30, "f", "clear"), (120, "f", "orange"), (150, "f", "clear")]
    # identical when the readings come one by one
    e2 = Engine([r, other])
    assert [x for reading in data for x in findings(e2, [reading])] == got
    # without evaluate_every the warning never clears: only readings are evaluation points
    plain = Engine([r.model_copy(update={"evaluate_every": None}), other])
    assert [g for _, st, g in findings(plain, data) if g != "clear"] == ["orange"]
    assert [m for m, _, g in findings(Engine([r.model_copy(update={"evaluate_every": None}),
                                               other]), data) if g == "clear"] == []


def test_default_gives_a_fallback_for_a_missing_station_field():
    reg = Registry([Station(id="a", name="A", kind="k", thresholds={"blue_cm": 30}),
                    Station(id="b", name="B", kind="k")])
    r = rule({"blue": "last(depth_cm) >= default(station.blue_cm, 15)"})
    got = findings(Engine([r], registry=reg),
                   series("a", "depth_cm", [20]) + series("b", "depth_cm", [20], start=1))
    assert [x for x in got if x[2] == "blue"] == [(1, "b", "blue")]
    assert ex.parse_condition("last(x) >= default(station.f, 1)").optional_fields == {"f"}


def test_month_and_hour_are_local_time():
    # T0 + 16 h 30 min UTC on 2025-06-15 is 00:30 on 2025-06-16 in Dongguan
    t = 1_749_945_600_000 + 16 * H + 30 * MIN  # 2025-06-15T00:00Z + 16:30
    r = rule({"blue": "hour() == 0 and month() == 6 and last(x) > 0"})
    f, _ = Engine([r]).process(["s"], np.array([0], np.uint32), ["x"], np.array([0], np.uint32),
                               np.array([t]), np.array([1.0]))
    assert [x.grade for x in f] == [Grade.BLUE]


def test_reason_quotes_the_branch_that_held():
    r = rule({"orange": "mean(wind_ms, 10m) >= 24.5 or max(gust_ms, 10m) >= 28.5"})
    f, _ = Engine([r]).process(*cols(series("s", "wind_ms", [5.0]) + series("s", "gust_ms", [30.0])))
    [orange] = [x for x in f if x.grade == Grade.ORANGE]
    assert orange.reason.startswith("max(gust_ms, 10m) = 30 (orange:")
    assert orange.value == 30.0 and orange.window == "10m"
