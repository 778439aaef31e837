"""The health page's figures, from the Prometheus metrics in ``metrics.py``.

- Ingest rates: this gateway's own counters, sampled every few seconds.
- Consumer lag, worker evaluation rate, notifications: the worker's
  ``/metrics`` (``worker.metrics_port``), read over HTTP.
- Sink backlog: the InfluxDB sink's ``/metrics`` (``influx.metrics_port``).
- ``console.scrape`` adds more URLs (other workers and sinks of a cluster).

Nothing new is measured here; a figure no process exports is shown as "not
configured", never as zero.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from yujing import clock
from yujing import metrics as m


def counter_by(counter: Any, label: str) -> dict[str, float]:
    """Current totals of a labelled counter, summed per value of one label."""
    out: dict[str, float] = {}
    for fam in counter.collect():
        for s in fam.samples:
            if s.name.endswith("_total"):
                key = s.labels.get(label, "")
                out[key] = out.get(key, 0.0) + s.value
    return out


def scrape_urls(cfg: Any) -> list[tuple[str, str]]:
    """(what, url) of every /metrics the health page reads."""
    def host(h: str) -> str:
        return "127.0.0.1" if h in ("0.0.0.0", "::", "") else h
    out = []
    if cfg.worker.metrics_port:
        out.append(("worker", f"http://{host(cfg.worker.metrics_host)}:"
                              f"{cfg.worker.metrics_port}/metrics"))
    if cfg.influx is not None and cfg.influx.metrics_port:
        out.append(("sink", f"http://{host(cfg.influx.metrics_host)}:"
                            f"{cfg.influx.metrics_port}/metrics"))
    out += [("scrape", u) for u in cfg.console.scrape]
    return out


def parse_exposition(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def _sum(samples: dict, name: str) -> float | None:
    vals = samples.get(name)
    return None if vals is None else sum(v for _, v in vals)


class Health:
    def __init__(self, urls: list[tuple[str, str]], keep: int = 150) -> None:
        self.urls = urls
        self.samples: deque[tuple[float, dict[str, float]]] = deque(maxlen=keep)
        self.prev: dict[str, tuple[float, float]] = {}   # url -> (t, worker readings total)

    def sample(self, now: float | None = None) -> None:
        """Record the ingest counters at ``now`` (epoch seconds; default the clock's)."""
        self.samples.append((clock.now_ms() / 1000 if now is None else now,
                             counter_by(m.READINGS_ACCEPTED, "source")))

    def rates(self, span_s: float = 10.0) -> dict[str, float]:
        """Readings/s per source over the last ``span_s`` seconds."""
        if len(self.samples) < 2:
            return {}
        t1, last = self.samples[-1]
        t0, first = next(((t, v) for t, v in self.samples if t >= t1 - span_s - 0.5),
                         self.samples[0])
        dt = max(t1 - t0, 1e-6)
        return {k: round((v - first.get(k, 0.0)) / dt, 2) for k, v in last.items()}

    def series(self) -> list[tuple[float, float]]:
        """(time, total readings/s) between consecutive samples, for the sparkline."""
        out = []
        items = list(self.samples)
        for (ta, a), (tb, b) in zip(items, items[1:]):
            out.append((tb, round((sum(b.values()) - sum(a.values())) / max(tb - ta, 1e-6), 2)))
        return out

    async def scrape(self, session: Any) -> list[dict[str, Any]]:
        async def one(what: str, url: str) -> dict[str, Any]:
            try:
                async with session.get(url, timeout=2) as r:
                    text = await r.text()
            except (TimeoutError, OSError, Exception) as exc:
                return {"what": what, "url": url, "ok": False, "error": str(exc) or
                        type(exc).__name__}
            s = parse_exposition(text)
            now = clock.now_ms() / 1000
            d: dict[str, Any] = {"what": what, "url": url, "ok": True}
            lag = s.get("yujing_worker_consumer_lag")
            if lag is not None:
                d["lag"] = sorted(((lb.get("partition", ""), v) for lb, v in lag),
                                  key=lambda x: x[0])
            total = _sum(s, "yujing_worker_readings_total")
            if total is not None:
                prev = self.prev.get(url)
                d["worker_readings_total"] = total
                if prev is not None and now > prev[0]:
                    d["worker_rate"] = round((total - prev[1]) / (now - prev[0]), 2)
                self.prev[url] = (now, total)
            notes = s.get("yujing_worker_notifications_total")
            if notes is not None:
                d["notifications"] = {lb.get("result", ""): v for lb, v in notes}
            # every process exports every family (one metrics module); a sink is the one
            # that says so or has written points
            written = _sum(s, "yujing_sink_points_written_total")
            if what == "sink" or written is not None:
                d["backlog"] = _sum(s, "yujing_sink_backlog_points")
                d["sink_written"] = written or 0
                d["sink_dropped"] = _sum(s, "yujing_sink_points_dropped_total") or 0
            return d
        return list(await asyncio.gather(*(one(w, u) for w, u in self.urls)))
