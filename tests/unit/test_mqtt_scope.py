"""MQTT topics bind what a message may write (issue 12, finding 1): the topic's station is
binding for every item, and the topic's source names a tokens-file entry whose scope applies.
Pure logic: parse, topic, tokens; the broker and gateway are in
tests/integration/test_mqtt_acl.py."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from yujing.connectors.auth import Tokens, TokenEntry, hash_token, load_tokens
from yujing.connectors.mqtt import parse_topic, topic_parts
from yujing.connectors.parse import parse_payload_indexed
from yujing.stations import load_registry
from yujing.yamlsrc import SourceError

ROOT = Path(__file__).resolve().parents[2]
T = 1_748_736_300_000
SPOOF = "yujing/hydro/DEV-A/rain_mm"


def parse(topic: str, doc) -> tuple[list, list]:
    return parse_payload_indexed(orjson.dumps(doc), topic_parts(topic))


def test_a_payload_station_other_than_the_topics_is_dead_lettered():
    ok, bad = parse(SPOOF, {"station": "DG-HM-R01", "ts": T, "value": 9.0})
    assert ok == []
    [r] = bad
    assert r.code == "topic_mismatch"
    assert "DG-HM-R01" in r.reason and "DEV-A" in r.reason and "yujing/<source>/DG-HM-R01/" in r.reason


def test_in_a_list_only_the_mismatched_item_is_refused():
    ok, bad = parse(SPOOF, [{"ts": T, "value": 1.0},
                            {"station": "DG-HM-R01", "ts": T + 1, "value": 2.0},
                            {"station": "DEV-A", "ts": T + 2, "value": 3.0}])
    assert [(i, r.station, r.value) for i, r in ok] == [(0, "DEV-A", 1.0), (2, "DEV-A", 3.0)]
    assert [(r.index, r.code) for r in bad] == [(1, "topic_mismatch")]


def test_a_record_naming_another_station_is_refused_whole():
    ok, bad = parse("yujing/aws/DEV-A/weather", {"station": "DG-HJ-W01", "ts": T, "rain_mm": 1.0,
                                                 "wind_speed_ms": 3.0})
    assert ok == [] and [r.code for r in bad] == ["topic_mismatch"]


def test_the_many_segment_lets_the_payload_name_each_station():
    ok, bad = parse("yujing/bench/_/rain_mm", [{"station": "A-1", "ts": T, "value": 1.0},
                                               {"station": "B-2", "ts": T, "value": 2.0},
                                               {"ts": T, "value": 3.0}])
    assert [r.station for _, r in ok] == ["A-1", "B-2"]
    assert [r.index for r in bad] == [2] and "station" in bad[0].reason


def test_topic_parts():
    t = parse_topic("yujing/fac17/DG-HJ-W01/weather")
    assert (t.source, t.station, t.kind) == ("fac17", "DG-HJ-W01", "weather")
    assert parse_topic("yujing/fac17/_/rain_mm").station is None
    assert parse_topic("other/fac17/X/rain_mm") is None
    assert parse_topic("yujing/fac17/X") is None
    assert parse_topic("yujing/fac17/X/rain_mm/extra") is None


def entries() -> list[TokenEntry]:
    return [TokenEntry(gateway="ent-a", sha256=hash_token("a"), enterprises=["ENT-DG-0001"]),
            TokenEntry(gateway="hydro", sha256=hash_token("h"), stations=["DG-HM-*"]),
            TokenEntry(gateway="city", sha256=hash_token("c"), all_stations=True)]


def test_a_source_is_scoped_like_its_token():
    reg = load_registry(ROOT / "stations.yaml")
    tokens = Tokens(entries())
    a = tokens.for_source("ent-a")
    assert a.gateway == "ent-a"
    assert a.may_write("DG-CA-D01", reg) and a.may_write("DG-CA-D02", reg)
    assert not a.may_write("DG-HJ-D01", reg)  # enterprise B's
    assert not a.may_write("DG-HM-R01", reg)
    assert tokens.for_source("hydro").may_write("DG-HM-R01", reg)
    assert tokens.for_source("city").may_write("anything", reg)
    assert tokens.for_source("nobody") is None
    assert tokens.for_source("") is None


def test_one_gateway_name_with_two_scopes_is_refused_at_load(tmp_path):
    f = tmp_path / "tokens.yaml"
    f.write_text("tokens:\n"
                 f"  - {{gateway: ent-a, sha256: {hash_token('1')}, enterprises: [ENT-DG-0001]}}\n"
                 f"  - {{gateway: ent-a, sha256: {hash_token('2')}, all_stations: true}}\n")
    with pytest.raises(SourceError) as e:
        load_tokens(f)
    text = str(e.value)
    assert "ent-a" in text and ":3" in text and "scope" in text


def test_a_rotated_token_with_the_same_scope_loads(tmp_path):
    f = tmp_path / "tokens.yaml"
    f.write_text("tokens:\n"
                 f"  - {{gateway: ent-a, sha256: {hash_token('1')}, enterprises: [ENT-DG-0001]}}\n"
                 f"  - {{gateway: ent-a, sha256: {hash_token('2')}, enterprises: [ENT-DG-0001]}}\n")
    assert load_tokens(f).for_source("ent-a").enterprises == ("ENT-DG-0001",)
