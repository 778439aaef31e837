"""Real servers for the connector tests, each on a free loopback port, each stopped by pid.

Tansu (Kafka protocol), amqtt (``yujing mqtt-broker``), Mosquitto and VictoriaMetrics
from Debian (installed by .ci/run), a gateway in this process, and small readers for
Kafka topics and the VictoriaMetrics export API.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from aiokafka import AIOKafkaConsumer
from paho.mqtt.enums import CallbackAPIVersion

from yujing.config import Config
from yujing.connectors.embedded import free_port, tansu_command, wait_port
from yujing.envelope import decode

ROOT = Path(__file__).resolve().parents[2]
MOSQUITTO = "/usr/sbin/mosquitto"
VICTORIA = "/usr/bin/victoria-metrics"


def _stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def tansu(port: int | None = None) -> Iterator[str]:
    port = port or free_port()
    proc = subprocess.Popen(tansu_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_port("127.0.0.1", port, 20), "Tansu did not listen"
        yield f"127.0.0.1:{port}"
    finally:
        _stop(proc)


@contextmanager
def amqtt_broker() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "yujing", "mqtt-broker", "--port", str(port)])
    try:
        assert wait_port("127.0.0.1", port, 20), "amqtt did not listen"
        yield port
    finally:
        _stop(proc)


@dataclass
class Mosquitto:
    port: int
    conf: Path
    proc: subprocess.Popen

    def stop(self) -> None:
        _stop(self.proc)

    def start(self) -> None:
        """(Re)start on the same port and config, e.g. after ``stop`` in a reconnect test."""
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        assert wait_port("127.0.0.1", self.port, 10), f"mosquitto did not listen: {self.conf}"


@contextmanager
def mosquitto(tmp: Path, extra: str = "", port: int | None = None) -> Iterator[Mosquitto]:
    """``/usr/sbin/mosquitto -c <tmp conf>`` on a free port (never the system service)."""
    assert Path(MOSQUITTO).exists(), "mosquitto is missing: apt-get install -y mosquitto (.ci/run)"
    port = port or free_port()
    conf = tmp / f"mosquitto-{port}.conf"
    conf.write_text(f"listener {port} 127.0.0.1\n"
                    + ("allow_anonymous true\n" if "allow_anonymous" not in extra else "")
                    + "persistence false\nuser root\nmax_inflight_messages 1000\nset_tcp_nodelay true\n"
                    + "max_queued_messages 100000\n" + extra)
    m = Mosquitto(port, conf, None)  # type: ignore[arg-type]
    m.start()
    try:
        yield m
    finally:
        m.stop()


@dataclass
class Victoria:
    port: int
    proc: subprocess.Popen
    data: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        _stop(self.proc)


def start_victoria(tmp: Path, port: int | None = None) -> Victoria:
    assert Path(VICTORIA).exists(), "victoria-metrics is missing: apt-get install -y victoria-metrics"
    port = port or free_port()
    data = tmp / f"vm-{port}"
    proc = subprocess.Popen([VICTORIA, f"-httpListenAddr=127.0.0.1:{port}",
                             f"-storageDataPath={data}", "-retentionPeriod=100y",
                             "-loggerLevel=ERROR"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert wait_port("127.0.0.1", port, 20), "VictoriaMetrics did not listen"
    return Victoria(port, proc, data)


async def vm_export(url: str, match: str, want: Callable[[list[dict]], bool],
                    timeout: float = 20) -> list[dict]:
    """Series from VictoriaMetrics' /api/v1/export until ``want`` holds (VM makes new data
    searchable after a flush, so poll, forcing flushes)."""
    import aiohttp

    deadline = time.monotonic() + timeout
    series: list[dict] = []
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            await (await http.get(f"{url}/internal/force_flush")).read()
            async with http.get(f"{url}/api/v1/export", params={"match[]": match}) as resp:
                text = await resp.text()
            series = [orjson.loads(line) for line in text.splitlines() if line.strip()]
            if want(series):
                return series
            await asyncio.sleep(0.3)
    raise AssertionError(f"VictoriaMetrics never had what was wanted for {match}: {series}")


def gateway_config(tmp: Path, **sections: Any) -> Config:
    """A config with topics of its own (so tests sharing a broker never see each other)."""
    tag = uuid.uuid4().hex[:8]
    cfg: dict[str, Any] = {
        "kafka": {"partitions": 2, "compression": "none",
                  "topics": {"readings": f"r.{tag}", "warnings": f"w.{tag}",
                             "deadletter": f"d.{tag}", "events": f"e.{tag}"}},
        "http": {"port": free_port(), "store_timeout_s": 5},
        "gateway": {"linger_ms": 10},
        "worker": {"registry": str(ROOT / "stations.yaml"), "data_dir": str(tmp / "w")},
    }
    for section, values in sections.items():
        if isinstance(values, dict) and isinstance(cfg.get(section), dict):
            cfg[section] = {**cfg[section], **values}
        else:
            cfg[section] = values
    return Config.model_validate(cfg)


@asynccontextmanager
async def running_gateway(cfg: Config, bootstrap: str, mqtt_url: str | None = None,
                          client_id: str | None = None):
    from yujing.connectors.gateway import Gateway

    gw = Gateway(cfg, bootstrap, mqtt_url, client_id)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


class TopicReader:
    """Reads a topic from the start, keeping everything seen (no consumer group)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                         auto_offset_reset="earliest")
        self.records: list[Any] = []

    async def __aenter__(self) -> TopicReader:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def until(self, pred: Callable[[list[Any]], bool], timeout: float = 15) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.records):
                return self.records
            for recs in (await self.consumer.getmany(timeout_ms=200)).values():
                self.records += recs
        if pred(self.records):
            return self.records
        raise AssertionError(f"topic never satisfied the condition; {len(self.records)} records")

    async def settle(self, quiet_s: float = 0.6) -> list[Any]:
        """Read until nothing new arrives for ``quiet_s`` (to check nothing *extra* came)."""
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet_s:
            got = await self.consumer.getmany(timeout_ms=200)
            for recs in got.values():
                self.records += recs
                quiet_since = time.monotonic()
        return self.records


def metric_value(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text exposition (0 when absent), matched by its labels."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def readings_of(records: list[Any]) -> list[tuple[str, str, int, float]]:
    out = []
    for rec in records:
        c = decode(rec.value)
        out += [(r.station, r.metric, r.ts, r.value) for r in (c.reading(i) for i in range(len(c)))]
    return out


def letters_of(records: list[Any]) -> list[dict]:
    return [orjson.loads(r.value) for r in records]


def mqtt_publish(port: int, messages: list[tuple[str, bytes]], v5: bool = False,
            tls_ca: Path | None = None, auth: tuple[str, str] | None = None) -> None:
    """Publish with a real paho client (QoS 1), waiting for every message to be sent."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{time.monotonic_ns()}",
                    protocol=paho.MQTTv5 if v5 else paho.MQTTv311)
    if tls_ca:
        c.tls_set_context(ssl.create_default_context(cafile=str(tls_ca)))
    if auth:
        c.username_pw_set(*auth)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        for topic, payload in messages:
            c.publish(topic, payload, qos=1).wait_for_publish(timeout=10)
    finally:
        c.disconnect()
        c.loop_stop()
