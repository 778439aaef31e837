"""The topics the project declares, and how a topic on a broker differs from its declaration.

Pure: the broker is read and written by :mod:`yujing.connectors.topics`; this module
says what every topic must look like and turns each difference into one line with its
exact fix, so ``yujing topics check``, the start-up checks and the tests say the same.

Every topic has the one configured partition count (Faust crashes when a table's
changelog and its source differ) and the same replication. ``yujing.readings`` is kept
by time, long enough for a restarted worker to re-read everything after its checkpoint;
warnings and commands (the duty record) longer; incidents are snapshots keyed by
incident, so compacted, as are the worker's table changelogs; dead letters and events by
time. Faust's own leader topic (one partition, used to pick the group's leader) is declared
too: Faust would make it with its fallback replication of 1, and on a cluster the broker
holding that one replica would then stop every new or restarted worker while it is down.
On three brokers or more every topic has ``min.insync.replicas`` 2: with the producers'
``acks=all`` a write is on two brokers before it is acknowledged, and one broker may fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from yujing.config import KafkaConfig
from yujing.durations import format_duration

# The worker's faust.App id (yujing/streams/app.py) and its tables (streams/tables.py,
# streams/alerting.py); Faust names a table's changelog "<app id>-<table>-changelog".
# tests/unit/test_topicspec.py reads the names back from those files.
APP_ID = "yujing-worker"
TABLES = ("yujing-pipeline", "yujing-incidents", "yujing-open", "yujing-alias",
          "yujing-groups", "yujing-deliveries", "yujing-silences", "yujing-due",
          "yujing-notices", "yujing-notice_deliveries")
APPLY = "yujing topics apply"
LEADER = f"{APP_ID}-__assignor-__leader"   # faust/assignor/leader_assignor.py, one partition


def changelog(table: str) -> str:
    return f"{APP_ID}-{table}-changelog"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    configs: dict[str, str]
    source: str = ""            # the config key behind the retention, for messages


@dataclass
class Actual:
    """A topic as the broker describes it. ``configs``: every entry it reported;
    ``overrides``: those set on the topic itself (kept when we alter the others)."""

    partitions: int
    replication: int
    configs: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    topic: str
    kind: str        # missing | partitions | replication | config | unreported
    text: str        # what differs, one line
    fix: str         # the exact fix, or why there is none
    fixable: bool    # `yujing topics apply` fixes it
    note: bool = False   # informational: does not fail a check


def replication_for(k: KafkaConfig, brokers: int) -> int:
    """kafka.replication, else 3 on a cluster of three or more brokers, else 1."""
    return k.replication or min(3, max(1, brokers))


def declared(k: KafkaConfig, brokers: int) -> list[TopicSpec]:
    """Every topic yujing uses, as it must be on a broker with ``brokers`` brokers."""
    rf = replication_for(k, brokers)
    common = {"min.insync.replicas": "2" if rf >= 3 else "1"}

    def timed(name: str, key: str) -> TopicSpec:
        kept = getattr(k.retention, key)
        return TopicSpec(name, k.partitions, rf, {"cleanup.policy": "delete",
                                                  "retention.ms": str(kept.ms), **common},
                         f"kafka.retention.{key}")

    def compacted(name: str) -> TopicSpec:
        return TopicSpec(name, k.partitions, rf, {"cleanup.policy": "compact", **common})

    t = k.topics
    return [timed(t.readings, "readings"), timed(t.warnings, "warnings"),
            timed(t.commands, "commands"), compacted(t.incidents),
            timed(t.deadletter, "deadletter"), timed(t.events, "events"),
            *(compacted(changelog(name)) for name in TABLES),
            TopicSpec(LEADER, 1, rf, dict(common))]


def same_value(key: str, have: str, want: str) -> bool:
    """Equal as Kafka means them (a cleanup.policy is a set)."""
    if key == "cleanup.policy":
        return set(have.replace(" ", "").split(",")) == set(want.split(","))
    return have.strip() == want


def _shown(key: str, value: str) -> str:
    if key.endswith(".ms") and value.lstrip("-").isdigit() and int(value) > 0:
        return f"{value} ({format_duration(int(value))})"
    return value


def compare(spec: TopicSpec, actual: Actual | None, bootstrap: str) -> list[Finding]:
    """What differs between ``spec`` and the topic on the broker, each with its fix."""
    t, bs = spec.name, f"--bootstrap-server {bootstrap}"
    if actual is None:
        configs = " ".join(f"--config {k}={v}" for k, v in spec.configs.items())
        return [Finding(t, "missing", f"{t}: missing", f"{APPLY} (or: kafka-topics.sh {bs} "
                        f"--create --topic {t} --partitions {spec.partitions} "
                        f"--replication-factor {spec.replication} {configs})", True)]
    found: list[Finding] = []
    if actual.partitions < spec.partitions:
        found.append(Finding(
            t, "partitions", f"{t}: {actual.partitions} partitions, declared {spec.partitions} "
            "(kafka.partitions)", f"{APPLY} adds partitions (or: kafka-topics.sh {bs} --alter "
            f"--topic {t} --partitions {spec.partitions}); stations then move between "
            "partitions and their window state starts again: stop the workers first", True))
    elif actual.partitions > spec.partitions:
        found.append(Finding(
            t, "partitions", f"{t}: {actual.partitions} partitions, declared {spec.partitions} "
            "(kafka.partitions)", f"a topic's partitions can only grow: set kafka.partitions: "
            f"{actual.partitions}, or delete and re-create the topic (its records are lost)",
            False))
    if actual.replication < spec.replication:
        found.append(Finding(
            t, "replication", f"{t}: replication {actual.replication}, declared "
            f"{spec.replication} (kafka.replication)", "kafka-reassign-partitions.sh "
            f"{bs} --reassignment-json-file <plan.json> --execute (`yujing topics apply` "
            "cannot add replicas)", False))
    differ = {}
    for key, want in spec.configs.items():
        have = actual.configs.get(key)
        if have is None:
            found.append(Finding(t, "unreported", f"{t}: the broker reports no {key} (declared "
                                 f"{_shown(key, want)})", "none: the broker keeps no such setting "
                                 "(Tansu: memory only, no retention)", False,
                                 note=True))
        elif not same_value(key, have, want):
            differ[key] = want
            why = f"; {spec.source}" if key == "retention.ms" and spec.source else ""
            found.append(Finding(t, "config", f"{t}: {key} is {_shown(key, have)}, declared "
                                 f"{_shown(key, want)}{why}", "", True))
    if differ:
        add = ",".join(f"{k}={v}" for k, v in differ.items())
        fix = (f"{APPLY} (or: kafka-configs.sh {bs} --alter --entity-type topics "
               f"--entity-name {t} --add-config {add})")
        found = [Finding(f.topic, f.kind, f.text, fix, f.fixable) if f.kind == "config" else f
                 for f in found]
    return found
