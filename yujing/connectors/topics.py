"""Declared topics on a real broker: read them back, report differences, apply the fixes.

``check`` reads each declared topic (:mod:`yujing.connectors.topicspec`) and returns
what differs; ``apply`` creates the missing ones with their settings, adds partitions
(never removes any: Kafka cannot, and re-creating a topic loses it), alters the configs
that differ and reads them back until the broker shows them; ``declare`` is what a
process runs at start: create what is missing, report the rest in its log.

Tansu answers DescribeConfigs with the configs a topic was created with (no defaults)
and has no AlterConfigs or CreatePartitions; it applies no retention anyway. There,
configs are set at creation only and ``apply`` says so in one line instead of failing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import IncompatibleBrokerVersion, KafkaError, UnsupportedVersionError

from yujing import clock
from yujing.config import KafkaConfig
from yujing.connectors.kafka import PLAINTEXT, admin
from yujing.connectors.kafka_security import CLOSED, diagnose
from yujing.connectors.topicspec import (
    Actual,
    Finding,
    TopicSpec,
    compare,
    declared,
    same_value,
)
from yujing.kafka_settings import KafkaSecurity

log = logging.getLogger(__name__)
_TOPIC_ALREADY_EXISTS = 36
_TOPIC_CONFIG = 1   # DescribeConfigs source: set on the topic itself
NO_ALTER = ("the broker at {} cannot alter topic configs (Tansu has no AlterConfigs; it keeps "
            "every record in memory and applies no retention): configs are set at creation only")


@dataclass
class Report:
    """What ``check`` found, or what ``apply`` did and what is left."""

    findings: list[Finding] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    topics: int = 0

    @property
    def mismatches(self) -> list[Finding]:
        return [f for f in self.findings if not f.note]

    @property
    def ok(self) -> bool:
        return not self.mismatches


class KafkaRefused(RuntimeError):
    """The brokers refuse this client's credentials or TLS; the message says the fix."""


async def connect(bootstrap: str, timeout_s: float = 30.0,
                  security: KafkaSecurity = PLAINTEXT) -> AIOKafkaAdminClient:
    """A started admin client; retries until ``timeout_s`` (the broker may be starting),
    except when the brokers refuse the credentials: retrying a wrong password helps nobody,
    so that is :class:`KafkaRefused` at once (a connection closed unanswered: at the second
    try in a row, as a broker that is stopping closes them too)."""
    deadline = clock.monotonic() + timeout_s
    closed_before = False
    while True:
        client = admin(bootstrap, security=security, request_timeout_ms=10_000)
        try:
            await client.start()
            return client
        except KafkaError as exc:
            await client.close()
            refused = await diagnose(bootstrap, security)
            if refused and (CLOSED not in refused or closed_before):
                raise KafkaRefused(refused) from exc
            closed_before = bool(refused)
            if clock.monotonic() > deadline:
                raise (KafkaRefused(refused) if refused else RuntimeError(
                    f"Kafka at {bootstrap} is not reachable: {exc}")) from exc
            await asyncio.sleep(0.5)


async def specs(admin: AIOKafkaAdminClient, k: KafkaConfig,
                names: Iterable[str] | None = None) -> list[TopicSpec]:
    """The declared topics for this cluster's size (replication follows it), or those named."""
    brokers = len((await admin.describe_cluster())["brokers"])
    wanted = set(names) if names is not None else None
    return [s for s in declared(k, brokers) if wanted is None or s.name in wanted]


async def describe(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, Actual]:
    """The named topics that exist. Only listed topics are asked about: a metadata request
    for an unknown topic makes Tansu create it (with 4 partitions)."""
    existing = set(await admin.list_topics())
    names = [n for n in names if n in existing]
    if not names:
        return {}
    found: dict[str, Actual] = {}
    for t in await admin.describe_topics(names):
        if t["error_code"] == 0 and t["partitions"]:
            found[t["topic"]] = Actual(len(t["partitions"]),
                                       min(len(p["replicas"]) for p in t["partitions"]))
    answers = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, n) for n in found])
    for answer in answers:
        for code, _msg, _type, name, entries in answer.resources:
            if code == 0 and name in found:
                found[name].configs = {e[0]: e[1] for e in entries if e[1] is not None}
                found[name].overrides = {e[0]: e[1] for e in entries
                                         if e[3] == _TOPIC_CONFIG and e[1] is not None}
    return found


async def check(admin: AIOKafkaAdminClient, wanted: list[TopicSpec], bootstrap: str) -> Report:
    actual = await describe(admin, [s.name for s in wanted])
    found = [f for s in wanted for f in compare(s, actual.get(s.name), bootstrap)]
    return Report(found, topics=len(wanted))


