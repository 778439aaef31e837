"""A mixed stream of malformed messages among valid readings, over MQTT and HTTP, through a
real gateway and worker: no crash, no stall, every valid reading evaluated, every malformed
one dead-lettered with a reason (issue 12, "Proving it").

    .venv/bin/python -m bench.malformed [--malformed 100000] [--valid 3000] [--hot 200]

Starts Tansu, Mosquitto (Debian's, anonymous: the gateway's own checks are under test, the
broker's ACL has its own test), ``yujing gateway`` and ``yujing worker`` as processes, with a
tokens file (so unknown MQTT sources and out-of-scope stations are refused) and no rate
limit (robustness is measured here, not throttling). The stream (bench/malformed_mix.py,
seeded) goes out in its order: MQTT messages from one paho client (QoS 1) while HTTP requests
go out ``--concurrency`` at a time. Then it counts, with deadlines:

* every HTTP answer against the status its message must get (never 500);
* valid readings on ``yujing.readings`` (and any other reading there: a malformed one that
  got in), the gateway's accepted counter, the worker's ``yujing_worker_readings_total``;
* dead letters on ``yujing.deadletter`` by reason code against what was sent (a summary
  letter counts the items its reason lists), and letters without a reason;
* warnings on ``yujing.warnings``: each hot station exactly its blue ``rain-short-intense``,
  no other station of the run;
* the processes alive throughout (polled), the longest gap between consecutive valid
  readings reaching Kafka while sending, and how long the two last messages (a hot reading
  over MQTT, one over HTTP) took to become warnings.

Prints figures, the median of ``--runs`` runs for the timings, and a verdict line.
Everything listens on 127.0.0.1; every process started here is stopped by its pid.
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
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
import orjson
import paho.mqtt.client as paho
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from paho.mqtt.enums import CallbackAPIVersion

from bench.malformed_mix import SCOPE, SOURCE, Limits, Mix, Send, build
from yujing.connectors.auth import hash_token, new_token
from yujing.connectors.embedded import free_port, tansu_command, wait_port
from yujing.envelope import decode

ROOT = Path(__file__).resolve().parent.parent
MOSQUITTO = "/usr/sbin/mosquitto"
SUMMARY = re.compile(r"(\w+) ×(\d+)")
PATHS = {"readings": "/v1/readings", "write": "/api/v2/write", "events": "/v1/events"}


class Stack:
    """Tansu, Mosquitto, one gateway and one worker, each a process of its own."""

    def __init__(self, tmp: Path, lim: Limits, partitions: int) -> None:
        self.tmp, self.lim, self.partitions = tmp, lim, partitions
        self.procs: dict[str, subprocess.Popen] = {}
        self.token = new_token()

    def _spawn(self, name: str, argv: list[str]) -> None:
        self.procs[name] = subprocess.Popen(argv, stdout=open(self.tmp / f"{name}.log", "wb"),
                                            stderr=subprocess.STDOUT)

    def dead(self) -> list[str]:
        return [f"{n} (exit {p.returncode})" for n, p in self.procs.items() if p.poll() is not None]

    def start(self) -> None:
        kport, self.mport, hport, wport = free_port(), free_port(), free_port(), free_port()
        self._spawn("tansu", tansu_command(kport))
        conf = self.tmp / "mosquitto.conf"
        conf.write_text(f"listener {self.mport} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        "user root\nmax_inflight_messages 1000\nset_tcp_nodelay true\n"
                        "max_queued_messages 200000\n")
        self._spawn("mosquitto", [MOSQUITTO, "-c", str(conf)])
        for port in (kport, self.mport):
            if not wait_port("127.0.0.1", port, 20):
                raise RuntimeError(f"port {port} did not open; see {self.tmp}")
        self.bootstrap = f"127.0.0.1:{kport}"
        tokens = self.tmp / "tokens.yaml"
        tokens.write_text(yaml.safe_dump({"tokens": [
            {"gateway": "mf-http", "sha256": hash_token(self.token), "stations": SCOPE},
            {"gateway": SOURCE, "sha256": hash_token(new_token()), "stations": SCOPE}]}))
        tokens.chmod(0o600)
        cfg = self.tmp / "config.yaml"
        cfg.write_text(yaml.safe_dump({
            "kafka": {"bootstrap": self.bootstrap, "partitions": self.partitions},
            "mqtt": {"url": f"mqtt://127.0.0.1:{self.mport}", "client_id": "mf-gateway",
                     "max_items": self.lim.mqtt_max_items,
                     "max_payload_bytes": self.lim.mqtt_max_payload},
            "http": {"port": hport, "tokens_file": str(tokens), "rate_limit": None,
                     "max_items": self.lim.http_max_items,
                     "max_body_bytes": self.lim.http_max_body},
            "worker": {"rules_dir": str(ROOT / "rules"), "registry": str(ROOT / "stations.yaml"),
                       "data_dir": str(self.tmp / "worker"), "nodata_check_s": 3600,
                       "metrics_port": wport},
            "notify": {"default": []},
            "log_level": "warning"}))
        self._spawn("gateway", [sys.executable, "-m", "yujing", "gateway", "-c", str(cfg)])
        self._spawn("worker", [sys.executable, "-m", "yujing", "worker", "-c", str(cfg),
                               "--embedded-kafka"])
        self.http = f"http://127.0.0.1:{hport}"
        self.worker_metrics = f"http://127.0.0.1:{wport}/metrics"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not self.dead():
            try:
                health = orjson.loads(fetch(self.http + "/healthz"))
                fetch(self.worker_metrics)
                if health["mqtt_connected"]:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"stack not up ({self.dead() or 'timeout'}); see {self.tmp}")

    def stop(self) -> None:
        for p in reversed(list(self.procs.values())):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)

    def log_problems(self) -> Counter[str]:
        """Tracebacks and lost dead letters in the gateway's and the worker's logs."""
        out: Counter[str] = Counter()
        for name in ("gateway", "worker"):
            text = (self.tmp / f"{name}.log").read_text("utf-8", "replace")
            out[f"{name}_tracebacks"] = text.count("Traceback")
            out[f"{name}_lost_letters"] = text.count("dead letter from")
        return out


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.read()


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and \
                all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@dataclass
class Seen:
    """What the watchers read back from Kafka."""

    valid: int = 0
    other_readings: int = 0
    valid_times: list[float] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)
    letters: int = 0
    no_reason: int = 0
    warned: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    first_warning: dict[str, float] = field(default_factory=dict)


class Watchers:
    def __init__(self, bootstrap: str, partitions: int) -> None:
        self.bootstrap, self.partitions = bootstrap, partitions
        self.seen = Seen()
        self.tasks: list[asyncio.Task] = []
        self.consumers: list[AIOKafkaConsumer] = []

    async def start(self) -> None:
        for topic, handle in (("yujing.readings", self._reading), ("yujing.deadletter", self._letter),
                              ("yujing.warnings", self._warning)):
            c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 fetch_max_wait_ms=20, max_partition_fetch_bytes=8 << 20)
            await asyncio.wait_for(c.start(), 30)
            c.assign([TopicPartition(topic, p) for p in range(self.partitions)])
            await c.seek_to_beginning()
            self.consumers.append(c)
            self.tasks.append(asyncio.create_task(self._loop(c, handle)))

    async def _loop(self, c: AIOKafkaConsumer, handle) -> None:
        while True:
            for recs in (await c.getmany(timeout_ms=100, max_records=5000)).values():
                for rec in recs:
                    handle(rec.value)

    def _reading(self, value: bytes) -> None:
        cols = decode(value)
        ours = [i for i, st in enumerate(cols.stations) if st.startswith("MFV-")]
        mine = int(np.isin(cols.si, ours).sum()) if ours else 0
        self.seen.valid += mine
        self.seen.other_readings += len(cols) - mine
        if mine:
            self.seen.valid_times.append(time.monotonic())

    def _letter(self, value: bytes) -> None:
        d = orjson.loads(value)
        self.seen.letters += 1
        if not d.get("reason"):
            self.seen.no_reason += 1
        if d.get("code") == "summary":
            for code, n in SUMMARY.findall(d["reason"]):
                self.seen.codes[code] += int(n)
        else:
            self.seen.codes[d.get("code", "?")] += 1

    def _warning(self, value: bytes) -> None:
        d = orjson.loads(value)
        st = d.get("station", "")
        self.seen.warned.setdefault(st, []).append((d.get("rule"), d.get("grade"), d.get("kind")))
        self.seen.first_warning.setdefault(st, time.monotonic())

    async def until(self, cond, timeout: float, stack: Stack) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not stack.dead():
            if cond():
                return True
            await asyncio.sleep(0.1)
        return cond()

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for c in self.consumers:
            await c.stop()


# --- senders ---------------------------------------------------------------------------------

@dataclass
class Replies:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    errors: int = 0


async def send_http(stack: Stack, sends: list[Send], conc: int, replies: Replies) -> None:
    queue = list(reversed(sends))
    good = {"Authorization": f"Bearer {stack.token}"}
    bad = {"Authorization": "Bearer not-a-token"}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async def worker() -> None:
            while queue:
                s = queue.pop()
                url = stack.http + PATHS[s.channel] + (f"?{s.target}" if s.target else "")
                for _ in range(30):   # a client that honours 503 + Retry-After
                    try:
                        async with http.post(url, data=s.body,
                                             headers=good if s.auth == "good" else bad) as r:
                            text = await r.read()
                            status, retry = r.status, r.headers.get("Retry-After")
                    except aiohttp.ClientError as exc:
                        replies.errors += 1
                        replies.wrong.append(f"{s.kind} {s.channel}: {type(exc).__name__} {exc}")
                        break
                    replies.statuses[(s.channel, status)] += 1
                    if status == 503 and retry:
                        await asyncio.sleep(min(float(retry), 2.0))
                        continue
                    if status != s.status:
                        replies.wrong.append(f"{s.kind} {s.channel}: {status} (want "
                                             f"{s.status}) {text[:200]!r}")
                    break
        await asyncio.gather(*(worker() for _ in range(conc)))


def send_mqtt(port: int, sends: list[Send], timeout: float) -> int:
    """Publish at QoS 1 in order; returns how many the broker did not acknowledge in time."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"mf-pub-{time.monotonic_ns()}",
                    protocol=paho.MQTTv311)
    c.max_inflight_messages_set(500)
    c.max_queued_messages_set(0)
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        if not connected.wait(10):
            raise RuntimeError("MQTT publisher did not connect")
        infos = [c.publish(s.target, s.body, qos=1) for s in sends]
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        return sum(not i.is_published() for i in infos)
    finally:
        c.disconnect()
        c.loop_stop()


