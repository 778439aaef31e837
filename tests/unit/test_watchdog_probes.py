"""What the watchdog reads from a worker's /metrics and a gateway's /healthz (parsing only;
the probes themselves run against real processes in tests/integration/test_watchdog.py)."""

from __future__ import annotations

from yujing import metrics
from yujing.alerts.records import Attempt, DeliveryResult
from yujing.watchdog.probes import backlog_of, channel_totals, gateway_figures, parse_metrics


def totals() -> dict[str, tuple[float, float]]:
    return channel_totals(parse_metrics(metrics.exposition()[0].decode()))


def test_delivery_attempts_are_counted_per_channel_scheme_and_read_back():
    before = totals()
    failed_then_sent = DeliveryResult("d1", True, "json://127.0.0.1:9", [
        Attempt("dingtalk://abcd…", False, "500", 1), Attempt("dingtalk://abcd…", False, "500", 2)],
        3)
    nothing = DeliveryResult("d2", False, "", [Attempt("", False, "no contacts", 4)], 4)
    metrics.observe_delivery(failed_then_sent)
    metrics.observe_delivery(nothing)
    after = totals()

    def delta(name: str) -> tuple[float, float]:
        a, b = after.get(name, (0, 0)), before.get(name, (0, 0))
        return a[0] - b[0], a[1] - b[1]
    assert delta("dingtalk") == (0, 2)
    assert delta("json") == (1, 0)
    assert delta("none") == (0, 1)


def test_sink_backlog_and_missing_families():
    text = "# TYPE yujing_sink_backlog_points gauge\nyujing_sink_backlog_points 1234.0\n"
    assert backlog_of(parse_metrics(text)) == 1234
    assert backlog_of(parse_metrics("")) is None
    assert channel_totals(parse_metrics("")) == {}


def test_gateway_figures_from_healthz():
    g = gateway_figures({"mqtt_enabled": True, "mqtt_connected": False, "envelopes": 7,
                         "failed_envelopes": 2, "watchdog": None})
    assert (g.mqtt_enabled, g.mqtt_connected, g.envelopes, g.failed_envelopes) == (True, False, 7, 2)
    assert not gateway_figures({}).mqtt_enabled      # an older gateway: no MQTT claim made
