"""``yujing run``: one process tree that owns the brokers, the gateway and a worker.

The embedded Kafka-protocol broker is Tansu (memory only) or, with ``kafka.embedded:
kafka``, Apache Kafka on its own storage under ``worker.data_dir/kafka``, kept across
restarts. Either way the worker and sink get short (6 s) session and rebalance timeouts
(``--embedded-kafka``): Tansu needs them to finish a group join at all, and on Kafka they
turn the blind time after a crashed worker from Faust's 60 s session into about 6 s
(bench/broker_restart.py); one machine on loopback has no network to be patient with.

A watchdog child (``watchdog.enabled``) starts last and watches the others from outside:
a stalled worker, a broker that does not answer, a failing channel reach the duty room
directly (yujing/watchdog/).

Children run in their own session so a Ctrl-C reaches only this supervisor,
which then stops them in order (ingest first, brokers last). Each child also
asks the kernel for SIGTERM if the supervisor dies (PR_SET_PDEATHSIG), so even
a SIGKILLed supervisor leaves no orphan holding a port.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.errors import KafkaError
from yarl import URL

from yujing import clock
from yujing.config import Config
from yujing.connectors.embedded import die_with_parent, free_port, tansu_command, wait_port
from yujing.connectors.kafka_broker import (
    BrokerSpec,
    kafka_home,
    prepare,
    stable_ports,
    wait_answering,
)
from yujing.connectors.topics import declare
from yujing.connectors.watchdog_status import ENV as WATCHDOG_ENV

log = logging.getLogger(__name__)


def without_password(url: str) -> str:
    """``url`` with its password masked, for logs and the terminal."""
    u = URL(url)
    return str(u.with_password("***")) if u.password else url


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    stop_timeout_s: float = 15.0


@dataclass
class Endpoints:
    kafka: str
    mqtt: str | None
    http: str
    kafka_embedded: bool


@dataclass
class Supervisor:
    cfg: Config
    config_path: Path | None
    children: list[Child] = field(default_factory=list)
    log_dir: Path | None = None

    def _spawn(self, name: str, argv: list[str], quiet: bool = False) -> Child:
        """Start a child in its own session that gets SIGTERM when this process dies."""
        out = None
        if quiet or self.log_dir:
            d = self.log_dir or self.cfg.worker.data_dir
            d.mkdir(parents=True, exist_ok=True)
            out = open(d / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, start_new_session=True, preexec_fn=die_with_parent,
                                stdout=out, stderr=subprocess.STDOUT if out else None)
        child = Child(name, proc)
        self.children.append(child)
        print(f"yujing: started {name} pid={proc.pid}", flush=True)
        return child

    def _yujing(self, *args: str) -> list[str]:
        argv = [sys.executable, "-m", "yujing", *args]
        if self.config_path:
            argv += ["--config", str(self.config_path)]
        return argv

    def start(self, quiet_children: bool = False) -> Endpoints:
        k, m, h = self.cfg.kafka, self.cfg.mqtt, self.cfg.http
        embedded = k.bootstrap is None
        # Worker (signs acknowledge links) and gateway (checks them) must share one key;
        # children inherit it. A configured console.link_secret or an exported one wins.
        os.environ.setdefault("YUJING_LINK_SECRET", secrets.token_urlsafe(32))
        if not embedded:
            bootstrap = k.bootstrap
        elif k.embedded == "kafka":
            bootstrap = self._start_kafka()
        else:
            bootstrap = self._start_tansu()
        self._declare_topics(bootstrap, fix=embedded)
        mqtt_url = m.url
        if mqtt_url is None:
            port = m.embedded_port or free_port()
            self._spawn("amqtt", [sys.executable, "-m", "yujing", "mqtt-broker", "--port", str(port)],
                        quiet=True)
            if not wait_port("127.0.0.1", port, 20):
                self.stop()
                raise RuntimeError(f"embedded MQTT broker (amqtt) did not listen on port {port}")
            mqtt_url = f"mqtt://127.0.0.1:{port}"
        watchdog_port = self._watchdog_port()
        # A configured URL may carry the broker password: the children read it from the config
        # file, never from their argv (which every user of the machine can read in ps).
        common = ["--kafka-bootstrap", bootstrap,
                  *(["--mqtt-url", mqtt_url] if m.url is None else [])]
        if embedded:
            common.append("--embedded-kafka")
        if self.cfg.influx is not None:  # before the worker, so it stops after it
            self._spawn("sink", self._yujing("sink", "--kafka-bootstrap", bootstrap,
                                             *(["--embedded-kafka"] if embedded else [])),
                        quiet=quiet_children)
        self._spawn("worker", self._yujing("worker", *common), quiet=quiet_children)
        self._spawn("gateway", self._yujing("gateway", *common), quiet=quiet_children)
        http = f"http://{h.host}:{h.port}"
        if not self._wait_http(http + "/healthz", 60):
            self.stop()
            raise RuntimeError("the gateway did not become healthy within 60 s; see its log")
        if watchdog_port is not None:   # last: it stops first, so a shutdown is no fault
            self._spawn("watchdog", self._yujing("watchdog", "--kafka-bootstrap", bootstrap,
                                                 "--port", str(watchdog_port)),
                        quiet=quiet_children)
        print(f"yujing: ready kafka={bootstrap} mqtt={without_password(mqtt_url)} http={http}",
              flush=True)
        return Endpoints(bootstrap, mqtt_url, http, embedded)

    def _watchdog_port(self) -> int | None:
        """The watchdog's port (a free one unless configured), told to the gateway through
        the environment its children inherit; None when ``watchdog.enabled`` is off."""
        w = self.cfg.watchdog
        if not w.enabled:
            return None
        port = w.port or free_port()
        os.environ[WATCHDOG_ENV] = f"http://127.0.0.1:{port}"
        return port

    def _start_tansu(self) -> str:
        port = self.cfg.kafka.embedded_port or free_port()
        self._spawn("tansu", tansu_command(port), quiet=True)
        if not wait_port("127.0.0.1", port, 20):
            self.stop()
            raise RuntimeError(f"embedded Kafka broker (Tansu) did not listen on port {port}")
        return f"127.0.0.1:{port}"

    def _start_kafka(self) -> str:
        """Apache Kafka on its own storage under the data dir (formatted on the first start,
        kept after), on the port of its last start; ready once it answers a metadata request."""
        k = self.cfg.kafka
        data = self.cfg.worker.data_dir / "kafka"
        port, controller = stable_ports(data, k.embedded_port)
        spec = BrokerSpec(data, port, controller, heap_mb=k.heap_mb)
        argv = prepare(spec, kafka_home(k.home))   # KafkaNotInstalled says how to install
        child = self._spawn("kafka", argv, quiet=True)
        child.stop_timeout_s = 60.0                  # a clean shutdown flushes and closes logs
        if not wait_answering(spec.bootstrap, 120, lambda: child.proc.poll() is None):
            self.stop()
            raise RuntimeError(f"embedded Apache Kafka did not answer on {spec.bootstrap} "
                               f"within 120 s; see {data.parent / 'kafka.log'}")
        return spec.bootstrap

    def _declare_topics(self, bootstrap: str, fix: bool) -> None:
        """Every declared topic exists before a child subscribes (Kafka creates none by
        itself here, Tansu would make 4 partitions, Faust would give a changelog replication
        1). An embedded broker is ours, so it is also made to match; on a site's cluster
        differences are logged with their fix (`yujing topics apply` changes it)."""
        try:
            asyncio.run(declare(bootstrap, self.cfg.kafka, fix=fix))
        except (RuntimeError, KafkaError) as exc:
            self.stop()
            raise RuntimeError(f"declaring the topics on {bootstrap} failed: {exc}") from exc

    def _wait_http(self, url: str, timeout_s: float) -> bool:
        deadline = clock.monotonic() + timeout_s
        while clock.monotonic() < deadline:
            if self.failed():
                return False
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def failed(self) -> Child | None:
        return next((c for c in self.children if c.proc.poll() is not None), None)

    def stop(self) -> None:
        """Stop children in reverse start order: ingest first, brokers last."""
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
                try:
                    child.proc.wait(child.stop_timeout_s)
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop in %.0fs: killing it", child.name, child.stop_timeout_s)
                    child.proc.kill()
                    child.proc.wait()
            print(f"yujing: stopped {child.name} (exit {child.proc.returncode})", flush=True)
        self.children.clear()


def run_forever(sup: Supervisor) -> int:
    """Start everything and wait for Ctrl-C / SIGTERM or a child's death."""
    stopping = False

    def _signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _signal)
    signal.signal(signal.SIGTERM, _signal)
    try:
        sup.start()
    except RuntimeError as exc:
        print(f"yujing: {exc}", file=sys.stderr)
        return 1
    code = 0
    while not stopping:
        dead = sup.failed()
        if dead is not None:
            print(f"yujing: {dead.name} exited with {dead.proc.returncode}; stopping everything",
                  file=sys.stderr)
            code = 1
            break
        time.sleep(0.2)
    sup.stop()
    return code
