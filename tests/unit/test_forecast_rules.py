"""sum_ahead()/max_ahead() in rules: parsing, evaluation when a forecast arrives, words,
and the forecast table surviving a checkpoint (yujing.rules.forecast, engine, wording)."""

from __future__ import annotations

from pathlib import Path

import pytest

from yujing.domain import Forecast, Reading
from yujing.envelope import decode, encode_readings
from yujing.pipeline import Pipeline
from yujing.rules import expr as ex
from yujing.rules.compiled import compile_rule
from yujing.rules.loader import load_rules
from yujing.rules.schema import Rule
from yujing.stations import Registry, Station, load_registry

T = 1_750_000_000_000
H = 3_600_000
MIN = 60_000


def rule(yellow: str, **extra) -> Rule:
    return Rule.model_validate({"id": "fc", "name": "预报", "hazard": "rainstorm",
                                "grades": {"yellow": yellow}, **extra})


COMBINED = rule("sum(rain_mm, 1h) + sum_ahead(rain_mm_fcst, 2h) >= 50")


def feed(p: Pipeline, *items) -> list:
    return p.handle(decode(encode_readings(list(items))), 0).events


def fc(valid: int, value: float, issued: int, station="S1", metric="rain_mm_fcst") -> Forecast:
    return Forecast(station, metric, valid, value, issued)


@pytest.mark.parametrize("text, message", [
    ("sum_ahead(rain_mm, 3h) >= 1", "ends in _fcst"),
    ("sum_ahead(rain_mm_fcst) >= 1", "expected ','"),
    ("max_ahead(rain_mm_fcst, 0m) >= 1", "longer than zero"),
    ("sum_ahed(rain_mm_fcst, 3h) >= 1", "did you mean sum_ahead()"),
])
def test_bad_look_aheads_fail_at_load_with_the_fix(text, message):
    with pytest.raises(ex.ExprError, match=message):
        ex.parse_condition(text)


def test_look_aheads_read_forecasts_not_series_and_add_no_history():
    e = ex.parse_condition("sum(rain_mm, 1h) + sum_ahead(rain_mm_fcst, 2h) >= 50")
    assert e.metrics == {"rain_mm"} and e.forecasts == {"rain_mm_fcst"}
    assert e.horizon_ms == H
    assert ex.unparse(e.tree) == "sum(rain_mm, 1h) + sum_ahead(rain_mm_fcst, 2h) >= 50"
    only = compile_rule(rule("max_ahead(water_level_m_fcst, 6h) >= 5"))
    assert only.metrics == set() and only.forecasts == {"water_level_m_fcst"}


def test_a_forecast_alone_is_judged_at_its_issue_time_and_raises():
    p = Pipeline([COMBINED], None)
    assert feed(p, Reading("S1", "rain_mm", T, 10.0)) == []
    issued = T + 5 * MIN
    ev = feed(p, fc(T + H, 30.0, issued), fc(T + 2 * H, 15.0, issued), fc(T + 3 * H, 99.0, issued))
    assert [(e.kind.value, e.grade.label, e.ts) for e in ev] == [("raised", "yellow", issued)]
    assert ev[0].reason_zh == ("过去1小时实测与未来2小时预报雨量合计55.0毫米，达到黄色标准（≥50毫米）")
    assert "forecast for the next 2 h" in ev[0].reason_en


def test_now_is_the_stream_time_when_it_is_past_the_issue_time():
    p = Pipeline([rule("sum_ahead(rain_mm_fcst, 1h) >= 20")], None)
    feed(p, Reading("S1", "rain_mm", T + 2 * H, 0.0))
    # issued at T; at stream time T+2h only the value valid at T+3h is ahead within 1 h
    ev = feed(p, fc(T + H, 50.0, T), fc(T + 3 * H, 25.0, T))
    assert [(e.kind.value, e.ts) for e in ev] == [("raised", T + 2 * H)]
    assert ev[0].reason_zh.startswith("未来1小时预报雨量25.0毫米")


