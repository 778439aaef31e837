"""Prometheus metric objects of the gateway, the worker and the InfluxDB sink.

One module so every name is defined once (prometheus_client refuses a second
registration) and an operator finds the whole list in one place. Labels stay
low-cardinality: a source kind and a reason *code*, never a station or a topic.

- gateway: served on its own HTTP server at ``/metrics``;
- worker: ``start_worker_server(port)`` (``worker.metrics_port``, 0 = off);
- sink: ``start_http_server`` on ``influx.metrics_port``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

log = logging.getLogger(__name__)

# --- gateway ---------------------------------------------------------------------------------
# source: mqtt | http | lineproto | events
READINGS_ACCEPTED = Counter("yujing_gateway_readings_accepted_total",
                            "Readings accepted into yujing.readings", ["source"])
READINGS_REJECTED = Counter("yujing_gateway_readings_rejected_total",
                            "Items rejected (dead-lettered), by reason code", ["source", "reason"])
READINGS_DUPLICATE = Counter("yujing_gateway_readings_duplicate_total",
                             "Exact repeats of a recent (station, metric, ts) dropped", ["source"])
READINGS_CORRECTED = Counter("yujing_gateway_readings_corrected_total",
                             "Repeats of a recent (station, metric, ts) with a new value (passed on)",
                             ["source"])
REQUESTS = Counter("yujing_gateway_http_requests_total", "HTTP ingest requests by status",
                   ["endpoint", "status"])
ENVELOPE_READINGS = Histogram("yujing_gateway_envelope_readings", "Readings per batch envelope",
                              buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000))
ENVELOPE_BYTES = Histogram("yujing_gateway_envelope_bytes", "Encoded size of a batch envelope",
                           buckets=(256, 1024, 4096, 16384, 65536, 262144, 1048576))
STORE_FAILURES = Counter("yujing_gateway_store_failures_total",
                         "Envelopes Kafka did not acknowledge")
MQTT_CONNECTED = Gauge("yujing_gateway_mqtt_connected", "1 while the MQTT session is up")
MQTT_DROPPED = Counter("yujing_gateway_mqtt_dropped_total",
                       "MQTT messages dropped because the ingest queue was full")
MQTT_RETRIES = Counter("yujing_gateway_mqtt_store_retries_total",
                       "MQTT messages whose readings were stored again after a Kafka failure")
MQTT_RATE_DEFERRED = Counter("yujing_gateway_mqtt_rate_deferred_total",
                             "MQTT messages held back (unacknowledged) because their source was "
                             "over http.rate_limit", ["source"])

# --- worker ----------------------------------------------------------------------------------
WORKER_ENVELOPES = Counter("yujing_worker_envelopes_total", "Envelopes evaluated")
WORKER_READINGS = Counter("yujing_worker_readings_total", "Readings evaluated")
WORKER_LATE = Counter("yujing_worker_late_total", "Readings too late for their window")
WORKER_PASSES = Counter("yujing_worker_passes_total", "Engine passes: the envelopes waiting "
                        "together on a partition are evaluated in one")
EVAL_SECONDS = Histogram("yujing_worker_eval_seconds", "Rule evaluation time per engine pass",
                         buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
EVAL_CPU_SECONDS = Counter("yujing_worker_eval_cpu_seconds_total", "CPU seconds of the engine "
                           "passes (the rest of the worker's CPU is transport, book and sends)")
INGEST_TO_EVAL_SECONDS = Histogram(
    "yujing_worker_ingest_to_eval_seconds",
    "Gateway receive time (envelope recv_ms) to end of evaluation",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
WARNINGS = Counter("yujing_worker_warnings_total", "Warning events by grade and state",
                   ["grade", "state"])
NOTIFICATIONS = Counter("yujing_worker_notifications_total", "Notifications by result",
                        ["result"])
DELIVERY_ATTEMPTS = Counter("yujing_worker_delivery_attempts_total", "Delivery attempts per "
                            "channel (apprise scheme: json, dingtalk, mailto ...) and result; the "
                            "watchdog reads them", ["channel", "result"])
CONSUMER_LAG = Gauge("yujing_worker_consumer_lag", "End offset minus committed offset "
                     "(under-reported on Tansu, see README)", ["partition"])

# --- InfluxDB sink ---------------------------------------------------------------------------
SINK_BACKLOG = Gauge("yujing_sink_backlog_points", "Points buffered, not yet written")
SINK_WRITTEN = Counter("yujing_sink_points_written_total", "Points written", ["kind"])
SINK_RETRIES = Counter("yujing_sink_retries_total", "Write attempts that failed and were retried")
SINK_DROPPED = Counter("yujing_sink_points_dropped_total", "Points given up on", ["reason"])
SINK_WRITE_SECONDS = Histogram("yujing_sink_write_seconds", "Duration of one successful write",
                               buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))


def exposition() -> tuple[bytes, str]:
    """The text exposition of every metric in this process, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST


