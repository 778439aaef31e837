"""Memory soak of the whole stack: RSS of broker, gateway, worker and sink under a steady feed.

    .venv/bin/python bench/soak.py                          # Apache Kafka, 10 min at 2,000/s
    .venv/bin/python bench/soak.py --broker tansu --minutes 5 --checkpoint-interval 5m,10s

``yujing run``'s supervisor starts the stack (``kafka.embedded: kafka`` or ``tansu``, the
gateway, a worker with every pack under rules/, and the InfluxDB sink writing to a local
VictoriaMetrics), and readings are POSTed to ``/v1/readings`` at ``--rate`` per second for
``--minutes``. The registry is the repo's stations.yaml plus ``--stations`` generated ones
in bench/backtest.py's mix (rain gauges, rivers, reservoirs, waterlogging, weather,
cameras, dust collectors, gas detectors; its value generators, one storm a day with a
cloudburst), each reporting one reading per event-minute. The event clock runs ahead of the
wall clock (rate / stations event-minutes per second; ``worker.nodata_clock: event``, as in
the demo; the gateway's ``max_age`` is raised to the feed's event span). The longest series
a worker keeps is ``rain_mm`` at the forest weather stations: 10 days plus the lateness
(``days_since(rain_mm, 0.1)`` in the forest-fire rule), so its RSS is flat only once the
event time has passed 241 h: for a 10-minute soak at 5,000/s, ``--stations 100`` (20.8
days of event time, 10.4 in the first half); with more stations the second half still shows
those windows filling (about 22 B per reading retained, bench/memory.py). The example
stations of stations.yaml get no readings and raise no-data warnings, as silent stations do.

Every ``--sample`` seconds the RSS of each process (psutil, children included) is read with
the readings accepted so far, the readings the worker has evaluated (its /metrics) and the
checkpoints it has written (its log). Printed per process: RSS at start, middle, end and
peak, and the slope over the second half (MB/min, least squares); ``flat`` when that slope
is within ``--tolerance`` MB/min. Then whether the stream kept up: readings accepted vs
posted, the worker's lag when posting stopped and how long it took to catch up, the points
the sink wrote.

On Tansu (memory only, no retention, no compaction) the broker's growth is also fitted
against the readings accepted (MB per million readings). With several
``--checkpoint-interval`` values the stack is run once per value, and the growth of each run
is fitted as a * readings + b * checkpoints: b is the broker's memory per checkpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
import orjson
import psutil
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backtest import KINDS, PREFIX, TAGS, _storm_field, _thresholds, _values  # the backtest's mix

from yujing.config import load_config
from yujing.connectors.embedded import free_port, wait_port
from yujing.supervisor import Supervisor

VICTORIA = "victoria-metrics"
MIN_MS = 60_000
CHECKPOINT = re.compile(r"checkpoint \d+ at offset \d+: \d+ bytes raw, (\d+) stored")
MB = 1024 * 1024
TOWNS = ["虎门镇", "长安镇", "厚街镇", "大朗镇", "石龙镇", "清溪镇", "塘厦镇", "麻涌镇"]


def log(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ feed

@dataclass
class Feed:
    """Readings in sending order (event-minute, then station); values come from the
    backtest's generators, so rain, rivers, wind, dust and gas behave as there."""
    names: list[str]
    metrics: list[str]
    station: np.ndarray
    metric: np.ndarray
    minute: np.ndarray
    value: np.ndarray
    registry: list[dict]

    def body(self, lo: int, hi: int, base_ms: int) -> bytes:
        return orjson.dumps([{"station": self.names[s], "metric": self.metrics[m],
                              "ts": base_ms + int(t) * MIN_MS, "value": float(v)}
                             for s, m, t, v in zip(self.station[lo:hi].tolist(),
                                                   self.metric[lo:hi].tolist(),
                                                   self.minute[lo:hi].tolist(),
                                                   self.value[lo:hi].tolist(), strict=True)])


