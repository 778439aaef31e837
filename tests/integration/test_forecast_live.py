"""Forecast readings on `yujing run` (embedded Tansu and amqtt): a forecast posted over HTTP
raises Guangdong's yellow rainstorm signal, a later issue with lower values replaces it and
the warning clears; a forecast published over MQTT raises one too; malformed forecasts are
refused with their reasons and dead-lettered while the rest goes on. And on a gateway with
tokens (Tansu): a token writes its own stations' forecasts only, and they reach Kafka in
the station's envelope with their issue times."""

from __future__ import annotations

import time

import aiohttp
import orjson
import yaml

from tests.integration.test_duty_e2e import get, wait_incident
from tests.integration.test_run import dead_letters
from tests.support.duty import alert_config, write_roster
from tests.support.run import ROOT
from tests.support.services import (
    TopicReader,
    gateway_config,
    mqtt_publish,
    readings_of,
    running_gateway,
)
from yujing.connectors.auth import hash_token, new_token
from yujing.domain import Forecast
from yujing.envelope import decode

MIN, HOUR = 60_000, 3_600_000
RULE = "rainstorm-guangdong-forecast"
QPF = ("DG-HM-R01", "DG-CA-R01")   # the gauges that receive a QPF (qpf: 1 opts them in)


def registry_with_qpf(tmp_path) -> str:
    doc = yaml.safe_load((ROOT / "stations.yaml").read_text(encoding="utf-8"))
    for st in doc["stations"]:
        if st["id"] in QPF:
            st["thresholds"] = {**(st.get("thresholds") or {}), "qpf": 1}
    path = tmp_path / "stations.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return str(path)


def issue(station: str, issued: int, values: list[float], grid: int) -> dict:
    """One compact issue: hourly values valid at ``grid`` + 1 h, + 2 h, … (a later issue
    names the same valid times, as a model's hourly steps do)."""
    return {"station": station, "metric": "rain_mm_fcst", "issued": issued,
            "steps": [[grid + (k + 1) * HOUR, v] for k, v in enumerate(values)]}


async def post(http: aiohttp.ClientSession, url: str, body) -> tuple[int, dict]:
    async with http.post(url, json=body) as resp:
        return resp.status, await resp.json()


async def test_forecasts_over_http_and_mqtt_raise_yellow_and_a_later_issue_clears_it(
        hooks, smtp, run_factory, tmp_path):
    roster = write_roster(tmp_path, hooks, smtp)
    r = run_factory(hooks.port, **alert_config(roster, 0), kafka={"partitions": 1},
                    worker={"registry": registry_with_qpf(tmp_path)})
    now = int(time.time() * 1000)
    async with aiohttp.ClientSession() as http:
        # a dry hour at Humen: the stream's event time is now
        dry = [{"station": "DG-HM-R01", "metric": "rain_mm", "ts": now - HOUR + k * 5 * MIN,
                "value": 0.0} for k in range(13)]
        status, body = await post(http, f"{r.http}/v1/readings", dry)
        assert status == 200 and body["accepted"] == 13, body

        # issue 1: 52 mm within the next 5 hours → yellow (with one malformed item beside it)
        status, body = await post(http, f"{r.http}/v1/forecasts", [
            issue("DG-HM-R01", now, [10, 20, 15, 5, 2], now),
            {"station": "DG-HM-R01", "metric": "rain_mm", "issued": now, "valid": now + HOUR,
             "value": 80}])
        assert status == 200, body
        assert body["accepted"] == 5
        assert body["rejected"][0]["index"] == 1 and "_fcst" in body["rejected"][0]["reason"]
        raised = await wait_incident(http, r.http, lambda w: w["rule"] == RULE
                                     and w["station"] == "DG-HM-R01" and w["grade"] == 2, 60)
        assert raised["state"] != "cleared"
        assert any("未来5小时预报雨量" in str(e) for e in raised["timeline"]), raised["timeline"]

        # issue 2, a second later, for the same hours: 6 mm → the warning clears
        status, body = await post(http, f"{r.http}/v1/forecasts",
                                  issue("DG-HM-R01", now + 1000, [2, 3, 1, 0, 0], now))
        assert status == 200 and body["accepted"] == 5, body
        await wait_incident(http, r.http, lambda w: w["incident"] == raised["incident"]
                            and w["state"] == "cleared", 60)
        # issue 1 again (a retry arriving late) does not raise it again
        status, body = await post(http, f"{r.http}/v1/forecasts",
                                  issue("DG-HM-R01", now, [10, 20, 15, 5, 2], now))
        assert status == 200, body

        # MQTT: Chang'an's forecast on its own forecast topic, and a malformed one
        mqtt_publish(r.mqtt_port, [
            ("yujing/test/DG-CA-R01/forecast", orjson.dumps({"metric": "rain_mm_fcst",
                                                             "issued": now, "steps": "lots"})),
            ("yujing/test/DG-CA-R01/forecast",
             orjson.dumps({k: v for k, v in issue("DG-CA-R01", now, [30, 30], now).items()
                           if k != "station"})),
        ])
        changan = await wait_incident(http, r.http, lambda w: w["rule"] == RULE
                                      and w["station"] == "DG-CA-R01" and w["grade"] == 2, 60)
        assert changan["state"] != "cleared"

        letters = await dead_letters(r.kafka, 2)
        reasons = {d["source"].split(":")[0]: d["reason"] for d in letters}
        assert "_fcst" in reasons["forecasts"]
        assert reasons["mqtt"] == "steps must be a non-empty list of [valid, value] pairs"

        # the retried issue 1 raised nothing at Humen: one incident there, cleared
        status, ws = await get(http, f"{r.http}/v1/warnings?state=all")
        assert status == 200, ws
        humen = [w for w in ws if w["rule"] == RULE and w["station"] == "DG-HM-R01"]
        assert [w["incident"] for w in humen] == [raised["incident"]]


async def test_a_token_writes_its_own_stations_forecasts_only_and_they_reach_kafka_with_issue_times(
        kafka, tmp_path):
    humen = new_token()
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"tokens": [
        {"gateway": "humen", "sha256": hash_token(humen), "stations": ["DG-HM-*"]}]}))
    cfg = gateway_config(tmp_path, http={"tokens_file": str(tokens)})
    now = int(time.time() * 1000)
    own, neighbour = issue("DG-HM-R01", now, [4, 5], now), issue("DG-CA-R01", now, [9], now)
    async with running_gateway(cfg, kafka):
        url = f"http://127.0.0.1:{cfg.http.port}/v1/forecasts"
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {humen}"}
            async with http.post(url, json=[own, neighbour], headers=headers) as resp:
                status, body = resp.status, await resp.json()
            assert status == 200 and body["accepted"] == 2, body
            assert body["rejected"] == [{"index": 1, "status": 403, "reason": (
                "gateway 'humen' may not write station 'DG-CA-R01': ask the bureau to add it "
                "to this token's scope")}]
            async with http.post(url, json=neighbour, headers=headers) as resp:
                assert resp.status == 403
            async with http.post(url, json=own) as resp:   # no token
                assert resp.status == 401
        async with TopicReader(kafka, cfg.kafka.topics.readings) as rd:
            await rd.until(lambda recs: len(readings_of(recs)) >= 2)
            records = await rd.settle()
    got = [c.reading(i) for c in (decode(r.value) for r in records) for i in range(len(c))]
    assert got == [Forecast("DG-HM-R01", "rain_mm_fcst", now + HOUR, 4.0, now),
                   Forecast("DG-HM-R01", "rain_mm_fcst", now + 2 * HOUR, 5.0, now)]
