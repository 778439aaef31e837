"""HTTP ingest against a real Kafka-protocol broker (Tansu) with the gateway in this process:
JSON batches, InfluxDB line protocol from influxdb-client, events, tokens, 413, 503,
dead letters and `yujing deadletter tail`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import aiohttp
import orjson
import pytest
import yaml
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from tests.support.services import (
    ROOT,
    TopicReader,
    gateway_config,
    letters_of,
    metric_value,
    readings_of,
    running_gateway,
    tansu,
)
from yujing.connectors.auth import hash_token, new_token

MIN = 60_000


def now_ms() -> int:
    return int(time.time() * 1000)


async def post(url: str, body, token: str | None = None) -> tuple[int, dict, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=data, headers=headers) as resp:
            text = await resp.text()
            return resp.status, (orjson.loads(text) if text else {}), dict(resp.headers)


async def test_json_batch_is_validated_deduplicated_and_dead_lettered(kafka, tmp_path):
    cfg = gateway_config(tmp_path, gateway={"unknown_station": "reject"})
    t = now_ms() - 30 * MIN
    items = [
        {"station": "DG-HM-R01", "metric": "rain_mm", "ts": t, "value": 1.5},
        {"station": "DG-HM-R01", "ts": t + 5 * MIN, "rain_mm": 2.0, "humidity_pct": 80},
        {"station": "NOPE-1", "metric": "rain_mm", "ts": t, "value": 1.0},
        {"station": "DG-HM-R01", "metric": "rain_mm", "ts": t + MIN, "value": -3},
        {"station": "DG-HM-R01", "metric": "rain_mm", "ts": now_ms() + 3_600_000, "value": 1},
        {"station": "DG-HM-R01", "metric": "rain_mm", "ts": t - 30 * 86_400_000, "value": 1},
        {"station": "DG-HM-R01", "metric": "rain_mm", "ts": t, "value": "x"},
        {"station": "DG-HM-R01", "metric": "rain_mm", "ts": t, "value": 1.5},  # repeat of 0
    ]
    async with running_gateway(cfg, kafka):
        url = f"http://127.0.0.1:{cfg.http.port}"
        status, body, _ = await post(f"{url}/v1/readings", items)
        assert status == 200, body
        assert body["accepted"] == 3 and body["duplicates"] == 1
        assert [r["index"] for r in body["rejected"]] == [2, 3, 4, 5, 6]
        reasons = {r["index"]: r["reason"] for r in body["rejected"]}
        assert "not in the station registry" in reasons[2]
        assert "outside its physical range" in reasons[3]
        assert "in the future" in reasons[4] and "days old" in reasons[5]
        # the device retries the whole batch: nothing new is stored, same rejections
        status, again, _ = await post(f"{url}/v1/readings", items)
        assert status == 200 and again["accepted"] == 0 and again["duplicates"] == 4
        # a correction (same key, new value) goes through: last write wins downstream
        status, fix, _ = await post(f"{url}/v1/readings", {**items[0], "value": 1.6})
        assert fix["accepted"] == 1
        async with TopicReader(kafka, cfg.kafka.topics.readings) as rd:
            await rd.until(lambda recs: len(readings_of(recs)) >= 4)
            got = sorted(readings_of(await rd.settle()))
        assert got == sorted([("DG-HM-R01", "rain_mm", t, 1.5), ("DG-HM-R01", "rain_mm", t, 1.6),
                              ("DG-HM-R01", "rain_mm", t + 5 * MIN, 2.0),
                              ("DG-HM-R01", "humidity_pct", t + 5 * MIN, 80.0)])
        async with TopicReader(kafka, cfg.kafka.topics.deadletter) as dl:
            letters = letters_of(await dl.until(lambda r: len(r) >= 10))
        codes = sorted(d["code"] for d in letters)
        assert codes == sorted(["unknown_station", "range", "future", "too_old", "invalid"] * 2)
        assert all(d["source"].startswith("http:anonymous@127.0.0.1") for d in letters)
        assert any('"NOPE-1"' in d["raw"] for d in letters)
        async with aiohttp.ClientSession() as http:
            text = await (await http.get(f"{url}/metrics")).text()
            health = await (await http.get(f"{url}/healthz")).json()
        assert metric_value(text, "yujing_gateway_readings_rejected_total", source="http",
                            reason="range") >= 2
        assert metric_value(text, "yujing_gateway_readings_duplicate_total", source="http") >= 5
        assert metric_value(text, "yujing_gateway_envelope_bytes_count") >= 1
        assert health["auth"] == "open" and health["duplicates"] == 5


async def test_influxdb_client_writes_line_protocol_to_the_gateway(kafka, tmp_path):
    token = new_token()
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"tokens": [
        {"gateway": "telegraf-hm", "sha256": hash_token(token), "stations": ["DG-HM-*"]}]}))
    cfg = gateway_config(tmp_path, http={"tokens_file": str(tokens)})
    t = now_ms() - 10 * MIN
    async with running_gateway(cfg, kafka):
        url = f"http://127.0.0.1:{cfg.http.port}"

        def write(points, gzip: bool = False) -> None:
            with InfluxDBClient(url=url, token=token, org="any", enable_gzip=gzip) as client:
                client.write_api(write_options=SYNCHRONOUS).write(bucket="any", record=points)

        p1 = (Point("rain_gauge").tag("station", "DG-HM-R01").field("rain_mm", 1.25)
              .field("wind_speed_ms", 3.5).time(t * 1_000_000, WritePrecision.NS))
        p2 = (Point("gauge").tag("station", "DG-HM-R02").tag("metric", "water_level_m")
              .field("value", 2.75).time(t, WritePrecision.MS))
        await asyncio.to_thread(write, [p1])
        await asyncio.to_thread(write, [p2], True)  # gzip body, precision ms
        # one point outside the token's scope, one impossible: InfluxDB's partial-write 400
        def gauge(station: str, mm: float, ts: int) -> Point:
            return (Point("rain_gauge").tag("station", station).field("rain_mm", mm)
                    .time(ts, WritePrecision.MS))

        bad = [gauge("DG-CA-R01", 1.0, t), gauge("DG-HM-R01", 9999.0, t + 1),
               gauge("DG-HM-R01", 0.5, t + 2)]
        with pytest.raises(ApiException) as exc:
            await asyncio.to_thread(write, bad)
        assert exc.value.status == 400
        err = orjson.loads(exc.value.body)
        assert err["code"] == "invalid" and err["message"].startswith("partial write: 2 point(s)")
        assert {r["index"]: r.get("status") for r in err["rejected"]} == {1: 403, 2: None}
        with pytest.raises(ApiException) as exc:
            await asyncio.to_thread(write, [bad[0]])
        assert exc.value.status == 403
        status, body, headers = await post(f"{url}/api/v2/write", b"m,station=DG-HM-R01 rain_mm=1")
        assert status == 401 and "Bearer" in headers.get("WWW-Authenticate", "")
        async with TopicReader(kafka, cfg.kafka.topics.readings) as rd:
            await rd.until(lambda recs: len(readings_of(recs)) >= 4)
            got = sorted(readings_of(await rd.settle()))
        assert got == sorted([("DG-HM-R01", "rain_mm", t, 1.25), ("DG-HM-R01", "wind_speed_ms", t, 3.5),
                              ("DG-HM-R02", "water_level_m", t, 2.75),
                              ("DG-HM-R01", "rain_mm", t + 2, 0.5)])
        async with TopicReader(kafka, cfg.kafka.topics.deadletter) as dl:
            letters = letters_of(await dl.until(lambda r: len(r) >= 3))
        forbidden = [d for d in letters if d["code"] == "forbidden"]
        assert len(forbidden) == 2 and all(d["raw"] == "" for d in forbidden)  # nothing kept
        assert all(d["source"].startswith("lineproto:telegraf-hm@") for d in letters)


async def test_events_become_readings_and_keep_their_detail(kafka, tmp_path):
    cfg = gateway_config(tmp_path)
    t = now_ms() - MIN
    events = [{"type": "smoke", "camera": "CAM-QX-03", "ts": t, "confidence": 0.91,
               "bbox": [0.1, 0.2, 0.3, 0.25], "image_url": "https://cams.example/qx03/1.jpg"},
              {"type": "vent_burst", "station": "ENT17-DUST-2", "ts": t, "detail": {"line": "2"}},
              {"type": "fire", "camera": "CAM-QX-03", "ts": t, "confidence": 7}]
    async with running_gateway(cfg, kafka):
        url = f"http://127.0.0.1:{cfg.http.port}"
        status, body, _ = await post(f"{url}/v1/events", events)
        assert status == 200 and body["accepted"] == 2
        assert body["rejected"] == [{"index": 2, "reason": "confidence must be a number from 0 to 1"}]
        async with TopicReader(kafka, cfg.kafka.topics.readings) as rd:
            got = sorted(readings_of(await rd.until(lambda r: len(readings_of(r)) >= 2)))
        assert got == [("CAM-QX-03", "smoke", t, 0.91), ("ENT17-DUST-2", "vent_burst", t, 1.0)]
        async with TopicReader(kafka, cfg.kafka.topics.events) as ev:
            details = {d["type"]: d for d in letters_of(await ev.until(lambda r: len(r) >= 2))}
        assert details["smoke"]["bbox"] == [0.1, 0.2, 0.3, 0.25]
        assert details["smoke"]["image_url"] == "https://cams.example/qx03/1.jpg"
        assert details["smoke"]["gateway"] == "anonymous" and details["smoke"]["recv_ms"] >= t
        assert details["vent_burst"]["detail"] == {"line": "2"}


async def test_token_scopes_and_hot_reload_of_tokens_and_registry(kafka, tmp_path):
    humen, factory, late = new_token(), new_token(), new_token()
    tokens = tmp_path / "tokens.yaml"
    entries = [{"gateway": "humen", "sha256": hash_token(humen), "stations": ["DG-HM-*"]},
               {"gateway": "ent9", "sha256": hash_token(factory), "enterprises": ["ENT-9"]}]
    tokens.write_text(yaml.safe_dump({"tokens": entries}))
    registry = tmp_path / "stations.yaml"
    registry.write_text((ROOT / "stations.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    cfg = gateway_config(tmp_path, http={"tokens_file": str(tokens)},
                         worker={"registry": str(registry), "data_dir": str(tmp_path / "w")})
    t = now_ms() - MIN
    def r(st: str, v: float = 1.0) -> dict:
        return {"station": st, "metric": "rain_mm", "ts": t, "value": v}

    async with running_gateway(cfg, kafka) as gw:
        url = f"http://127.0.0.1:{cfg.http.port}/v1/readings"
        status, body, _ = await post(url, [r("DG-HM-R01"), r("DG-CA-R01")], humen)
        assert status == 200 and body["accepted"] == 1
        assert body["rejected"][0]["index"] == 1 and body["rejected"][0]["status"] == 403
        assert "may not write station 'DG-CA-R01'" in body["rejected"][0]["reason"]
        status, body, _ = await post(url, [r("DG-CA-R01", 2.0)], humen)
        assert status == 403
        assert (await post(url, [r("DG-HM-R01")]))[0] == 401
        assert (await post(url, [r("DG-HM-R01")], "not-a-token"))[0] == 401
        assert (await post(url, [r("ENT9-GAS-1")], factory))[0] == 403  # not registered yet
        assert (await post(url, [r("DG-HM-R01", 3.0)], late))[0] == 401
        # the bureau adds a token and a station of ENT-9, then sends SIGHUP: no restart
        entries.append({"gateway": "late", "sha256": hash_token(late), "all_stations": True})
        tokens.write_text(yaml.safe_dump({"tokens": entries}))
        with registry.open("a", encoding="utf-8") as f:
            f.write("  - {id: ENT9-GAS-1, name: 九号厂气体, kind: gas, town: 麻涌镇, enterprise: ENT-9}\n")
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(w.reloads for w in gw.watchers):
            await asyncio.sleep(0.05)
        assert [w.reloads for w in gw.watchers] == [1, 1]
        assert (await post(url, [r("DG-HM-R01", 3.0)], late))[0] == 200
        status, body, _ = await post(url, [r("ENT9-GAS-1")], factory)
        assert status == 200 and body["accepted"] == 1
        # a broken edit is reported and the last good tokens stay in force
        tokens.write_text("tokens: [{gateway: x}]\n")
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0.3)
        assert gw.watchers[1].failures == 1
        assert (await post(url, [r("DG-HM-R01", 4.0)], late))[0] == 200
        async with TopicReader(kafka, cfg.kafka.topics.readings) as rd:
            await rd.until(lambda recs: len(readings_of(recs)) >= 4)
            got = readings_of(await rd.settle())
        assert sorted((s, v) for s, _, _, v in got) == [
            ("DG-HM-R01", 1.0), ("DG-HM-R01", 3.0), ("DG-HM-R01", 4.0), ("ENT9-GAS-1", 1.0)]


async def test_413_for_big_bodies_and_503_when_kafka_is_gone(tmp_path):
    cfg = gateway_config(tmp_path, http={"max_body_bytes": 2000, "store_timeout_s": 1.5,
                                         "retry_after_s": 7})
    item = {"station": "DG-HM-R01", "metric": "rain_mm", "ts": now_ms(), "value": 1.0}
    with tansu() as bootstrap:
        async with running_gateway(cfg, bootstrap):
            url = f"http://127.0.0.1:{cfg.http.port}/v1/readings"
            status, body, _ = await post(url, [item] * 100)
            assert status == 413 and "over the limit of 2000 bytes" in body["error"]
            assert (await post(url, [item]))[0] == 200
            async with TopicReader(bootstrap, cfg.kafka.topics.deadletter) as dl:
                [letter] = letters_of(await dl.until(lambda r: len(r) >= 1))
            assert letter["code"] == "too_large" and letter["raw"] == ""
            stop_tansu = True
        assert stop_tansu
    # a gateway whose Kafka died: 503 with Retry-After, not a silent drop
    with tansu() as bootstrap:
        gw_cm = running_gateway(cfg, bootstrap)
        gw = await gw_cm.__aenter__()
    try:
        t0 = time.monotonic()
        status, body, headers = await post(f"http://127.0.0.1:{cfg.http.port}/v1/readings",
                                           [{**item, "ts": item["ts"] + 1}])
        assert status == 503 and headers["Retry-After"] == "7"
        assert "Kafka is unavailable" in body["error"] and body["accepted"] == 0
        assert time.monotonic() - t0 < 5
        assert len(gw.dedup) == 0  # the refused reading left the duplicate filter: a retry counts
    finally:
        await gw.stop(timeout_s=1)


async def test_deadletter_tail_shows_the_newest_and_follows(kafka, tmp_path):
    cfg = gateway_config(tmp_path)
    conf = tmp_path / "config.yaml"
    conf.write_text(yaml.safe_dump({"kafka": {"bootstrap": kafka, "partitions": 2,
                                              "topics": cfg.kafka.topics.model_dump()}}))
    async with running_gateway(cfg, kafka):
        url = f"http://127.0.0.1:{cfg.http.port}/v1/readings"
        for i in range(5):
            await post(url, {"station": "DG-HM-R01", "metric": "rain_mm", "ts": now_ms(),
                             "value": f"bad-{i}"})
            await asyncio.sleep(0.01)
        cli = [sys.executable, "-m", "yujing", "deadletter", "tail", "-c", str(conf)]
        async with TopicReader(kafka, cfg.kafka.topics.deadletter) as dl:
            await dl.until(lambda r: len(r) >= 5)
        out = await asyncio.to_thread(subprocess.run, cli + ["-n", "3"], capture_output=True,
                                      text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.strip().splitlines()
        assert len(lines) == 3
        assert all("[invalid] value must be a number" in ln for ln in lines)
        assert [ln.split("bad-")[1][0] for ln in lines] == ["2", "3", "4"]  # newest, oldest first
        follow = subprocess.Popen(cli + ["-n", "0", "--follow", "--json"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            said = await asyncio.wait_for(asyncio.to_thread(follow.stderr.readline), 30)
            assert said.startswith("following "), said  # it has read to the end: now follows
            await post(url, {"station": "DG-HM-R01", "metric": "rain_mm", "ts": now_ms(),
                             "value": "followed"})
            line = await asyncio.wait_for(asyncio.to_thread(follow.stdout.readline), 20)
            assert '"followed"' in orjson.loads(line)["raw"]
        finally:
            follow.send_signal(signal.SIGINT)
            assert follow.wait(15) == 0
