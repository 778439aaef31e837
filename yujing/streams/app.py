"""Faust app factory and thin agents: decode → pipeline → send.

Faust is used for consumer-group assignment, offsets, agents and tables; window
and warning state are our own (DESIGN: no Faust windowed tables), one pipeline
per assigned partition, checkpointed and restored by streams/state.py. Every
topic is declared with the one configured partition count.
"""

from __future__ import annotations

import logging
import time

import faust
import msgspec

from yujing import clock
from yujing.streams.alerting import install_alerting, routing_key
from yujing.streams.state import Pipelines
from yujing.config import Config
from yujing.streams.tuning import shorten_fetch_wait
from yujing.domain import WarningEvent
from yujing.envelope import decode
from yujing.pipeline import ModelsView, Outcome
from yujing import metrics as metrics
from yujing.stations import Registry, load_registry, watch_registry
from yujing.rules.loader import load_rules

log = logging.getLogger(__name__)
_event_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(WarningEvent)


def make_app(cfg: Config, bootstrap: str, embedded: bool) -> faust.App:
    k = cfg.kafka
    rebalance = k.rebalance_timeout_s or (6.0 if embedded else None)
    session = k.session_timeout_s or (6.0 if embedded else None)
    extra = {}
    if rebalance:
        extra["broker_rebalance_timeout"] = rebalance
    if session:
        extra["broker_session_timeout"] = session
        extra["broker_heartbeat_interval"] = min(2.0, session / 3)
    cfg.worker.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        "yujing-worker", broker=f"kafka://{bootstrap}", store="memory://",
        topic_partitions=k.partitions, topic_replication_factor=1,
        datadir=str(cfg.worker.data_dir), web_enabled=False,
        consumer_auto_offset_reset="earliest",
        producer_compression_type=None if k.compression == "none" else k.compression,
        **extra)

    rules = load_rules(cfg.worker.rules_dir)
    registry = load_registry(cfg.worker.registry)
    models = ModelsView(cfg.worker.models_dir) if cfg.worker.models_dir is not None else None
    readings = app.topic(k.topics.readings, value_serializer="raw", partitions=k.partitions)
    warnings = app.topic(k.topics.warnings, value_serializer="raw", key_serializer="raw",
                         partitions=k.partitions)
    deadletter = app.topic(k.topics.deadletter, value_serializer="raw", partitions=k.partitions)
    # value_type=bytes, not only a raw schema: Faust's changelog recovery decodes values with
    # the serializer derived from value_type (JSON otherwise), and one undecodable record
    # stalls the recovery of every table.
    checkpoints = app.Table("yujing-pipeline", default=None, partitions=k.partitions,
                            key_type=str, value_type=bytes,
                            schema=faust.Schema(key_type=str, value_type=bytes,
                                                key_serializer="json", value_serializer="raw"))
    log.info("worker loaded %d rules, %d stations", len(rules), len(registry))

    async def emit(out: Outcome) -> None:
        for ev in out.events:
            metrics.observe_warning(ev)
            await warnings.send(key=routing_key(ev), value=_event_encoder.encode(ev))
        for r in out.late:
            await deadletter.send(value=_dead("worker:late", f"reading more than "
                                              f"{cfg.worker.lateness} behind its series", r))

    # One pipeline per assigned partition of yujing.readings, checkpointed to the table above
    # and restored (plus the readings after its checkpoint) on assignment: streams/state.py.
    pipelines = Pipelines(rules, registry, cfg.worker.lateness.ms, models,
                          k.partitions, checkpoints, bootstrap, k.topics.readings, emit,
                          flush=lambda: app.producer.flush(),
                          interval_s=cfg.worker.checkpoint_interval.s,
                          now_ms=clock.now_ms)
    app.pipelines = pipelines  # type: ignore[attr-defined]

    def ours(tps) -> set[int]:  # noqa: ANN001
        return {tp.partition for tp in tps if tp.topic == k.topics.readings}

    @app.on_partitions_revoked.connect
    async def _revoked(sender, revoked, **kwargs) -> None:  # noqa: ANN001, ANN003
        pipelines.revoke(ours(revoked))

    @app.on_partitions_assigned.connect
    async def _assigned(sender, assigned, **kwargs) -> None:  # noqa: ANN001, ANN003
        pipelines.keep(ours(assigned))

    @app.on_rebalance_complete.connect
    async def _recovered(sender, **kwargs) -> None:  # noqa: ANN001, ANN003
        pipelines.assign(ours(app.assignor.assigned_actives()))

    @app.agent(readings)
    async def evaluate(stream):  # noqa: ANN001
        async for event in stream.events():
            msg = event.message
            ps = await pipelines.get(msg.partition)
            if pipelines.states.get(msg.partition) is not ps or msg.offset <= ps.applied:
                continue  # revoked meanwhile, or already in the restored state
            if ps.applied >= 0 and msg.offset > ps.applied + 1:
                await pipelines.catch_up(ps, msg.offset)
            try:
                cols = decode(event.value)
            except ValueError as exc:
                await deadletter.send(value=_dead("worker:decode", str(exc), event.value[:256]))
                ps.applied = msg.offset
                continue
            t0 = time.perf_counter()
            out = ps.pipeline.handle(cols, clock.now_ms())
            metrics.observe_evaluation(len(cols), cols.recv_ms, time.perf_counter() - t0,
                                       len(out.late), clock.now_ms())
            metrics.observe_lag(app.consumer, stream.current_event)
            await emit(out)
            ps.applied = msg.offset
            if pipelines.due(ps):
                await pipelines.checkpoint(ps)

    # Warning events go to the book (yujing.alerts.book via streams/alerting.py): lifecycle,
    # grouping, inhibition, silences, AB escalation and delivery, state in Faust tables.
    app.alerting = install_alerting(app, cfg, warnings, registry, pipelines)  # type: ignore[attr-defined]

    @app.timer(cfg.worker.nodata_check_s)
    async def nodata_check() -> None:
        # Each pipeline watches the stations of its own partition.
        for ps in pipelines.ready():
            for ev in ps.pipeline.check_nodata(clock.now_ms(), cfg.worker.nodata_clock):
                metrics.observe_warning(ev)
                await warnings.send(key=routing_key(ev), value=_event_encoder.encode(ev))

    def use_registry(reg: Registry) -> None:
        """Hot reload (file change or SIGHUP): rules see new selectors and station fields,
        no-data checks the new intervals; warning and window state are kept."""
        pipelines.set_registry(reg)
        log.info("worker: station registry reloaded, %d stations", len(reg))

    if cfg.worker.registry is not None:
        @app.task
        async def registry_reload() -> None:
            await watch_registry(cfg.worker.registry, use_registry)

    if models is not None:
        @app.timer(cfg.worker.models_reload_s)
        async def models_reload() -> None:
            changed = models.reload()
            if changed:
                pipelines.set_models(models)
                log.info("worker: anomaly models reloaded: %s", ", ".join(changed))

    @app.timer(5.0)
    async def heartbeat() -> None:
        states = pipelines.ready()
        n = sum(ps.pipeline.engine.stats.readings for ps in states)
        late = sum(ps.pipeline.engine.stats.late for ps in states)
        active = sum(len(ps.pipeline.lifecycle.active) for ps in states)
        owned = ",".join(str(p) for p in sorted(ps.partition for ps in states))
        log.info("worker: %d readings, %d late, %d active warnings (partitions %s)", n, late,
                 active, owned)

    return app


def _dead(source: str, reason: str, raw: object) -> bytes:
    import orjson
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    elif isinstance(raw, msgspec.Struct):
        raw = msgspec.to_builtins(raw)
    return orjson.dumps({"source": source, "reason": reason, "raw": raw,
                         "received_ms": clock.now_ms()})


def run_worker(cfg: Config, bootstrap: str, embedded: bool) -> None:
    """Run a Faust worker in this process until SIGTERM/SIGINT."""
    shorten_fetch_wait(cfg.kafka.fetch_max_wait_ms)
    app = make_app(cfg, bootstrap, embedded)
    metrics.start_server(cfg.worker.metrics_port, cfg.worker.metrics_host, "worker metrics")
    worker = faust.Worker(app, loglevel=cfg.log_level.upper() if cfg.log_level != "warning" else "WARN",
                          quiet=True)
    worker.execute_from_commandline()
