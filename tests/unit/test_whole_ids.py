"""Ids are matched whole (issue 12, finding 4): with ``re.match`` and ``$``, an id with a trailing
newline passed validation, still matched a ``DG-HM-*`` token scope, and its raw newline split the
sink's line-protocol point so that InfluxDB refused the whole batch."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from tests.unit.test_connectors import TS
from yujing.connectors.events import parse_events
from yujing.connectors.influx import reading_lines, warning_line
from yujing.connectors.lineproto import parse_lines
from yujing.connectors.parse import parse_payload, reading_from, readings_from_record
from yujing.domain import Reading
from yujing.envelope import decode, encode_readings
from yujing.rules.schema import Rule
from yujing.stations import Registry, Station


@pytest.mark.parametrize("tail", ["\n", "\r\n", " ", "\t"])
def test_station_with_trailing_whitespace_is_rejected(tail):
    with pytest.raises(ValueError, match="station must be"):
        reading_from({"station": "DG-HM-R01" + tail, "metric": "rain_mm", "ts": TS, "value": 1})
    with pytest.raises(ValueError, match="station must be"):
        readings_from_record({"station": "DG-HM-R01" + tail, "ts": TS, "rain_mm": 1})
    readings, rejected = parse_payload(orjson.dumps(
        [{"station": "DG-HM-R01" + tail, "metric": "rain_mm", "ts": TS, "value": 1},
         {"station": "DG-HM-R01", "metric": "rain_mm", "ts": TS, "value": 2}]))
    assert [r.station for r in readings] == ["DG-HM-R01"]
    assert len(rejected) == 1 and "station" in rejected[0].reason


def test_metric_with_trailing_newline_is_rejected():
    with pytest.raises(ValueError, match="metric must be"):
        reading_from({"station": "DG-HM-R01", "metric": "rain_mm\n", "ts": TS, "value": 1})
    readings, bad = readings_from_record({"station": "DG-HM-R01", "ts": TS, "rain_mm\n": 1,
                                          "water_level_m": 2})
    assert [r.metric for r in readings] == ["water_level_m"] and len(bad) == 1


def test_event_camera_and_image_url_are_matched_whole():
    ok = {"type": "smoke", "camera": "DG-FF-C01", "ts": TS, "confidence": 0.9,
          "image_url": "https://cam.example/1.jpg"}
    events, rejected = parse_events(orjson.dumps([
        ok, {**ok, "camera": "DG-FF-C01\n"}, {**ok, "image_url": "https://cam.example/1.jpg\n"}]))
    assert len(events) == 1 and len(rejected) == 2


def test_line_protocol_station_tag_cannot_carry_an_escaped_newline():
    readings, rejected = parse_lines(
        f"rain,station=DG-HM-R01\\n rain_mm=1 {TS}\nrain,station=DG-HM-R01 rain_mm=2 {TS}".encode(),
        "ms", TS)
    assert [r.value for r in readings] == [2.0]
    assert len(rejected) == 1


def test_rule_id_with_trailing_newline_is_refused():
    with pytest.raises(ValidationError, match="rule id must be"):
        Rule.model_validate({"id": "rain-3h\n", "name": "n", "hazard": "rainstorm", "metric": "rain_mm",
                        "grades": {"orange": {"agg": "sum", "window": "3h", "value": 50}}})


def test_sink_escapes_newlines_in_tags():
    reg = Registry([Station(id="DG-1", name="n", kind="rain", town="虎门\n镇\r\t")])
    cols = decode(encode_readings([Reading("DG-1", "rain_mm", TS, 1.5)]))
    lines = reading_lines(cols, reg)
    assert lines == [f"rain,metric=rain_mm,station=DG-1,town=虎门\\n镇\\r\\t value=1.5 {TS}"]
    ev = {"kind": "raised", "rule": "r", "station": "S", "grade": 3, "ts": TS, "value": 1.0,
          "town": "a\nb", "incident": "i\n1", "reason": "x\ny"}
    line = warning_line(ev, Registry([]))
    assert "\n" not in line and "\r" not in line
    assert "incident=i\\n1" in line and "town=a\\nb" in line