# --- one run -----------------------------------------------------------------------------------

@dataclass
class Result:
    mix: Mix
    seen: Seen
    replies: Replies
    accepted: int = 0              # the gateway's counter
    evaluated: int = 0             # the worker's counter
    http_500: int = 0              # the gateway's request counter, status 500
    unacked: int = 0               # MQTT publishes the broker did not acknowledge
    dead: list[str] = field(default_factory=list)
    log: Counter[str] = field(default_factory=Counter)
    send_s: float = 0.0
    settle_s: float = 0.0          # last send → everything counted
    longest_gap_s: float = 0.0
    probe_s: list[float] = field(default_factory=list)
    warning_problems: list[str] = field(default_factory=list)
    stall_s: float = 30.0          # a longer gap or probe time is a stall

    def failures(self) -> list[str]:
        m, s = self.mix, self.seen
        checks = [
            (not self.dead, f"processes died: {self.dead}"),
            (self.log["gateway_tracebacks"] == 0 and self.log["worker_tracebacks"] == 0,
             f"tracebacks in logs: {dict(self.log)}"),
            (self.http_500 == 0 and not any(st >= 500 and st != 503
                                            for _, st in self.replies.statuses),
             f"HTTP 5xx: {self.replies.statuses}"),
            (not self.replies.wrong, f"{len(self.replies.wrong)} wrong HTTP answers, first: "
                                     f"{self.replies.wrong[:3]}"),
            (self.unacked == 0, f"{self.unacked} MQTT publishes not acknowledged by the broker"),
            (s.valid == m.valid, f"valid readings in Kafka {s.valid} != sent {m.valid}"),
            (s.other_readings == 0, f"{s.other_readings} readings in Kafka that were not valid"),
            (self.accepted == m.valid, f"gateway accepted {self.accepted} != valid {m.valid}"),
            (self.evaluated == m.valid, f"worker evaluated {self.evaluated} != valid {m.valid}"),
            (s.codes == m.codes, f"dead letters by code {dict(s.codes)} != sent {dict(m.codes)}"),
            (s.letters == m.letters, f"dead-letter records {s.letters} != expected {m.letters}"),
            (s.no_reason == 0, f"{s.no_reason} dead letters without a reason"),
            (not self.warning_problems, f"warnings: {self.warning_problems[:5]}"),
            (self.longest_gap_s < self.stall_s, f"stall: no valid reading reached Kafka for "
                                                f"{self.longest_gap_s:.1f} s"),
            (max(self.probe_s, default=0) < self.stall_s,
             f"stall: the last readings became warnings after {self.probe_s} s"),
        ]
        return [msg for ok, msg in checks if not ok]


