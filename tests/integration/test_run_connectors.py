"""`yujing run` with the InfluxDB sink and worker metrics configured: readings and warnings
reach VictoriaMetrics, the worker's /metrics counts them, and the worker picks up a
registry change on SIGHUP without a restart."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import aiohttp

from tests.support.readings import rain
from tests.support.services import ROOT, metric_value, vm_export
from yujing.connectors.embedded import free_port

MIN = 60_000


async def post(http: aiohttp.ClientSession, url: str, items: list[dict]) -> dict:
    async with http.post(url, json=items) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return body


async def test_run_feeds_the_sink_counts_metrics_and_reloads_the_registry(receiver, run_factory,
                                                                          victoria, tmp_path):
    registry = tmp_path / "stations.yaml"
    registry.write_text((ROOT / "stations.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    wport = free_port()
    r = run_factory(receiver.port,
                    influx={"url": victoria.url, "token": "t", "org": "o", "bucket": "b",
                            "flush_ms": 200},
                    worker={"registry": str(registry), "metrics_port": wport})
    assert "sink" in r.pids
    start = int(time.time() * 1000) - 4 * 3_600_000
    async with aiohttp.ClientSession() as http:
        await post(http, f"{r.http}/v1/readings", rain("DG-HM-R01", start, 36, 1.5))
        await post(http, f"{r.http}/v1/readings", rain("NEW-R01", start, 36, 1.5))
        humen = await receiver.wait_for(lambda m: "虎门" in m["title"] and "橙色" in m["title"], 90)
        new = await receiver.wait_for(lambda m: "NEW-R01" in m["title"] + m["message"], 30)
        assert "新镇" not in new["title"] + new["message"]
        # the bureau registers the station and sends SIGHUP to the worker: no restart
        with registry.open("a", encoding="utf-8") as f:
            f.write("  - {id: NEW-R01, name: 新镇雨量站, kind: rain_gauge, town: 新镇, "
                    "expected_interval: 5m}\n")
        os.kill(r.pids["worker"], signal.SIGHUP)
        deadline = time.monotonic() + 15
        while "station registry reloaded" not in r.text() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert "worker: station registry reloaded" in r.text()
        # 12 × 6 mm more: over 100 mm in 3 h, red, now with the registered name and town
        await post(http, f"{r.http}/v1/readings", rain("NEW-R01", start + 36 * 5 * MIN, 12, 6.0))
        red = await receiver.wait_for(lambda m: "NEW-R01" in m["title"] + m["message"]
                                      and "红色" in m["title"], 60)
        assert "新镇" in red["title"] + red["message"]

        # every reading and the warnings reached VictoriaMetrics through the sink
        [series] = await vm_export(victoria.url, '{__name__="rain_gauge_value",station="DG-HM-R01"}',
                                   lambda s: s and len(s[0]["values"]) == 36, timeout=30)
        assert series["metric"]["town"] == "虎门镇" and set(series["values"]) == {1.5}
        levels = await vm_export(victoria.url, '{__name__="warning_level"}',
                                 lambda s: {x["metric"]["station"] for x in s}
                                 >= {"DG-HM-R01", "NEW-R01"}, timeout=30)
        assert any(x["metric"]["grade"] == "orange" and x["metric"]["station"] == "DG-HM-R01"
                   for x in levels)
        assert humen["title"]

        text = await (await http.get(f"http://127.0.0.1:{wport}/metrics")).text()
    assert metric_value(text, "yujing_worker_readings_total") >= 84
    assert metric_value(text, "yujing_worker_warnings_total", grade="orange", state="raised") >= 2
    assert metric_value(text, "yujing_worker_warnings_total", grade="red", state="upgraded") >= 1
    assert metric_value(text, "yujing_worker_notifications_total", result="sent") >= 3
    assert metric_value(text, "yujing_worker_eval_seconds_count") >= 1
    assert metric_value(text, "yujing_worker_ingest_to_eval_seconds_count") >= 1
