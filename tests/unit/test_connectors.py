"""Pure parts of the connectors: payload forms, line protocol, events, validation, tokens,
registry files, the sink's line format and the dead-letter line (no I/O except tmp files)."""

from __future__ import annotations

import math
import os
import time

import numpy as np
import orjson
import pytest

from yujing.connectors.auth import OPEN, TokenEntry, Tokens, hash_token, load_tokens, new_token
from yujing.connectors.deadletter import format_letter
from yujing.connectors.events import parse_events
from yujing.connectors.influx import is_transient, reading_lines, warning_line
from yujing.connectors.lineproto import parse_lines
from yujing.connectors.parse import parse_payload, parse_payload_indexed
from yujing.connectors.validate import Deduper, Limits, check, unit_problem
from yujing.domain import Forecast, Reading
from yujing.envelope import decode, encode_readings
from yujing.stations import FileWatcher, Registry, Station, load_registry, parse_registry_csv
from yujing.yamlsrc import SourceError

TS = 1_748_764_800_000  # 2025-06-01T08:00:00Z


# --- MQTT / JSON payload forms ----------------------------------------------------------------

def test_multi_metric_record_takes_the_station_from_the_topic():
    doc = {"ts": TS, "rain_mm": 1.2, "wind_speed_ms": 3, "quality": "good"}
    ok, bad = parse_payload(orjson.dumps(doc), {"station": "DG-HM-W01", "metric": "weather"})
    assert bad == []
    assert sorted(ok, key=lambda r: r.metric) == [
        Reading("DG-HM-W01", "rain_mm", TS, 1.2), Reading("DG-HM-W01", "wind_speed_ms", TS, 3.0)]


def test_record_with_one_bad_metric_keeps_the_others():
    doc = [{"station": "S1", "ts": TS, "rain_mm": 1.0, "wind_speed_ms": "fast", "Temp": 3}]
    ok, bad = parse_payload_indexed(orjson.dumps(doc))
    assert ok == [(0, Reading("S1", "rain_mm", TS, 1.0))]
    assert sorted(b.reason for b in bad) == [
        "'Temp' is not a metric name: snake_case with its unit, e.g. rain_mm",
        "wind_speed_ms: value must be a number"]
    assert all(b.index == 0 for b in bad)


def test_record_without_station_or_metrics_is_rejected_whole():
    ok, bad = parse_payload(orjson.dumps({"ts": TS, "rain_mm": 1}))
    assert ok == [] and "missing field 'station'" in bad[0].reason
    ok, bad = parse_payload(orjson.dumps({"station": "S", "ts": TS}))
    assert ok == [] and "at least one metric" in bad[0].reason


def test_mixed_list_of_readings_and_records_keeps_item_indices():
    doc = [{"station": "S", "metric": "rain_mm", "ts": TS, "value": 1},
           {"station": "S", "ts": TS + 1, "rain_mm": 2, "humidity_pct": 80}]
    ok, bad = parse_payload_indexed(orjson.dumps(doc))
    assert bad == []
    assert [i for i, _ in ok] == [0, 1, 1]


def test_unit_field_must_match_the_metric():
    assert unit_problem("rain_mm", "mm") is None
    assert unit_problem("wind_speed_ms", "m/s") is None
    assert unit_problem("temperature_c", "℃") is None
    assert "does not match metric rain_mm" in unit_problem("rain_mm", "cm")
    assert unit_problem("odd_metric_xyz", "furlongs") is None  # unknown unit suffix: no opinion
    ok, bad = parse_payload(orjson.dumps({"station": "S", "metric": "rain_mm", "ts": TS,
                                          "value": 1, "unit": "inch"}))
    assert ok == [] and bad[0].code == "unit"


# --- validation -------------------------------------------------------------------------------

NOW = TS + 3_600_000


