"""Ingest throughput and latency of one gateway: MQTT (Mosquitto, optionally amqtt), HTTP
JSON and HTTP InfluxDB line protocol, into Kafka (Tansu).

    .venv/bin/python bench/ingest.py [--runs 3] [--amqtt]

Starts Tansu, Mosquitto (Debian's /usr/sbin/mosquitto with a temporary config:
``set_tcp_nodelay true`` — without it Nagle's algorithm added ~30 ms per message on the
way to the gateway (measured: p50 71 ms instead of 42 ms) — and ``max_inflight_messages
1000``, since the gateway acknowledges only after Kafka has the readings) and one
gateway as a separate process (``yujing gateway``, default gateway settings: linger
50 ms, envelopes of at most 500 readings, MQTT 3.1.1 QoS 1 with acknowledgement after
Kafka). A watcher (plain aiokafka consumer, no group, fetch wait 5 ms) reads
``yujing.readings``.

* ``*_readings_per_s``: N readings of fresh stations sent as fast as the sender can
  (HTTP: batches of ``--batch`` readings, ``--concurrency`` requests in flight; MQTT:
  lists of ``--mqtt-batch`` readings per message, QoS 1), from the first send until the
  watcher has seen all N in Kafka: readings accepted and stored per second.
* ``*_latency_p50_ms`` / ``p99``: at a fixed rate (``--rate`` readings/s in messages or
  requests of 10 readings, for ``--duration`` s) each reading carries its send time
  as its value; latency = time the watcher sees its envelope − send time, i.e. publish
  → envelope in Kafka (includes the gateway's linger).

* ``*_gateway_cpu_s_per_100k``: the gateway process's CPU seconds (``/proc``, user +
  system) from the first send until the last reading is in Kafka, per 100,000 readings.

``--baseline SRC`` measures a second gateway, run from the source tree SRC (a checkout of
the commit to compare with), on the same brokers: each run starts the baseline's gateway,
floods it, stops it, then does the same with this tree's, so the two alternate (A B A B…).
It prints each figure for both and the ratio this / baseline of the medians. The latency
runs are made with this tree's gateway only.

Each figure is the median of ``--runs`` runs. Everything listens on 127.0.0.1; every
wait has a timeout; every process started here is stopped by its pid.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import aiohttp
import orjson
import paho.mqtt.client as paho
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from paho.mqtt.enums import CallbackAPIVersion

from yujing.connectors.embedded import free_port, tansu_command, wait_port
from yujing.envelope import decode

TOPIC = "yujing.readings"
ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
METRIC = "bench_send_ms"  # no physical range: the value is a send time in ms


class Watcher:
    """Counts readings of one run (station prefix) and records per-reading latency."""

    def __init__(self, bootstrap: str) -> None:
        self.c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                  fetch_max_wait_ms=5, max_partition_fetch_bytes=8 << 20)
        self.prefix = ""
        self.count = 0
        self.latencies: list[float] = []
        self.gateway_part: list[float] = []
        self.track_latency = False

    async def start(self) -> None:
        await self.c.start()
        parts = self.c.partitions_for_topic(TOPIC)
        deadline = time.monotonic() + 20
        while not parts and time.monotonic() < deadline:
            await self.c.topics()
            parts = self.c.partitions_for_topic(TOPIC)
            await asyncio.sleep(0.2)
        tps = [TopicPartition(TOPIC, p) for p in sorted(parts or [])]
        self.c.assign(tps)
        await self.c.seek_to_end(*tps)
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            got = await self.c.getmany(timeout_ms=100)
            now = time.time() * 1000
            for recs in got.values():
                for rec in recs:
                    cols = decode(rec.value)
                    if not cols.stations or not cols.stations[0].startswith(self.prefix):
                        continue  # an earlier run (Tansu's end offsets are approximate)
                    self.count += len(cols)
                    if self.track_latency:
                        self.latencies += (now - cols.val).tolist()
                        self.gateway_part += [cols.recv_ms - float(cols.val.min())]

    def reset(self, prefix: str, latency: bool = False) -> None:
        self.prefix, self.count, self.track_latency = prefix, 0, latency
        self.latencies, self.gateway_part = [], []

    async def wait_for(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.count < n and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self.count >= n

    async def stop(self) -> None:
        self.task.cancel()
        await self.c.stop()


def items(prefix: str, n: int, stations: int = 200) -> list[dict]:
    base = int(time.time() * 1000) - 3_600_000
    return [{"station": f"{prefix}-S{i % stations:03d}", "metric": "rain_mm",
             "ts": base + i // stations, "value": 0.5} for i in range(n)]


async def http_json(url: str, prefix: str, n: int, batch: int, conc: int) -> None:
    docs = items(prefix, n)
    bodies = [orjson.dumps(docs[i:i + batch]) for i in range(0, n, batch)]
    await _post_all(f"{url}/v1/readings", bodies, conc, "application/json")


async def http_lines(url: str, prefix: str, n: int, batch: int, conc: int) -> None:
    docs = items(prefix, n)
    lines = [f"rain_gauge,station={d['station']} rain_mm={d['value']} {d['ts']}" for d in docs]
    bodies = ["\n".join(lines[i:i + batch]).encode() for i in range(0, n, batch)]
    await _post_all(f"{url}/api/v2/write?precision=ms", bodies, conc, "text/plain")


async def _post_all(url: str, bodies: list[bytes], conc: int, ctype: str) -> None:
    queue = list(reversed(bodies))
    async with aiohttp.ClientSession() as http:
        async def worker() -> None:
            while queue:
                body = queue.pop()
                async with http.post(url, data=body, headers={"Content-Type": ctype}) as resp:
                    if resp.status not in (200, 204):
                        raise RuntimeError(f"{url}: {resp.status} {await resp.text()}")
        await asyncio.gather(*(worker() for _ in range(conc)))


def mqtt_client(port: int) -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{time.monotonic_ns()}",
                    protocol=paho.MQTTv311)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def mqtt_flood(port: int, prefix: str, n: int, batch: int) -> None:
    docs = items(prefix, n)
    c = mqtt_client(port)
    try:
        infos = [c.publish("yujing/bench/_/rain_mm",  # many stations: each item names its own
                           orjson.dumps(docs[i:i + batch]), qos=1) for i in range(0, n, batch)]
        for info in infos:
            info.wait_for_publish(timeout=60)
    finally:
        c.disconnect()
        c.loop_stop()


def paced(send, rate: float, batch: int, duration: float) -> int:
    """Call ``send(k)`` every batch/rate seconds for ``duration``; returns readings sent."""
    gap = batch / rate
    t0 = time.monotonic()
    k = 0
    while time.monotonic() - t0 < duration:
        send(k)
        k += 1
        delay = t0 + k * gap - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return k * batch


def latency_docs(prefix: str, k: int, batch: int) -> list[dict]:
    now = time.time() * 1000
    return [{"station": f"{prefix}-S{(k * batch + j) % 200:03d}", "metric": METRIC,
             "ts": int(now) - 1000 + j, "value": now} for j in range(batch)]


def mqtt_paced(port: int, prefix: str, rate: float, duration: float) -> int:
    c = mqtt_client(port)
    try:
        return paced(lambda k: c.publish(f"yujing/bench/_/{METRIC}",  # many stations per batch
                                         orjson.dumps(latency_docs(prefix, k, 10)), qos=1),
                     rate, 10, duration)
    finally:
        time.sleep(0.5)
        c.disconnect()
        c.loop_stop()


def http_paced(url: str, prefix: str, rate: float, duration: float) -> int:
    def send(k: int) -> None:
        req = urllib.request.Request(f"{url}/v1/readings",
                                     data=orjson.dumps(latency_docs(prefix, k, 10)),
                                     headers={"Content-Type": "application/json"})
        # a thread per request: the sender keeps its pace while one waits for its reply
        threading.Thread(target=lambda: urllib.request.urlopen(req, timeout=30).read(),
                         daemon=True).start()
    return paced(send, rate, 10, duration)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Stack:
    """Tansu and an MQTT broker for the whole benchmark, and one gateway at a time."""

    def __init__(self, tmp: Path, mqtt: str, partitions: int) -> None:
        self.tmp, self.mqtt, self.partitions = tmp, mqtt, partitions
        self.procs: list[subprocess.Popen] = []
        self.gateway: subprocess.Popen | None = None

    def _spawn(self, argv: list[str], log: str, src: Path | None = None) -> subprocess.Popen:
        # ``python -m`` puts the working directory first on the path: it must be ``src`` too
        env = None if src is None else {**os.environ, "PYTHONPATH": str(src)}
        p = subprocess.Popen(argv, stdout=open(self.tmp / log, "ab"), stderr=subprocess.STDOUT,
                             env=env, cwd=src)
        self.procs.append(p)
        return p

    def start(self) -> None:
        kport, self.mport = free_port(), free_port()
        self._spawn(tansu_command(kport), "tansu.log")
        if self.mqtt == "mosquitto":
            conf = self.tmp / "mosquitto.conf"
            conf.write_text(f"listener {self.mport} 127.0.0.1\nallow_anonymous true\n"
                            "persistence false\nuser root\nmax_inflight_messages 1000\nset_tcp_nodelay true\n"
                            "max_queued_messages 100000\n")
            self._spawn(["/usr/sbin/mosquitto", "-c", str(conf)], "mosquitto.log")
        else:
            self._spawn([sys.executable, "-m", "yujing", "mqtt-broker", "--port", str(self.mport)],
                        "amqtt.log")
        for port in (kport, self.mport):
            if not wait_port("127.0.0.1", port, 20):
                raise RuntimeError(f"port {port} did not open; see {self.tmp}")
        self.bootstrap = f"127.0.0.1:{kport}"

    def start_gateway(self, src: Path = ROOT) -> None:
        """A gateway (``yujing gateway``) run from the source tree ``src``."""
        hport = free_port()
        cfg = self.tmp / "config.yaml"
        cfg.write_text(yaml.safe_dump({
            "kafka": {"bootstrap": self.bootstrap, "partitions": self.partitions},
            "mqtt": {"url": f"mqtt://127.0.0.1:{self.mport}", "client_id": f"bench-gw-{self.mqtt}"},
            # capacity is measured here: no per-token rate limit
            "http": {"port": hport, "max_body_bytes": 16 << 20, "rate_limit": None},
            "log_level": "warning"}))
        self.gateway = self._spawn([sys.executable, "-m", "yujing", "gateway", "-c", str(cfg)],
                                   "gateway.log", src)
        self.http = f"http://127.0.0.1:{hport}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.http + "/healthz", timeout=1) as r:
                    if orjson.loads(r.read())["mqtt_connected"]:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gateway not healthy; see {self.tmp}/gateway.log")

    def stop_gateway(self) -> None:
        if self.gateway is not None:
            _stop(self.gateway)
            self.procs.remove(self.gateway)
            self.gateway = None

    def stop(self) -> None:
        for p in reversed(self.procs):
            _stop(p)


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


async def floods(stack: Stack, w: Watcher, args: argparse.Namespace, run: int, tag: str,
                 out: dict[str, list[float]], http_too: bool) -> None:
    """Each flood once through the running gateway: readings per second and its CPU."""
    label = f"mqtt_{stack.mqtt}"
    cases = [(label, args.mqtt_readings, lambda p, n: asyncio.to_thread(
        mqtt_flood, stack.mport, p, n, args.mqtt_batch))]
    if http_too:
        cases += [("http_json", args.http_readings, lambda p, n: http_json(
                      stack.http, p, n, args.batch, args.concurrency)),
                  ("http_lineproto", args.http_readings, lambda p, n: http_lines(
                      stack.http, p, n, args.batch, args.concurrency))]
    assert stack.gateway is not None
    for name, n, send in cases:
        prefix = f"{name.replace('_', '')}{run}x{time.monotonic_ns() % 10**6}"
        w.reset(prefix)
        cpu0, t0 = cpu_seconds(stack.gateway.pid), time.monotonic()
        await send(prefix, n)
        if not await w.wait_for(n, args.timeout):
            raise RuntimeError(f"{name}: only {w.count} of {n} readings reached Kafka")
        rps = n / (time.monotonic() - t0)
        cpu = (cpu_seconds(stack.gateway.pid) - cpu0) * 100_000 / n
        out.setdefault(f"{tag}{name}_readings_per_s", []).append(rps)
        out.setdefault(f"{tag}{name}_gateway_cpu_s_per_100k", []).append(cpu)
        print(f"run {run + 1} {tag}{name}_readings_per_s: {rps:,.0f} (gateway {cpu:.2f} CPU-s "
              f"per 100k, load {os.getloadavg()[0]:.1f})", flush=True)


async def latencies(stack: Stack, w: Watcher, args: argparse.Namespace, run: int,
                    out: dict[str, list[float]], http_too: bool) -> None:
    lat = [(f"mqtt_{stack.mqtt}", lambda p: mqtt_paced(stack.mport, p, args.rate, args.duration))]
    if http_too:
        lat.append(("http_json", lambda p: http_paced(stack.http, p, args.rate, args.duration)))
    for name, send in lat:
        prefix = f"lat{name.replace('_', '')}{run}x{time.monotonic_ns() % 10**6}"
        w.reset(prefix, latency=True)
        sent = await asyncio.to_thread(send, prefix)
        await w.wait_for(sent, args.timeout)
        p50, p99 = pct(w.latencies, 0.5), pct(w.latencies, 0.99)
        out.setdefault(f"{name}_latency_p50_ms", []).append(p50)
        out.setdefault(f"{name}_latency_p99_ms", []).append(p99)
        print(f"run {run + 1} {name} latency at {args.rate:.0f} readings/s: p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms ({w.count} of {sent} seen; send→gateway receive p50 "
              f"{pct(w.gateway_part, 0.5):.1f} ms)", flush=True)


async def bench(stack: Stack, args: argparse.Namespace, out: dict[str, list[float]],
                http_too: bool) -> None:
    w: Watcher | None = None
    gateways = ([("baseline_", args.baseline)] if args.baseline else []) + [("", ROOT)]
    try:
        for run in range(args.runs):
            for tag, src in gateways:   # A B A B…: the baseline's gateway, then this tree's
                stack.start_gateway(src)
                if w is None:   # the gateway has declared the topic now
                    w = Watcher(stack.bootstrap)
                    await w.start()
                await floods(stack, w, args, run, tag, out, http_too)
                if not tag and not args.no_latency:
                    await latencies(stack, w, args, run, out, http_too)
                stack.stop_gateway()
    finally:
        stack.stop_gateway()
        if w is not None:
            await w.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--http-readings", type=int, default=200_000)
    ap.add_argument("--mqtt-readings", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=500, help="readings per HTTP request")
    ap.add_argument("--mqtt-batch", type=int, default=100, help="readings per MQTT message")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rate", type=float, default=1000, help="readings/s for the latency runs")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--amqtt", action="store_true", help="also measure MQTT through amqtt")
    ap.add_argument("--baseline", type=Path, default=None, metavar="SRC",
                    help="also measure a gateway run from this source tree, alternating")
    ap.add_argument("--no-latency", action="store_true", help="floods only")
    args = ap.parse_args()
    out: dict[str, list[float]] = {}
    brokers = ["mosquitto"] + (["amqtt"] if args.amqtt else [])
    for broker in brokers:
        with tempfile.TemporaryDirectory(prefix=f"yujing-bench-{broker}-") as tmp:
            stack = Stack(Path(tmp), broker, args.partitions)
            try:
                stack.start()
                asyncio.run(bench(stack, args, out, http_too=broker == "mosquitto"))
            finally:
                stack.stop()
    print(f"\nmedian of {args.runs} runs (one gateway, Kafka = Tansu, {args.partitions} partitions, "
          f"linger 50 ms):")
    for name, xs in out.items():
        if name.startswith("baseline_"):
            continue
        unit = " ms" if name.endswith("_ms") else ""
        line = f"{name}: {statistics.median(xs):,.2f}{unit}"
        if f"baseline_{name}" in out:
            base = statistics.median(out[f"baseline_{name}"])
            line += f" (baseline {base:,.2f}; ratio this/baseline {statistics.median(xs) / base:.2f})"
        print(line)


if __name__ == "__main__":
    main()
