"""Untrusted device JSON to Readings (yujing.connectors.parse)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yujing.connectors.parse import parse_payload, parse_ts, reading_from
from yujing.domain import Reading

TS = 1_748_764_800_000  # 2025-06-01T08:00:00Z
OK = {"station": "DG001", "metric": "rain_mm", "ts": TS, "value": 1.5}


def payload(doc) -> bytes:
    return orjson.dumps(doc)


def one_reason(item, defaults=None) -> str:
    ok, bad = parse_payload(payload(item), defaults)
    assert ok == []
    assert len(bad) == 1
    return bad[0].reason


# --- valid payloads ------------------------------------------------------------------------


def test_single_object():
    ok, bad = parse_payload(payload(OK))
    assert ok == [Reading("DG001", "rain_mm", TS, 1.5)]
    assert bad == []


def test_list_of_readings_with_optional_fields():
    items = [OK, {**OK, "ts": TS + 1, "value": 2, "quality": "good", "seq": 7, "unit": "mm"}]
    ok, bad = parse_payload(payload(items))
    assert ok == [Reading("DG001", "rain_mm", TS, 1.5), Reading("DG001", "rain_mm", TS + 1, 2.0)]
    assert isinstance(ok[1].value, float)
    assert bad == []


def test_empty_list_is_nothing_and_no_error():
    assert parse_payload(b"[]") == ([], [])


def test_iso_timestamps_with_offset_or_z():
    r = reading_from({**OK, "ts": "2025-06-01T16:00:00+08:00"})
    assert r.ts == TS
    assert reading_from({**OK, "ts": "2025-06-01T08:00:00Z"}).ts == TS
    assert reading_from({**OK, "ts": "2025-06-01T08:00:00.250Z"}).ts == TS + 250


def test_float_epoch_ms_is_accepted():
    assert reading_from({**OK, "ts": float(TS) + 0.7}).ts == TS


@settings(max_examples=1000, deadline=None)
@given(st.integers(946_684_800_000, 4_102_444_800_000), st.sampled_from([0, 8, -5, 5.5]))
def test_iso_timestamp_is_exact_to_the_millisecond(ms, offset_h):
    """An ISO time must give the same epoch ms as the number would (no float rounding)."""
    tz = timezone(timedelta(hours=offset_h))
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    text = dt.astimezone(tz).isoformat(timespec="milliseconds")
    assert parse_ts(text) == ms


def test_iso_known_float_trap():
    # dt.timestamp() * 1000 gives ...363 for this time
    assert parse_ts("2038-05-07T04:44:29.364+00:00") == 2_156_820_269_364


def test_defaults_from_the_topic_fill_missing_fields():
    ok, bad = parse_payload(payload({"ts": TS, "value": 3}),
                            defaults={"station": "DG002", "metric": "water_level_m"})
    assert bad == []
    assert ok == [Reading("DG002", "water_level_m", TS, 3.0)]


def test_the_payloads_metric_overrides_the_topics_but_its_station_may_not_differ():
    ok, _ = parse_payload(payload({**OK}), defaults={"station": "DG001", "metric": "wind_speed_ms"})
    assert ok == [Reading("DG001", "rain_mm", TS, 1.5)]
    # issue 12: the topic's station is binding, or a device could write any station
    ok, bad = parse_payload(payload({**OK}), defaults={"station": "OTHER", "metric": "wind_speed_ms"})
    assert ok == [] and [r.code for r in bad] == ["topic_mismatch"]


def test_station_forms():
    for station in ("DG001", "a", "gw-3.line:2", "X_1"):
        assert reading_from({**OK, "station": station}).station == station


# --- rejections, each with its reason ---------------------------------------------------------


def test_not_json():
    ok, bad = parse_payload(b"{not json")
    assert ok == []
    assert len(bad) == 1
    assert bad[0].index is None
    assert bad[0].reason.startswith("body is not valid JSON")
    assert bad[0].raw == b"{not json"


def test_not_utf8_is_not_json():
    ok, bad = parse_payload(b"\xff\xfe{}")
    assert ok == [] and "not valid JSON" in bad[0].reason


@pytest.mark.parametrize("doc, kind", [(5, "int"), ("x", "str"), (None, "NoneType")])
def test_not_an_object(doc, kind):
    ok, bad = parse_payload(payload(doc))
    assert ok == []
    assert bad[0].reason == f"a reading must be a JSON object, got {kind}"
    assert bad[0].index is None


def test_list_item_not_an_object():
    ok, bad = parse_payload(payload([OK, [1, 2]]))
    assert ok == [Reading("DG001", "rain_mm", TS, 1.5)]
    assert (bad[0].index, bad[0].reason) == (1, "a reading must be a JSON object, got list")


def test_unknown_field():
    reason = one_reason({**OK, "valeu": 3, "extra": 1})
    assert "unknown field(s) ['extra', 'valeu']" in reason


@pytest.mark.parametrize("field", ["station", "metric", "ts", "value"])
def test_missing_field(field):
    item = {k: v for k, v in OK.items() if k != field}
    assert one_reason(item) == f"missing field '{field}'"


@pytest.mark.parametrize("station", ["", "-lead", "has space", "x" * 65, 17, None, "站点"])
def test_bad_station(station):
    assert one_reason({**OK, "station": station}).startswith("station must be")


@pytest.mark.parametrize("metric", ["RainMM", "rain mm", "1rain", "", "rain-mm", 3, "r" * 65])
def test_bad_metric(metric):
    assert one_reason({**OK, "metric": metric}).startswith("metric must be snake_case")


@pytest.mark.parametrize("value", [True, False, "1.5", None, [1]])
def test_value_not_a_number(value):
    assert one_reason({**OK, "value": value}) == "value must be a number"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_value_not_finite(value):
    # JSON cannot carry NaN; a caller building dicts (line protocol, CSV) can.
    with pytest.raises(ValueError, match="not finite"):
        reading_from({**OK, "value": value})


def test_json_infinity_literal_is_rejected():
    ok, bad = parse_payload(b'{"station":"DG001","metric":"rain_mm","ts":1748764800000,"value":1e400}')
    assert ok == [] and len(bad) == 1


def test_ts_in_seconds_gets_a_hint():
    reason = one_reason({**OK, "ts": TS // 1000})
    assert "outside 2000..2100" in reason
    assert "looks like seconds: send milliseconds" in reason


def test_ts_out_of_range_without_the_seconds_hint():
    reason = one_reason({**OK, "ts": 5})
    assert "outside 2000..2100" in reason and "seconds" not in reason
    assert "outside 2000..2100" in one_reason({**OK, "ts": TS * 1000})


def test_iso_ts_without_offset():
    assert one_reason({**OK, "ts": "2025-06-01T08:00:00"}) == (
        "ts has no UTC offset: add one, e.g. +08:00 or Z")


def test_ts_not_iso():
    assert "is not ISO 8601" in one_reason({**OK, "ts": "yesterday"})


@pytest.mark.parametrize("ts", [True, None, [TS]])
def test_ts_wrong_type(ts):
    assert one_reason({**OK, "ts": ts}).startswith("ts must be epoch milliseconds")


def test_ts_not_finite():
    with pytest.raises(ValueError, match="ts is not finite"):
        parse_ts(math.inf)


def test_the_valid_rest_of_a_batch_is_kept():
    items = [
        OK,
        {**OK, "station": "bad station"},
        {**OK, "ts": TS + 60_000, "value": 2.0},
        {**OK, "ts": "2025-06-01T08:00:00"},
        "not an object",
        {**OK, "station": "DG002", "ts": "2025-06-01T16:01:00+08:00"},
    ]
    ok, bad = parse_payload(payload(items))
    assert ok == [Reading("DG001", "rain_mm", TS, 1.5),
                  Reading("DG001", "rain_mm", TS + 60_000, 2.0),
                  Reading("DG002", "rain_mm", TS + 60_000, 1.5)]
    assert [b.index for b in bad] == [1, 3, 4]
    assert bad[0].raw == items[1]
    assert all(b.reason for b in bad)