@pytest.mark.parametrize("reading, code", [
    (Reading("S", "rain_mm", NOW, -1.0), "range"),
    (Reading("S", "humidity_pct", NOW, 101.0), "range"),
    (Reading("S", "gas_lel_pct", NOW, 250.0), "range"),   # *_pct default range
    (Reading("S", "rain_mm", NOW, math.nan), "not_finite"),
    (Reading("S", "rain_mm", NOW + 6 * 60_000, 1.0), "future"),
    (Reading("S", "rain_mm", NOW - 8 * 86_400_000, 1.0), "too_old"),
])
def test_sanity_rejections(reading, code):
    p = check(reading, NOW, Limits())
    assert p is not None and p.code == code, p
    assert p.reason


def test_sane_readings_pass_and_unknown_metrics_have_no_range():
    lim = Limits()
    assert check(Reading("S", "rain_mm", NOW, 12.5), NOW, lim) is None
    assert check(Reading("S", "my_counter", NOW, 1e12), NOW, lim) is None
    assert check(Reading("S", "rain_mm", NOW + 4 * 60_000, 1), NOW, lim) is None


def test_unknown_station_policy():
    r = Reading("NEW", "rain_mm", NOW, 1.0)
    known = {"OLD"}.__contains__
    assert check(r, NOW, Limits(reject_unknown_stations=False), known) is None
    p = check(r, NOW, Limits(reject_unknown_stations=True), known)
    assert p.code == "unknown_station" and "NEW" in p.reason
    # no registry configured: nothing is unknown
    assert check(r, NOW, Limits(reject_unknown_stations=True), None) is None


def test_configured_range_overrides_the_table():
    lim = Limits(ranges={"rain_mm": (0.0, 10.0)})
    assert check(Reading("S", "rain_mm", NOW, 11.0), NOW, lim).code == "range"


def test_deduper_drops_repeats_passes_corrections_and_forgets_failed_stores():
    d = Deduper(capacity=3)
    a = Reading("S", "rain_mm", TS, 1.0)
    assert d.offer(a) == "new"
    assert d.offer(a) == "repeat"
    assert d.offer(Reading("S", "rain_mm", TS, 2.0)) == "correction"
    assert d.offer(Reading("S", "rain_mm", TS, 2.0)) == "repeat"
    d.forget([a])
    assert d.offer(a) == "new"  # a retry after a failed store is stored again
    for i in range(1, 4):
        d.offer(Reading("S", "rain_mm", TS + i, 1.0))
    assert len(d) == 3
    assert d.offer(a) == "new"  # evicted: bounded memory


def test_deduper_off():
    d = Deduper(capacity=0)
    a = Reading("S", "rain_mm", TS, 1.0)
    assert d.offer(a) == d.offer(a) == "new"


# --- line protocol ----------------------------------------------------------------------------

def test_line_protocol_fields_become_metrics():
    body = (b"rain_gauge,station=DG-HM-R01,town=x rain_mm=1.5,wind_speed_ms=3i,door=true,"
            b'note="ok" 1748764800000000000\n'
            b"# comment\n\n"
            b"gauge,station=R2,metric=water_level_m value=2.25 1748764800000000000\n")
    ok, bad = parse_lines(body, "ns", NOW)
    assert bad == []
    assert sorted(ok, key=lambda r: (r.station, r.metric)) == [
        Reading("DG-HM-R01", "door", TS, 1.0), Reading("DG-HM-R01", "rain_mm", TS, 1.5),
        Reading("DG-HM-R01", "wind_speed_ms", TS, 3.0), Reading("R2", "water_level_m", TS, 2.25)]


