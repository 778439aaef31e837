"""The InfluxDB sink (``yujing sink``): readings and warning events into InfluxDB.

A separate process with its own Kafka consumer group, so a slow or dead
InfluxDB never slows the gateway or the workers: they do not wait for it, and
Kafka holds what the sink has not written yet.

- ``yujing.readings`` envelopes → one point per reading: measurement = the
  station's kind from the registry (``unregistered`` when unknown), tags
  ``metric``, ``station``, ``town``, field ``value``, time = event time (ms). Forecast
  values go to ``<kind>_forecast`` with an ``issued`` tag (the issue time, UTC).
- ``yujing.warnings`` events → measurement ``warning``, tags ``grade``, ``hazard``,
  ``incident``, ``rule``, ``state``, ``station``, ``town``; fields ``level``
  (0 none … 4 red), ``value`` and ``reason``; time = the event time. ``incident`` is
  the event's episode as the worker names it (:func:`yujing.domain.episode_ref`; the
  warning book lists it in the incident's ``sources``), or an older worker's proposed id.

Flow control: points wait in a bounded buffer (``influx.buffer_points``); when
it is full the consumer stops fetching until the writer catches up, so memory
stays bounded and nothing is lost while InfluxDB is down (Kafka keeps it).
Offsets are committed only after the points before them were written (or
given up on), so a restarted sink resumes where writing stopped; a point
written twice is the same point (same series and time) to InfluxDB.

Writes are retried with exponential backoff (tenacity) while the failure is
transient (connection refused, timeout, 429, 5xx). A batch InfluxDB refuses
as bad (other 4xx) is dropped, counted and logged: retrying cannot fix it and
it must not wedge the stream behind it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from influxdb_client import WritePrecision
from tenacity import AsyncRetrying, retry_if_exception, stop_any, wait_exponential

from yujing import clock
from yujing import metrics as m
from yujing.config import Config
from yujing.connectors.kafka import consumer
from yujing.connectors.topics import declare
from yujing.envelope import Columns, decode
from yujing.stations import FileWatcher, Registry, load_registry, reload_on_sighup

log = logging.getLogger(__name__)

GRADE_LABELS = {0: "none", 1: "blue", 2: "yellow", 3: "orange", 4: "red"}
GRADE_LEVELS = {v: k for k, v in GRADE_LABELS.items()}


# --- line protocol (pure) --------------------------------------------------------------------

# Line protocol ends a point at a raw newline: a tag value carrying one (a registry's town name,
# say) would split the point and make InfluxDB refuse the whole batch. Escaped as influxdb-client's
# own Point does (backslash, comma, equals, space, and \n \r \t as two characters).
_KEY_ESCAPES = str.maketrans({"\\": "\\\\", ",": "\\,", "=": "\\=", " ": "\\ ",
                              "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _esc_key(s: str) -> str:
    """Escape a measurement, tag key or tag value."""
    return s.translate(_KEY_ESCAPES)


def _esc_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def reading_lines(cols: Columns, registry: Registry) -> list[str]:
    """One line per reading of an envelope (precision ms). A forecast value goes to
    ``<kind>_forecast`` with its issue time as the ``issued`` tag: it never stands in for an
    observation at the same time (nor is overwritten by it), and every issue is kept, so
    forecasts can be verified against what was observed, lead time by lead time."""
    prefixes: dict[tuple[int, int, int], str] = {}
    out: list[str] = []
    si, mi, ts, val = cols.si.tolist(), cols.mi.tolist(), cols.ts.tolist(), cols.val.tolist()
    iss = cols.issued.tolist() if cols.issued is not None else [0] * len(ts)
    for k in range(len(ts)):
        key = (si[k], mi[k], iss[k])
        prefix = prefixes.get(key)
        if prefix is None:
            prefix = prefixes[key] = _prefix(cols.stations[si[k]], cols.metrics[mi[k]], iss[k],
                                             registry)
        out.append(f"{prefix}{val[k]!r} {ts[k]}")
    return out


def _prefix(sid: str, metric: str, issued_ms: int, registry: Registry) -> str:
    st = registry.get(sid)
    meas = st.kind if st is not None and st.kind else "unregistered"
    if issued_ms:
        meas += "_forecast"
    prefix = f"{_esc_key(meas)},metric={_esc_key(metric)},station={_esc_key(sid)}"
    if st is not None and st.town:
        prefix += f",town={_esc_key(st.town)}"
    if issued_ms:
        issued = datetime.fromtimestamp(issued_ms / 1000, tz=UTC)
        prefix += f",issued={issued.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    return prefix + " value="


def warning_line(ev: dict[str, Any], registry: Registry, measurement: str = "warning") -> str:
    """One line for a warning event (decoded generically, so new fields do no harm)."""
    grade = ev.get("grade", 0)
    label = GRADE_LABELS.get(grade, str(grade)) if isinstance(grade, int) else str(grade).lower()
    station = str(ev.get("station", ""))
    st = registry.get(station)
    town = ev.get("town") or (st.town if st is not None else "")
    tags = {"grade": label, "hazard": ev.get("hazard", ""), "incident": ev.get("incident", ""),
            "rule": ev.get("rule", ""), "state": ev.get("state") or ev.get("kind", ""),
            "station": station, "town": town}
    tag_text = "".join(f",{k}={_esc_key(str(v))}" for k, v in sorted(tags.items()) if v != "")
    level = GRADE_LEVELS.get(label, 0)
    value = float(ev.get("value", 0.0) or 0.0)
    fields = f"level={level}i,value={value!r},reason={_esc_str(str(ev.get('reason', '')))}"
    ts = int(ev.get("ts") or ev.get("emitted_ms") or 0)
    return f"{_esc_key(measurement)}{tag_text} {fields} {ts}"


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the server is away or busy, not refusing the data."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status == 429 or status == 408 or status >= 500
    return True  # connection refused, reset, timeout, DNS: all transient


# --- the process -----------------------------------------------------------------------------

@dataclass
class Chunk:
    lines: list[str]
    kinds: dict[str, int]
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


class Sink:
    def __init__(self, cfg: Config, bootstrap: str, embedded: bool = False) -> None:
        if cfg.influx is None:
            raise ValueError("the influx: section of the config is empty: set url, org, bucket "
                             "(and token) to run the sink")
        self.cfg, self.icfg, self.bootstrap, self.embedded = cfg, cfg.influx, bootstrap, embedded
        self.registry = load_registry(cfg.worker.registry)
        self.buffer: deque[Chunk] = deque()
        self.backlog = 0
        self.room = asyncio.Event()
        self.ready = asyncio.Event()
        self.stopping = asyncio.Event()
        self.written = 0
        self.retried = 0
        self.dropped = 0

    async def start(self) -> None:
        # lazy: the async client loads its query API with it (about 0.4 s); the line-protocol
        # functions above are imported without it (by the unit tests, for one)
        from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

        k = self.cfg.kafka
        extra: dict[str, Any] = {}
        rebalance = k.rebalance_timeout_s or (6.0 if self.embedded else None)
        session = k.session_timeout_s or (6.0 if self.embedded else None)
        if rebalance:
            extra["rebalance_timeout_ms"] = int(rebalance * 1000)
        if session:
            extra["session_timeout_ms"] = int(session * 1000)
            extra["heartbeat_interval_ms"] = int(min(2.0, session / 3) * 1000)
        # Subscribing to a missing topic makes Tansu create it with 4 partitions, whatever
        # kafka.partitions says, and the worker's tables then refuse it: declare them first.
        await declare(self.bootstrap, k, [k.topics.readings, k.topics.warnings])
        self.consumer = consumer(
            self.bootstrap, k.topics.readings, k.topics.warnings, security=k.security,
            group_id=self.icfg.group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024, **extra)
        await self.consumer.start()
        i = self.icfg
        self.client = InfluxDBClientAsync(url=i.url, token=i.token or "none", org=i.org,
                                          timeout=int(i.timeout_s * 1000))
        self.write_api = self.client.write_api()
        self.room.set()
        if self.cfg.worker.registry is not None:
            w = FileWatcher(self.cfg.worker.registry, load_registry, self._set_registry,
                            "station registry")
            reload_on_sighup(w)
            self.watch_task = asyncio.ensure_future(w.run())
        log.info("sink: Kafka %s (group %s) → InfluxDB %s bucket %s", self.bootstrap,
                 i.group_id, i.url, i.bucket)

    def _set_registry(self, reg: Registry) -> None:
        self.registry = reg

    async def run(self) -> None:
        """Consume and write until ``stopping`` is set; then write what is buffered."""
        consume = asyncio.create_task(self._consume())
        try:
            await self._write_loop()
        finally:
            consume.cancel()
            await asyncio.gather(consume, return_exceptions=True)

    async def stop(self) -> None:
        if hasattr(self, "watch_task"):
            self.watch_task.cancel()
        await self.consumer.stop()
        await self.client.close()

    # consumer side: never waits for InfluxDB, only for room in the buffer
    async def _consume(self) -> None:
        while not self.stopping.is_set():
            if self.backlog >= self.icfg.buffer_points:
                self.room.clear()
                await self.room.wait()
                continue
            try:
                batch = await self.consumer.getmany(timeout_ms=200, max_records=1000)
            except KafkaError as exc:
                log.warning("sink: Kafka fetch failed (%s); retrying", exc)
                await asyncio.sleep(1)
                continue
            self.ready.set()
            self._take(batch)

    def _take(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Turn fetched records into chunks of about ``batch_points`` lines.

        When the buffer fills in the middle of a fetch, the consumer is moved
        back to the first record not taken, so the buffer never holds more than
        ``buffer_points`` plus one envelope.
        """
        topics = self.cfg.kafka.topics
        chunk = Chunk([], {"reading": 0, "warning": 0})
        items = list(batch.items())
        for n, (tp, records) in enumerate(items):
            for rec in records:
                if self.backlog + len(chunk.lines) >= self.icfg.buffer_points:
                    self.consumer.seek(tp, rec.offset)
                    for tp2, recs2 in items[n + 1:]:
                        self.consumer.seek(tp2, recs2[0].offset)
                    self._push(chunk)
                    return
                try:
                    if tp.topic == topics.readings:
                        new = reading_lines(decode(rec.value), self.registry)
                        chunk.kinds["reading"] += len(new)
                    else:
                        new = [warning_line(orjson.loads(rec.value), self.registry)]
                        chunk.kinds["warning"] += 1
                    chunk.lines.extend(new)
                except Exception as exc:
                    m.SINK_DROPPED.labels("undecodable").inc()
                    log.error("sink: record %s@%d skipped: %s", tp, rec.offset, exc)
                chunk.offsets[tp] = rec.offset + 1
                if len(chunk.lines) >= self.icfg.batch_points:
                    self._push(chunk)
                    chunk = Chunk([], {"reading": 0, "warning": 0})
        self._push(chunk)

    def _push(self, chunk: Chunk) -> None:
        if not chunk.offsets:
            return
        self.buffer.append(chunk)
        self.backlog += len(chunk.lines)
        m.SINK_BACKLOG.set(self.backlog)

    async def _next_batch(self) -> Chunk | None:
        """Merge buffered chunks up to ``batch_points``, waiting at most ``flush_ms``."""
        deadline = clock.monotonic() + self.icfg.flush_ms / 1000
        while self.backlog < self.icfg.batch_points and not self.stopping.is_set():
            left = deadline - clock.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(min(left, 0.05))
        if not self.buffer:
            return None
        out = Chunk([], {"reading": 0, "warning": 0})
        while self.buffer and (not out.lines or
                               len(out.lines) + len(self.buffer[0].lines) <= self.icfg.batch_points):
            c = self.buffer.popleft()
            out.lines.extend(c.lines)
            for k, v in c.kinds.items():
                out.kinds[k] += v
            out.offsets.update(c.offsets)
        return out

    async def _write_loop(self) -> None:
        while not (self.stopping.is_set() and not self.buffer):
            chunk = await self._next_batch()
            if chunk is None:
                continue
            done = await self._write(chunk) if chunk.lines else True
            self.backlog -= len(chunk.lines)
            m.SINK_BACKLOG.set(self.backlog)
            self.room.set()
            if not done:
                # stopping with InfluxDB away: commit nothing more, Kafka keeps the rest
                # for the next start
                break
            try:
                await self.consumer.commit(chunk.offsets)
            except Exception as exc:
                log.warning("sink: offset commit failed (%s); some points may be written again",
                            exc)

    async def _write(self, chunk: Chunk) -> bool:
        """Write with retries; False when given up because the sink is stopping."""
        i = self.icfg

        def before_sleep(state: Any) -> None:
            self.retried += 1
            m.SINK_RETRIES.inc()
            exc = state.outcome.exception() if state.outcome else None
            log.warning("sink: write of %d points failed (%s); retry %d in %.1fs",
                        len(chunk.lines), exc, state.attempt_number,
                        state.next_action.sleep if state.next_action else 0)

        try:
            async for attempt in AsyncRetrying(
                    retry=retry_if_exception(is_transient),
                    wait=wait_exponential(multiplier=0.2, max=i.retry_max_s),
                    stop=stop_any(lambda s: self.stopping.is_set() and s.attempt_number > 2),
                    before_sleep=before_sleep, reraise=True):
                with attempt:
                    t0 = clock.monotonic()
                    await self.write_api.write(bucket=i.bucket, org=i.org, record=chunk.lines,
                                               write_precision=WritePrecision.MS)
                    m.SINK_WRITE_SECONDS.observe(clock.monotonic() - t0)
        except Exception as exc:
            if is_transient(exc):
                log.warning("sink: stopping with %d points unwritten (%s); their offsets are not "
                            "committed, so the next start writes them", len(chunk.lines), exc)
                return False
            self.dropped += len(chunk.lines)
            m.SINK_DROPPED.labels("rejected").inc(len(chunk.lines))
            log.error("sink: InfluxDB refused %d points, dropped: %s", len(chunk.lines),
                      getattr(exc, "body", None) or exc)
            return True
        self.written += len(chunk.lines)
        for kind, n in chunk.kinds.items():
            if n:
                m.SINK_WRITTEN.labels(kind).inc(n)
        return True


async def serve(cfg: Config, bootstrap: str, embedded: bool = False) -> None:
    """Run the sink until SIGTERM/SIGINT."""
    sink = Sink(cfg, bootstrap, embedded)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, sink.stopping.set)
    await sink.start()
    m.start_server(sink.icfg.metrics_port, sink.icfg.metrics_host, "sink metrics")
    print(f"sink ready influx={sink.icfg.url}", flush=True)
    try:
        await sink.run()
    finally:
        await sink.stop()
