"""Reading-to-warning latency on embedded brokers: HTTP POST → warning event in Kafka.

Each probe posts readings that take a fresh station straight to red and times
until the worker's warning event is on yujing.warnings. Prints p50/p90/max over
--probes, for the configured kafka.fetch_max_wait_ms (compare with --fetch-wait 1500,
faust's built-in value).

    .venv/bin/python bench/latency.py --probes 20 [--fetch-wait 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import msgspec
import yaml
from aiokafka import AIOKafkaConsumer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from yujing.config import load_config
from yujing.connectors.embedded import free_port
from yujing.domain import WarningEvent
from yujing.supervisor import Supervisor


async def probe_all(http: str, bootstrap: str, n: int) -> list[float]:
    dec = msgspec.json.Decoder(WarningEvent)
    consumer = AIOKafkaConsumer("yujing.warnings", bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="latest", fetch_max_wait_ms=10)
    await consumer.start()
    out = []
    try:
        await asyncio.sleep(1)
        async with aiohttp.ClientSession() as s:
            for k in range(n):
                station = f"LAT-{k:03d}-{int(time.time())}"
                now = int(time.time() * 1000)
                items = [{"station": station, "metric": "rain_mm", "ts": now - (20 - i) * 60_000,
                          "value": 10.0} for i in range(12)]
                t0 = time.perf_counter()
                async with s.post(f"{http}/v1/readings", json=items) as r:
                    assert r.status == 200, await r.text()
                deadline = t0 + 15
                seen = False
                while not seen and time.perf_counter() < deadline:
                    for recs in (await consumer.getmany(timeout_ms=20)).values():
                        for rec in recs:
                            ev = dec.decode(rec.value)
                            if ev.station == station and ev.grade >= 4:
                                seen = True
                if seen:
                    out.append(time.perf_counter() - t0)
                await asyncio.sleep(0.3)
    finally:
        await consumer.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--probes", type=int, default=20)
    ap.add_argument("--fetch-wait", type=int, default=None, help="kafka.fetch_max_wait_ms")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="yujing-latency-"))
    cfg = {"http": {"port": free_port()}, "notify": {"default": []},
           "worker": {"rules_dir": str(ROOT / "rules"), "data_dir": str(tmp / "w")}}
    if args.fetch_wait:
        cfg["kafka"] = {"fetch_max_wait_ms": args.fetch_wait}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    sup = Supervisor(load_config(path), path, log_dir=tmp / "logs")
    ends = sup.start(quiet_children=True)
    try:
        time.sleep(8)  # the worker joins its group
        lat = asyncio.run(probe_all(ends.http, ends.kafka, args.probes))
    finally:
        sup.stop()
    lat.sort()
    print(f"fetch_max_wait_ms: {load_config(path).kafka.fetch_max_wait_ms}")
    print(f"probes_answered: {len(lat)}/{args.probes}")
    if lat:
        print(f"latency_p50_ms: {statistics.median(lat) * 1000:.0f}")
        print(f"latency_p90_ms: {lat[int(0.9 * (len(lat) - 1))] * 1000:.0f}")
        print(f"latency_max_ms: {lat[-1] * 1000:.0f}")


if __name__ == "__main__":
    main()
