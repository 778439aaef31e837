"""The figures of one bench/throughput.py run, their medians over runs, and how they are
printed (per run, per median, and Kafka against Tansu)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from worker_cost import EngineCost


@dataclass
class RunResult:
    ingest_s: float
    e2e_s: float
    engine: EngineCost  # this run's envelopes replayed in-process
    envelopes: int  # this run's envelopes
    cpu: dict[str, float] = field(default_factory=dict)
    warnings: int = 0  # warning events of this run's stations seen on yujing.warnings
    cpu_wall_s: float = 0.0  # first publish until the worker settled: the CPU window
    wakeups: int = 0  # the worker's voluntary context switches in that window
    counters: dict[str, float] = field(default_factory=dict)  # its /metrics counters' growth
    faults: dict[str, int] = field(default_factory=dict)  # minor page faults per child, same window

    def worker_per_cpu_s(self, n: int, idle_per_s: float = 0.0) -> float:
        """Readings per worker CPU-second; with ``idle_per_s``, over the CPU beyond what the
        idle worker spends in the same wall time."""
        cpu = self.cpu.get("worker", 0.0) - idle_per_s * self.cpu_wall_s
        return n / cpu if cpu > 0 else float("nan")


def report(label: str, n: int, r: RunResult, idle: float) -> None:
    e2e, ingest = n / r.e2e_s, n / r.ingest_s
    eng, worker = r.engine.engine_per_cpu_s, r.worker_per_cpu_s(n)
    print(f"[{label}] end_to_end_readings_per_s: {e2e:.0f}")
    print(f"[{label}] ingest_readings_per_s: {ingest:.0f}")
    print(f"[{label}] worker_readings_per_cpu_s: {worker:.0f}")
    print(f"[{label}] worker_readings_per_cpu_s_above_idle: {r.worker_per_cpu_s(n, idle):.0f}")
    print(f"[{label}] engine_readings_per_cpu_s: {eng:.0f}")
    print(f"[{label}] decode_readings_per_cpu_s: {r.engine.decode_per_cpu_s:.0f}")
    print(f"[{label}] ratio_worker_to_engine: {worker / eng:.3f} (target >= 0.5)")
    print(f"[{label}] envelopes: {r.envelopes} ({n / max(r.envelopes, 1):.0f} readings/envelope); "
          f"replayed {r.engine.envelopes} with {r.engine.readings} readings (markers included)")
    print(f"[{label}] warning_events: worker {r.warnings}, replay {r.engine.events}")
    c = r.counters
    if c.get("yujing_worker_passes"):
        passes, eval_cpu = c["yujing_worker_passes"], c.get("yujing_worker_eval_cpu_seconds", 0.0)
        share = 100 * eval_cpu / max(r.cpu.get("worker", 0.0), 1e-9)
        print(f"[{label}] worker_engine_passes: {passes:.0f} "
              f"({c.get('yujing_worker_envelopes', 0.0) / passes:.2f} envelopes/pass); "
              f"engine passes' CPU {eval_cpu:.2f} s = {share:.0f} % of the worker's, "
              f"{n / max(eval_cpu, 1e-9):.0f} readings per pass CPU-s")
    print(f"[{label}] worker_wakeups: {r.wakeups} ({r.wakeups / max(r.envelopes, 1):.1f} per envelope); "
          "minor page faults: " + " ".join(f"{k}={v}" for k, v in r.faults.items()))
    wall = r.cpu_wall_s
    print(f"[{label}] cpu_s_until_settled: " + " ".join(
        f"{k}={v:.2f}({100 * v / wall:.0f}%)" for k, v in r.cpu.items()) + f" wall={wall:.2f}")


def median_result(results: list[RunResult]) -> RunResult:
    """Each figure's median over the runs (the engine's as its CPU seconds)."""
    med = statistics.median
    eng = EngineCost(int(med(r.engine.readings for r in results)),
                     int(med(r.engine.envelopes for r in results)),
                     med(r.engine.decode_cpu_s for r in results),
                     med(r.engine.engine_cpu_s for r in results),
                     int(med(r.engine.events for r in results)))
    return RunResult(med(r.ingest_s for r in results), med(r.e2e_s for r in results), eng,
                     int(med(r.envelopes for r in results)),
                     {name: med(r.cpu[name] for r in results) for name in results[0].cpu},
                     int(med(r.warnings for r in results)), med(r.cpu_wall_s for r in results),
                     int(med(r.wakeups for r in results)),
                     {k: med(r.counters.get(k, 0.0) for r in results) for k in results[0].counters},
                     {k: int(med(r.faults.get(k, 0) for r in results)) for k in results[0].faults})


def report_ratio(n: int, kafka: RunResult, tansu: RunResult) -> None:
    """Each median figure on Kafka divided by the same figure on Tansu (this invocation)."""
    pairs = {"end_to_end_readings_per_s": (n / kafka.e2e_s, n / tansu.e2e_s),
             "ingest_readings_per_s": (n / kafka.ingest_s, n / tansu.ingest_s),
             "worker_readings_per_cpu_s": (kafka.worker_per_cpu_s(n), tansu.worker_per_cpu_s(n)),
             "engine_readings_per_cpu_s": (kafka.engine.engine_per_cpu_s,
                                           tansu.engine.engine_per_cpu_s)}
    for name, (k, t) in pairs.items():
        print(f"[kafka/tansu] {name}: {k:.0f} / {t:.0f} = {k / t:.2f}")
    for proc in sorted(set(kafka.cpu) & set(tansu.cpu)):
        print(f"[kafka/tansu] cpu_s_during_end_to_end {proc}: {kafka.cpu[proc]:.2f} / "
              f"{tansu.cpu[proc]:.2f}")
    print(f"[kafka/tansu] broker cpu_s_during_end_to_end: kafka={kafka.cpu.get('kafka', 0):.2f} "
          f"tansu={tansu.cpu.get('tansu', 0):.2f}")
