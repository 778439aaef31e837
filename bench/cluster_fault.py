"""Three Apache Kafka brokers under a 5,000 readings/s stream: one broker and the worker
killed with SIGKILL mid-stream. Readings lost, warning transitions against an
uninterrupted run of the same data, and stalls.

    .venv/bin/python bench/cluster_fault.py [--rate 5000] [--seconds 80] [--runs 1]

Each run starts a fresh cluster from the jars `make kafka` installed: three KRaft nodes on
loopback, each broker and controller (a quorum of three voters). The gateway and a worker
run as child processes (`python -m yujing gateway|worker`) with ``kafka.bootstrap`` naming
all three; they declare their topics, which on three brokers means replication 3 and
``min.insync.replicas`` 2, and the gateway's producer sends with ``acks=all``. Clients
post rain readings over HTTP at ``--rate`` for ``--seconds``: ``--stations`` gauges, one
reading a simulated minute each, every gauge's readings in order (a client waits for each
answer, retries a 503, and sends what fell due meanwhile in its next request, as a station
gateway does). The data are deterministic: a tenth of the gauges get a cloudburst (orange
then red, 3 h sum), a tenth an orange storm, a tenth an hour of heavy rain (short-duration
heavy rain, blue), each of which clears again before the stream ends; the rest drizzle.

The first run is the baseline: nothing is killed. The fault runs kill -9 the broker that
leads partition 0 of ``yujing.readings`` at ``--kill-broker-at`` seconds, start it again
``--broker-down`` seconds later, and kill -9 the worker at ``--kill-worker-at`` seconds and
start a new one at once. After the stream every run waits until the worker's group has
committed the end of ``yujing.readings``, then reads both topics to their end. Prints:

* ``lost``: readings the gateway answered 200 for that are not on ``yujing.readings``
  (distinct station and event time; ``duplicates``: records beyond those);
* ``transitions`` and ``transitions_differ``: the worker's warning events on
  ``yujing.warnings`` as a set of (rule, station, kind, grade, event time), against the
  baseline's; every difference is printed;
* ``gateway_stall_s``: the longest gap between two answered requests (after each fault:
  the longest starting in its window);
* ``worker_delay_s``: the longest time from a reading's answer to the first warning event
  it caused (how long the worker stood still), and ``warning_gap_s``, the longest gap
  between two warning events;
* ``worker_restart_s``: the worker's SIGKILL until the new worker has every partition
  restored; ``isr_full_s``: the broker's restart until every partition is in sync again;
* a verdict line: PASS when no reading is lost, the transitions are identical and the
  baseline raised and cleared the warnings the data were made for.

Medians over ``--runs`` fault runs. Two cores run three JVMs, the gateway, the worker and
these clients: the stalls include waiting for a core.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broker_restart import Procs  # bench/broker_restart.py: children with their own logs
from cluster_parts import (  # bench/cluster_parts.py: data, clients and Kafka reads
    RESTORED,
    Faults,
    Kafka,
    Plan,
    Run,
    count,
    expected_known,
    stream,
    wait_caught_up,
    wait_log,
)

from yujing.connectors.embedded import die_with_parent, free_port, wait_port
from yujing.connectors.kafka_broker import bootstrap_of, cluster, cluster_id, kafka_home, prepare

PARTITIONS = 4
BOTH = ("gateway_stall_s", "worker_delay_s", "warning_gap_s", "worker_done_after_stream_s")


class Owned(Procs):
    """Procs that end with the bench: Ctrl-C and SIGTERM run the cleanup (main), and the
    kernel sends each child SIGTERM if the bench itself is killed."""

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        with open(self.tmp / f"{name}.log", "ab") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.tmp,
                                 start_new_session=True, preexec_fn=die_with_parent)
        self.procs[name] = p
        return p

    def stop_all(self, grace: float = 30.0) -> None:
        """SIGTERM to every child at once (a broker waits for its peers), then SIGKILL."""
        live = [p for p in self.procs.values() if p.poll() is None]
        for p in live:
            p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in live:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except Exception:
                p.kill()
                p.wait()


def write_config(tmp: Path, a: argparse.Namespace, bootstrap: str, http_port: int) -> Path:
    cfg = {"kafka": {"bootstrap": bootstrap, "partitions": PARTITIONS,
                     "session_timeout_s": a.session_timeout, "rebalance_timeout_s": a.session_timeout},
           "http": {"port": http_port, "max_body_bytes": 16 << 20},
           "worker": {"rules_dir": str(ROOT / "rules"), "registry": str(tmp / "stations.yaml"),
                      "data_dir": str(tmp / "worker"), "nodata_check_s": 3600,
                      "checkpoint_interval": f"{a.checkpoint}s"},
           "notify": {"default": []}}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def run_once(a: argparse.Namespace, plan: Plan, faults: bool, tmp: Path) -> Run:
    """One fresh cluster, gateway and worker; the stream; counts. Children stopped after."""
    tmp.mkdir(parents=True)
    procs = Owned(tmp)
    try:
        specs = cluster(tmp / "kafka", 3, heap_mb=a.heap_mb)
        cid = cluster_id(tmp / "kafka")
        argvs = {s.node_id: prepare(s, kafka_home(), cid) for s in specs}
        for s in specs:
            procs.start(f"kafka{s.node_id}", argvs[s.node_id])
        bootstrap = bootstrap_of(specs)
        kafka = Kafka(bootstrap, specs, argvs, procs)
        kafka.wait_registered(120)
        (tmp / "stations.yaml").write_text(plan.registry(), encoding="utf-8")
        hport = free_port()
        config = write_config(tmp, a, bootstrap, hport)
        yj = [sys.executable, "-m", "yujing"]
        worker = [*yj, "worker", "--config", str(config)]
        procs.start("gateway", [*yj, "gateway", "--config", str(config)])
        if not wait_port("127.0.0.1", hport, 120):
            raise SystemExit(f"the gateway did not listen; see {tmp / 'gateway.log'}")
        procs.start("worker1", worker)
        asyncio.run(wait_log(tmp / "worker1.log", RESTORED, PARTITIONS, 180))
        schedule = Faults(kafka, worker, a, PARTITIONS) if faults else None
        run = asyncio.run(stream(f"http://127.0.0.1:{hport}", plan, a.clients, schedule))
        caught_up, problem = asyncio.run(wait_caught_up(bootstrap, PARTITIONS, a.drain))
        if caught_up is None:
            run.problems.append(problem)
        else:
            run.figures["worker_done_after_stream_s"] = caught_up - run.ended
        asyncio.run(count(run, plan, bootstrap, PARTITIONS))
        return run
    finally:
        procs.stop_all()


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def report(base: Run, runs: list[Run], plan: Plan) -> bool:
    reasons = []
    missing = expected_known(base.transitions, plan)
    if missing:
        reasons.append(f"the baseline lacks {len(missing)} expected transitions, e.g. "
                       f"{sorted(missing)[:3]}")
    for name, r in [("baseline", base)] + [(f"fault run {i + 1}", r) for i, r in enumerate(runs)]:
        reasons += [f"{name}: {p}" for p in r.problems]
        if r.lost:
            reasons.append(f"{name}: {r.lost} readings lost")
        if r.lacks_spec:
            reasons.append(f"{name}: topics not as declared: {r.lacks_spec[:3]}")
        if r.below_rf3:
            reasons.append(f"{name}: topics with fewer than 3 replicas: {r.below_rf3}")
    differ = [r.transitions ^ base.transitions for r in runs]
    for i, d in enumerate(differ):
        if d:
            reasons.append(f"fault run {i + 1}: {len(d)} transitions differ from the baseline")
            for t in sorted(d)[:20]:
                side = "only in fault run" if t in runs[i].transitions else "only in baseline"
                print(f"# differs ({side}): {t}")
    print(f"stations: {plan.stations}")
    print(f"rate_readings_per_s: {plan.rate}")
    print(f"stream_s: {plan.seconds}")
    print(f"fault_runs: {len(runs)}")
    print(f"sent_readings: {base.acked_count} baseline, {median([r.acked_count for r in runs]):.0f} "
          "fault (median)")
    print(f"achieved_readings_per_s: {base.achieved_rate:.0f} baseline, "
          f"{median([r.achieved_rate for r in runs]):.0f} fault (median)")
    print(f"lost: {base.lost} baseline, {[r.lost for r in runs]} fault")
    print(f"duplicates: {base.duplicates} baseline, {[r.duplicates for r in runs]} fault")
    print(f"retried_requests: {base.retries} baseline, {[r.retries for r in runs]} fault")
    print(f"transitions: {len(base.transitions)} baseline, {[len(r.transitions) for r in runs]} fault")
    print(f"transitions_differ: {[len(d) for d in differ]}")
    print(f"repeated_events: {base.repeats} baseline, {[r.repeats for r in runs]} fault")
    nan = float("nan")
    for key in BOTH:
        vals = [r.figures.get(key, nan) for r in runs]
        print(f"{key}: {base.figures.get(key, nan):.2f} baseline, {median(vals):.2f} fault "
              f"(median of {[round(v, 2) for v in vals]})")
    for key in sorted({k for r in runs for k in r.figures} - set(BOTH)):
        vals = [r.figures[key] for r in runs if key in r.figures]
        print(f"{key}: {median(vals):.2f} (median of {[round(v, 2) for v in vals]})")
    ratio = median([r.figures["gateway_stall_s"] for r in runs]) / max(base.figures["gateway_stall_s"], 1e-3)
    print(f"ratio_gateway_stall_fault_to_baseline: {ratio:.1f}")
    print(f"verdict: {'FAIL' if reasons else 'PASS'}" + (": " + "; ".join(reasons) if reasons else
                                                          " (0 lost, transitions identical)"))
    return not reasons


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=int, default=5000, help="readings per second")
    ap.add_argument("--seconds", type=float, default=80.0, help="length of the stream")
    ap.add_argument("--stations", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4, help="HTTP clients, each its own gauges")
    ap.add_argument("--runs", type=int, default=1, help="fault runs after the baseline")
    ap.add_argument("--kill-broker-at", type=float, default=20.0)
    ap.add_argument("--broker-down", type=float, default=15.0)
    ap.add_argument("--kill-worker-at", type=float, default=50.0)
    ap.add_argument("--checkpoint", type=float, default=10.0, help="worker.checkpoint_interval, s")
    ap.add_argument("--session-timeout", type=float, default=6.0,
                    help="the worker's Kafka session and rebalance timeouts, s")
    ap.add_argument("--drain", type=float, default=300.0,
                    help="longest wait after the stream for the worker to commit the end")
    ap.add_argument("--heap-mb", type=int, default=384, help="each broker's JVM heap")
    ap.add_argument("--keep", action="store_true", help="keep the logs and data")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # run the cleanup on SIGTERM too
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # a killed broker: one line a try
    plan = Plan(a.stations, a.rate, a.seconds)
    plan.check()
    top = Path(tempfile.mkdtemp(prefix="yujing-cluster-fault-"))
    print(f"# logs in {top}", file=sys.stderr)
    base = run_once(a, plan, False, top / "baseline")
    runs = [run_once(a, plan, True, top / f"fault{i + 1}") for i in range(a.runs)]
    ok = report(base, runs, plan)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
