"""End-to-end throughput of the whole stack on embedded brokers (Apache Kafka or Tansu, + amqtt).

    .venv/bin/python bench/throughput.py --readings 100000 --runs 3 [--via http|mqtt]
        [--broker kafka|tansu|both]

``--broker both`` (the default) runs the same benchmark on Apache Kafka (``kafka.embedded:
kafka``, the jars of ``make kafka``) and then on Tansu, and prints the ratio kafka / tansu of
each median: the baseline is measured in the same invocation. Per broker, one stack
(``Supervisor.start``) serves every run. Per run, N ``rain_mm``
readings of fresh stations (``r<run>-S0000`` ...) go through the gateway, and
three figures are measured:

* ``ingest_readings_per_s``: first publish until a watcher (plain aiokafka
  consumer on ``yujing.readings``, partitions assigned by hand) has seen all N
  readings in Kafka.
* ``end_to_end_readings_per_s``: first publish until the worker has evaluated
  all N. After the last reading is acknowledged, one marker reading per
  partition (100 mm at a fresh station, so the rain rule raises red) is
  published; a partition is done when the worker's warning for its marker
  appears on ``yujing.warnings`` (Kafka keeps partition order, and the worker
  processes a partition in order). The worker's own 5 s heartbeat count in
  ``worker.log`` is then checked to cover every reading sent.
* ``engine_readings_per_cpu_s``: after the run, the run's envelopes are read back from
  ``yujing.readings`` per partition and put through the worker's own rule path in this
  process (fresh ``Pipeline`` per partition, every pack, ``decode`` + ``Pipeline.handle``
  per envelope; bench/worker_cost.py), in CPU seconds. ``decode_readings_per_cpu_s`` is the
  decode share of that replay.
* ``worker_readings_per_cpu_s``: readings over the worker's CPU seconds (``/proc``) during
  the run (first publish until the worker is back near idle), and
  ``ratio_worker_to_engine`` (issue 17 target: >= 0.5). ``--introduce`` sends each station's
  first readings before the timed part (see bench/README.md, worker cost).

Figures are printed per run and as the median over ``--runs``, plus the CPU seconds each
child process used in that window (which process is the bottleneck).
``--profile DIR`` records the worker with py-spy during the runs and cProfiles one engine
replay, and prints the top frames of both (files kept in DIR).
Everything listens on 127.0.0.1; every wait has a timeout; the stack is always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proc_stats import cpu_seconds, minor_faults, wakeups  # noqa: E402
from throughput_report import RunResult, median_result, report, report_ratio  # noqa: E402
from worker_cost import (  # noqa: E402  (bench/ is not a package)
    Profiler,
    Watcher,
    engine_profile,
    engine_replay,
    print_profile,
    publish_http,
    publish_mqtt_blocking,
    read_back,
    worker_counters,
)

from yujing.config import load_config  # noqa: E402
from yujing.connectors.embedded import free_port  # noqa: E402
from yujing.envelope import partition_for  # noqa: E402
from yujing.supervisor import Supervisor  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"Worker\]: Ready|worker: \d+ readings")
HEARTBEAT = re.compile(r"worker: (\d+) readings, (\d+) late")
MINUTE_MS = 60_000


def log(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- stack & logs

def write_config(tmp: Path, partitions: int, broker: str = "tansu") -> Path:
    path = tmp / "config.yaml"
    path.write_text(
        "kafka:\n"
        f"  embedded: {broker}\n"
        f"  partitions: {partitions}\n"
        "http:\n"
        "  host: 127.0.0.1\n"
        f"  port: {free_port()}\n"
        "  rate_limit: null\n"   # capacity, not the admission limit: 1 M/minute stops 600 k runs
        "worker:\n"
        f"  metrics_port: {free_port()}\n"   # its pass and engine-CPU counters
        f"  rules_dir: {ROOT / 'rules'}\n"
        f"  data_dir: {tmp / 'worker'}\n"
        "notify:\n"
        "  default: []\n"
        "log_level: info\n", encoding="utf-8")
    return path


def wait_log(path: Path, pattern: re.Pattern[str], timeout_s: float, sup: Supervisor) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sup.failed() is not None:
            return False
        if path.exists() and pattern.search(path.read_text("utf-8", "replace")):
            return True
        time.sleep(0.2)
    return False


def last_heartbeat(path: Path) -> tuple[int, int] | None:
    hits = HEARTBEAT.findall(path.read_text("utf-8", "replace")) if path.exists() else []
    return (int(hits[-1][0]), int(hits[-1][1])) if hits else None


def cpu_snapshot(sup: Supervisor) -> dict[str, float]:
    return {c.name: cpu_seconds(c.proc.pid) for c in sup.children}


# ---------------------------------------------------------------- readings

def marker_stations(tag: str, partitions: int) -> list[str]:
    """One fresh station name per partition (the gateway's own station hash)."""
    found: dict[int, str] = {}
    for i in range(100_000):
        name = f"{tag}-MARK{i}"
        found.setdefault(partition_for(name, partitions), name)
        if len(found) == partitions:
            return [found[p] for p in range(partitions)]
    raise RuntimeError("no marker station found for every partition")


def make_batches(run: int, n: int, stations: int, batch: int) -> list[list[dict]]:
    """N readings round-robin over fresh stations, one per station-minute, ending now.

    Values are 0-0.04 mm so the rain rule (>= 50 mm in 12 h) stays quiet.
    """
    per_station = -(-n // stations)
    base = int(time.time() * 1000) - per_station * MINUTE_MS
    names = [f"r{run}-S{i:04d}" for i in range(stations)]
    items = [{"station": names[j % stations], "metric": "rain_mm",
              "ts": base + (j // stations) * MINUTE_MS, "value": (j * 7 % 5) / 100}
             for j in range(n)]
    return [items[i:i + batch] for i in range(0, n, batch)]


def markers(stations: list[str]) -> list[dict]:
    now = int(time.time() * 1000)
    return [{"station": s, "metric": "rain_mm", "ts": now, "value": 100.0} for s in stations]


# ---------------------------------------------------------------- publishing

def serialise(args: argparse.Namespace, batches: list[list[dict]], marks: list[str]) -> tuple:
    """(bodies, marker bodies) for ``publish``: done before a clock starts, as the client's
    JSON work is not the system's. MQTT: many stations per message, a marker per topic."""
    if args.via == "http":
        return [orjson.dumps(b) for b in batches], [orjson.dumps(markers(marks))]
    return ([("yujing/bench/_/rain_mm", orjson.dumps(b)) for b in batches],
            [(f"yujing/bench/{m['station']}/rain_mm", orjson.dumps([m])) for m in markers(marks)])


async def publish(args: argparse.Namespace, ep, bodies: list, mark_bodies: list,
                  timeout_s: float) -> None:
    """The bodies, then the markers once every body is acknowledged."""
    if args.via == "http":
        await publish_http(ep.http + "/v1/readings", bodies, args.concurrency, timeout_s)
        await publish_http(ep.http + "/v1/readings", mark_bodies, 1, 30)
    else:
        await asyncio.to_thread(publish_mqtt_blocking, ep.mqtt, bodies + mark_bodies, timeout_s)


# ---------------------------------------------------------------- one run

async def one_run(run: int, args: argparse.Namespace, ep, cfg, sup: Supervisor,
                  watcher: Watcher, worker_log: Path, sent_before: int) -> RunResult:
    prefix = f"r{run}"
    parts = cfg.kafka.partitions
    batches = make_batches(run, args.readings, args.stations, args.batch)
    marks = marker_stations(prefix, parts)
    bodies, mark_bodies = serialise(args, batches, marks)
    n = args.readings
    timeout = args.timeout
    if args.introduce:
        await introduce(args, ep, sup, watcher, batches, prefix, parts)
    start = dict(watcher.next_offset)  # the timed envelopes begin here in each partition
    before = watcher.counts.get(prefix, 0)  # the introducing readings
    warned_before = watcher.warnings.get(prefix, 0)  # and their first-look clears

    cpu0, woke0 = cpu_snapshot(sup), wakeups(worker_pid(sup))
    faults0 = {c.name: minor_faults(c.proc.pid) for c in sup.children}
    metrics_url = f"http://127.0.0.1:{cfg.worker.metrics_port}/metrics"
    count0 = worker_counters(metrics_url)
    t0 = time.monotonic()
    held = worker_pid(sup) if args.hold_worker else None
    if held is not None:
        os.kill(held, signal.SIGSTOP)
    try:
        await publish(args, ep, bodies, mark_bodies, timeout)
        t_pub = time.monotonic()
        t_ingest = await watcher.wait(lambda: watcher.counts.get(prefix, 0) - before >= n, timeout,
                                      f"{n} readings of run {run} in Kafka")
    finally:
        if held is not None:
            os.kill(held, signal.SIGCONT)
    t_e2e = await watcher.wait(lambda: all(s in watcher.warned for s in marks), timeout,
                               f"the worker's warnings for the markers of run {run}")
    # The run's CPU is counted until the worker is back near idle: its book may still be
    # taking the run's warning events after the markers' warnings are out.
    await settle(sup, args.idle_worker, timeout)
    cpu1, t_cpu, woke1 = cpu_snapshot(sup), time.monotonic(), wakeups(worker_pid(sup))
    count1 = worker_counters(metrics_url)
    faults1 = {c.name: minor_faults(c.proc.pid) for c in sup.children}
    if watcher.counts.get(prefix, 0) - before != n + len(marks):
        log(f"run {run}: Kafka holds {watcher.counts.get(prefix, 0) - before} readings of this run, "
            f"sent {n + len(marks)} (duplicates or loss)")
    log(f"run {run}: published in {t_pub - t0:.2f} s, in Kafka after {t_ingest - t0:.2f} s, "
        f"evaluated after {t_e2e - t0:.2f} s")

    # The heartbeat (every 5 s) must eventually count every reading sent so far.
    expected_total = sent_before + n + len(marks) + (2 * args.stations + parts if args.introduce else 0)
    deadline = time.monotonic() + 12
    hb = last_heartbeat(worker_log)
    while (hb is None or hb[0] < expected_total) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        hb = last_heartbeat(worker_log)
    if hb is None or hb[0] != expected_total:
        log(f"run {run}: worker heartbeat shows {hb} readings, expected {expected_total}")
    elif hb[1]:
        log(f"run {run}: worker counted {hb[1]} late readings")

    envs = await read_back(ep.kafka, cfg.kafka.topics.readings, parts, prefix,
                           n + len(marks) + (2 * args.stations if args.introduce else 0), 60)
    cost = engine_replay(cfg, envs, start)
    if args.profile is not None and run == 1:
        text = engine_profile(cfg, envs, start)
        (args.profile / "engine_cprofile.txt").write_text(text, encoding="utf-8")
    run_env = watcher.envelopes.get(prefix, 0)
    cpu = {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1}
    log(f"run {run}: warning events so far by (rule, kind): {watcher.kinds}")
    return RunResult(t_ingest - t0, t_e2e - t0, cost, run_env, cpu,
                     watcher.warnings.get(prefix, 0) - warned_before, t_cpu - t0, woke1 - woke0,
                     {k: v - count0.get(k, 0.0) for k, v in count1.items()},
                     {k: v - faults0.get(k, 0) for k, v in faults1.items()})


async def introduce(args: argparse.Namespace, ep, sup: Supervisor, watcher: Watcher,
                    batches: list[list[dict]], prefix: str, partitions: int) -> None:
    """Two readings per station, 31 min and 1 min before its first, untimed: a worker that
    started without a checkpoint passes on the first clear of every new (rule, station) key
    (Lifecycle.forward_first_clear; a "clears after 30 min" rule gives it only once it has
    30 min of data), and ``--introduce`` keeps those events out of the timed part, as for
    a worker that knows its stations. Done when a marker per partition sent after them is
    evaluated (the worker takes a partition in order) and the worker's CPU is back near idle."""
    first: dict[str, dict] = {}
    for item in (i for b in batches for i in b):
        first.setdefault(item["station"], item)
    intro = [{**it, "ts": it["ts"] - back * MINUTE_MS, "value": 0.0}
             for back in (31, 1) for it in first.values()]
    marks = marker_stations(f"{prefix}i", partitions)
    batches = [intro[i:i + args.batch] for i in range(0, len(intro), args.batch)]
    await publish(args, ep, *serialise(args, batches, marks), args.timeout)
    await watcher.wait(lambda: all(s in watcher.warned for s in marks), args.timeout,
                       f"the worker's warnings for the introducing markers of run {prefix}")
    await watcher.wait(lambda: watcher.counts.get(prefix, 0) >= len(intro), args.timeout,
                       "the introducing readings on the readings topic")
    await settle(sup, args.idle_worker, args.timeout)


def worker_pid(sup: Supervisor) -> int:
    return next(c.proc.pid for c in sup.children if c.name == "worker")


async def settle(sup: Supervisor, idle_per_s: float, timeout_s: float) -> None:
    """Until the worker's CPU over half a second is back near idle: its book may still be
    taking the first-look clears after the agent has moved on."""
    pid = worker_pid(sup)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        c0, t0 = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(0.5)
        if (cpu_seconds(pid) - c0) / (time.monotonic() - t0) <= max(3 * idle_per_s, 0.1):
            return
    log("the worker did not settle after the introducing readings")


async def bench(args: argparse.Namespace, ep, cfg, sup: Supervisor, worker_log: Path,
                broker: str) -> RunResult:
    k = cfg.kafka
    watcher = Watcher(ep.kafka, k.topics.readings, k.topics.warnings, k.partitions)
    await watcher.start()
    try:
        # Warm-up: the worker has joined its group and owns every partition when
        # each partition's marker has produced a warning.
        warm = marker_stations("warm", k.partitions)
        t = time.monotonic()
        await publish(args, ep, *serialise(args, [], warm), 30)
        await watcher.wait(lambda: all(s in watcher.warned for s in warm), 90,
                           "the worker to process the warm-up markers")
        log(f"warm-up processed after {time.monotonic() - t:.1f} s")
        # A measuring window, not a wait for a condition: the worker's CPU with nothing to do
        # (fetch polling, timers), part of every run's CPU in proportion to its wall time.
        idle0, t_idle = cpu_snapshot(sup), time.monotonic()
        await asyncio.sleep(args.idle_s)
        idle = {k: (v - idle0.get(k, 0.0)) / (time.monotonic() - t_idle)
                for k, v in cpu_snapshot(sup).items()}
        args.idle_worker = idle.get("worker", 0.0)
        print(f"[{broker}] idle_cpu_s_per_s: " + " ".join(f"{k}={v:.3f}" for k, v in idle.items()))
        sent = len(warm)
        results = []
        spy = (Profiler(next(c.proc.pid for c in sup.children if c.name == "worker"),
                        args.profile / f"worker_{broker}.pyspy.txt")
               if args.profile is not None else None)
        try:
            for run in range(1, args.runs + 1):
                r = await one_run(run, args, ep, cfg, sup, watcher, worker_log, sent)
                sent += args.readings + k.partitions + (2 * args.stations + k.partitions
                                                         if args.introduce else 0)
                report(f"{broker} run {run}", args.readings, r, idle.get("worker", 0.0))
                results.append(r)
        finally:
            if spy is not None:
                spy.stop()
        if spy is not None:
            print_profile(spy.out, args.profile / "engine_cprofile.txt")
        med = median_result(results)
        report(f"{broker} median of {len(results)}", args.readings, med, idle.get("worker", 0.0))
        ratios = [r.worker_per_cpu_s(args.readings) / r.engine.engine_per_cpu_s for r in results]
        print(f"[{broker} median of {len(results)}] ratio_worker_to_engine_per_run: "
              f"{statistics.median(ratios):.3f} (" + " ".join(f"{x:.3f}" for x in ratios) + ")")
        return med
    finally:
        await watcher.stop()


def run_broker(args: argparse.Namespace, broker: str) -> RunResult:
    """One stack on ``broker`` for every run; stopped (and its temp dir removed) after."""
    tmp = Path(tempfile.mkdtemp(prefix=f"yujing-bench-{broker}-"))
    cfg_path = write_config(tmp, args.partitions, broker)
    cfg = load_config(cfg_path)
    worker_log = cfg.worker.data_dir / "worker.log"
    sup = Supervisor(cfg, cfg_path)
    name = "Apache Kafka (kafka.embedded: kafka)" if broker == "kafka" else "Tansu"
    print(f"via: {args.via} broker: embedded {name} + amqtt (MQTT); readings: "
          f"{args.readings} stations: {args.stations} batch: {args.batch} runs: {args.runs} "
          f"partitions: {args.partitions} cpus: {os.cpu_count()} load: {os.getloadavg()[0]:.1f}",
          flush=True)
    try:
        t = time.monotonic()
        ep = sup.start(quiet_children=True)
        if not wait_log(worker_log, READY, 120, sup):
            raise RuntimeError(f"the worker did not get ready in 120 s; see {worker_log}")
        log(f"stack on {broker} ready after {time.monotonic() - t:.1f} s; logs in "
            f"{cfg.worker.data_dir}")
        if args.pin_worker is not None:
            pid = worker_pid(sup)
            for task in Path(f"/proc/{pid}/task").iterdir():  # every thread, not only the main one
                os.sched_setaffinity(int(task.name), {args.pin_worker})
            log(f"worker {pid} pinned to CPU {args.pin_worker}")
        return asyncio.run(bench(args, ep, cfg, sup, worker_log, broker))
    finally:
        sup.stop()
        if args.keep:
            log(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readings", type=int, default=200_000)
    ap.add_argument("--stations", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=500, help="readings per HTTP request / MQTT message")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--via", choices=("http", "mqtt"), default="http")
    ap.add_argument("--concurrency", type=int, default=8, help="HTTP requests in flight")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=120, help="seconds per phase of a run")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs) afterwards")
    ap.add_argument("--broker", choices=("kafka", "tansu", "both"), default="both",
                    help="embedded broker; both: Kafka then Tansu, with the ratio kafka/tansu")
    ap.add_argument("--idle-s", type=float, default=5.0, help="window for the idle CPU figure")
    ap.add_argument("--introduce", action="store_true",
                    help="one untimed reading per station first: no first-look clears timed")
    ap.add_argument("--hold-worker", action="store_true",
                    help="stop the worker (SIGSTOP) while publishing, resume it once every reading "
                         "is in Kafka: its CPU per reading without sharing the cores with the "
                         "gateway and a live stream (end-to-end figures then include the hold)")
    ap.add_argument("--pin-worker", type=int, default=None, metavar="CPU",
                    help="pin every thread of the worker to this CPU once it is ready")
    ap.add_argument("--profile", type=Path, default=None, metavar="DIR",
                    help="py-spy the worker during the runs, cProfile one engine replay; files in DIR")
    args = ap.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    if min(args.readings, args.stations, args.batch, args.runs) < 1:
        ap.error("--readings, --stations, --batch and --runs must be >= 1")

    brokers = ("kafka", "tansu") if args.broker == "both" else (args.broker,)
    results = {b: run_broker(args, b) for b in brokers}
    if len(results) == 2:
        report_ratio(args.readings, results["kafka"], results["tansu"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
