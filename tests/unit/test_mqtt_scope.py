"""MQTT topics bind what a message may write (issue 12, finding 1): the topic's station is
binding for every item, and the topic's source names a tokens-file entry whose scope applies.
Pure logic: parse, topic, tokens; the broker and gateway are in
tests/integration/test_mqtt_acl.py."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from yujing.cli.app import app
from yujing.cli.mqtt_acl import mosquitto_hash
from yujing.connectors.auth import TokenEntry, Tokens, hash_token, load_tokens
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


# --- yujing mqtt-acl -------------------------------------------------------------------------

def test_password_hash_matches_mosquitto_passwd():
    """A line mosquitto_passwd 2.0.11 wrote for user u, password pw."""
    line = ("$7$101$80cMkXSvm0r9Uhlo$slejzmOMQKWSxwE+rfN3knYbZu/7+BMt8GABg3IZvo4TL4uQYxRNxPkbO+qlm"
            "AshtOPVTUSSenzzDRLT1Yb1Ag==")
    assert mosquitto_hash("pw", base64.b64decode("80cMkXSvm0r9Uhlo")) == line
    assert mosquitto_hash("pw", base64.b64decode("80cMkXSvm0r9Uhlo")) != mosquitto_hash("pw")
    fresh = mosquitto_hash("pw")
    assert fresh.startswith("$7$101$") and len(base64.b64decode(fresh.split("$")[3])) == 12


def write_config(tmp_path: Path, names: list[str], mqtt: str = "") -> Path:
    body = "".join(f"  - {{gateway: {n}, sha256: {hash_token(n)}, stations: ['{n.upper()}-*']}}\n"
                   for n in names)
    (tmp_path / "tokens.yaml").write_text("tokens:\n" + body)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"http:\n  tokens_file: tokens.yaml\n{mqtt}")
    return cfg


def run_acl(cfg: Path, *extra: str) -> tuple[dict[str, str], str]:
    r = CliRunner().invoke(app, ["mqtt-acl", "--config", str(cfg), *extra])
    assert r.exit_code == 0, r.output
    shown = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    return shown, r.stderr


def users(passwd: Path) -> dict[str, str]:
    return dict(line.split(":", 1) for line in passwd.read_text().splitlines())


def check_password(hashed: str, password: str) -> bool:
    _, _, rounds, salt, _ = hashed.split("$")
    return mosquitto_hash(password, base64.b64decode(salt), int(rounds)) == hashed


def test_mqtt_acl_writes_private_files_and_shows_new_passwords_once(tmp_path):
    cfg = write_config(tmp_path, ["ent-a", "ent-b"], "mqtt:\n  url: mqtt://gw:gwpass@broker:1883\n")
    shown, _ = run_acl(cfg)
    passwd, acl = tmp_path / "mosquitto.passwd", tmp_path / "mosquitto.acl"
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o600 and stat.S_IMODE(acl.stat().st_mode) == 0o600
    assert set(shown) == {"ent-a", "ent-b"}  # the gateway's password is the config's
    u = users(passwd)
    assert set(u) == {"gw", "ent-a", "ent-b"}
    assert check_password(u["gw"], "gwpass") and check_password(u["ent-a"], shown["ent-a"])
    assert not check_password(u["ent-b"], shown["ent-a"])
    assert shown["ent-a"] not in passwd.read_text()
    blocks = [b.splitlines() for b in acl.read_text().split("\n\n")[1:]]
    assert blocks == [["user gw", "topic read yujing/#"],
                      ["user ent-a", "topic write yujing/ent-a/#"],
                      ["user ent-b", "topic write yujing/ent-b/#"]]


def test_mqtt_acl_again_keeps_passwords_rotates_on_request_and_drops_removed_devices(tmp_path):
    cfg = write_config(tmp_path, ["ent-a", "ent-b"], "mqtt:\n  username: gw\n  password: x\n")
    run_acl(cfg)
    before = users(tmp_path / "mosquitto.passwd")
    write_config(tmp_path, ["ent-a", "ent-c"], "mqtt:\n  username: gw\n  password: x\n")
    shown, err = run_acl(cfg, "--rotate", "ent-a")
    after = users(tmp_path / "mosquitto.passwd")
    assert set(shown) == {"ent-a", "ent-c"} and set(after) == {"gw", "ent-a", "ent-c"}
    assert after["ent-a"] != before["ent-a"] and "removed ent-b" in err
    shown, _ = run_acl(cfg)
    assert shown == {} and users(tmp_path / "mosquitto.passwd")["ent-c"] == after["ent-c"]


def test_mqtt_acl_refusals(tmp_path):
    (tmp_path / "plain.yaml").write_text("http: {}\n")
    r = CliRunner().invoke(app, ["mqtt-acl", "--config", str(tmp_path / "plain.yaml")])
    assert r.exit_code == 2 and "tokens_file" in r.stderr
    cfg = write_config(tmp_path, ["ent-a", "x:y"])
    r = CliRunner().invoke(app, ["mqtt-acl", "--config", str(cfg)])
    assert r.exit_code == 2 and "x:y" in r.stderr and not (tmp_path / "mosquitto.passwd").exists()
    cfg = write_config(tmp_path, ["ent-a", "yujing-gateway"])
    r = CliRunner().invoke(app, ["mqtt-acl", "--config", str(cfg)])
    assert r.exit_code == 2 and "another mqtt.username" in r.stderr
    cfg = write_config(tmp_path, ["ent-a"])
    r = CliRunner().invoke(app, ["mqtt-acl", "--config", str(cfg), "--rotate", "nobody"])
    assert r.exit_code == 2 and "nobody" in r.stderr


def test_a_station_that_is_not_a_string_is_invalid_not_a_mismatch():
    deep = b"[" * 900 + b'"X"' + b"]" * 900  # orjson reads it, and no repr of it is made
    for station in (b"7", b"null", b'{"a": 1}', deep):
        raw = b'{"station": ' + station + b', "ts": %d, "value": 1.0}' % T
        ok, bad = parse_payload_indexed(raw, topic_parts(SPOOF))
        assert ok == [] and [r.code for r in bad] == ["invalid"] and len(bad[0].reason) < 200
