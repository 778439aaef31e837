"""Scale-out on Apache Kafka: 1, 2 and 3 workers on a topic of 8 partitions, and the gap
when a worker joins, leaves (SIGTERM) or dies (SIGKILL) under a steady feed.

    .venv/bin/python bench/scale_out.py [--workers 1,2,3] [--readings 200000] [--runs 3]
        [--rate 2000] [--seconds 120] [--session-timeout 6] [--only split|rebalance]

Every stack is fresh: a one-node Apache Kafka (the jars of ``make kafka``, as
``kafka.embedded: kafka`` runs them), a gateway and the workers as separate processes
(``python -m yujing gateway|worker``), ``kafka.partitions: 8``, one consumer group.

Split (per worker count N): once every live worker's heartbeat holds some partitions and
together they hold all 8, ``--readings`` rain readings per run go in over HTTP as fast as the
stack takes them (bench/throughput.py's batches, publisher and per-partition markers: a run
ends when every partition's marker warning is on ``yujing.warnings``). Per worker: the
partitions it holds, the readings it evaluated (its heartbeat's count, which must add up to
every reading sent), its CPU seconds, readings/s and readings per CPU-second; the total
readings/s and its ratio to N = 1 of the same invocation. Medians over ``--runs``. All of it
shares 2 cores, so the total cannot grow with N here: what shows the split is each worker's
share of the readings and of the workers' CPU.

Rebalance: two workers under ``--rate`` readings/s of deterministic rain for ``--seconds``
(bench/cluster_parts.py: storms that raise and clear warnings at a tenth of the gauges), plus
a probe that times every partition's evaluations (bench/scale_parts.py). A baseline run has no
events; the event run starts a third worker at ``--join-at`` s, stops w1 with SIGTERM at
``--leave-at`` and w2 with SIGKILL at ``--kill-at``. Per event, the gap is the longest time
without an evaluation on a partition that moved (some worker restored it after the event),
and on any partition. The SIGKILL gap includes the session timeout (``--session-timeout``,
which sets the workers' ``kafka.session_timeout_s`` and ``rebalance_timeout_s``). State:
``transitions_differ`` counts the warning events (rule, station, kind, grade, event time) not
in both runs (must be 0), ``lost`` the acknowledged readings not on the topic.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cluster_parts import Plan, Run, count, expected_known, sleep_until, stream, wait_caught_up
from scale_parts import Stack, beats, evaluations, joins, longest_gap, moved, probe, probe_stations
from throughput import Watcher, cpu_seconds, make_batches, marker_stations, markers, publish_http

EVENTS = (("join", "join_at", None), ("leave", "leave_at", signal.SIGTERM),
          ("kill", "kill_at", signal.SIGKILL))


def log(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


def med(xs) -> float:
    xs = list(xs)
    return statistics.median(xs) if xs else float("nan")


# ---------------------------------------------------------------- split

async def settled(stack: Stack, total: int, since: float, timeout: float) -> dict[str, int]:
    """Each live worker's heartbeat count, once the heartbeats after ``since`` add up to
    ``total`` (every reading sent so far evaluated); said, not hidden, if they never do."""
    deadline = time.monotonic() + timeout
    while True:
        last = {}
        for n in stack.live_workers():
            bs = [b for b in beats(stack.log(n)) if b.t >= since]
            last[n] = bs[-1].readings if bs else -1
        if (min(last.values()) >= 0 and sum(last.values()) >= total) or time.monotonic() > deadline:
            if sum(last.values()) != total:
                log(f"worker heartbeats count {last} = {sum(last.values())} readings, sent {total}")
            return last
        await asyncio.sleep(0.5)


async def split_runs(a: argparse.Namespace, stack: Stack) -> list[dict]:
    held = await stack.wait_split(time.time(), 180)
    log(f"{len(held)} workers hold " + "; ".join(f"{n}: {sorted(p)}" for n, p in held.items()))
    w = Watcher(stack.bootstrap, "yujing.readings", "yujing.warnings", a.partitions)
    await w.start()
    url = stack.http + "/v1/readings"
    try:
        warm = marker_stations("warm", a.partitions)
        await publish_http(url, [orjson.dumps(markers(warm))], 1, 30)
        await w.wait(lambda: all(s in w.warned for s in warm), 120, "the warm-up markers")
        sent = len(warm)
        before = await settled(stack, sent, time.time(), 30)
        procs = [*stack.live_workers(), "gateway", "kafka1"]
        results = []
        for run in range(1, a.runs + 1):
            bodies = [orjson.dumps(b) for b in make_batches(run, a.readings, a.stations, a.batch)]
            marks = marker_stations(f"r{run}", a.partitions)
            cpu0 = {n: cpu_seconds(stack.pid(n)) for n in procs}
            t0 = time.monotonic()
            await publish_http(url, bodies, a.concurrency, a.timeout)
            await publish_http(url, [orjson.dumps(markers(marks))], 1, 30)
            t1 = await w.wait(lambda m=marks: all(s in w.warned for s in m), a.timeout,
                              f"the marker warnings of run {run}")
            cpu = {n: cpu_seconds(stack.pid(n)) - cpu0[n] for n in procs}
            sent += a.readings + a.partitions
            after = await settled(stack, sent, time.time(), 30)
            results.append({"wall": t1 - t0, "cpu": cpu, "held": stack.held(0),
                            "readings": {n: after[n] - before[n] for n in after}})
            before = after
            log(f"N={len(held)} run {run}: {a.readings} readings in {t1 - t0:.2f} s; "
                f"per worker {results[-1]['readings']}")
        return results
    finally:
        await w.stop()


def split_report(n: int, a: argparse.Namespace, results: list[dict], one: float | None) -> float:
    wall = med(r["wall"] for r in results)
    total = a.readings / wall
    workers = sorted(results[0]["readings"])
    cpu_all = med(sum(r["cpu"][x] for x in workers) for r in results)
    for x in workers:
        held = sorted(results[-1]["held"].get(x, ()))
        got = med(r["readings"][x] for r in results)
        cpu = med(r["cpu"][x] for r in results)
        rate = med(r["readings"][x] / r["wall"] for r in results)
        print(f"[N={n} {x}] partitions_held: {len(held)} ({','.join(map(str, held))})")
        print(f"[N={n} {x}] readings_evaluated: {got:.0f} ({100 * got / a.readings:.0f}% of the run)")
        print(f"[N={n} {x}] cpu_s: {cpu:.2f} ({100 * cpu / max(cpu_all, 1e-9):.0f}% of the workers' "
              f"CPU, {100 * cpu / wall:.0f}% of a core)")
        print(f"[N={n} {x}] readings_per_s: {rate:.0f}")
        print(f"[N={n} {x}] readings_per_cpu_s: {got / max(cpu, 1e-9):.0f}")
    for x in ("gateway", "kafka1"):
        print(f"[N={n}] cpu_s_{x}: {med(r['cpu'][x] for r in results):.2f}")
    print(f"[N={n}] total_readings_per_s: {total:.0f} (median wall {wall:.2f} s of {len(results)})")
    if one is not None:
        print(f"[N={n}] ratio_to_one_worker: {total / one:.2f}")
    return total


def split_phase(a: argparse.Namespace, top: Path) -> None:
    one = None
    for n in a.workers:
        stack = Stack(top / f"split{n}", a.partitions, a.session_timeout, a.checkpoint,
                      heap_mb=a.heap_mb)
        try:
            stack.start(n)
            results = asyncio.run(split_runs(a, stack))
        finally:
            stack.close()
        total = split_report(n, a, results, one)
        one = total if n == 1 else one


# ---------------------------------------------------------------- rebalance

class Schedule:
    """The events of the event run, beside the stream (cluster_parts.stream calls run()).
    Each event waits for its time and for the split after the one before it to settle (the
    live workers' heartbeats hold every partition), so two rebalances never overlap; the
    run's feed goes on until the last one has settled."""

    def __init__(self, stack: Stack, a: argparse.Namespace) -> None:
        self.stack, self.a = stack, a

    async def run(self, run: Run) -> None:
        for (name, at, sig), target in zip(EVENTS, ("w3", "w1", "w2")):
            await sleep_until(run.started + getattr(self.a, at))
            run.faults[name] = t = time.time()
            if sig is None:
                self.stack.add_worker()
            else:
                self.stack.send(target, sig)
            log(f"{name}: {target} at {t - run.started:.1f} s")
            held = await self.stack.wait_split(t, 240)
            run.figures[f"{name}_settled_s"] = time.time() - t
            log(f"{name}: settled after {time.time() - t:.1f} s: "
                + "; ".join(f"{n}: {sorted(p)}" for n, p in held.items()))
        if time.time() > run.started + self.a.seconds:
            log("the events outlasted the feed: raise --seconds")


async def rebalance_run(a: argparse.Namespace, plan: Plan, stack: Stack, events: bool):
    await stack.wait_split(time.time(), 180)
    probes = probe_stations(a.partitions)
    stop = asyncio.Event()
    ticks = asyncio.create_task(probe(stack.http + "/v1/readings", probes, plan.t0,
                                      a.probe_every, stop))
    try:
        run = await stream(stack.http, plan, a.clients, Schedule(stack, a) if events else None)
    finally:
        stop.set()
        sent = await ticks
    run.faults["end"] = time.time()
    caught, problem = await wait_caught_up(stack.bootstrap, a.partitions, a.drain)
    if caught is None:
        run.problems.append(problem)
    await count(run, plan, stack.bootstrap, a.partitions)
    # the probe's own events (a partition that starts empty forwards a first clear of every key)
    run.transitions = {t for t in run.transitions if t[1] not in probes}
    evals = await evaluations(stack.bootstrap, a.partitions, probes)
    got = sum(len(v) for v in evals.values())
    if got != sent * a.partitions:
        run.problems.append(f"probe: {got} of {sent * a.partitions} probe readings evaluated")
    return run, evals


def rebalance_once(a: argparse.Namespace, plan: Plan, events: bool, tmp: Path):
    stack = Stack(tmp, a.partitions, a.session_timeout, a.checkpoint, plan.registry(), a.heap_mb)
    try:
        stack.start(2)
        run, evals = asyncio.run(rebalance_run(a, plan, stack, events))
        return run, evals, stack
    finally:
        stack.close()


def gaps_report(a: argparse.Namespace, base, ev) -> list[str]:
    (brun, bevals, _), (run, evals, stack) = base, ev
    s0 = brun.started + 5   # the probe's first seconds: the gateway's first envelopes
    steady = max(longest_gap(ts, s0, brun.faults["end"])[0] for ts in bevals.values())
    print(f"probe_every_s: {a.probe_every}")
    print(f"session_timeout_s: {a.session_timeout} (kafka.session_timeout_s and "
          "rebalance_timeout_s of the workers)")
    print(f"baseline_longest_gap_s: {steady:.2f} (any partition, no event)")
    joined = [t for t, _ in joins(stack.log("w3"))]
    if joined:
        print(f"join_launch_to_group_join_s: {joined[0] - run.faults['join']:.2f} (the new worker's "
              "own start, before any partition stops)")
    names = [e[0] for e in EVENTS] + ["end"]
    reasons = []
    for i, name in enumerate(names[:-1]):
        t0, t1 = run.faults[name], run.faults[names[i + 1]]
        mv = sorted(moved(stack, t0, t1))
        gaps = {p: longest_gap(ts, t0, t1) for p, ts in evals.items()}
        gm = max((gaps[p][0] for p in mv), default=float("nan"))
        worst = max(gaps, key=lambda p: gaps[p][0])
        print(f"{name}_gap_s: {gm:.2f} (moved partitions {','.join(map(str, mv)) or 'none'})")
        print(f"{name}_gap_any_partition_s: {gaps[worst][0]:.2f} (partition {worst}, from "
              f"{gaps[worst][1] - t0:+.2f} s after the event)")
        print(f"{name}_settled_s: {run.figures[name + '_settled_s']:.2f} (the event until the "
              "heartbeats of the live workers hold every partition)")
        log(f"{name}: per partition (gap s, start after the event s): " + ", ".join(
            f"{p}: {g:.2f}@{st - t0:+.1f}" for p, (g, st) in sorted(gaps.items())))
        if not mv:
            reasons.append(f"{name}: no partition moved")
    return reasons


def rebalance_phase(a: argparse.Namespace, top: Path) -> bool:
    plan = Plan(a.plan_stations, a.rate, a.seconds)
    plan.check()
    base = rebalance_once(a, plan, False, top / "baseline")
    ev = rebalance_once(a, plan, True, top / "events")
    reasons = gaps_report(a, base, ev)
    (brun, _, _), (run, _, _) = base, ev
    missing = expected_known(brun.transitions, plan)
    if missing:
        reasons.append(f"the baseline lacks {len(missing)} expected transitions, "
                       f"e.g. {sorted(missing)[:3]}")
    differ = run.transitions ^ brun.transitions
    for t in sorted(differ)[:20]:
        side = "only in event run" if t in run.transitions else "only in baseline"
        print(f"# differs ({side}): {t}")
    for label, r in (("baseline", brun), ("event run", run)):
        reasons += [f"{label}: {p}" for p in r.problems]
        reasons += [f"{label}: {r.lost} readings lost"] if r.lost else []
    reasons += [f"{len(differ)} transitions differ"] if differ else []
    print(f"achieved_readings_per_s: {brun.achieved_rate:.0f} baseline, {run.achieved_rate:.0f} events")
    print(f"transitions: {len(brun.transitions)} baseline, {len(run.transitions)} events")
    print(f"transitions_differ: {len(differ)}")
    print(f"repeated_events: {brun.repeats} baseline, {run.repeats} events")
    print(f"lost: {brun.lost} baseline, {run.lost} events")
    print(f"duplicates: {brun.duplicates} baseline, {run.duplicates} events")
    print(f"verdict: {'FAIL: ' + '; '.join(reasons) if reasons else 'PASS'}")
    return not reasons


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=("split", "rebalance"), help="one part (default both)")
    ap.add_argument("--workers", default="1,2,3", help="worker counts of the split part")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--readings", type=int, default=200_000, help="per split run")
    ap.add_argument("--runs", type=int, default=3, help="split runs per worker count (median)")
    ap.add_argument("--stations", type=int, default=1000, help="split: stations of a run")
    ap.add_argument("--batch", type=int, default=500, help="split: readings per request")
    ap.add_argument("--concurrency", type=int, default=8, help="split: requests in flight")
    ap.add_argument("--timeout", type=float, default=180, help="split: seconds per phase of a run")
    ap.add_argument("--rate", type=int, default=2000, help="rebalance: readings per second")
    ap.add_argument("--seconds", type=float, default=150.0, help="rebalance: length of the feed")
    ap.add_argument("--plan-stations", type=int, default=400, help="rebalance: rain gauges")
    ap.add_argument("--clients", type=int, default=4, help="rebalance: HTTP clients")
    ap.add_argument("--join-at", type=float, default=25.0)
    ap.add_argument("--leave-at", type=float, default=55.0)
    ap.add_argument("--kill-at", type=float, default=85.0)
    ap.add_argument("--probe-every", type=float, default=0.1, help="s between probe readings")
    ap.add_argument("--session-timeout", type=float, default=6.0,
                    help="the workers' Kafka session and rebalance timeouts, s")
    ap.add_argument("--checkpoint", type=float, default=10.0, help="worker.checkpoint_interval, s")
    ap.add_argument("--drain", type=float, default=300.0, help="rebalance: longest wait to catch up")
    ap.add_argument("--heap-mb", type=int, default=512, help="the broker's JVM heap")
    a = ap.parse_args()
    a.workers = [int(x) for x in a.workers.split(",")]
    if not a.join_at < a.leave_at < a.kill_at < a.seconds:
        ap.error("need --join-at < --leave-at < --kill-at < --seconds")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # run the cleanup on SIGTERM too
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    top = Path(tempfile.mkdtemp(prefix="yujing-scale-out-"))
    print(f"# logs in {top}", file=sys.stderr)
    print(f"partitions: {a.partitions} cpus: {os.cpu_count()} load_1m: {os.getloadavg()[0]:.2f} "
          f"broker: Apache Kafka, one node", flush=True)
    ok = True
    if a.only in (None, "split"):
        split_phase(a, top)
    if a.only in (None, "rebalance"):
        ok = rebalance_phase(a, top)
    print(f"load_1m_at_end: {os.getloadavg()[0]:.2f}")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