def make_feed(stations: int, minutes: int, seed: int = 11) -> Feed:
    rng = np.random.default_rng(seed)
    minutes = max(minutes, 720)  # the generators' leaks and storms need half a day
    counts = {k: int(round(share * stations)) for k, (share, _, _) in KINDS.items()}
    counts["rain_gauge"] += stations - sum(counts.values())
    names, metrics, registry, cols = [], [], [], []
    for kind, n in counts.items():
        _, kind_metrics, interval = KINDS[kind]
        first = len(names)
        names += [f"DG-{PREFIX[kind]}{i:04d}" for i in range(n)]
        rain = _storm_field(rng, minutes, n)
        base = rng.uniform(1.0, 4.0, n) if kind == "river_gauge" else rng.uniform(10, 30, n)
        for j, metric in enumerate(kind_metrics):
            if metric not in metrics:
                metrics.append(metric)
            t_min = np.arange(j, minutes, len(kind_metrics))
            vals = _values(kind, metric, rng, rain, t_min, base)
            cols.append((np.repeat(np.arange(first, first + n), t_min.size),
                         np.full(n * t_min.size, metrics.index(metric)),
                         np.tile(t_min, n), vals.ravel()))
        for i in range(n):
            st = {"id": names[first + i], "name": names[first + i], "kind": kind,
                  "town": TOWNS[i % len(TOWNS)], "expected_interval": interval}
            if kind in TAGS:
                st["tags"] = [TAGS[kind][0]] if i % 3 == 0 else TAGS[kind][1:] or [TAGS[kind][0]]
            if th := _thresholds(kind, float(base[i])):
                st["thresholds"] = th
            registry.append(st)
    st, m, t, v = (np.concatenate(c) for c in zip(*cols, strict=True))
    order = np.lexsort((st, t))
    return Feed(names, metrics, st[order].astype(np.int32), m[order].astype(np.int16),
                t[order].astype(np.int32), v[order], registry)


# ------------------------------------------------------------------ stack