def test_a_later_lower_issue_clears_and_a_late_older_one_does_not_raise_again():
    p = Pipeline([COMBINED], None)
    feed(p, Reading("S1", "rain_mm", T, 0.0))
    assert [e.kind.value for e in feed(p, fc(T + H, 60.0, T), fc(T + 2 * H, 10.0, T))] == ["raised"]
    ev = feed(p, fc(T + H, 5.0, T + 10 * MIN), fc(T + 2 * H, 5.0, T + 10 * MIN))
    assert [e.kind.value for e in ev] == ["cleared"]
    assert feed(p, fc(T + H, 60.0, T), fc(T + 2 * H, 10.0, T)) == []   # the retry of issue 1
    assert feed(p, Reading("S1", "rain_mm", T + 20 * MIN, 1.0)) == []


def test_max_ahead_against_a_station_field_reads_in_words():
    reg = Registry([Station.model_validate({"id": "H1", "name": "石龙", "kind": "river_gauge",
                                             "thresholds": {"warning_level_m": 6.5}})])
    p = Pipeline([rule("max_ahead(water_level_m_fcst, 6h) >= station.warning_level_m")], reg)
    ev = feed(p, *(fc(T + k * H, lvl, T, "H1", "water_level_m_fcst")
                   for k, lvl in enumerate([6.0, 6.7, 6.2], start=1)))
    assert ev[0].reason_zh == "未来6小时最高预报水位6.70米，超警戒水位0.20米，达到黄色标准（≥警戒水位6.5米）"


def test_forecasts_survive_a_checkpoint():
    p = Pipeline([COMBINED], None)
    feed(p, Reading("S1", "rain_mm", T, 0.0), fc(T + H, 40.0, T), fc(T + 2 * H, 5.0, T))
    again = Pipeline([COMBINED], None)
    again.restore(p.snapshot())
    assert again.engine.forecasts.snapshot() == p.engine.forecasts.snapshot()
    # 10 mm observed: 10 + 45 ahead, on the restored forecast alone
    ev = feed(again, Reading("S1", "rain_mm", T + 5 * MIN, 10.0))
    assert [(e.kind.value, e.grade.label) for e in ev] == [("raised", "yellow")]


def test_a_rule_that_allows_for_a_silent_gauge_raises_on_the_forecast_alone():
    p = Pipeline([rule("default(sum(rain_mm, 1h), 0) + sum_ahead(rain_mm_fcst, 2h) >= 50")], None)
    ev = feed(p, fc(T + H, 60.0, T))
    assert [(e.kind.value, e.ts) for e in ev] == [("raised", T)]
    assert ev[0].reason_zh.startswith("过去1小时实测与未来2小时预报雨量合计60.0毫米")


def test_the_pack_s_forecast_yellow_judges_only_gauges_that_opt_in():
    root = Path(__file__).resolve().parents[2]
    rules = [r for r in load_rules(root / "rules") if r.id == "rainstorm-guangdong-forecast"]
    reg = load_registry(root / "stations.yaml")   # no example gauge has qpf: 1
    p = Pipeline(rules, reg)
    assert feed(p, fc(T + H, 60.0, T, "DG-HM-R01")) == []
    reg.stations["DG-HM-R01"].thresholds["qpf"] = 1.0
    p = Pipeline(rules, reg)
    assert [e.kind.value for e in feed(p, fc(T + H, 60.0, T, "DG-HM-R01"))] == ["raised"]


def test_forecasts_are_neither_readings_of_the_station_nor_its_clock():
    p = Pipeline([COMBINED], None)
    feed(p, Reading("S1", "rain_mm", T, 0.0))
    feed(p, fc(T + 6 * H, 1.0, T + MIN))
    assert p.watermark == T
    assert ("S1", "rain_mm_fcst") not in p.engine.series
