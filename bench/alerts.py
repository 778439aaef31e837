"""A storm through the warning book: 10,000 findings over 2,000 stations, grouping on and off.

    .venv/bin/python bench/alerts.py [--stations 2000] [--findings 10000] [--towns 32]
                                     [--rate 5000] [--wait 1s] [--interval 5s]

What runs: the evaluator-side lifecycle (findings → events) and the warning book
(grouping, inhibition, silences, routing to a roster of A, B and leader, message
rendering) with in-memory tables, and the real apprise adapter (``Deliverer``)
handing every message to apprise, where a custom ``bench://`` schema records
it and returns success. No Kafka and no Faust (bench/throughput.py measures
those); no network channel (its latency is the channel's, not ours).

Each station gets five findings 5 minutes apart in event time (blue, yellow,
orange, red, back to orange); they are fed at ``--rate`` findings/s of wall
time, with a tick every 100 ms, as the worker does. Printed per mode:

* ``latency_ms_p50`` / ``latency_ms_p99``: from a finding entering the lifecycle
  to the last notification it caused being handed to apprise (a red raise
  pages A, B and the leader: the last of the three counts). With grouping on
  this includes the group wait and interval, by design.
* ``notifications``: messages handed to apprise; ``notified_items``: warning
  lines they carried; ``findings_per_s_book``: lifecycle + book CPU rate.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import apprise
from apprise.decorators import notify as apprise_notify

from yujing import clock
from yujing.alerts.book import Book, Store
from yujing.alerts.lifecycle import Lifecycle, RuleMeta
from yujing.alerts.notify import Deliverer
from yujing.alerts.roster import parse_roster
from yujing.alerts.settings import AlertsSettings
from yujing.domain import Finding, Grade

HANDED: list[int] = []


@apprise_notify(on="bench", name="bench sink")
def _sink(body: str, title: str, notify_type: str, *args, **kwargs) -> bool:
    return True


class TimedDeliverer(Deliverer):
    """Records the moment each message is handed to apprise."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.handoffs: list[tuple[list[int], int]] = []

    async def _send(self, d, c):
        self.handoffs.append((d.notice_at, clock.now_ms()))
        return await super()._send(d, c)


ROSTER = """
people:
  - {id: a, name: A, contacts: ["bench://a"]}
  - {id: b, name: B, contacts: ["bench://b"]}
  - {id: l, name: L, contacts: ["bench://l"]}
teams:
  - {id: flood, name: 三防, domain: flood,
     rotation: {start: 2025-01-01, slots: [{A: a, B: b, leader: l}]}}
  - {id: room, name: 值班室, domain: duty_room,
     rotation: {start: 2025-01-01, slots: [{A: a, B: b, leader: l}]}}
"""


async def run(args: argparse.Namespace, grouping: bool) -> dict:
    s = AlertsSettings(grouping={"enabled": grouping, "wait": args.wait,
                                 "interval": args.interval, "max_per_message": 50},
                       delivery={"concurrency": 64, "retries": 1})
    partitions = 4
    book = Book(s, Store(), parse_roster(ROSTER), partitions=partitions,
                link_for=lambda p, i, now: "http://h/v1/ack/x")
    deliverer = TimedDeliverer(s.delivery, clock.now_ms)
    lc = Lifecycle()
    meta = RuleMeta("暴雨", "rainstorm")
    towns = [f"T{t:02d}镇" for t in range(args.towns)]
    town_of = {f"S{i:04d}": towns[i % args.towns] for i in range(args.stations)}
    part = {t: i % partitions for i, t in enumerate(towns)}
    steps = [Grade.BLUE, Grade.YELLOW, Grade.ORANGE, Grade.RED, Grade.ORANGE]
    per_station = max(1, args.findings // args.stations)
    findings = [Finding("rain", st, 1_748_764_800_000 + k * 300_000, steps[k % 5], False,
                        10.0 * (k + 1), "3h", f"step {k}")
                for k in range(per_station) for st in town_of]
    tasks: set[asyncio.Task] = set()

    def dispatch(fx) -> None:
        for d in fx.dispatch:
            t = asyncio.create_task(deliverer.deliver(d))
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    book_s = 0.0
    interval = 1 / args.rate
    started = time.monotonic()
    next_tick = started
    for i, f in enumerate(findings):
        due = started + i * interval
        if due > time.monotonic():
            await asyncio.sleep(due - time.monotonic())
        t0 = time.perf_counter()
        now = clock.now_ms()
        ev = lc.apply(f, meta, now)
        if ev is not None:
            town = town_of[f.station]
            ev = msgspec.structs.replace(ev, town=town, station_name=f.station)
            dispatch(book.on_event(part[town], ev, now))
        book_s += time.perf_counter() - t0
        if time.monotonic() >= next_tick:
            next_tick += 0.1
            for p in range(partitions):
                t0 = time.perf_counter()
                fx = book.on_tick(p, clock.now_ms())
                book_s += time.perf_counter() - t0
                dispatch(fx)
        if i % 200 == 0:
            await asyncio.sleep(0)
    # drain: ticks until every outbox is flushed and every delivery handed off
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for p in range(partitions):
            dispatch(book.on_tick(p, clock.now_ms()))
        await asyncio.sleep(0.1)
        if not tasks and not any(g.outbox for g in book.store.groups.values()):
            break
    await asyncio.gather(*tasks)
    last: dict[int, int] = {}
    items = 0
    for notice_at, at in deliverer.handoffs:
        items += len(notice_at)
        for t in notice_at:
            last[t] = max(last.get(t, 0), at)
    lat = sorted(last[t] - t for t in last)
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else lat * 99
    return {"findings": len(findings), "notifications": len(deliverer.handoffs),
            "notified_items": items, "latency_ms_p50": q[49], "latency_ms_p99": q[98],
            "findings_per_s_book": len(findings) / book_s if book_s else 0.0,
            "failed": deliverer.counters.total("failed")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", type=int, default=2000)
    ap.add_argument("--findings", type=int, default=10000)
    ap.add_argument("--towns", type=int, default=32)
    ap.add_argument("--rate", type=float, default=5000, help="findings fed per second")
    ap.add_argument("--wait", default="1s", help="group wait (grouping on)")
    ap.add_argument("--interval", default="5s", help="group interval (grouping on)")
    args = ap.parse_args()
    print(f"apprise {apprise.__version__}; {args.findings} findings over {args.stations} "
          f"stations in {args.towns} towns, fed at {args.rate:g}/s; roster A, B, leader")
    for grouping in (True, False):
        r = asyncio.run(run(args, grouping))
        mode = (f"grouping on (wait {args.wait}, interval {args.interval})" if grouping
                else "grouping off")
        print(f"-- {mode}")
        for k, v in r.items():
            print(f"{k}: {v:.1f}" if isinstance(v, float) else f"{k}: {v}")


if __name__ == "__main__":
    main()
