"""The declared topics (yujing/connectors/topicspec.py): what each must look like and the
line, with its fix, that each kind of difference gives."""

from __future__ import annotations

import re
from importlib.metadata import distribution
from pathlib import Path

import pytest

from yujing.config import Config, KafkaConfig
from yujing.connectors.topicspec import (
    APP_ID,
    LEADER,
    TABLES,
    Actual,
    changelog,
    compare,
    declared,
    replication_for,
)

ROOT = Path(__file__).resolve().parents[2]
BS = "k1:9092"
DAY = 86_400_000


def spec_of(name: str, k: KafkaConfig | None = None, brokers: int = 1):
    return next(s for s in declared(k or KafkaConfig(), brokers) if s.name == name)


def as_declared(spec) -> Actual:
    return Actual(spec.partitions, spec.replication, dict(spec.configs))


def test_every_topic_has_the_one_partition_count_and_its_retention_or_compaction() -> None:
    k = KafkaConfig(partitions=6)
    specs = {s.name: s for s in declared(k, 1)}
    assert {s.partitions for s in specs.values() if s.name != LEADER} == {6}
    assert specs["yujing.readings"].configs["retention.ms"] == str(7 * DAY)
    assert specs["yujing.warnings"].configs["retention.ms"] == str(30 * DAY)
    assert specs["yujing.commands"].configs["retention.ms"] == str(30 * DAY)
    assert specs["yujing.deadletter"].configs["retention.ms"] == str(7 * DAY)
    assert specs["yujing.incidents"].configs["cleanup.policy"] == "compact"
    assert "retention.ms" not in specs["yujing.incidents"].configs
    changelogs = [n for n in specs if n.endswith("-changelog")]
    assert len(changelogs) == len(TABLES) == 10
    assert all(specs[n].configs["cleanup.policy"] == "compact" for n in changelogs)


def test_replication_follows_the_cluster_unless_configured() -> None:
    assert replication_for(KafkaConfig(), 1) == 1
    assert replication_for(KafkaConfig(), 5) == 3
    assert replication_for(KafkaConfig(replication=2), 5) == 2
    three = spec_of("yujing.readings", brokers=3)
    assert (three.replication, three.configs["min.insync.replicas"]) == (3, "2")
    assert spec_of("yujing.readings").configs["min.insync.replicas"] == "1"


def test_readings_retention_is_configured_and_must_outlive_a_checkpoint() -> None:
    k = KafkaConfig.model_validate({"retention": {"readings": "3d"}})
    assert spec_of("yujing.readings", k).configs["retention.ms"] == str(3 * DAY)
    with pytest.raises(ValueError, match="longer than worker.checkpoint_interval"):
        Config.model_validate({"kafka": {"retention": {"readings": "10m"}},
                               "worker": {"checkpoint_interval": "15m"}})


def test_a_matching_topic_gives_nothing_and_a_missing_one_its_create_command() -> None:
    spec = spec_of("yujing.readings")
    assert compare(spec, as_declared(spec), BS) == []
    (f,) = compare(spec, None, BS)
    assert (f.kind, f.fixable) == ("missing", True)
    assert f.fix.startswith("yujing topics apply")
    assert (f"kafka-topics.sh --bootstrap-server {BS} --create --topic yujing.readings "
            "--partitions 4 --replication-factor 1 --config cleanup.policy=delete "
            f"--config retention.ms={7 * DAY}") in f.fix


def test_a_wrong_retention_names_its_key_and_the_kafka_configs_command() -> None:
    spec = spec_of("yujing.readings")
    actual = as_declared(spec)
    actual.configs["retention.ms"] = str(DAY)
    (f,) = compare(spec, actual, BS)
    assert f.kind == "config" and f.fixable
    assert f.text == (f"yujing.readings: retention.ms is {DAY} (1d), declared {7 * DAY} (7d); "
                      "kafka.retention.readings")
    assert f.fix == (f"yujing topics apply (or: kafka-configs.sh --bootstrap-server {BS} --alter "
                     "--entity-type topics --entity-name yujing.readings "
                     f"--add-config retention.ms={7 * DAY})")


