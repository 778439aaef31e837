"""`yujing topics check|apply` on a fresh Apache Kafka and on Tansu: missing topics are
reported with their fix and created, a wrong retention is reported with the exact
kafka-configs command and corrected (keeping an operator's other overrides), partitions
grow but never shrink; Tansu, which cannot alter configs, is told apart instead of failing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import yaml
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from yujing.connectors.topicspec import LEADER, TABLES, changelog

DAY = 86_400_000
OURS = ["yujing.readings", "yujing.warnings", "yujing.commands", "yujing.incidents",
        "yujing.deadletter", "yujing.events", *(changelog(t) for t in TABLES)]


def config(tmp: Path, bootstrap: str, name: str = "config.yaml", **kafka) -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump({"kafka": {"bootstrap": bootstrap, "partitions": 2, **kafka}}))
    return path


def topics(command: str, cfg: Path) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "yujing", "topics", command, "-c", str(cfg)],
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


async def alter(bootstrap: str, topic: str, configs: dict[str, str]) -> None:
    """What an operator's kafka-configs run would do; waits until the broker shows it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                  configs=configs)])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            got = await described(admin, topic)
            if all(got.get(k) == v for k, v in configs.items()):
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"{topic}: {configs} not applied: {got}")
    finally:
        await admin.close()


async def described(admin: AIOKafkaAdminClient, topic: str) -> dict[str, str]:
    (answer,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    return {e[0]: e[1] for e in answer.resources[0][4]}


async def configs_of(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await described(admin, topic)
    finally:
        await admin.close()


def test_check_reports_missing_topics_apply_creates_them_then_check_passes(kafka_broker, tmp_path):
    cfg = config(tmp_path, kafka_broker)
    code, out = topics("check", cfg)
    assert code == 1, out
    for t in OURS:
        assert f"MISMATCH: {t}: missing\n  fix: yujing topics apply (or: kafka-topics.sh " \
               f"--bootstrap-server {kafka_broker} --create --topic {t} --partitions 2 " \
               "--replication-factor 1 --config cleanup.policy=" in out, out
    code, out = topics("apply", cfg)
    assert code == 0, out
    assert sorted(line for line in out.splitlines() if line.startswith("done:")) == \
        sorted(f"done: {t}: created" for t in [*OURS, LEADER])
    code, out = topics("check", cfg)
    assert (code, out.strip()) == (0, f"ok: 17 topics on {kafka_broker} as declared")
    assert asyncio.run(configs_of(kafka_broker, "yujing.incidents"))["cleanup.policy"] == "compact"
    assert asyncio.run(configs_of(kafka_broker, "yujing.commands"))["retention.ms"] == str(30 * DAY)


def test_a_wrong_retention_is_reported_with_its_fix_and_apply_corrects_it(kafka_broker, tmp_path):
    cfg = config(tmp_path, kafka_broker)
    assert topics("apply", cfg)[0] == 0       # as declared (created by the test above, or now)
    # an operator shortens the readings' retention and sets an override of their own
    asyncio.run(alter(kafka_broker, "yujing.readings", {
        "cleanup.policy": "delete", "retention.ms": str(DAY), "min.insync.replicas": "1",
        "max.message.bytes": "2097152"}))
    code, out = topics("check", cfg)
    assert code == 1, out
    assert out.splitlines()[:2] == [
        f"MISMATCH: yujing.readings: retention.ms is {DAY} (1d), declared {7 * DAY} (7d); "
        "kafka.retention.readings",
        f"  fix: yujing topics apply (or: kafka-configs.sh --bootstrap-server {kafka_broker} "
        "--alter --entity-type topics --entity-name yujing.readings "
        f"--add-config retention.ms={7 * DAY})"]
    assert "1 difference on" in out
    code, out = topics("apply", cfg)
    assert code == 0 and "done: yujing.readings: retention.ms altered" in out, out
    assert topics("check", cfg)[0] == 0
    got = asyncio.run(configs_of(kafka_broker, "yujing.readings"))
    assert (got["retention.ms"], got["max.message.bytes"]) == (str(7 * DAY), "2097152")
    # a longer retention configured for readings: apply follows the config
    longer = config(tmp_path, kafka_broker, "longer.yaml", retention={"readings": "10d"})
    assert "declared 864000000 (10d)" in topics("check", longer)[1]
    assert topics("apply", longer)[0] == 0
    assert topics("check", longer)[0] == 0


def test_partitions_grow_with_apply_and_are_never_shrunk(kafka_broker, tmp_path):
    assert topics("apply", config(tmp_path, kafka_broker))[0] == 0
    three = config(tmp_path, kafka_broker, "three.yaml", partitions=3)
    code, out = topics("apply", three)
    assert code == 0 and "done: yujing.readings: partitions grown to 3" in out, out
    code, out = topics("apply", config(tmp_path, kafka_broker))   # back to 2: refused
    assert code == 1
    assert ("MISMATCH: yujing.readings: 3 partitions, declared 2 (kafka.partitions)\n"
            "  fix: a topic's partitions can only grow: set kafka.partitions: 3, or delete "
            "and re-create the topic (its records are lost)") in out


def test_on_tansu_configs_are_set_at_creation_and_a_change_is_told_apart(kafka, tmp_path):
    cfg = config(tmp_path, kafka)
    code, out = topics("apply", cfg)
    assert code == 0 and out.count("created") == 17, out
    assert topics("check", cfg)[0] == 0
    code, out = topics("apply", config(tmp_path, kafka, "two.yaml", retention={"readings": "2d"}))
    assert code == 1
    assert "MISMATCH: yujing.readings: retention.ms is 604800000 (7d), declared 172800000" in out
    assert f"fix: the broker at {kafka} cannot alter topic configs (Tansu has no " \
           "AlterConfigs" in out
