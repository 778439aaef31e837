"""Three Apache Kafka nodes on loopback (yujing/connectors/kafka_broker.py ``cluster``), each
broker and controller: the topics yujing declares there get three replicas and need two in
sync; with the leader of a partition killed (SIGKILL) every acks=all write is still
acknowledged and none is lost, and the node started again rejoins every ISR.

The whole stack under a stream with a broker and the worker killed is bench/cluster_fault.py
(several minutes: two clusters, a baseline and a fault run)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from yujing.config import KafkaConfig
from yujing.connectors.embedded import die_with_parent
from yujing.connectors.kafka_broker import (
    BrokerSpec,
    bootstrap_of,
    cluster,
    cluster_id,
    prepare,
    wait_answering,
)
from yujing.connectors.topics import declare

TOPIC = "yujing.readings"
K = KafkaConfig(partitions=3)


class Nodes:
    def __init__(self, specs: list[BrokerSpec], argvs: dict[int, list[str]]) -> None:
        self.specs, self.argvs = specs, argvs
        self.procs: dict[int, subprocess.Popen] = {}
        self.bootstrap = bootstrap_of(specs)

    def start(self, node: int) -> None:
        spec = self.specs[node - 1]
        with open(spec.data_dir / "kafka.log", "ab") as out:
            self.procs[node] = subprocess.Popen(self.argvs[node], stdout=out,
                                                stderr=subprocess.STDOUT,
                                                preexec_fn=die_with_parent)

    def kill(self, node: int) -> None:
        self.procs[node].send_signal(signal.SIGKILL)
        self.procs[node].wait(30)

    def logs(self) -> str:
        return "\n".join((s.data_dir / "kafka.log").read_text(errors="replace")[-1500:]
                         for s in self.specs)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def nodes(kafka_home: Path, tmp_path: Path) -> Iterator[Nodes]:
    specs = cluster(tmp_path / "kafka", 3, heap_mb=384)
    cid = cluster_id(tmp_path / "kafka")
    n = Nodes(specs, {s.node_id: prepare(s, kafka_home, cid) for s in specs})
    try:
        for s in specs:
            n.start(s.node_id)
        if not wait_answering(n.bootstrap, 180, lambda: all(
                p.poll() is None for p in n.procs.values()), brokers=3):
            raise AssertionError(f"the cluster did not form:\n{n.logs()}")
        yield n
    finally:
        n.stop()


async def partitions(admin: AIOKafkaAdminClient) -> list[dict]:
    (t,) = await admin.describe_topics([TOPIC])
    return sorted(t["partitions"], key=lambda p: p["partition"])


async def wait_all_in_sync(admin: AIOKafkaAdminClient, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            parts = await partitions(admin)
            # A topic just created may be described with no partitions yet: all() of
            # nothing is true, so the count is checked first.
            if len(parts) == K.partitions and all(len(p["isr"]) == 3 for p in parts):
                return parts
        except Exception:   # a node that is starting may answer with an error: ask again
            parts = []
        assert time.monotonic() < deadline, f"not every replica in sync in {timeout}s: {parts}"
        await asyncio.sleep(0.5)


async def send(bootstrap: str, values: list[bytes]) -> None:
    """Every value acknowledged by the in-sync replicas (acks=all), spread over partitions."""
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=60_000)
    await prod.start()
    try:
        futs = [await prod.send(TOPIC, v, partition=i % K.partitions)
                for i, v in enumerate(values)]
        await asyncio.gather(*futs)
    finally:
        await prod.stop()


async def read_all(bootstrap: str) -> list[bytes]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tps = [TopicPartition(TOPIC, p) for p in range(K.partitions)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        out: list[bytes] = []
        deadline = time.monotonic() + 60
        while any([await c.position(tp) < end[tp] for tp in tps]):
            assert time.monotonic() < deadline, "the topic was not read to its end"
            out += [m.value for msgs in (await c.getmany(timeout_ms=1000)).values() for m in msgs]
        return out
    finally:
        await c.stop()


async def test_one_node_killed_loses_no_acknowledged_write_and_rejoins(nodes: Nodes) -> None:
    report = await declare(nodes.bootstrap, K, [TOPIC])
    assert report.ok and report.done == [f"{TOPIC}: created"], report
    admin = AIOKafkaAdminClient(bootstrap_servers=nodes.bootstrap)
    await admin.start()
    try:
        parts = await wait_all_in_sync(admin, 60)
        assert {len(p["replicas"]) for p in parts} == {3}
        (answer,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, TOPIC)])
        configs = {e[0]: e[1] for e in answer.resources[0][4]}
        assert configs["min.insync.replicas"] == "2"

        before = [f"before-{i}".encode() for i in range(300)]
        await send(nodes.bootstrap, before)
        victim = parts[0]["leader"]
        nodes.kill(victim)
        alive = ",".join(s.bootstrap for s in nodes.specs if s.node_id != victim)
        during = [f"during-{i}".encode() for i in range(300)]
        await send(alive, during)     # waits out the leader's move to an in-sync replica
        assert sorted(await read_all(alive)) == sorted(before + during)

        nodes.start(victim)
        back = await wait_all_in_sync(admin, 180)
        assert all(victim in p["isr"] for p in back)
    finally:
        await admin.close()
    after = [f"after-{i}".encode() for i in range(300)]
    await send(nodes.bootstrap, after)
    assert sorted(await read_all(nodes.bootstrap)) == sorted(before + during + after)
