"""MQTT ingest against real brokers: amqtt (embedded, MQTT 3.1.1) and Mosquitto (Debian):
payload forms, QoS 1 with persistent sessions and manual acknowledgement, reconnect,
TLS with username/password, and MQTT 5 shared subscriptions (Mosquitto only: amqtt
0.12 does not speak MQTT 5)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from tests.support.services import (
    TopicReader,
    gateway_config,
    letters_of,
    mosquitto,
    readings_of,
    running_gateway,
    tansu,
)
from tests.support.services import mqtt_publish as publish
from yujing.connectors.embedded import free_port

MIN = 60_000


async def wait_connected(gw, timeout: float = 10) -> None:
    await asyncio.wait_for(gw.mqtt.connected.wait(), timeout)
    await asyncio.sleep(0.3)  # SUBACK


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.mark.parametrize("broker", ["amqtt", "mosquitto"])
async def test_three_payload_forms_and_a_bad_message(broker, kafka, amqtt_port, tmp_path):
    if broker == "amqtt":
        port = amqtt_port
        ctx = None
    else:
        ctx = mosquitto(tmp_path)
        port = ctx.__enter__().port
    try:
        cfg = gateway_config(tmp_path, mqtt={"client_id": f"gw-forms-{broker}"})
        t = now_ms() - 20 * MIN
        async with running_gateway(cfg, kafka, f"mqtt://127.0.0.1:{port}") as gw:
            await wait_connected(gw)
            await asyncio.to_thread(publish, port, [
                ("yujing/sim/DG-HM-R01/rain_mm", orjson.dumps({"ts": t, "value": 1.5})),
                ("yujing/sim/DG-CA-R01/rain_mm", orjson.dumps([{"ts": t, "value": 0.5},
                                                               {"ts": t + MIN, "value": 0.75}])),
                ("yujing/fac17/DG-HJ-W01/weather", orjson.dumps(
                    {"ts": t, "rain_mm": 0.25, "wind_speed_ms": 7.5, "quality": "good"})),
                ("yujing/sim/DG-HM-R01/rain_mm", b"{oops"),
            ])
            async with TopicReader(kafka, cfg.kafka.topics.readings) as rd:
                await rd.until(lambda r: len(readings_of(r)) >= 5)
                got = sorted(readings_of(await rd.settle()))
            assert got == sorted([("DG-HM-R01", "rain_mm", t, 1.5),
                                  ("DG-CA-R01", "rain_mm", t, 0.5),
                                  ("DG-CA-R01", "rain_mm", t + MIN, 0.75),
                                  ("DG-HJ-W01", "rain_mm", t, 0.25),
                                  ("DG-HJ-W01", "wind_speed_ms", t, 7.5)])
            async with TopicReader(kafka, cfg.kafka.topics.deadletter) as dl:
                [letter] = letters_of(await dl.until(lambda r: len(r) >= 1))
            assert letter["source"] == "mqtt:yujing/sim/DG-HM-R01/rain_mm"
            assert "not valid JSON" in letter["reason"] and letter["raw"] == "{oops"
            assert gw.accepted == 5 and gw.rejected == 1
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_persistent_session_delivers_what_was_sent_while_away(protocol, kafka, mosq, tmp_path):
    cfg = gateway_config(tmp_path, mqtt={"client_id": f"gw-persist-{protocol}",
                                         "protocol": protocol, "session_expiry_s": 300})
    url = f"mqtt://127.0.0.1:{mosq.port}"
    t = now_ms() - 60 * MIN
    def msg(i: int) -> tuple[str, bytes]:
        return "yujing/sim/DG-HM-R01/rain_mm", orjson.dumps({"ts": t + i * MIN, "value": float(i)})

    async with running_gateway(cfg, kafka, url) as gw:
        await wait_connected(gw)
        await asyncio.to_thread(publish, mosq.port, [msg(i) for i in range(5)])
        deadline = time.monotonic() + 10
        while gw.accepted < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # PUBACKs reach the broker
    # the gateway is away; the broker queues QoS 1 messages in its session
    await asyncio.to_thread(publish, mosq.port, [msg(i) for i in range(5, 10)])
    async with running_gateway(cfg, kafka, url) as gw2:
        async with TopicReader(kafka, cfg.kafka.topics.readings) as rd:
            await rd.until(lambda r: len(readings_of(r)) >= 10)
            got = readings_of(await rd.settle())
        assert sorted(v for *_, v in got) == [float(i) for i in range(10)]
        # only the queued five came again: the first five were acknowledged after Kafka had them
        assert gw2.accepted == 5 and gw2.duplicates == 0


async def test_reconnects_after_the_broker_restarts(kafka, mosq, tmp_path):
    cfg = gateway_config(tmp_path, mqtt={"client_id": "gw-reconnect", "reconnect_min_s": 1,
                                         "reconnect_max_s": 2})
    t = now_ms() - MIN
    async with running_gateway(cfg, kafka, f"mqtt://127.0.0.1:{mosq.port}") as gw:
        await wait_connected(gw)
        mosq.stop()
        deadline = time.monotonic() + 10
        while gw.mqtt.connected.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not gw.mqtt.connected.is_set()
        await asyncio.sleep(1.5)  # a failed reconnect or two
        mosq.start()
        await wait_connected(gw, 15)
        assert gw.mqtt.connects == 2
        await asyncio.to_thread(publish, mosq.port, [
            ("yujing/sim/DG-HM-R01/rain_mm", orjson.dumps({"ts": t, "value": 2.5}))])
        async with TopicReader(kafka, cfg.kafka.topics.readings) as rd:
            got = readings_of(await rd.until(lambda r: len(readings_of(r)) >= 1))
        assert got == [("DG-HM-R01", "rain_mm", t, 2.5)]


async def test_shared_subscription_splits_messages_between_gateways(kafka, mosq, tmp_path):
    """MQTT 5 ``$share/<group>/…`` on Mosquitto: every message reaches exactly one gateway."""
    url = f"mqtt://127.0.0.1:{mosq.port}"
    base = gateway_config(tmp_path, mqtt={"protocol": "5", "shared_group": "ingest"})
    other = base.model_copy(update={"http": base.http.model_copy(update={"port": free_port()})})
    t = now_ms() - 200 * MIN
    async with running_gateway(base, kafka, url, "gw-share-a") as a, \
            running_gateway(other, kafka, url, "gw-share-b") as b:
        await wait_connected(a)
        await wait_connected(b)
        await asyncio.to_thread(publish, mosq.port, [
            (f"yujing/sim/DG-HM-R{i % 7:02d}/rain_mm", orjson.dumps({"ts": t + i * MIN, "value": 0.5}))
            for i in range(120)], True)
        async with TopicReader(kafka, base.kafka.topics.readings) as rd:
            await rd.until(lambda r: len(readings_of(r)) >= 120)
            got = readings_of(await rd.settle(1.0))
    assert len(got) == 120 and len(set(got)) == 120  # none lost, none twice
    assert a.accepted > 10 and b.accepted > 10 and a.accepted + b.accepted == 120


def make_certs(d: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 (openssl CLI)."""
    def run(*a: str) -> subprocess.CompletedProcess:
        return subprocess.run(a, cwd=d, check=True, capture_output=True, timeout=60)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=yujing-test-ca")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    return d / "ca.crt", d / "server.crt", d / "server.key"


