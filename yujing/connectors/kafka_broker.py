"""A single-node Apache Kafka (KRaft) broker that ``yujing run`` owns, for durable drills
and one-server deployments (``kafka.embedded: kafka``), and a three-node cluster on
loopback for the fault bench (bench/cluster_fault.py).

Unlike Tansu it keeps its log on disk: the storage is formatted once under the data
dir and reused by every later start, so open warnings, acknowledgements, silences and
window checkpoints survive a restart. The jars come from Maven Central through
``scripts/install-kafka`` (``make kafka``); this module only finds them, writes the
broker's properties and builds the command lines.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaClient

from yujing import clock
from yujing.connectors.embedded import free_port

log = logging.getLogger(__name__)

INSTALL_HINT = "install it with `make kafka` (scripts/install-kafka)"
KAFKA_VERSION = "4.1.1"  # the pin in deploy/kafka/pom.xml


class KafkaNotInstalled(RuntimeError):
    """Java or the Kafka jars are missing; the message says how to install them."""


def kafka_home(configured: Path | None = None) -> Path:
    """The folder scripts/install-kafka filled: config, then $YUJING_KAFKA_HOME, then the cache."""
    if configured is not None:
        return configured
    if os.environ.get("YUJING_KAFKA_HOME"):
        return Path(os.environ["YUJING_KAFKA_HOME"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "yujing" / f"kafka-{KAFKA_VERSION}"


def check_installed(home: Path) -> str:
    """The java executable to use; raises :class:`KafkaNotInstalled` with the fix."""
    java = shutil.which("java")
    if java is None:
        raise KafkaNotInstalled(f"kafka.embedded: kafka needs Java 17+: {INSTALL_HINT}")
    if not any((home / "lib").glob("kafka_2.13-*.jar")):
        raise KafkaNotInstalled(f"no Apache Kafka jars in {home / 'lib'}: {INSTALL_HINT}, "
                                "or set kafka.home / $YUJING_KAFKA_HOME to the folder it printed")
    return java


@dataclass(frozen=True)
class BrokerSpec:
    """One KRaft node that is both broker and controller: alone, or one of ``voters``
    (node id, controller port) of a cluster on the same host (:func:`cluster`)."""

    data_dir: Path
    port: int
    controller_port: int
    host: str = "127.0.0.1"
    node_id: int = 1
    heap_mb: int = 512
    voters: tuple[tuple[int, int], ...] = ()

    @property
    def replicas(self) -> int:
        """Replicas of Kafka's own topics (offsets, transactions): 3 on a cluster of three
        or more, as many as there are nodes on a smaller one."""
        return min(3, len(self.voters)) or 1

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def properties(self) -> str:
        """server.properties: a one-node cluster has replication 1 everywhere it matters; a
        node of a cluster replicates Kafka's own topics (and, by default, any topic made
        without a replication) to three nodes with two in sync, like the declared ones."""
        h = self.host
        voters = self.voters or ((self.node_id, self.controller_port),)
        rf = str(self.replicas)
        min_isr = "2" if self.replicas >= 3 else "1"
        lines = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": ",".join(f"{n}@{h}:{port}" for n, port in voters),
            "listeners": f"PLAINTEXT://{h}:{self.port},CONTROLLER://{h}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{h}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.log_dir),
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": min_isr,
            # A single consumer group member should not wait for others to join.
            "group.initial.rebalance.delay.ms": "0",
            # Topics are created by yujing with declared settings, never by a typo.
            "auto.create.topics.enable": "false",
        }
        if self.voters:
            lines |= {"default.replication.factor": rf, "min.insync.replicas": min_isr}
        return "".join(f"{k}={v}\n" for k, v in lines.items())


def _java_argv(java: str, home: Path, main: str, heap_mb: int) -> list[str]:
    return [java, f"-Xms{min(heap_mb, 256)}m", f"-Xmx{heap_mb}m", "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
            "-cp", str(home / "lib" / "*"), main]


def prepare(spec: BrokerSpec, home: Path, cid: str | None = None,
            format_args: Sequence[str] = ()) -> list[str]:
    """Write the properties, format the storage on the first start only, and return the
    broker's command line. A formatted log dir is kept as it is: that is the durability.
    ``cid``: the cluster's id, the same for every node of a cluster (default: one kept in
    the node's own data dir). ``format_args`` go to the storage tool (``--add-scram``
    users, for one)."""
    java = check_installed(home)
    spec.data_dir.mkdir(parents=True, exist_ok=True)
    spec.properties_file.write_text(spec.properties(), encoding="utf-8")
    if not (spec.log_dir / "meta.properties").exists():
        argv = _java_argv(java, home, "kafka.tools.StorageTool", 256) + [
            "format", f"--cluster-id={cid or cluster_id(spec.data_dir)}",
            f"--config={spec.properties_file}", *format_args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"formatting Kafka storage in {spec.log_dir} failed: "
                               f"{(done.stderr or done.stdout).strip()[-500:]}")
    return _java_argv(java, home, "kafka.Kafka", spec.heap_mb) + [str(spec.properties_file)]


def cluster(base: Path, size: int = 3, host: str = "127.0.0.1",
            heap_mb: int = 512) -> list[BrokerSpec]:
    """``size`` nodes on free ports of ``host``, each broker and controller (a quorum of
    ``size`` voters, so one node may die), storage under ``base/node-<id>``. Prepare each
    with ``prepare(spec, home, cluster_id(base))``: one cluster id for all."""
    base.mkdir(parents=True, exist_ok=True)
    ports: list[int] = []
    while len(ports) < 2 * size:
        port = free_port(host)
        if port not in ports:
            ports.append(port)
    voters = tuple((i + 1, ports[2 * i + 1]) for i in range(size))
    return [BrokerSpec(base / f"node-{n}", ports[2 * i], cport, host, n, heap_mb, voters)
            for i, (n, cport) in enumerate(voters)]


def bootstrap_of(specs: list[BrokerSpec]) -> str:
    """The ``host:port,host:port`` clients are given for a cluster (kafka.bootstrap)."""
    return ",".join(s.bootstrap for s in specs)


def cluster_id(data_dir: Path) -> str:
    """A cluster id made once per data dir and kept beside it (Kafka's base64 UUID form).
    Like Kafka's own Uuid.randomUuid, never one that starts with "-": the storage tool
    would read it as an option (one start in 64 failed so)."""
    path = data_dir / "cluster.id"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    cid = "-"
    while cid.startswith("-"):
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    path.write_text(cid + "\n", encoding="utf-8")
    return cid


def stable_ports(data_dir: Path, port: int = 0, host: str = "127.0.0.1") -> tuple[int, int]:
    """(client port, controller port) of the broker kept in ``data_dir``.

    ``port`` (``kafka.embedded_port``) wins when set; otherwise the ports of the last start,
    remembered in ``data_dir/ports``, are reused while they are free, so a restarted
    ``yujing run`` answers where it did before (committed offsets do not depend on the port;
    the address in logs and in `yujing topics --kafka-bootstrap` does)."""
    path = data_dir / "ports"
    try:
        old = [int(p) for p in path.read_text(encoding="utf-8").split()][:2]
    except (OSError, ValueError):
        old = []
    client = port or (old[0] if old and _free(host, old[0]) else free_port(host))
    if old and not port and client != old[0]:
        log.warning("Kafka port %d of the last start is taken; using %d", old[0], client)
    controller = old[1] if len(old) == 2 and old[1] != client and _free(host, old[1]) else 0
    while not controller or controller == client:
        controller = free_port(host)
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{client} {controller}\n", encoding="utf-8")
    return client, controller


def remembered_bootstrap(data_dir: Path, host: str = "127.0.0.1") -> str | None:
    """host:port of the broker kept in ``data_dir`` at its last start, if it ever started."""
    try:
        return f"{host}:{int((data_dir / 'ports').read_text(encoding='utf-8').split()[0])}"
    except (OSError, ValueError, IndexError):
        return None


def _free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_answering(bootstrap: str, timeout_s: float, alive: Callable[[], bool],
                   auth: Mapping[str, Any] | None = None, brokers: int = 1) -> bool:
    """Wait until the broker answers a metadata request naming itself (listening is not
    enough: a KRaft broker accepts connections before it has registered), or ``alive()``
    turns false, or the time is up. ``auth``: aiokafka security keyword arguments
    (yujing.connectors.kafka_security) for a broker that wants TLS or SASL. ``brokers``:
    wait until the metadata names that many (every node of a cluster has registered)."""
    deadline = clock.monotonic() + timeout_s
    quiet = logging.getLogger("aiokafka")   # each refused try would log an ERROR
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        while clock.monotonic() < deadline and alive():
            if asyncio.run(_answers(bootstrap, auth or {}, brokers)):
                return True
            time.sleep(0.3)
        return False
    finally:
        quiet.setLevel(level)


async def _answers(bootstrap: str, auth: Mapping[str, Any], brokers: int = 1) -> bool:
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000, **auth)
    try:
        await client.bootstrap()
        return len(client.cluster.brokers()) >= brokers
    except Exception:   # not yet: refused, reset, timed out, not registered
        return False
    finally:
        await client.close()


@dataclass(frozen=True)
class SecuredBrokerSpec(BrokerSpec):
    """A broker whose client listener wants TLS and a SCRAM login (SASL_SSL), plus an
    optional mutual-TLS listener (SSL, client certificate required); the controller stays
    PLAINTEXT on loopback. Built for the security tests; a site's brokers are its own.

    ``keystore`` is a PEM file holding the server's unencrypted PKCS#8 key and its
    certificate, ``truststore`` the CA's PEM. Brokers reach each other over SASL_SSL as
    ``admin`` (a SCRAM user made at format time: :meth:`scram_format_args`)."""

    keystore: Path = Path()
    truststore: Path = Path()
    admin_password: str = ""
    mtls_port: int = 0

    def properties(self) -> str:
        props = dict(line.split("=", 1) for line in super().properties().splitlines())
        h = self.host
        names = {"SASL_SSL": f"SASL_SSL://{h}:{self.port}"}
        if self.mtls_port:
            names["MTLS"] = f"MTLS://{h}:{self.mtls_port}"
        jaas = ("org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="admin" password="{self.admin_password}";')
        props.update({
            "listeners": ",".join([*names.values(), f"CONTROLLER://{h}:{self.controller_port}"]),
            "advertised.listeners": ",".join(names.values()),
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,MTLS:SSL,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "SASL_SSL",
            "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": jaas,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.truststore),
            "listener.name.mtls.ssl.client.auth": "required",
        })
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def scram_format_args(self, users: Mapping[str, str]) -> list[str]:
        """``kafka-storage format`` arguments that create ``admin`` and ``users``
        (name: password) as SCRAM-SHA-256 and SCRAM-SHA-512 logins."""
        out = []
        for name, password in {"admin": self.admin_password, **users}.items():
            for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                out += ["--add-scram", f"{mech}=[name={name},password={password}]"]
        return out