async def apply(admin: AIOKafkaAdminClient, wanted: list[TopicSpec], bootstrap: str,
                settle_s: float = 15.0) -> Report:
    """Make the broker match ``wanted`` as far as it can; the report lists what was done and
    what is left (partitions that would have to shrink, replicas, configs Tansu keeps)."""
    done: list[str] = []
    actual = await describe(admin, [s.name for s in wanted])
    missing = [s for s in wanted if s.name not in actual]
    if missing:
        done += await _create(admin, missing)
    grow = {s.name: NewPartitions(s.partitions) for s in wanted
            if s.name in actual and actual[s.name].partitions < s.partitions}
    if grow:
        try:
            await admin.create_partitions(grow)
            done += [f"{t}: partitions grown to {p.total_count}" for t, p in grow.items()]
        except (IncompatibleBrokerVersion, UnsupportedVersionError):
            log.warning("the broker at %s cannot add partitions (Tansu): %s", bootstrap,
                        ", ".join(grow))
    altered = await _alter(admin, wanted, actual, bootstrap)
    done += altered or []
    deadline = clock.monotonic() + settle_s
    while True:   # a KRaft broker applies an alteration a moment after acknowledging it
        report = await check(admin, wanted, bootstrap)
        if altered is None:   # this broker cannot: say so instead of pointing back at apply
            report.findings = [replace(f, fix=NO_ALTER.format(bootstrap), fixable=False)
                               if f.kind == "config" else f for f in report.findings]
        fixable = [f for f in report.mismatches if f.fixable]
        if not fixable or not done or clock.monotonic() > deadline:
            report.done = done
            return report
        await asyncio.sleep(0.3)


async def _create(admin: AIOKafkaAdminClient, missing: list[TopicSpec]) -> list[str]:
    answer = await admin.create_topics(
        [NewTopic(s.name, s.partitions, s.replication, topic_configs=dict(s.configs))
         for s in missing])
    done = []
    for name, code, message in answer.topic_errors:
        if code == 0:
            done.append(f"{name}: created")
        elif code != _TOPIC_ALREADY_EXISTS:   # another process was first: fine
            raise RuntimeError(f"creating topic {name} failed (error {code}): {message}")
    return done


async def _alter(admin: AIOKafkaAdminClient, wanted: list[TopicSpec], actual: dict[str, Actual],
                 bootstrap: str) -> list[str] | None:
    """Alter the topics whose reported configs differ; None when the broker cannot.
    AlterConfigs (the only kind aiokafka sends) replaces a topic's whole set of overrides,
    so the ones we do not declare are sent again unchanged."""
    changes = []
    for s in wanted:
        a = actual.get(s.name)
        if a is None:
            continue
        differ = {k: v for k, v in s.configs.items()
                  if k in a.configs and not same_value(k, a.configs[k], v)}
        if differ:
            changes.append((s.name, {**a.overrides, **differ}, sorted(differ)))
    if not changes:
        return []
    try:
        answers = await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, configs=merged)
             for name, merged, _ in changes])
    except (IncompatibleBrokerVersion, UnsupportedVersionError):
        log.warning(NO_ALTER.format(bootstrap))
        return None
    failed = {name: f"error {code}: {msg}" for answer in answers
              for code, msg, _type, name in answer.resources if code}
    if failed:
        raise RuntimeError(f"altering topic configs failed: {failed}")
    return [f"{name}: {', '.join(keys)} altered" for name, _, keys in changes]


async def declare(bootstrap: str, k: KafkaConfig, names: Iterable[str] | None = None,
                  fix: bool = False, timeout_s: float = 30.0) -> Report:
    """At a process's start: create the missing topics (``names``, else all) as declared;
    with ``fix`` (a broker yujing owns) apply everything, else log each difference with
    its fix and go on: an operator's cluster is changed only by `yujing topics apply`."""
    admin = await connect(bootstrap, timeout_s, k.security)
    try:
        wanted = await specs(admin, k, names)
        if fix:
            report = await apply(admin, wanted, bootstrap)
        else:
            actual = await describe(admin, [s.name for s in wanted])
            missing = [s for s in wanted if s.name not in actual]
            report = Report(done=await _create(admin, missing) if missing else [])
            report.findings = [f for s in wanted if s.name in actual
                               for f in compare(s, actual[s.name], bootstrap)]
    finally:
        await admin.close()
    for line in report.done:
        log.info("topics: %s", line)
    for f in report.mismatches:
        log.warning("topic not as declared: %s; fix: %s", f.text, f.fix)
    if any(f.note for f in report.findings):
        log.info("topics: the broker at %s reports no retention or cleanup settings for some "
                 "topics (Tansu: memory only, no retention); not checked", bootstrap)
    return report
