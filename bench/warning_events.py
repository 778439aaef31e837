"""The warning book's cost per warning event in the real worker: a storm of red raises.

    .venv/bin/python bench/warning_events.py [--raises 3000] [--runs 3] [--broker kafka|tansu]
    PYTHONPATH=OTHER .venv/bin/python bench/warning_events.py ...   # the stack runs OTHER's code

One whole stack (``Supervisor``, embedded Apache Kafka when ``make kafka`` installed it, else
Tansu; apprise posts to a webhook of this process). After a warm-up probe has been notified,
``--raises`` fresh stations each post one reading of 100 mm (the rain rule raises red) in
requests of 100, as fast as the gateway takes them. Each raise is one warning event for the
book's agent: lifecycle, grouping, routing, an incident snapshot on ``yujing.incidents`` and
its changelog writes. Timed from the first POST until every raise's red event is on
``yujing.warnings`` (``events_s``) and until every raise's incident snapshot is on
``yujing.incidents`` (``book_s``: the book has taken them all); the worker's CPU seconds over
the same span, divided by the raises, is ``worker_cpu_us_per_raise`` (the rule engine's share
for one reading each is small next to the book's).

The stack's children run ``python -m yujing``, so ``PYTHONPATH`` chooses the code under test
(the bench itself always runs this tree's): alternate runs of two trees for a before/after.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.latency_meter import Meter, Probes, post, until  # noqa: E402
from bench.latency_rate import kafka_installed, log, write_config  # noqa: E402
from bench.proc_stats import cpu_seconds  # noqa: E402
from yujing.config import load_config  # noqa: E402
from yujing.connectors.embedded import free_port  # noqa: E402
from yujing.domain import WarningEvent  # noqa: E402
from yujing.supervisor import Supervisor  # noqa: E402

_incident = msgspec.json.Decoder(dict)
_event = msgspec.json.Decoder(WarningEvent)


class Seen:
    """Stations whose red event, and whose incident snapshot, reached Kafka (perf_counter)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.events: dict[str, float] = {}
        self.incidents: dict[str, float] = {}

    async def watch(self, bootstrap: str, warnings: str, incidents: str, partitions: int) -> None:
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=10)
        await asyncio.wait_for(c.start(), 30)
        c.assign([TopicPartition(t, p) for t in (warnings, incidents) for p in range(partitions)])
        await c.seek_to_end()
        try:
            while True:
                for tp, recs in (await c.getmany(timeout_ms=50)).items():
                    got = time.perf_counter()
                    for rec in recs:
                        if rec.value is None or self.prefix.encode() not in rec.value:
                            continue
                        if tp.topic == warnings:
                            ev = _event.decode(rec.value)
                            if ev.grade >= 4:
                                self.events.setdefault(ev.station, got)
                        else:
                            st = _incident.decode(rec.value).get("station", "")
                            if st.startswith(self.prefix):
                                self.incidents.setdefault(st, got)
        finally:
            await c.stop()


async def storm(http: str, bootstrap: str, cfg, hook_port: int, raises: int, run: int,
                worker_cpu, timeout_s: float, profile=None) -> dict:
    """Warm up, then the storm; the figures of one run."""
    probes = Probes()
    meter = Meter(probes)
    k = cfg.kafka
    await meter.start(bootstrap, (k.topics.readings, k.topics.warnings), k.partitions, hook_port)
    seen = Seen(f"WE{run}x")
    watcher = asyncio.create_task(seen.watch(bootstrap, k.topics.warnings, k.topics.incidents,
                                             k.partitions))
    try:
        warm, fails = f"LPw0-{int(time.time())}", [0]
        for _ in range(24):
            await meter.one(f"{http}/v1/readings", warm, fails)
            if await until(lambda: warm in probes.notified, 5):
                break
        else:
            raise RuntimeError("no warning notified within 120 s")
        names = [f"{seen.prefix}{i:05d}" for i in range(raises)]
        spy = profile() if profile is not None else None
        async with aiohttp.ClientSession() as s:
            cpu0, t0 = worker_cpu(), time.perf_counter()
            now_ms = int(time.time() * 1000)
            await asyncio.gather(*(post(s, f"{http}/v1/readings",
                                        [{"station": n, "metric": "rain_mm", "ts": now_ms,
                                          "value": 100.0} for n in names[i:i + 100]], fails)
                                   for i in range(0, raises, 100)))
            done = await until(lambda: len(seen.incidents) >= raises
                               and len(seen.events) >= raises, timeout_s)
            cpu1 = worker_cpu()
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await meter.stop()
    if not done:
        log(f"run {run}: only {len(seen.events)} events, {len(seen.incidents)} incidents "
            f"of {raises} within {timeout_s:.0f} s")
    end = max([*seen.incidents.values(), *seen.events.values(), t0])
    return {"raises": raises, "failed_requests": fails[0], "complete": done,
            "events_s": max(seen.events.values(), default=t0) - t0,
            "book_s": max(seen.incidents.values(), default=t0) - t0,
            "worker_cpu_s": cpu1 - cpu0,
            "worker_cpu_us_per_raise": 1e6 * (cpu1 - cpu0) / raises,
            "span_s": end - t0}


def one_run(broker: str, raises: int, run: int, timeout_s: float, spy: Path | None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="yujing-warning-events-"))
    hook_port = free_port()
    path = write_config(tmp, "adaptive", broker, hook_port, 4, free_port())
    cfg = load_config(path)
    sup = Supervisor(cfg, path, log_dir=tmp / "logs")
    ends = sup.start(quiet_children=True)
    try:
        worker = next(c for c in sup.children if c.name == "worker")

        def profile() -> subprocess.Popen:
            """py-spy (installed beside the bench, not a dependency) on the worker, collapsed
            stacks, for the storm's span."""
            assert spy is not None
            return subprocess.Popen(["py-spy", "record", "--pid", str(worker.proc.pid),
                                     "--format", "raw", "--rate", "200", "--nonblocking",
                                     "--output", str(spy.with_suffix(f".{run}.txt"))],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return asyncio.run(storm(ends.http, ends.kafka, cfg, hook_port, raises, run,
                                 lambda: cpu_seconds(worker.proc.pid), timeout_s,
                                 profile if spy is not None else None))
    finally:
        sup.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raises", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--broker", choices=("kafka", "tansu"), default=None,
                    help="default: kafka when `make kafka` installed it, else tansu")
    ap.add_argument("--timeout", type=float, default=300, help="seconds for a storm to finish")
    ap.add_argument("--py-spy", type=Path, default=None, metavar="FILE",
                    help="profile the worker during each storm (py-spy on PATH): FILE.<run>.txt")
    args = ap.parse_args()
    broker = args.broker or ("kafka" if kafka_installed() else "tansu")
    results = [one_run(broker, args.raises, i, args.timeout, args.py_spy)
               for i in range(args.runs)]
    print(f"broker: embedded {broker}; {args.raises} raises; {args.runs} runs")
    for r in results:
        print("run: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                  for k, v in r.items()))
    for name in ("events_s", "book_s", "worker_cpu_s", "worker_cpu_us_per_raise"):
        print(f"{name}_median: {statistics.median(r[name] for r in results):.3f}")


if __name__ == "__main__":
    main()