def test_a_compacted_topic_that_deletes_is_reported_and_policy_order_does_not_matter() -> None:
    spec = spec_of("yujing.incidents")
    actual = as_declared(spec)
    actual.configs["cleanup.policy"] = "delete"
    (f,) = compare(spec, actual, BS)
    assert "cleanup.policy is delete, declared compact" in f.text
    assert "--add-config cleanup.policy=compact" in f.fix
    spec2 = spec.__class__(spec.name, 4, 1, {"cleanup.policy": "compact,delete"})
    assert compare(spec2, Actual(4, 1, {"cleanup.policy": "delete, compact"}), BS) == []


def test_partitions_grow_but_never_shrink_and_replicas_need_kafkas_tool() -> None:
    spec = spec_of("yujing.warnings")
    fewer = compare(spec, Actual(2, 1, dict(spec.configs)), BS)
    assert [(f.kind, f.fixable) for f in fewer] == [("partitions", True)]
    assert "--alter --topic yujing.warnings --partitions 4" in fewer[0].fix
    more = compare(spec, Actual(8, 1, dict(spec.configs)), BS)
    assert [(f.kind, f.fixable) for f in more] == [("partitions", False)]
    assert "only grow: set kafka.partitions: 8" in more[0].fix
    three = spec_of("yujing.warnings", brokers=3)
    (f,) = compare(three, Actual(4, 1, dict(three.configs)), BS)
    assert (f.kind, f.fixable) == ("replication", False)
    assert "kafka-reassign-partitions.sh" in f.fix


def test_a_config_the_broker_does_not_report_is_a_note_not_a_mismatch() -> None:
    spec = spec_of("yujing.readings")
    found = compare(spec, Actual(4, 1, {"cleanup.policy": "delete"}), BS)   # Tansu's answer
    assert found and all(f.note and f.kind == "unreported" for f in found)


def test_changelog_names_are_those_faust_gives_the_workers_tables() -> None:
    """Faust names a changelog "<app id>-<table>-changelog"; read both back from streams/."""
    app = (ROOT / "yujing/streams/app.py").read_text(encoding="utf-8")
    assert re.search(rf'\bApp\("{APP_ID}"', app)      # faust.App or its subclass
    tables = re.findall(r'TABLE_NAME = "([^"]+)"',
                        (ROOT / "yujing/streams/tables.py").read_text(encoding="utf-8"))
    alerting = (ROOT / "yujing/streams/alerting.py").read_text(encoding="utf-8")
    assert 'app.Table(f"yujing-{name}"' in alerting
    tables += [f"yujing-{n}" for n in re.findall(r'table\("(\w+)"', alerting)]
    assert sorted(tables) == sorted(TABLES)
    assert changelog("yujing-pipeline") == "yujing-worker-yujing-pipeline-changelog"


def test_on_three_brokers_every_topic_has_three_replicas_and_needs_two_in_sync() -> None:
    """With the producers' acks=all, a write is on two brokers before it is acknowledged."""
    specs = declared(KafkaConfig(), 3)
    assert len(specs) == 17
    assert {(s.replication, s.configs["min.insync.replicas"]) for s in specs} == {(3, "2")}
    assert {(s.replication, s.configs["min.insync.replicas"])
            for s in declared(KafkaConfig(), 2)} == {(2, "1")}


def test_fausts_leader_topic_is_declared_with_one_partition_replicated_like_the_rest() -> None:
    """Faust would create it with replication 1 (topic_replication_factor): on a cluster a
    restarted worker then waited for the one broker holding it (bench/cluster_fault.py)."""
    leader = spec_of(LEADER, brokers=3)
    assert (leader.partitions, leader.replication) == (1, 3)
    assert spec_of(LEADER, KafkaConfig(partitions=8, replication=2), 5).partitions == 1
    source = distribution("faust-streaming").locate_file("faust/assignor/leader_assignor.py")
    text = Path(source).read_text(encoding="utf-8")   # read, not imported
    assert 'f"{self.app.conf.id}-__assignor-__leader"' in text and "partitions=1," in text
    assert LEADER == f"{APP_ID}-__assignor-__leader"