async def test_tls_with_username_and_password(kafka, tmp_path):
    ca, crt, key = make_certs(tmp_path)
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "yujing", "s3cret"], check=True,
                   capture_output=True, timeout=30)
    extra = (f"cafile {ca}\ncertfile {crt}\nkeyfile {key}\n"
             f"allow_anonymous false\npassword_file {pw}\n")
    with mosquitto(tmp_path, extra) as m:
        url = f"mqtts://127.0.0.1:{m.port}"
        good = gateway_config(tmp_path, mqtt={"client_id": "gw-tls", "username": "yujing",
                                              "password": "s3cret", "tls": {"ca_file": str(ca)}})
        bad = gateway_config(tmp_path, mqtt={"client_id": "gw-tls-bad", "username": "yujing",
                                             "password": "wrong", "tls": {"ca_file": str(ca)},
                                             "reconnect_min_s": 5})
        t = now_ms() - MIN
        async with running_gateway(good, kafka, url) as gw, running_gateway(bad, kafka, url) as gw_bad:
            await wait_connected(gw)
            await asyncio.to_thread(publish, m.port, [
                ("yujing/sim/DG-HM-R01/rain_mm", orjson.dumps({"ts": t, "value": 3.5}))],
                tls_ca=ca, auth=("yujing", "s3cret"))
            async with TopicReader(kafka, good.kafka.topics.readings) as rd:
                got = readings_of(await rd.until(lambda r: len(readings_of(r)) >= 1))
            assert got == [("DG-HM-R01", "rain_mm", t, 3.5)]
            assert not gw_bad.mqtt.connected.is_set()  # refused: wrong password


async def test_a_message_is_acknowledged_only_after_kafka_has_it(mosq, tmp_path):
    """Kafka dies under the gateway: the MQTT message stays unacknowledged in the broker's
    session, and the next gateway with the same client id gets it and stores it."""
    from yujing.connectors.gateway import Gateway

    cfg = gateway_config(tmp_path, mqtt={"client_id": "gw-ack", "protocol": "5"})
    url = f"mqtt://127.0.0.1:{mosq.port}"
    t = now_ms() - MIN
    with tansu() as doomed:
        gw = Gateway(cfg, doomed, url)
        await gw.start()
        await wait_connected(gw)
    try:
        await asyncio.to_thread(publish, mosq.port, [
            ("yujing/sim/DG-HM-R01/rain_mm", orjson.dumps({"ts": t, "value": 4.5}))], True)
        await asyncio.sleep(1.5)
        assert gw.accepted == 0
    finally:
        await gw.stop(timeout_s=1)
    with tansu() as kafka2:
        async with running_gateway(cfg, kafka2, url) as gw2:
            async with TopicReader(kafka2, cfg.kafka.topics.readings) as rd:
                got = readings_of(await rd.until(lambda r: len(readings_of(r)) >= 1, 20))
            assert got == [("DG-HM-R01", "rain_mm", t, 4.5)]
            assert gw2.accepted == 1
