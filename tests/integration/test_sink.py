"""The InfluxDB sink against VictoriaMetrics (a real server with the InfluxDB v2 write API):
points read back and compared; a sink whose server is down retries, stays bounded, and
catches up without loss."""

from __future__ import annotations

import asyncio
import time

import msgspec

from tests.support.services import gateway_config, start_victoria, vm_export
from yujing.connectors.embedded import free_port
from yujing.connectors.influx import Sink
from yujing.connectors.kafka import ensure_topics, producer
from yujing.domain import EventKind, Grade, Reading, WarningEvent
from yujing.envelope import encode_readings

MIN = 60_000


def sink_config(tmp_path, influx_url: str, **influx):
    return gateway_config(tmp_path, kafka={"rebalance_timeout_s": 1, "session_timeout_s": 6},
                          influx={"url": influx_url, "token": "t", "org": "o", "bucket": "b",
                                  "flush_ms": 100, **influx})


async def produce(bootstrap: str, cfg, envelopes: list[bytes], warnings: list[bytes] = ()) -> None:
    k = cfg.kafka
    await ensure_topics(bootstrap, [k.topics.readings, k.topics.warnings], k.partitions)
    prod = producer(bootstrap, "none")
    await prod.start()
    try:
        for env in envelopes:
            await prod.send_and_wait(k.topics.readings, env, partition=0)
        for w in warnings:
            await prod.send_and_wait(k.topics.warnings, w, key=b"k")
    finally:
        await prod.stop()


async def run_sink(cfg, bootstrap: str) -> tuple[Sink, asyncio.Task]:
    sink = Sink(cfg, bootstrap)
    await sink.start()
    return sink, asyncio.create_task(sink.run())


async def stop_sink(sink: Sink, task: asyncio.Task) -> None:
    sink.stopping.set()
    await asyncio.wait_for(task, 20)
    await sink.stop()


async def test_readings_and_warnings_land_in_victoriametrics(kafka, victoria, tmp_path):
    cfg = sink_config(tmp_path, victoria.url)
    t = int(time.time() * 1000) - 60 * MIN
    env = encode_readings([Reading("DG-HM-R01", "rain_mm", t, 1.5),
                           Reading("DG-HM-R01", "rain_mm", t + 5 * MIN, 2.25),
                           Reading("NEW-1", "water_level_m", t, 0.125)])
    ev = WarningEvent(EventKind.RAISED, "rain-3h@DG-HM-R01", "inc-42", "rain-3h", "暴雨",
                      "rainstorm", "DG-HM-R01", Grade.ORANGE, Grade.NONE, t + 5 * MIN, 54.0,
                      "3h", "sum(3h) = 54 >= 50", t + 5 * MIN + 10, "虎门镇雨量站", "虎门镇")
    await produce(kafka, cfg, [env], [msgspec.json.encode(ev)])
    sink, task = await run_sink(cfg, kafka)
    try:
        rain = await vm_export(victoria.url, '{__name__="rain_gauge_value"}',
                               lambda s: s and len(s[0]["values"]) == 2)
        [series] = rain
        assert series["metric"] == {"__name__": "rain_gauge_value", "metric": "rain_mm",
                                    "station": "DG-HM-R01", "town": "虎门镇"}
        assert series["values"] == [1.5, 2.25] and series["timestamps"] == [t, t + 5 * MIN]
        [new] = await vm_export(victoria.url, '{__name__="unregistered_value"}', bool)
        assert new["metric"]["station"] == "NEW-1" and new["values"] == [0.125]
        [level] = await vm_export(victoria.url, '{__name__="warning_level"}', bool)
        assert level["metric"] == {"__name__": "warning_level", "grade": "orange",
                                   "hazard": "rainstorm", "incident": "inc-42",
                                   "rule": "rain-3h", "state": "raised",
                                   "station": "DG-HM-R01", "town": "虎门镇"}
        assert level["values"] == [3] and level["timestamps"] == [t + 5 * MIN]
        [value] = await vm_export(victoria.url, '{__name__="warning_value"}', bool)
        assert value["values"] == [54.0]
        assert sink.written == 4 and sink.dropped == 0
    finally:
        await stop_sink(sink, task)


async def test_a_down_server_is_retried_with_a_bounded_buffer_and_nothing_is_lost(kafka, tmp_path):
    port = free_port()
    cfg = sink_config(tmp_path, f"http://127.0.0.1:{port}", buffer_points=60, batch_points=20,
                      retry_max_s=0.5, timeout_s=2)
    t = int(time.time() * 1000) - 600 * MIN
    envs = [encode_readings([Reading("DG-CA-R01", "rain_mm", t + (i * 20 + j) * MIN, float(i * 20 + j))
                             for j in range(20)]) for i in range(10)]
    await produce(kafka, cfg, envs)
    sink, task = await run_sink(cfg, kafka)
    vm = None
    try:
        deadline = time.monotonic() + 20
        while sink.retried < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert sink.retried >= 3 and sink.written == 0
        # consumption paused at the bound: not all 200 points were pulled into memory
        assert 0 < sink.backlog <= 60 + 20
        vm = start_victoria(tmp_path, port)
        [series] = await vm_export(vm.url, '{__name__="rain_gauge_value",station="DG-CA-R01"}',
                                   lambda s: s and len(s[0]["values"]) == 200, timeout=30)
        assert series["values"] == [float(i) for i in range(200)]
        assert series["timestamps"] == [t + i * MIN for i in range(200)]
        assert sink.dropped == 0 and sink.written == 200 and sink.backlog == 0
    finally:
        await stop_sink(sink, task)
        if vm is not None:
            vm.stop()