def check_warnings(mix: Mix, seen: Seen) -> list[str]:
    problems = []
    hot = set(mix.hot)
    for st, all_events in seen.warned.items():
        if not st.startswith(("MFV-", "MFX-")):
            continue   # the registry's stations (no-data checks): not this run's
        # a rule's clear condition at its first look at a station is forwarded with grade 0
        # (it closes what a worker before a restart may have left open): not a warning
        events = [e for e in all_events if e[1:] != (0, "cleared")]
        if not events and st not in hot:
            continue
        if st not in hot:
            problems.append(f"{st} warned but not hot: {events}")
        elif events != [("rain-short-intense", 1, "raised")]:
            problems.append(f"{st}: {events}")
    problems += [f"{st}: no warning" for st in sorted(hot - set(seen.warned))]
    return problems


def longest_gap(times: list[float], start: float, end: float) -> float:
    inside = sorted(t for t in times if start <= t <= end)
    if not inside:
        return end - start
    edges = [start, *inside, end]
    return max(b - a for a, b in zip(edges, edges[1:], strict=False))


async def run_once(stack: Stack, mix: Mix, conc: int, timeout: float, stall_s: float = 30.0
                   ) -> Result:
    w = Watchers(stack.bootstrap, stack.partitions)
    await w.start()
    replies = Replies()
    res = Result(mix, w.seen, replies, stall_s=stall_s)
    body, probes = mix.sends[:-2], mix.sends[-2:]
    try:
        t0 = time.monotonic()
        mqtt = [s for s in body if s.channel == "mqtt"]
        http = [s for s in body if s.channel != "mqtt"]
        res.unacked, _ = await asyncio.gather(
            asyncio.to_thread(send_mqtt, stack.mport, mqtt, timeout),
            send_http(stack, http, conc, replies))
        # the probes: the last valid readings, a hot one per channel, after all the junk
        t_probe = time.monotonic()
        res.unacked += await asyncio.to_thread(send_mqtt, stack.mport, probes[:1], 30)
        await send_http(stack, probes[1:], 1, replies)
        res.send_s = time.monotonic() - t0
        await w.until(lambda: w.seen.valid >= mix.valid and w.seen.letters >= mix.letters
                      and all(p.hot[0] in w.seen.first_warning for p in probes), timeout, stack)
        await w.until(lambda: metric_sum(fetch(stack.worker_metrics).decode(),
                                         "yujing_worker_readings_total") >= mix.valid, timeout, stack)
        res.settle_s = time.monotonic() - t0 - res.send_s
        await asyncio.sleep(1.0)  # a quiet second: nothing extra may arrive
        res.longest_gap_s = longest_gap(w.seen.valid_times, t0, t_probe)
        res.probe_s = [w.seen.first_warning.get(p.hot[0], float("inf")) - t_probe for p in probes]
        gw = fetch(stack.http + "/metrics").decode()
        res.accepted = int(metric_sum(gw, "yujing_gateway_readings_accepted_total"))
        res.http_500 = int(metric_sum(gw, "yujing_gateway_http_requests_total", status="500"))
        res.evaluated = int(metric_sum(fetch(stack.worker_metrics).decode(),
                                       "yujing_worker_readings_total"))
        res.warning_problems = check_warnings(mix, w.seen)
    finally:
        await w.stop()
    res.dead = stack.dead()
    res.log = stack.log_problems()
    return res


