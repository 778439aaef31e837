"""Forecast ingest parsing and checks (connectors/forecasts.py, validate.py): item by item,
with reasons; the rest of a body goes on."""

from __future__ import annotations

import orjson

from yujing.connectors.forecasts import parse_forecasts_indexed
from yujing.connectors.validate import Deduper, Limits, check
from yujing.domain import Forecast, Reading

T = 1_750_000_000_000
H = 3_600_000


def parse(doc, defaults=None):
    return parse_forecasts_indexed(orjson.dumps(doc), defaults)


def test_one_value_with_epoch_ms_or_iso_times():
    ok, bad = parse({"station": "DG-HM-R01", "metric": "rain_mm_fcst", "issued": T,
                     "valid": "2025-06-16T00:06:40+08:00", "value": 12.5})
    assert bad == []
    assert ok == [(None, Forecast("DG-HM-R01", "rain_mm_fcst", T + 3_600_000, 12.5, T))]


def test_a_compact_issue_keeps_its_good_steps_and_names_the_bad_ones():
    ok, bad = parse([{"station": "S", "metric": "rain_mm_fcst", "issued": T,
                      "steps": [[T + H, 1.0], [T + 2 * H, "lots"], [T + 3 * H], [T + 4 * H, 4]]}])
    assert [(i, f.ts, f.value, f.issued) for i, f in ok] == [(0, T + H, 1.0, T), (0, T + 4 * H, 4.0, T)]
    assert [(r.index, r.reason) for r in bad] == [(0, "steps[1]: value must be a number"),
                                                  (0, "steps[2]: a step is [valid, value]")]


def test_bad_items_are_rejected_with_reasons_and_the_rest_goes_on():
    good = {"station": "S", "metric": "rain_mm_fcst", "issued": T, "valid": T + H, "value": 3}
    ok, bad = parse([
        good,
        {**good, "metric": "rain_mm"},                  # not a forecast metric
        {**good, "issued": "yesterday"},
        {k: v for k, v in good.items() if k != "valid"},
        {**good, "ts": T},                              # a reading's field
        {**good, "value": None},
        {"station": "S", "metric": "rain_mm_fcst", "issued": T, "steps": []},
        "text",
    ])
    assert [i for i, _ in ok] == [0]
    reasons = {r.index: r.reason for r in bad}
    assert "_fcst" in reasons[1]
    assert "issued" in reasons[2] and "ISO 8601" in reasons[2]
    assert reasons[3] == "missing field 'valid'"
    assert "unknown field(s) ['ts']" in reasons[4]
    assert reasons[5] == "value must be a number"
    assert "steps must be a non-empty list" in reasons[6]
    assert "must be a JSON object" in reasons[7]


def test_not_json_is_one_rejection():
    ok, bad = parse_forecasts_indexed(b"{nope")
    assert ok == [] and bad[0].code == "json"


def test_the_topic_binds_the_station():
    item = {"metric": "water_level_m_fcst", "issued": T, "valid": T + H, "value": 6.1}
    ok, bad = parse(item, {"station": "DG-SL-H01"})
    assert bad == [] and ok[0][1].station == "DG-SL-H01"
    ok, bad = parse({**item, "station": "DG-SL-H02"}, {"station": "DG-SL-H01"})
    assert ok == [] and bad[0].code == "topic_mismatch"


def test_a_unit_is_checked_against_the_observed_metric():
    item = {"station": "S", "metric": "rain_mm_fcst", "issued": T, "valid": T + H, "value": 1}
    assert parse({**item, "unit": "mm"})[1] == []
    assert parse({**item, "unit": "m"})[1][0].code == "unit"


def test_checks_apply_the_age_limits_to_the_issue_time_and_bound_the_valid_time():
    limits = Limits()
    now = T
    assert check(Forecast("S", "rain_mm_fcst", now + 24 * H, 3.0, now), now, limits) is None
    future = check(Forecast("S", "rain_mm_fcst", now + 24 * H, 3.0, now + H), now, limits)
    assert future.code == "future" and future.reason.startswith("issued is 60.0 min")
    old = check(Forecast("S", "rain_mm_fcst", now - 30 * 24 * H + H, 3.0, now - 30 * 24 * H), now, limits)
    assert old.code == "too_old"
    before = check(Forecast("S", "rain_mm_fcst", now - H, 3.0, now), now, limits)
    assert before.code == "valid"
    far = check(Forecast("S", "rain_mm_fcst", now + 17 * 24 * H, 3.0, now), now, limits)
    assert far.code == "valid"
    wild = check(Forecast("S", "rain_mm_fcst", now + H, 900.0, now), now, limits)
    assert wild.code == "range"   # the observed metric's physical range


def test_an_observation_named_like_a_forecast_is_refused():
    problem = check(Reading("S", "rain_mm_fcst", T, 1.0), T, Limits())
    assert problem.code == "forecast_as_reading" and "/v1/forecasts" in problem.reason


def test_a_new_issue_for_the_same_valid_time_is_no_duplicate():
    d = Deduper()
    assert d.offer(Forecast("S", "rain_mm_fcst", T + H, 3.0, T)) == "new"
    assert d.offer(Forecast("S", "rain_mm_fcst", T + H, 3.0, T)) == "repeat"
    assert d.offer(Forecast("S", "rain_mm_fcst", T + H, 3.0, T + 60_000)) == "new"
    d.forget([Forecast("S", "rain_mm_fcst", T + H, 3.0, T)])
    assert d.offer(Forecast("S", "rain_mm_fcst", T + H, 3.0, T)) == "new"