def write_config(tmp: Path, args: argparse.Namespace, interval: str, vm_url: str,
                 feed: Feed) -> Path:
    example = yaml.safe_load((ROOT / "stations.yaml").read_text(encoding="utf-8"))["stations"]
    registry = tmp / "stations.yaml"
    registry.write_text(yaml.safe_dump({"stations": example + feed.registry}, allow_unicode=True,
                                       sort_keys=False), encoding="utf-8")
    cfg = {
        "kafka": {"embedded": args.broker, "partitions": args.partitions},
        "http": {"host": "127.0.0.1", "port": free_port()},
        # the feed's first readings are as old as its event span: accept them (7 d by default)
        "gateway": {"max_age": f"{max(7, int(feed.minute.max()) // 1440 + 2)}d"},
        "worker": {"rules_dir": str(ROOT / "rules"), "registry": str(registry),
                   "data_dir": str(tmp / "worker"), "nodata_clock": "event",
                   "checkpoint_interval": interval, "metrics_port": free_port()},
        "notify": {"default": []},
        "influx": {"url": vm_url, "token": "soak", "org": "yujing", "bucket": "yujing",
                   "metrics_port": free_port()},
        "log_level": "info",
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def start_victoria(tmp: Path) -> tuple[subprocess.Popen, str]:
    exe = shutil.which(VICTORIA) or sys.exit(f"{VICTORIA} is not installed "
                                             "(apt-get install victoria-metrics)")
    port = free_port()
    proc = subprocess.Popen([exe, f"-httpListenAddr=127.0.0.1:{port}",
                             f"-storageDataPath={tmp / 'vm'}", "-retentionPeriod=100y",
                             "-loggerLevel=ERROR"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    if not wait_port("127.0.0.1", port, 20):
        proc.kill()
        sys.exit("VictoriaMetrics did not listen")
    return proc, f"http://127.0.0.1:{port}"


def rss_mb(pid: int) -> float:
    """RSS of a process and its children (a JVM or a launcher may fork)."""
    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return float("nan")
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / MB


async def scrape(http: aiohttp.ClientSession, port: int, prefix: str) -> dict[str, float]:
    """Sum of each counter/gauge family starting with ``prefix`` on a /metrics page."""
    try:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
            text = await r.text()
    except aiohttp.ClientError:
        return {}
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.startswith(prefix) and not s.name.endswith("_created"):
                out[s.name] = out.get(s.name, 0.0) + s.value
    return out


# ------------------------------------------------------------------ the run

@dataclass
class Sample:
    t_min: float           # minutes since the feed started
    accepted: int
    evaluated: float
    checkpoints: int
    stored_bytes: int
    rss: dict[str, float]
    load: float            # 1-minute load average of the machine (shared: other work counts)


@dataclass
class Run:
    interval: str
    posted: int = 0
    accepted: int = 0
    rejected: int = 0
    retries: int = 0
    send_s: float = 0.0
    lag_at_end: float = 0.0
    catch_up_s: float = float("nan")
    sink_points: float = 0.0
    sink_wait_s: float = 0.0  # after the worker caught up, until the sink had written it all
    warnings: float = 0.0
    samples: list[Sample] = field(default_factory=list)


class Soak:
    def __init__(self, args, sup: Supervisor, cfg, procs: dict[str, int], feed: Feed) -> None:
        self.args, self.sup, self.cfg, self.procs, self.feed = args, sup, cfg, procs, feed
        self.worker_log = cfg.worker.data_dir / "worker.log"
        self.run = Run(str(cfg.worker.checkpoint_interval))
        self.t0 = time.monotonic()

    def checkpoints(self) -> tuple[int, int]:
        text = self.worker_log.read_text("utf-8", "replace") if self.worker_log.exists() else ""
        stored = [int(b) for b in CHECKPOINT.findall(text)]
        return len(stored), sum(stored)

    async def evaluated(self, http) -> float:
        got = await scrape(http, self.cfg.worker.metrics_port, "yujing_worker_readings_total")
        return got.get("yujing_worker_readings_total", float("nan"))

    async def sample(self, http) -> Sample:
        n, stored = self.checkpoints()
        s = Sample((time.monotonic() - self.t0) / 60, self.run.accepted, await self.evaluated(http),
                   n, stored, {name: rss_mb(pid) for name, pid in self.procs.items()},
                   psutil.getloadavg()[0])
        self.run.samples.append(s)
        if self.sup.failed():
            raise RuntimeError(f"{self.sup.failed().name} exited; see {self.cfg.worker.data_dir}")
        return s

    async def sampler(self, http) -> None:
        while True:
            s = await self.sample(http)
            log(f"{s.t_min:5.1f} min: accepted {s.accepted}, evaluated {s.evaluated:.0f}, "
                f"checkpoints {s.checkpoints}, load {s.load:.1f}; RSS MB " + " ".join(
                    f"{k}={v:.0f}" for k, v in s.rss.items()))
            await asyncio.sleep(self.args.sample)

    async def post(self, http, url: str, body: bytes) -> None:
        for attempt in range(10):
            async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                reply = await r.read()
                if r.status == 200:
                    got = orjson.loads(reply)
                    self.run.accepted += got["accepted"] + got.get("duplicates", 0)
                    self.run.rejected += len(got["rejected"])
                    return
                if r.status == 503 and attempt < 9:
                    self.run.retries += 1
                    await asyncio.sleep(0.5)
                    continue
                raise RuntimeError(f"gateway answered {r.status}: {reply[:300]!r}")

    async def feed_all(self, http, total: int) -> None:
        """POST ``total`` readings in order, batch i due at t0 + i * batch / rate; at most
        ``--concurrency`` requests in flight, so a slow gateway shows as a late schedule."""
        a, batch = self.args, self.args.batch
        url = f"http://127.0.0.1:{self.cfg.http.port}/v1/readings"
        sent_minutes = int(self.feed.minute[total - 1]) + 1
        base = int(time.time() * 1000) - sent_minutes * MIN_MS
        slots = asyncio.Semaphore(a.concurrency)
        tasks = []

        async def one(lo: int, hi: int) -> None:
            try:
                await self.post(http, url, self.feed.body(lo, hi, base))
            finally:
                slots.release()

        start = time.monotonic()
        for i, lo in enumerate(range(0, total, batch)):
            hi = min(total, lo + batch)
            due = start + lo / a.rate
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            await slots.acquire()
            tasks.append(asyncio.create_task(one(lo, hi)))
            self.run.posted = hi
            if i % 64 == 0:  # drop finished posts; result() re-raises a failed one here
                tasks = [t for t in tasks if not t.done() or t.result()]
        await asyncio.gather(*tasks)
        self.run.send_s = time.monotonic() - start

    async def go(self) -> Run:
        total = min(int(self.args.rate * self.args.minutes * 60), self.feed.station.size)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            self.t0 = time.monotonic()
            sampler = asyncio.create_task(self.sampler(http))
            try:
                await self.feed_all(http, total)
                ev = await self.evaluated(http)
                self.run.lag_at_end = self.run.accepted - ev
                t = time.monotonic()
                while ev < self.run.accepted and time.monotonic() - t < self.args.drain:
                    await asyncio.sleep(0.5)
                    ev = await self.evaluated(http)
                if ev >= self.run.accepted:
                    self.run.catch_up_s = time.monotonic() - t
            finally:
                sampler.cancel()
                await asyncio.gather(sampler, return_exceptions=True)
            await self.sample(http)
            # the sink reads both topics on its own: give it until it has written every
            # reading and every warning event the worker sent (or 60 s), then count
            t = time.monotonic()
            while True:
                sink = await scrape(http, self.cfg.influx.metrics_port,
                                    "yujing_sink_points_written")
                warned = await scrape(http, self.cfg.worker.metrics_port,
                                      "yujing_worker_warnings_total")
                self.run.sink_points = sum(sink.values())
                self.run.warnings = sum(warned.values())
                self.run.sink_wait_s = time.monotonic() - t
                if (self.run.sink_points >= self.run.accepted + self.run.warnings
                        or self.run.sink_wait_s > 60):
                    break
                await asyncio.sleep(0.5)
        return self.run


# ------------------------------------------------------------------ figures

def slope(xs: list[float], ys: list[float]) -> float:
    pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y == y]  # drop NaN
    if len(pts) < 3:
        return float("nan")
    return statistics.linear_regression([p[0] for p in pts], [p[1] for p in pts]).slope


def report_memory(run: Run, tolerance: float) -> dict[str, float]:
    """Start/middle/end/peak RSS and the second half's slope per process; returns the slopes."""
    s = run.samples
    end_t = s[-1].t_min
    second = [x for x in s if x.t_min >= end_t / 2]
    mid = second[0]
    slopes = {}
    for name in s[0].rss:
        ys = [x.rss[name] for x in second]
        k = slopes[name] = slope([x.t_min for x in second], ys)
        verdict = "flat" if abs(k) <= tolerance else ("growing" if k > 0 else "shrinking")
        print(f"[{run.interval}] rss_mb {name}: start {s[0].rss[name]:.0f} middle {mid.rss[name]:.0f} "
              f"end {s[-1].rss[name]:.0f} peak {max(x.rss[name] for x in s):.0f}; "
              f"second-half slope {k:+.2f} MB/min ({k * 60 * 24:+.0f} MB/day): {verdict}")
    # The worker's state follows the event time it has evaluated, not the wall clock: when
    # it lags, its growth per reading evaluated tells a leak from windows still filling.
    per_m = slope([x.evaluated / 1e6 for x in second], [x.rss["worker"] for x in second])
    print(f"[{run.interval}] rss_mb worker per million readings evaluated (second half): "
          f"{per_m:+.1f}")
    return slopes


def report_stream(run: Run) -> None:
    s = run.samples
    print(f"[{run.interval}] readings posted {run.posted}, accepted {run.accepted}, rejected "
          f"{run.rejected}, 503 retries {run.retries}; sent in {run.send_s:.0f} s "
          f"({run.accepted / max(run.send_s, 1e-9):.0f} readings/s)")
    print(f"[{run.interval}] worker lag when posting stopped: {run.lag_at_end:.0f} readings; "
          f"caught up after {run.catch_up_s:.1f} s; evaluated {s[-1].evaluated:.0f}; "
          f"max lag during the run {max(x.accepted - x.evaluated for x in s):.0f}; "
          f"median load average {statistics.median(x.load for x in s):.1f} on {psutil.cpu_count()} cpus")
    print(f"[{run.interval}] sink points written {run.sink_points:.0f} "
          f"({run.sink_wait_s:.1f} s after the worker caught up); warning events "
          f"{run.warnings:.0f}; checkpoints {s[-1].checkpoints} "
          f"({s[-1].stored_bytes / MB:.1f} MB stored)")


def report_broker_growth(runs: list[Run], broker: str) -> None:
    """MB of broker RSS per million readings (per run), and with several checkpoint
    intervals, growth = a * readings + b * checkpoints fitted over the runs."""
    rows = []
    for run in runs:
        s = [x for x in run.samples if x.accepted > 0]
        per_m = slope([x.accepted / 1e6 for x in s], [x.rss[broker] for x in s])
        growth = s[-1].rss[broker] - s[0].rss[broker]
        done = s[-1].accepted - s[0].accepted
        cps = s[-1].checkpoints - s[0].checkpoints
        print(f"[{run.interval}] {broker}_mb_per_million_readings: {per_m:.1f} "
              f"(grew {growth:.0f} MB over {done} readings and {cps} checkpoints)")
        rows.append((done / 1e6, cps, growth))
    if len({r[1] for r in rows}) > 1:
        a = np.array([[r[0], r[1]] for r in rows])
        (per_m, per_cp), *_ = np.linalg.lstsq(a, np.array([r[2] for r in rows]), rcond=None)
        print(f"fit over {len(rows)} runs: {broker}_mb_per_million_readings: {per_m:.1f}; "
              f"{broker}_mb_per_checkpoint: {per_cp:.3f}")


# ------------------------------------------------------------------ main

READY = re.compile(r"Worker\]: Ready|worker: \d+ readings")


def wait_ready(path: Path, sup: Supervisor, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sup.failed() is not None:
            raise RuntimeError(f"{sup.failed().name} exited during start; see {path.parent}")
        if path.exists() and READY.search(path.read_text("utf-8", "replace")):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the worker did not get ready in {timeout_s:.0f} s; see {path}")


def one_stack(args: argparse.Namespace, interval: str, feed: Feed) -> Run:
    tmp = Path(tempfile.mkdtemp(prefix="yujing-soak-"))
    vm, vm_url = start_victoria(tmp)
    sup = None
    try:
        cfg_path = write_config(tmp, args, interval, vm_url, feed)
        cfg = load_config(cfg_path)
        sup = Supervisor(cfg, cfg_path)
        t = time.monotonic()
        sup.start(quiet_children=True)
        wait_ready(cfg.worker.data_dir / "worker.log", sup, 120)
        log(f"stack on {args.broker} ready after {time.monotonic() - t:.1f} s; logs in "
            f"{cfg.worker.data_dir}")
        procs = {c.name: c.proc.pid for c in sup.children} | {"victoria": vm.pid}
        return asyncio.run(Soak(args, sup, cfg, procs, feed).go())
    finally:
        if sup is not None:
            sup.stop()
        vm.terminate()
        vm.wait(30)
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--broker", choices=("kafka", "tansu"), default="kafka")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", type=float, default=2000, help="readings per second")
    ap.add_argument("--stations", type=int, default=500, help="generated stations")
    ap.add_argument("--batch", type=int, default=100, help="readings per HTTP request")
    ap.add_argument("--concurrency", type=int, default=4, help="HTTP requests in flight")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--checkpoint-interval", default="5m",
                    help="worker.checkpoint_interval; a comma list runs the stack once per value")
    ap.add_argument("--sample", type=float, default=15, help="seconds between RSS samples")
    ap.add_argument("--tolerance", type=float, default=1.0,
                    help="MB/min: a second-half slope within it is flat")
    ap.add_argument("--drain", type=float, default=300,
                    help="seconds to wait for the worker to catch up after the feed")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (logs)")
    args = ap.parse_args()
    total = int(args.rate * args.minutes * 60)
    minutes = -(-total // args.stations)
    feed = make_feed(args.stations, minutes)
    log(f"{total} readings of {args.stations} stations over {minutes / 60:.1f} h of event time "
        f"({args.rate / args.stations:.1f} event-minutes per second)")
    runs = []
    for interval in args.checkpoint_interval.split(","):
        print(f"broker: {args.broker}; rate {args.rate:.0f}/s for {args.minutes:g} min; "
              f"stations {args.stations} + stations.yaml; partitions {args.partitions}; "
              f"checkpoint_interval {interval}; cpus {psutil.cpu_count()}; load "
              f"{psutil.getloadavg()[0]:.1f}", flush=True)
        run = one_stack(args, interval.strip(), feed)
        report_memory(run, args.tolerance)
        report_stream(run)
        runs.append(run)
    report_broker_growth(runs, args.broker)
    return 0


if __name__ == "__main__":
    sys.exit(main())
