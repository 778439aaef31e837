"""Latency at a given load: publish → warning event, and → notification handed to apprise.

    .venv/bin/python bench/latency_rate.py [--rates 50,5000] [--seconds 20] [--probes-per-s 10]
        [--modes fixed,adaptive] [--broker kafka|tansu]

For each gateway batching mode (``gateway.batching``: ``fixed``, the old 50 ms linger, is the
baseline measured in the same invocation; ``adaptive`` sends at once when a partition is idle)
one whole stack is started with ``Supervisor`` on an embedded broker (Apache Kafka from
``make kafka`` when installed, else Tansu) and, per rate, after ``--warmup`` seconds of the
background load alone (its stations' first readings are new series, each partition's first
envelope is checkpointed at once: a start-up transient, not the steady state measured):

* background load: quiet ``rain_mm`` readings (0 mm, one per station and request slot) posted
  over HTTP at ``rate`` readings per second, paced on the clock (requests of rate/200
  readings, at least one), so the gateway, broker and worker all carry the load;
* probes: ``--probes-per-s`` times a second one lone reading of 100 mm at a fresh station
  (the rain rule raises red) is posted on its own request. Each probe's time runs from just
  before its POST until (a) its red warning event is seen on ``yujing.warnings`` by a plain
  aiokafka consumer, and (b) its notification arrives at a real HTTP server of this process
  that apprise posts to (``json://``: a notification handed to apprise, plus one local POST).

The probes, the watcher and the webhook run on an event loop of their own (``Meter``), apart
from the load's requests. Each probe's way is split into hops at wall-clock marks
(``HOPS``): POST → in Kafka (the broker's append time) → the worker's pipeline took it
(the event's ``emitted_ms``) → its event in Kafka → the watcher saw it.

Prints, per mode and rate, ``warning_p50_ms``/``warning_p99_ms``, ``notify_p50_ms``/
``notify_p99_ms``, ``hop_<name>_p50_ms``/``p99``, probes answered, the readings per
envelope the gateway built (its /healthz counters), the load actually sent, and the ratio
fixed / adaptive of each percentile. The group wait is the book's setting (alerts.grouping);
a red warning's notice skips it. Everything listens on 127.0.0.1; every wait has a deadline;
the stack is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.latency_meter import HOPS, Meter, Probes, pct, post, stamp_on_append, until  # noqa: E402
from bench.proc_stats import cpu_seconds  # noqa: E402
from yujing.config import load_config  # noqa: E402
from yujing.connectors.embedded import free_port  # noqa: E402
from yujing.connectors.kafka_broker import KafkaNotInstalled, check_installed, kafka_home  # noqa: E402
from yujing.supervisor import Supervisor  # noqa: E402

Cpu = Callable[[], dict[str, float]]  # CPU seconds so far of each child process, by name
COMPARED = ("in_kafka_p50_ms", "in_kafka_p99_ms", "warning_p50_ms", "warning_p99_ms",
            "notify_p50_ms", "notify_p99_ms", "readings_per_envelope")


def kafka_installed() -> bool:
    try:
        check_installed(kafka_home())
    except KafkaNotInstalled:
        return False
    return True


def log(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)




def write_config(tmp: Path, mode: str, broker: str, hook_port: int, partitions: int,
                 metrics_port: int, linger_ms: int = 20) -> Path:
    cfg = {"kafka": {"embedded": broker, "partitions": partitions},
           "http": {"host": "127.0.0.1", "port": free_port()},
           "gateway": {"batching": mode, "linger_ms": linger_ms},
           "notify": {"default": [f"json://127.0.0.1:{hook_port}/notify"]},
           "worker": {"rules_dir": str(ROOT / "rules"), "data_dir": str(tmp / "w"),
                      "metrics_port": metrics_port},
           "log_level": "info"}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path




async def worker_eval(s: aiohttp.ClientSession, url: str) -> list[float]:
    """The worker's evaluation time per engine pass and gateway-receive → evaluated time (sums
    and counts of its two Prometheus histograms), to split the latency between worker and hops;
    then its envelopes and engine passes (envelopes waiting together are one pass)."""
    async with s.get(url) as r:
        text = await r.text()
    got = dict.fromkeys(("yujing_worker_eval_seconds_sum", "yujing_worker_eval_seconds_count",
                         "yujing_worker_ingest_to_eval_seconds_sum",
                         "yujing_worker_ingest_to_eval_seconds_count",
                         "yujing_worker_envelopes_total", "yujing_worker_passes_total"), 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in got:
                got[sample.name] += sample.value
    return list(got.values())


async def health(s: aiohttp.ClientSession, http: str) -> dict:
    async with s.get(f"{http}/healthz") as r:
        return await r.json()


async def run_rate(s: aiohttp.ClientSession, meter: Meter, http: str, metrics_url: str,
                   tag: str, rate: int, seconds: float, probes_per_s: float, probes: Probes,
                   cpu: Cpu, warmup_s: float = 5.0) -> dict[str, float]:
    """Load at ``rate`` for ``warmup_s`` (not measured: the background stations' first
    readings, each a new series, the partitions' first checkpoints), then for ``seconds``
    with probes interleaved; figures of those ``seconds``."""
    url = f"{http}/v1/readings"
    batch = max(1, rate // 200)
    dt = batch / rate
    failures = [0]
    tasks: set[asyncio.Task] = set()
    names: list[str] = []

    async def pace(span_s: float) -> int:
        """Post the background load for ``span_s``, paced on the clock; readings sent."""
        start = time.perf_counter()
        k = 0
        while (now := time.perf_counter()) < start + span_s:
            due = start + k * dt
            if now >= due:
                ms = int(time.time() * 1000)
                items = [{"station": f"BG{(k * batch + i) % 1000:04d}", "metric": "rain_mm",
                          "ts": ms, "value": 0.0} for i in range(batch)]
                t = asyncio.create_task(post(s, url, items, failures))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                k += 1
                continue
            await asyncio.sleep(due - now)
        return k * batch

    await pace(warmup_s)
    before = await health(s, http)
    cpu0, own0 = cpu(), time.process_time()
    eval0 = await worker_eval(s, metrics_url)
    t0 = time.perf_counter()
    probing = meter.series(url, tag, seconds, probes_per_s, names, failures)
    sent = await pace(seconds)
    elapsed = time.perf_counter() - t0
    cpu1, own1 = cpu(), time.process_time()
    await asyncio.wait_for(probing, 30)
    if tasks:
        await asyncio.wait(list(tasks), timeout=30)
    await until(lambda: all(n in probes.warned and n in probes.notified for n in names), 15)
    after = await health(s, http)
    eval1 = await worker_eval(s, metrics_url)
    ingest_eval = [(eval1[k] - eval0[k]) for k in range(6)]
    stored = probes.lat_ms(probes.stored, names)
    warn, note = probes.lat_ms(probes.warned, names), probes.lat_ms(probes.notified, names)
    envs = after["envelopes"] - before["envelopes"]
    return {"load_readings_per_s": sent / elapsed, "probes": len(names),
            "warning_answered": len(warn), "notify_answered": len(note),
            "in_kafka_p50_ms": pct(stored, 0.5), "in_kafka_p99_ms": pct(stored, 0.99),
            "warning_p50_ms": pct(warn, 0.5), "warning_p99_ms": pct(warn, 0.99),
            "notify_p50_ms": pct(note, 0.5), "notify_p99_ms": pct(note, 0.99),
            **{f"hop_{hop}_{q}_ms": pct(probes.hop_ms(a, b, names), v)
               for hop, a, b in HOPS for q, v in (("p50", 0.5), ("p99", 0.99))},
            "append_time": probes.append_time,
            "readings_per_envelope": (after["accepted"] - before["accepted"]) / max(envs, 1),
            "failed_requests": failures[0],
            "worker_eval_ms_per_pass": 1000 * ingest_eval[0] / max(ingest_eval[1], 1),
            "worker_envelopes_per_pass": ingest_eval[4] / max(ingest_eval[5], 1),
            "worker_ingest_to_eval_mean_ms": 1000 * ingest_eval[2] / max(ingest_eval[3], 1),
            **{f"cpu_cores_{name}": (cpu1[name] - cpu0[name]) / elapsed for name in cpu0},
            "cpu_cores_bench_client": (own1 - own0) / elapsed}


async def session(http: str, metrics_url: str, bootstrap: str, topics: tuple[str, str],
                  partitions: int, hook_port: int, mode: str, rates: list[int],
                  args: argparse.Namespace, cpu: Cpu) -> dict[int, dict]:
    probes = Probes()
    meter = Meter(probes)
    out: dict[int, dict] = {}
    try:
        await stamp_on_append(bootstrap, topics)
        await meter.start(bootstrap, topics, partitions, hook_port)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as s:
            # warm up: the worker has joined and the book delivers once a first probe is notified
            warm = f"LP{mode[0]}0-{int(time.time())}"
            fails = [0]
            ready = False
            for _ in range(int(args.ready_timeout / 5)):
                await meter.one(f"{http}/v1/readings", warm, fails)
                if await until(lambda: warm in probes.notified, 5):
                    ready = True
                    break
            if not ready:
                raise RuntimeError(f"no warning notified within {args.ready_timeout:.0f} s")
            for i, rate in enumerate(rates, 1):
                log(f"{mode}: {rate} readings/s for {args.seconds:.0f} s")
                out[rate] = await run_rate(s, meter, http, metrics_url, f"{mode[0]}{i}", rate,
                                           args.seconds, args.probes_per_s, probes, cpu,
                                           args.warmup)
    finally:
        await meter.stop()
    if args.dump is not None:   # every probe's wall-clock marks, to trace a slow one
        with args.dump.open("a", encoding="utf-8") as f:
            for station, marks in probes.marks.items():
                f.write(json.dumps({"mode": mode, "probe": station, **marks}) + "\n")
    return out


def run_mode(mode: str, broker: str, rates: list[int], args: argparse.Namespace) -> dict[int, dict]:
    tmp = Path(tempfile.mkdtemp(prefix=f"yujing-latrate-{mode}-"))
    hook_port = free_port()
    metrics_port = free_port()
    path = write_config(tmp, mode, broker, hook_port, args.partitions, metrics_port,
                        args.linger_ms)
    cfg = load_config(path)
    sup = Supervisor(cfg, path, log_dir=tmp / "logs")
    ends = sup.start(quiet_children=True)
    try:
        topics = (cfg.kafka.topics.readings, cfg.kafka.topics.warnings)
        return asyncio.run(session(ends.http, f"http://127.0.0.1:{metrics_port}/metrics",
                                   ends.kafka, topics,
                                   cfg.kafka.partitions, hook_port, mode, rates, args,
                                   lambda: {c.name: cpu_seconds(c.proc.pid) for c in sup.children}))
    finally:
        sup.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="50,5000", help="readings per second, comma-separated")
    ap.add_argument("--seconds", type=float, default=20, help="load time per rate")
    ap.add_argument("--probes-per-s", type=float, default=10)
    ap.add_argument("--modes", default="fixed,adaptive", help="gateway.batching, in this order")
    ap.add_argument("--broker", choices=("kafka", "tansu"), default=None,
                    help="default: kafka when `make kafka` installed it, else tansu")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--linger-ms", type=int, default=20, help="gateway.linger_ms")
    ap.add_argument("--ready-timeout", type=float, default=120)
    ap.add_argument("--warmup", type=float, default=5.0,
                    help="seconds of load at each rate before the probes and figures start")
    ap.add_argument("--dump", type=Path, default=None, metavar="FILE",
                    help="append each probe's wall-clock marks (ms) to FILE as JSON lines")
    args = ap.parse_args()
    broker = args.broker or ("kafka" if kafka_installed() else "tansu")
    rates = [int(r) for r in args.rates.split(",")]
    modes = args.modes.split(",")
    results = {mode: run_mode(mode, broker, rates, args) for mode in modes}
    print(f"broker: embedded {broker}; partitions: {args.partitions}; {args.seconds:.0f} s per "
          f"rate; {args.probes_per_s:g} probes/s")
    stamps = all(s.pop("append_time") for by_rate in results.values() for s in by_rate.values())
    print("hop marks: Kafka append time" if stamps else
          "hop marks: some records had the producer's time, not the append time: in_kafka is "
          "when the producer took the record")
    for mode, by_rate in results.items():
        for rate, f in by_rate.items():
            for name, v in f.items():
                print(f"[{mode} {rate}/s] {name}: {v:.1f}" if isinstance(v, float)
                      else f"[{mode} {rate}/s] {name}: {v}")
    if "fixed" in results and "adaptive" in results:
        for rate in rates:
            for name in COMPARED:
                a, b = results["fixed"][rate][name], results["adaptive"][rate][name]
                print(f"[fixed/adaptive {rate}/s] {name}: {a:.1f} / {b:.1f} = "
                      f"{a / b if b else float('nan'):.2f}")


if __name__ == "__main__":
    main()