def start_server(port: int, host: str = "127.0.0.1", what: str = "metrics") -> bool:
    """prometheus_client's own HTTP server (a daemon thread); port 0 means off.

    A port already taken is logged, not fatal: metrics must never stop a worker.
    """
    if not port:
        return False
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        log.error("%s server on %s:%d not started (%s): choose another port", what, host, port, exc)
        return False
    log.info("%s on http://%s:%d/metrics", what, host, port)
    return True


# --- helpers the worker's thin agents call (one line each in streams/app.py) ----------------

def observe_evaluation(readings: int, recv_ms: Sequence[int], seconds: float, late: int,
                       now_ms: int, cpu_s: float = 0.0) -> None:
    """One engine pass over the envelopes received at ``recv_ms`` (gateway clock), which
    took ``seconds`` of wall time and ``cpu_s`` of its thread's CPU."""
    WORKER_PASSES.inc()
    EVAL_CPU_SECONDS.inc(max(cpu_s, 0.0))
    WORKER_ENVELOPES.inc(len(recv_ms))
    WORKER_READINGS.inc(readings)
    EVAL_SECONDS.observe(seconds)
    if late:
        WORKER_LATE.inc(late)
    for r in recv_ms:
        if r > 0:
            INGEST_TO_EVAL_SECONDS.observe(max(0.0, (now_ms - r) / 1000))


_GRADES = {0: "none", 1: "blue", 2: "yellow", 3: "orange", 4: "red"}


def observe_warning(ev: object) -> None:
    """Count a warning event by grade and state (``state`` if the event has one, else its kind)."""
    grade = getattr(ev, "grade", 0)
    label = _GRADES.get(int(grade), str(grade)) if isinstance(grade, int) else str(grade)
    state = getattr(ev, "state", None) or getattr(ev, "kind", "")
    WARNINGS.labels(label, str(getattr(state, "value", state))).inc()


def observe_notification(result: str) -> None:
    NOTIFICATIONS.labels(result).inc()


def observe_delivery(result: object) -> None:
    """Count one delivery's attempts per channel: each failed attempt, and the one that worked."""
    for a in getattr(result, "attempts", ()):
        DELIVERY_ATTEMPTS.labels(_scheme(getattr(a, "channel", "")), "failed").inc()
    if getattr(result, "ok", False):
        DELIVERY_ATTEMPTS.labels(_scheme(getattr(result, "channel", "")), "sent").inc()


def _scheme(channel: str) -> str:
    return channel.split("://", 1)[0].lower() if "://" in channel else "none"


def observe_lag(consumer: object, event: object) -> None:
    """Lag of the partition an event came from, after processing it.

    Highwater comes from the consumer's last fetch; Tansu under-reports it
    (DESIGN: base offset of the last batch plus one), so on Tansu the lag reads
    low, and it is clamped at 0. Never raises: metrics must not stop a stream.
    """
    try:
        msg = event.message  # type: ignore[attr-defined]
        hw = consumer.highwater(msg.tp)  # type: ignore[attr-defined]
    except Exception:
        return
    if hw is not None:
        CONSUMER_LAG.labels(str(msg.partition)).set(max(0, hw - msg.offset - 1))