@pytest.mark.parametrize("precision, t", [("ns", TS * 1_000_000), ("us", TS * 1000), ("ms", TS),
                                          ("s", TS // 1000)])
def test_line_protocol_precisions(precision, t):
    ok, bad = parse_lines(f"m,station=S rain_mm=1 {t}".encode(), precision)
    assert bad == [] and ok[0].ts == TS


def test_line_protocol_without_time_uses_receive_time():
    ok, _ = parse_lines(b"m,station=S rain_mm=1", "ns", NOW)
    assert ok[0].ts == NOW


def test_line_protocol_bad_lines_are_numbered_and_the_rest_kept():
    body = b"m,station=S rain_mm=1 %d\nnot line protocol\nm rain_mm=2 %d\nm,station=S Bad=1 %d\n" % (
        TS, TS, TS)
    ok, bad = parse_lines(body, "ms", NOW)
    assert ok == [Reading("S", "rain_mm", TS, 1.0)]
    assert [b.index for b in bad] == [2, 3, 4]
    assert bad[0].reason.startswith("line 2: not line protocol")
    assert "no 'station' tag" in bad[1].reason
    assert "'Bad' is not a metric name" in bad[2].reason


def test_line_protocol_ms_timestamps_sent_as_ns_get_a_hint():
    _, bad = parse_lines(f"m,station=S rain_mm=1 {TS}".encode(), "ns", NOW)
    assert "add ?precision=ms" in bad[0].reason


def test_line_protocol_bad_precision():
    _, bad = parse_lines(b"m,station=S rain_mm=1", "h", NOW)
    assert "precision 'h'" in bad[0].reason


# --- events -----------------------------------------------------------------------------------

def test_camera_and_industrial_events():
    doc = [{"type": "smoke", "camera": "CAM-1", "ts": TS, "confidence": 0.91,
            "bbox": [10, 20, 100, 80], "image_url": "https://cams.example/f.jpg"},
           {"type": "vent_burst", "station": "ENT-DUST-2", "ts": TS, "detail": {"line": 2}}]
    ok, bad = parse_events(orjson.dumps(doc))
    assert bad == []
    (i0, r0, d0), (i1, r1, d1) = ok
    assert (i0, r0) == (0, Reading("CAM-1", "smoke", TS, 0.91))
    assert d0["bbox"] == [10.0, 20.0, 100.0, 80.0] and d0["image_url"].endswith("f.jpg")
    assert (i1, r1) == (1, Reading("ENT-DUST-2", "vent_burst", TS, 1.0))
    assert d1["detail"] == {"line": 2}


@pytest.mark.parametrize("item, fragment", [
    ({"type": "flood", "station": "S", "ts": TS}, "not an event type"),
    ({"type": "fire", "camera": "C", "ts": TS}, "missing field 'confidence'"),
    ({"type": "fire", "camera": "C", "ts": TS, "confidence": 1.5}, "from 0 to 1"),
    ({"type": "fire", "camera": "C", "ts": TS, "confidence": 0.5, "bbox": [1, 2]}, "bbox"),
    ({"type": "fire", "camera": "C", "ts": TS, "confidence": 0.5, "image_url": "ftp://x"}, "image_url"),
    ({"type": "spark", "station": "S", "ts": TS, "confidence": 0.5}, "confidence is for camera"),
    ({"type": "spark", "ts": TS}, "missing field 'camera'"),
    ({"type": "spark", "station": "S", "ts": TS, "colour": "red"}, "unknown field"),
])
def test_bad_events_say_why(item, fragment):
    ok, bad = parse_events(orjson.dumps(item))
    assert ok == [] and fragment in bad[0].reason


# --- tokens -----------------------------------------------------------------------------------

def test_tokens_identify_and_scope(tmp_path):
    t1, t2, t3 = new_token(), new_token(), new_token()
    tokens = Tokens([TokenEntry(gateway="humen", sha256=hash_token(t1), stations=["DG-HM-*"]),
                     TokenEntry(gateway="ent17", sha256=hash_token(t2), enterprises=["ENT17"]),
                     TokenEntry(gateway="city", sha256=hash_token(t3), all_stations=True)])
    reg = Registry([Station(id="F1", name="f", kind="dust", enterprise="ENT17"),
                    Station(id="F2", name="g", kind="dust", enterprise="ENT18")])
    humen = tokens.identify(f"Bearer {t1}")
    assert humen.gateway == "humen"
    assert humen.may_write("DG-HM-R01", reg) and not humen.may_write("DG-CA-R01", reg)
    ent = tokens.identify(f"Token {t2}")  # influxdb-client's scheme
    assert ent.may_write("F1", reg) and not ent.may_write("F2", reg)
    assert not ent.may_write("UNKNOWN", reg)
    assert tokens.identify(f"Bearer {t3}").may_write("anything", reg)
    for header in (None, "", "Bearer", f"Basic {t1}", "Bearer wrong", t1):
        assert tokens.identify(header) is None
    assert OPEN.may_write("x", reg)


def test_tokens_file_is_validated_with_locations(tmp_path):
    f = tmp_path / "tokens.yaml"
    h = hash_token("x")
    f.write_text(f"tokens:\n  - gateway: a\n    sha256: {h}\n    stations: [S1]\n"
                 f"  - gateway: b\n    sha256: {h}\n    all_stations: true\n"
                 "  - gateway: c\n    sha256: abc\n")
    with pytest.raises(SourceError) as exc:
        load_tokens(f)
    text = str(exc.value)
    assert "tokens[2].sha256" in text and ":9:" in text
    f.write_text(f"tokens:\n  - gateway: a\n    sha256: {h}\n")
    with pytest.raises(SourceError, match="give the token a scope"):
        load_tokens(f)


# --- registry files ---------------------------------------------------------------------------

def test_registry_csv_with_thresholds_contacts_and_tags():
    text = ("\ufeffid,name,kind,town,enterprise,lat,lon,tags,expected_interval,threshold.warning_level_m,"
            "contacts\n"
            "R1,东江水位站,river_gauge,石龙镇,,23.1,113.9,river;east,10m,5.5,张三:13800000000:A;李四:139\n"
            "\n"
            "F1,车间一,dust,麻涌镇,ENT17,,,,,,\n")
    reg = parse_registry_csv(text, "s.csv")
    r1 = reg.get("R1")
    assert r1.town == "石龙镇" and r1.tags == ["river", "east"]
    assert r1.thresholds == {"warning_level_m": 5.5}
    assert [(c.name, c.phone, c.role) for c in r1.contacts] == [("张三", "13800000000", "A"),
                                                                 ("李四", "139", "")]
    assert reg.get("F1").enterprise == "ENT17" and reg.get("F1").lat is None


def test_registry_csv_errors_name_line_and_column():
    text = ("id,name,kind,lat,expected_interval,colour\nR1,a,rain,95,5 min,red\n")
    with pytest.raises(SourceError) as exc:
        parse_registry_csv(text, "s.csv")
    assert "s.csv:1: colour: unknown column" in str(exc.value)
    text = "id,name,kind,lat,expected_interval\nR1,a,rain,95,5 minutes\nR1,b,rain,,\n"
    with pytest.raises(SourceError) as exc:
        parse_registry_csv(text, "s.csv")
    msgs = str(exc.value)
    assert "s.csv:2: lat:" in msgs and "s.csv:2: expected_interval:" in msgs


def test_registry_csv_duplicate_id():
    with pytest.raises(SourceError, match="s.csv:3: .*duplicate station id 'R1'"):
        parse_registry_csv("id,name,kind\nR1,a,rain\nR1,b,rain\n", "s.csv")


def test_repo_registry_still_loads():
    from pathlib import Path
    reg = load_registry(Path(__file__).resolve().parents[2] / "stations.yaml")
    assert len(reg) >= 12 and reg.get("DG-HM-R01").town == "虎门镇"


def test_file_watcher_reloads_on_change_and_keeps_the_last_good(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("stations:\n  - {id: A, name: a, kind: rain_gauge}\n")
    seen: list[Registry] = []
    w = FileWatcher(f, load_registry, seen.append, "station registry")
    assert not w.check()  # unchanged
    f.write_text("stations:\n  - {id: A, name: a, kind: rain_gauge}\n  - {id: B, name: b, kind: x}\n")
    os.utime(f, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert w.check() and len(seen[-1]) == 2
    f.write_text("stations:\n  - {id: A, name: a, kind: rain_gauge, colour: red}\n")
    assert not w.check() and w.failures == 1 and len(seen) == 1  # broken edit: kept old
    assert w.check(force=True) is False  # still broken when forced (SIGHUP)
    f.unlink()
    assert not w.check()


# --- sink line format -------------------------------------------------------------------------

def test_reading_lines_use_kind_town_and_escape():
    reg = Registry([Station(id="DG-1", name="n", kind="rain gauge", town="Hu men,=1")])
    cols = decode(encode_readings([Reading("DG-1", "rain_mm", TS, 1.5),
                                   Reading("X:2", "water_level_m", TS + 1, 0.1)]))
    assert reading_lines(cols, reg) == [
        f"rain\\ gauge,metric=rain_mm,station=DG-1,town=Hu\\ men\\,\\=1 value=1.5 {TS}",
        f"unregistered,metric=water_level_m,station=X:2 value=0.1 {TS + 1}"]


def test_forecast_values_go_apart_with_their_issue_time():
    reg = Registry([Station(id="DG-1", name="n", kind="rain_gauge", town="虎门镇")])
    issued = 1_764_662_400_000                       # 2025-12-02T08:00:00Z
    cols = decode(encode_readings([Reading("DG-1", "rain_mm", TS, 1.5),
                                   Forecast("DG-1", "rain_mm", TS, 20.0, issued),
                                   Forecast("DG-1", "rain_mm", TS, 25.0, issued + 3_600_000)]))
    assert reading_lines(cols, reg) == [
        f"rain_gauge,metric=rain_mm,station=DG-1,town=虎门镇 value=1.5 {TS}",
        f"rain_gauge_forecast,metric=rain_mm,station=DG-1,town=虎门镇,issued=2025-12-02T08:00:00Z "
        f"value=20.0 {TS}",
        f"rain_gauge_forecast,metric=rain_mm,station=DG-1,town=虎门镇,issued=2025-12-02T09:00:00Z "
        f"value=25.0 {TS}"]

def test_warning_line_has_grade_state_rule_incident():
    ev = {"kind": "raised", "key": "r@S", "incident": "i-7", "rule": "rain-3h", "hazard": "rainstorm",
          "station": "S", "grade": 3, "ts": TS, "value": 54.0, "reason": 'sum "3h" = 54',
          "town": "虎门镇"}
    line = warning_line(ev, Registry([]))
    assert line == (f'warning,grade=orange,hazard=rainstorm,incident=i-7,rule=rain-3h,state=raised,'
                    f'station=S,town=虎门镇 level=3i,value=54.0,reason="sum \\"3h\\" = 54" {TS}')
    assert "state=acknowledged" in warning_line({**ev, "state": "acknowledged"}, Registry([]))


def test_transient_errors():
    class E(Exception):
        def __init__(self, status):
            self.status = status
    assert is_transient(ConnectionRefusedError()) and is_transient(E(503)) and is_transient(E(429))
    assert not is_transient(E(400)) and not is_transient(E(401))


def test_dead_letter_line():
    line = format_letter({"source": "mqtt:yujing/a/S/rain_mm", "reason": "value must be a number",
                          "code": "invalid", "index": 3, "raw": "x" * 300,
                          "received_ms": TS})
    assert line.startswith("2025-06-01T08:00:00.000Z  mqtt:yujing/a/S/rain_mm #3  [invalid] value")
    assert line.endswith("…") and len(line) < 260
    assert np.isfinite(1.0)
