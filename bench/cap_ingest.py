"""Official signals in: the cost of one CAP 1.2 message, from bytes to warning events.

    .venv/bin/python bench/cap_ingest.py [--messages 300] [--stations 2000]

What runs: the defused parse and the OASIS schema validation (yujing.alerts.capin), then
the signal book (yujing.alerts.capmap: area to stations over a registry of ``--stations``
random stations, hazard, grade, events), for an alert whose polygon covers about a
quarter of them. The baseline, measured in the same run, is the standard library's
ElementTree parse of the same bytes (no defusing, no schema, no mapping). Printed:
median µs per message for each step and the ratio to the baseline. Medians: the
machine's two cores are shared.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.capxml import cap_xml  # noqa: E402
from yujing.alerts.capin import parse_cap, schema  # noqa: E402
from yujing.alerts.capmap import SignalBook  # noqa: E402
from yujing.stations import Registry, Station  # noqa: E402


def registry(n: int) -> Registry:
    rnd = random.Random(7)
    return Registry([Station(id=f"S{i:05d}", name=f"站{i}", kind="rain_gauge", town=f"镇{i % 32}",
                             lat=22.6 + rnd.random() * 0.6, lon=113.5 + rnd.random() * 0.7)
                     for i in range(n)])


def timed(fn, n: int) -> float:
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t) / 1000)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--stations", type=int, default=2000)
    a = ap.parse_args()
    schema()  # built once per process; not part of a message's cost
    raw = cap_xml("B1", sent="2026-06-01T08:00:00+08:00", expires="2099-01-01T00:00:00+08:00",
                  polygon="22.6,113.5 22.9,113.5 22.9,113.85 22.6,113.85 22.6,113.5")
    book = SignalBook(registry(a.stations))
    alert = parse_cap(raw)
    events = len(book.apply(alert, 0).events)
    base = timed(lambda: ElementTree.fromstring(raw), a.messages)
    parse = timed(lambda: parse_cap(raw), a.messages)
    mapped = timed(lambda: SignalBook(book.registry).apply(alert, 0), a.messages)
    print(f"stations={a.stations} events_per_message={events} messages={a.messages}")
    print(f"baseline_etree_parse_us_p50={base:.0f}")
    print(f"defused_validated_parse_us_p50={parse:.0f} ratio={parse / base:.1f}")
    print(f"map_to_events_us_p50={mapped:.0f} (index build included) ratio={mapped / base:.1f}")


if __name__ == "__main__":
    main()