def print_result(r: Result, run: int) -> None:
    m, s = r.mix, r.seen
    print(f"run {run}: sent {len(m.sends):,} messages: {m.malformed:,} malformed items of "
          f"{len(m.kinds)} kinds, {m.valid:,} valid readings ({len(m.hot)} hot), "
          f"{m.unauthorized} with a bad token", flush=True)
    print(f"run {run}: send_s {r.send_s:.1f} ({(m.malformed + m.valid) / r.send_s:,.0f} items/s), "
          f"settle_s {r.settle_s:.1f}, longest_gap_s {r.longest_gap_s:.2f}, probe_s "
          f"{', '.join(f'{x:.2f}' for x in r.probe_s)}", flush=True)
    print(f"run {run}: valid in Kafka {s.valid:,}, accepted {r.accepted:,}, evaluated "
          f"{r.evaluated:,}, other readings {s.other_readings}", flush=True)
    print(f"run {run}: dead letters {s.letters:,} records (expected {m.letters:,}); by code "
          + ", ".join(f"{c} {s.codes[c]:,}/{n:,}" for c, n in m.codes.most_common()), flush=True)
    print(f"run {run}: HTTP answers " + ", ".join(f"{ch} {st}: {n}" for (ch, st), n in
                                                  sorted(r.replies.statuses.items())), flush=True)
    for problem in r.failures():
        print(f"run {run}: FAIL {problem}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--malformed", type=int, default=100_000)
    ap.add_argument("--valid", type=int, default=3_000)
    ap.add_argument("--hot", type=int, default=200)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--stall-s", type=float, default=30,
                    help="a longer gap between valid readings, or probe → warning, is a stall")
    ap.add_argument("--keep", action="store_true", help="keep the logs (prints their folder)")
    args = ap.parse_args()
    results = []
    for run in range(1, args.runs + 1):
        tmp = Path(tempfile.mkdtemp(prefix="yujing-bench-malformed-"))
        stack = Stack(tmp, Limits(), args.partitions)
        try:
            stack.start()
            mix = build(args.malformed, args.valid, args.hot, args.seed + run,
                        int(time.time() * 1000))
            r = asyncio.run(run_once(stack, mix, args.concurrency, args.timeout, args.stall_s))
        finally:
            stack.stop()
        print_result(r, run)
        results.append(r)
        if args.keep:
            print(f"run {run}: logs in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    med = statistics.median
    print(f"\nmedian of {len(results)} run(s) (Tansu, Mosquitto 3.1.1 QoS 1, one gateway, one worker, "
          f"{args.partitions} partitions):")
    print(f"send_items_per_s: {med((r.mix.malformed + r.mix.valid) / r.send_s for r in results):,.0f}")
    print(f"settle_s: {med(r.settle_s for r in results):.1f}")
    print(f"longest_gap_s: {med(r.longest_gap_s for r in results):.2f}")
    print(f"probe_warning_s: {med(max(r.probe_s) for r in results):.2f}")
    bad = [f"run {i}: {p}" for i, r in enumerate(results, 1) for p in r.failures()]
    print("verdict: " + ("PASS: 0 crashes, 0 stalls, 0 HTTP 5xx, every valid reading evaluated, "
                         "every malformed item dead-lettered" if not bad else
                         f"FAIL ({len(bad)} problems above)"))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
