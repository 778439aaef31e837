"""The worker's Faust app: settings, topics, tables, and what runs on them. Wiring only.

Faust is used for consumer-group assignment, offsets, agents and tables; window
and warning state are our own (DESIGN: no Faust windowed tables), one pipeline
per assigned partition, checkpointed and restored by streams/state.py. The
agent's and timers' work is streams/evaluator.py; the warning book's is
streams/alerting.py. Every topic is declared with the one configured partition
count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from yujing import clock, metrics
from yujing.config import Config
from yujing.connectors.kafka_security import ssl_context
from yujing.kafka_settings import KafkaSecurity, read_password
from yujing.malloc import keep_freed_memory
from yujing.pipeline import ModelsView
from yujing.pipeline.models_view import split_groups
from yujing.rules.loader import check_references, field_warnings, load_rules_located
from yujing.stations import load_registry, watch_registry
from yujing.streams.alerting import install_alerting
from yujing.streams.commit_watch import watch_commits
from yujing.streams.evaluator import Evaluator, Outbox, Send
from yujing.streams.pacing import Pacer
from yujing.streams.recovery_watch import watch_recovery
from yujing.streams.state import Pipelines
from yujing.streams.tables import CheckpointTable
from yujing.streams.transport import App
from yujing.streams.tuning import shorten_fetch_wait

log = logging.getLogger(__name__)

# Faust's default linger is 0: every warning event and table write went out in a produce
# request of its own as soon as the sender task ran (bench/throughput.py --profile: a storm of
# events spent more worker CPU in produce requests and socket writes than in the rules). 5 ms,
# the gateway's own linger, lets one request carry what an envelope produced; a warning waits at
# most that long more.
PRODUCER_LINGER_S = 0.005
# Envelopes of yujing.readings evaluated together at most (streams/evaluator.py): bounds the
# pass, so a backlog after a restart is still acked and checkpointed as it goes.
COALESCE_MAX = 32


def make_app(cfg: Config, bootstrap: str, embedded: bool) -> faust.App:
    k, w = cfg.kafka, cfg.worker
    w.data_dir.mkdir(parents=True, exist_ok=True)
    app = App("yujing-worker", **app_settings(cfg, bootstrap, embedded))
    # the agents' topics: delete policy, no transactions, every offset a record
    app.strict_topics = frozenset({k.topics.readings, k.topics.warnings, k.topics.commands})
    watch_recovery(app)
    watch_commits(app, w.commit_stall.s)

    located = load_rules_located(w.rules_dir)
    rules = [r for r, _ in located]
    registry = load_registry(w.registry)
    for p in check_references(located, registry) + field_warnings(located, registry):
        log.warning("%s", p)  # a rule that cannot fire here: said at start, not refused
    models = (ModelsView(w.models_dir, w.models_key_file, preload=rules)
              if w.models_dir is not None else None)
    for problem in split_groups(models, rules, registry):
        log.warning("%s", problem)
    readings = app.topic(k.topics.readings, value_serializer="raw", partitions=k.partitions)
    warnings = app.topic(k.topics.warnings, value_serializer="raw", key_serializer="raw",
                         partitions=k.partitions)
    deadletter = app.topic(k.topics.deadletter, value_serializer="raw", partitions=k.partitions)
    checkpoints = CheckpointTable.declare(app, k.partitions)
    log.info("worker loaded %d rules, %d stations", len(rules), len(registry))

    # One pipeline per assigned partition of yujing.readings, checkpointed to the table above
    # and restored (plus the readings after its checkpoint) on assignment: streams/state.py.
    outbox = Outbox(producer_send(app, k.topics.warnings), deadletter.send, w.lateness)
    pipelines = Pipelines(rules, registry, w.lateness.ms, models,
                          k.partitions, checkpoints, bootstrap, k.topics.readings, outbox.emit,
                          flush=lambda: app.producer.flush(),
                          interval_s=w.checkpoint_interval.s,
                          now_ms=clock.now_ms, tz=cfg.timezone, security=k.security)
    app.pipelines = pipelines  # type: ignore[attr-defined]
    follow_assignment(app, pipelines, k.topics.readings)
    evaluator = Evaluator(pipelines, outbox, w.nodata_clock, models)

    @app.agent(readings, name="yujing.streams.app.evaluate")
    async def evaluate(stream):
        await evaluate_waiting(stream.noack(), evaluator, app,
                               Pacer(w.coalesce_wait.s, now_s=clock.monotonic()))

    # Warning events go to the book (yujing.alerts.book via streams/alerting.py): lifecycle,
    # grouping, inhibition, silences, AB escalation and delivery, state in Faust tables.
    app.alerting = install_alerting(app, cfg, warnings, registry, pipelines)  # type: ignore[attr-defined]

    app.timer(w.nodata_check_s, name="yujing.nodata")(evaluator.check_nodata)
    if w.registry is not None:
        @app.task
        async def registry_reload() -> None:
            await watch_registry(w.registry, evaluator.use_registry)
    if models is not None:
        app.timer(w.models_reload_s, name="yujing.models_reload")(evaluator.reload_models)
    app.timer(5.0, name="yujing.heartbeat")(evaluator.heartbeat)
    return app


async def evaluate_waiting(stream: Any, evaluator: Evaluator, app: faust.App,
                           pacer: Pacer | None = None,
                           sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """The readings agent: each envelope with those already fetched behind it.

    An envelope is taken alone when nothing waits behind it in the agent's queue (no wait
    is added at low rates), and together with up to :data:`COALESCE_MAX` - 1 waiting ones
    under load, which the evaluator runs as one engine pass; a busy agent (``pacer``) first
    waits ``worker.coalesce_wait`` once for the envelopes on their way. The stream does not ack
    (``noack``): an envelope is acked only after its pass, so the committed offset never
    passes an envelope whose events were not sent."""
    pacer = pacer or Pacer(0.0)
    queue = getattr(stream.channel, "queue", None)
    waiting = (lambda: not queue.empty()) if queue is not None else (lambda: False)
    batch: list[Any] = []
    held = False   # this batch has had its wait (streams/pacing.py): at most one per pass

    def lag() -> None:
        metrics.observe_lag(app.consumer, batch[-1] if batch else None)

    async for event in stream.events():
        batch.append(event)
        if len(batch) < COALESCE_MAX and waiting():
            continue
        wait = 0.0 if held or len(batch) >= COALESCE_MAX else pacer.hold(clock.monotonic())
        if wait:
            held = True
            await sleep(wait)   # a busy worker's linger, like the gateway's
            if waiting():
                continue
        engine_s = evaluator.engine_s
        try:
            await evaluator.records([(e.message.partition, e.message.offset, e.value)
                                     for e in batch], lag)
        finally:
            pacer.spent(evaluator.engine_s - engine_s, clock.monotonic())
            for e in batch:
                await stream.ack(e)
            batch.clear()
            held = False


def app_settings(cfg: Config, bootstrap: str, embedded: bool) -> dict[str, Any]:
    """faust.App keyword arguments. An embedded broker (one machine, tests) gets short
    rebalance and session timeouts, so a killed worker's partitions move in seconds."""
    k = cfg.kafka
    rebalance = k.rebalance_timeout_s or (6.0 if embedded else None)
    session = k.session_timeout_s or (6.0 if embedded else None)
    extra: dict[str, Any] = {}
    if rebalance:
        extra["broker_rebalance_timeout"] = rebalance
    if session:
        extra["broker_session_timeout"] = session
        extra["broker_heartbeat_interval"] = min(2.0, session / 3)
    if (credentials := faust_credentials(k.security)) is not None:
        extra["broker_credentials"] = credentials
    return dict(
        broker=f"kafka://{bootstrap}", store="memory://",
        # changelogs are declared before Faust starts (alerting._declare); this is the
        # fallback for any topic Faust would still create itself
        topic_partitions=k.partitions, topic_replication_factor=k.replication or 1,
        datadir=str(cfg.worker.data_dir), web_enabled=False,
        consumer_auto_offset_reset="earliest",
        producer_compression_type=None if k.compression == "none" else k.compression,
        producer_linger=PRODUCER_LINGER_S,
        **extra)


