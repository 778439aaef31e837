"""Issue 12, finding 1, on a real Mosquitto: enterprise A's device cannot write enterprise B's
station, neither at the broker (password + ACL files from ``yujing mqtt-acl``) nor, with the
broker left open, at the gateway (the topic's source is scoped like its token; a payload
naming another station than its topic is refused)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.services import (
    TopicReader,
    gateway_config,
    letters_of,
    mosquitto,
    readings_of,
    running_gateway,
)
from tests.support.services import mqtt_publish as publish
from yujing.connectors.auth import hash_token

MIN = 60_000
ROOT = Path(__file__).resolve().parents[2]
# stations.yaml: DG-CA-D01/D02 belong to ENT-DG-0001 (A), DG-HJ-D01 to ENT-DG-0002 (B)
A1, A2, B1 = "DG-CA-D01", "DG-CA-D02", "DG-HJ-D01"


def now_ms() -> int:
    return int(time.time() * 1000)


def tokens_file(tmp: Path) -> Path:
    f = tmp / "tokens.yaml"
    f.write_text("tokens:\n"
                 f"  - {{gateway: ent-a, sha256: {hash_token('ta')}, enterprises: [ENT-DG-0001]}}\n"
                 f"  - {{gateway: ent-b, sha256: {hash_token('tb')}, enterprises: [ENT-DG-0002]}}\n")
    return f


def doc(t: int, value: float, station: str | None = None) -> bytes:
    d = {"ts": t, "value": value}
    return orjson.dumps(d if station is None else {**d, "station": station})


def publish_v5(port: int, user: str, password: str, messages: list[tuple[str, bytes]]) -> list[int]:
    """Publish at QoS 1 over MQTT 5 and return each PUBACK's reason code (0 = accepted,
    135 = not authorized): Mosquitto says so under MQTT 5, where 3.1.1 drops silently."""
    codes: dict[int, int] = {}
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{time.monotonic_ns()}",
                    protocol=paho.MQTTv5)
    c.on_publish = lambda _c, _u, mid, rc, _p: codes.__setitem__(mid, rc.value)
    c.username_pw_set(user, password)
    connected: list[int] = []
    c.on_connect = lambda _c, _u, _f, rc, _p: connected.append(rc.value)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        mids = []
        for topic, payload in messages:
            info = c.publish(topic, payload, qos=1)
            info.wait_for_publish(timeout=10)
            mids.append(info.mid)
        deadline = time.monotonic() + 10
        while len(codes) < len(mids) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert connected == [0], f"connection refused: {connected}"
        return [codes[m] for m in mids]
    finally:
        c.disconnect()
        c.loop_stop()


def refused_login(port: int, user: str, password: str) -> int:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bad-{time.monotonic_ns()}",
                    protocol=paho.MQTTv5)
    c.username_pw_set(user, password)
    codes: list[int] = []
    c.on_connect = lambda _c, _u, _f, rc, _p: codes.append(rc.value)
    c.connect("127.0.0.1", port)
    c.loop_start()
    deadline = time.monotonic() + 10
    while not codes and time.monotonic() < deadline:
        time.sleep(0.02)
    c.disconnect()
    c.loop_stop()
    return codes[0]


def mqtt_acl(tmp: Path) -> dict[str, str]:
    """``yujing mqtt-acl`` as an operator runs it; the new passwords it prints."""
    cfg = tmp / "config.yaml"
    cfg.write_text("http:\n  tokens_file: tokens.yaml\nmqtt:\n  username: gw\n  password: gw-secret\n")
    out = subprocess.run([sys.executable, "-m", "yujing", "mqtt-acl", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=60, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return dict(line.split(" ", 1) for line in out.stdout.splitlines())


async def test_the_broker_lets_a_device_publish_only_under_its_own_source(kafka, tmp_path):
    tokens = tokens_file(tmp_path)
    pw = mqtt_acl(tmp_path)
    assert set(pw) == {"ent-a", "ent-b"}
    extra = (f"allow_anonymous false\npassword_file {tmp_path / 'mosquitto.passwd'}\n"
             f"acl_file {tmp_path / 'mosquitto.acl'}\n")
    cfg = gateway_config(tmp_path, http={"tokens_file": str(tokens)},
                         mqtt={"client_id": "gw-acl", "username": "gw", "password": "gw-secret"})
    t = now_ms() - 10 * MIN
    with mosquitto(tmp_path, extra) as m:
        assert refused_login(m.port, "ent-a", "wrong") != 0
        async with running_gateway(cfg, kafka, f"mqtt://127.0.0.1:{m.port}") as gw:
            await asyncio.wait_for(gw.mqtt.connected.wait(), 10)
            await asyncio.sleep(0.3)  # SUBACK
            codes = await asyncio.to_thread(publish_v5, m.port, "ent-a", pw["ent-a"], [
                (f"yujing/ent-b/{B1}/rain_mm", doc(t, 1.0)),         # B's source: the broker refuses
                (f"yujing/ent-a/{B1}/rain_mm", doc(t, 2.0)),         # own source, B's station
                (f"yujing/ent-a/{A1}/rain_mm", doc(t, 3.0, A2)),     # payload station != topic's
                (f"yujing/ent-a/{A1}/rain_mm", doc(t, 4.0)),         # A's own: stored
            ])
            assert codes[0] == 135 and codes[1:] == [0, 0, 0]  # 135: not authorized
            async with TopicReader(kafka, cfg.kafka.topics.deadletter) as dl:
                letters = letters_of(await dl.until(lambda r: len(r) >= 2))
            async with TopicReader(kafka, cfg.kafka.topics.readings) as rd:
                await rd.until(lambda r: len(readings_of(r)) >= 1)
                got = readings_of(await rd.settle())
    assert got == [(A1, "rain_mm", t, 4.0)]
    assert sorted((x["source"], x["code"]) for x in letters) == [
        (f"mqtt:yujing/ent-a/{A1}/rain_mm", "topic_mismatch"),
        (f"mqtt:yujing/ent-a/{B1}/rain_mm", "forbidden")]
    assert gw.accepted == 1 and gw.rejected == 2


async def test_with_the_broker_open_the_gateway_refuses_what_a_source_may_not_write(
        kafka, mosq, tmp_path):
    cfg = gateway_config(tmp_path, http={"tokens_file": str(tokens_file(tmp_path))},
                         mqtt={"client_id": "gw-open"})
    t = now_ms() - 10 * MIN
    async with running_gateway(cfg, kafka, f"mqtt://127.0.0.1:{mosq.port}") as gw:
        await asyncio.wait_for(gw.mqtt.connected.wait(), 10)
        await asyncio.sleep(0.3)  # SUBACK
        await asyncio.to_thread(publish, mosq.port, [
            (f"yujing/ent-a/{B1}/rain_mm", doc(t, 1.0)),             # B's station under A
            ("yujing/ent-a/DEV-A/rain_mm", doc(t, 2.0, B1)),         # the spoof of the issue
            (f"yujing/nobody/{B1}/rain_mm", doc(t, 3.0)),            # a source with no entry
            ("yujing/ent-a/_/rain_mm", orjson.dumps([                 # a collector's batch
                {"station": A2, "ts": t, "value": 4.0}, {"station": B1, "ts": t, "value": 5.0}])),
            (f"yujing/ent-b/{B1}/rain_mm", doc(t, 6.0)),             # B's own
        ])
        async with TopicReader(kafka, cfg.kafka.topics.readings) as rd:
            await rd.until(lambda r: len(readings_of(r)) >= 2)
            got = readings_of(await rd.settle())
        async with TopicReader(kafka, cfg.kafka.topics.deadletter) as dl:
            letters = letters_of(await dl.until(lambda r: len(r) >= 4))
    assert sorted(got) == [(A2, "rain_mm", t, 4.0), (B1, "rain_mm", t, 6.0)]
    by_source = sorted((x["source"].removeprefix("mqtt:yujing/"), x["code"]) for x in letters)
    assert by_source == [("ent-a/DEV-A/rain_mm", "topic_mismatch"),
                         (f"ent-a/{B1}/rain_mm", "forbidden"),
                         ("ent-a/_/rain_mm", "forbidden"),
                         (f"nobody/{B1}/rain_mm", "forbidden")]
    nobody = next(x for x in letters if "nobody" in x["source"])
    assert "no entry in the tokens file" in nobody["reason"] and not nobody["raw"]  # nothing kept
    assert gw.accepted == 2 and gw.rejected == 4