def faust_credentials(sec: KafkaSecurity) -> faust.types.auth.CredentialsT | None:
    """``kafka.security`` as Faust's broker_credentials. Faust turns them back into the
    same aiokafka arguments (faust/transport/drivers/aiokafka.py,
    credentials_to_aiokafka_auth) for every client it makes: the group consumer, the
    client-only consumer, the producer, and topic creation, which uses those clients'
    connections. SASLCredentials means SASL_SSL when given a context, SASL_PLAINTEXT
    without one."""
    if sec.protocol == "PLAINTEXT":
        return None
    ctx = ssl_context(sec.tls) if sec.uses_tls else None
    if sec.sasl is None:
        return faust.SSLCredentials(ctx)
    return faust.SASLCredentials(username=sec.sasl.username, password=read_password(sec.sasl),
                                 ssl_context=ctx, mechanism=sec.sasl.mechanism)


def producer_send(app: faust.App, topic: str) -> Send:
    """``send(key=, value=)`` of raw bytes to ``topic`` on the app's producer itself.

    Faust's ``Topic.send`` wraps every record in a FutureMessage, PendingMessage, sensors and
    callbacks; for warning events (bytes already, no schema) that cost more than the send
    (bench/throughput.py --profile). The record, its partition (the producer's key hash), the
    producer and ``app.producer.flush()`` before a checkpoint are the same; a failed delivery
    is logged, as Faust's own callback does."""
    async def send(key: bytes | None = None, value: bytes | None = None) -> Any:
        fut = await app.producer.send(topic, key, value, None, None, None)
        fut.add_done_callback(_delivery)
        return fut
    return send


def _delivery(fut: Any) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("worker: a warning event was not delivered: %r", fut.exception())


def follow_assignment(app: faust.App, pipelines: Pipelines, topic: str) -> None:
    """Tell ``pipelines`` about rebalances of ``topic``: revoked partitions stop
    checkpointing, the new assignment drops the lost ones, and once the tables are
    recovered the new ones are restored."""
    def ours(tps) -> set[int]:
        return {tp.partition for tp in tps if tp.topic == topic}

    @app.on_partitions_revoked.connect
    async def _revoked(sender, revoked, **kwargs) -> None:
        pipelines.revoke(ours(revoked))

    @app.on_partitions_assigned.connect
    async def _assigned(sender, assigned, **kwargs) -> None:
        pipelines.keep(ours(assigned))

    @app.on_rebalance_complete.connect
    async def _recovered(sender, **kwargs) -> None:
        pipelines.assign(ours(app.assignor.assigned_actives()))


def run_worker(cfg: Config, bootstrap: str, embedded: bool) -> None:
    """Run a Faust worker in this process until SIGTERM/SIGINT."""
    shorten_fetch_wait(cfg.kafka.fetch_max_wait_ms)
    keep_freed_memory()
    app = make_app(cfg, bootstrap, embedded)
    metrics.start_server(cfg.worker.metrics_port, cfg.worker.metrics_host, "worker metrics")
    worker = faust.Worker(app, loglevel=cfg.log_level.upper() if cfg.log_level != "warning" else "WARN",
                          quiet=True)
    worker.execute_from_commandline()
