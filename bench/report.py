"""Run the benchmarks (a quick profile: minutes, not hours) and write one markdown table of
every figure they print.

    .venv/bin/python bench/report.py [--out .yujing/bench/report.md] [--only latency_rate,...]
        [--broker kafka|tansu] [--timeout 900]

Every bench script prints its figures as plain ``name: value`` lines, with a ``[label]`` in
front when one script measures several cases (a broker, a batching mode and rate, a baseline);
the value is a number, optionally followed by words (a unit, a ratio's terms). Each step below
runs as its own process (``sys.executable``, the repo on ``PYTHONPATH``), its stdout is parsed
for such lines and its stderr kept in a log beside the report. A step that fails or times out
is a row saying so, and the other steps still run. Benches that need a data set (lead time,
NAB, models_eval), take hours (soak) or start many stacks one after another (scale_out:
five fresh Kafka stacks, about 15 minutes) are not in the quick profile: run them by hand.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from yujing.connectors.kafka_broker import KafkaNotInstalled, check_installed, kafka_home  # noqa: E402

LINE = re.compile(r"^(?:\[(?P<label>[^\]]+)\]\s+)?(?P<name>[A-Za-z][\w .()/-]*?):\s+"
                  r"(?P<value>-?(?:\d[\d,]*\.?\d*|\.\d+|nan|inf)(?:[eE][-+]?\d+)?)(?P<rest>.*)$")


@dataclass(frozen=True)
class Step:
    name: str
    args: tuple[str, ...]
    what: str


def steps(broker: str) -> list[Step]:
    """The quick profile: each bench with small sizes; the figures keep their meaning."""
    return [
        Step("backtest", ("bench/backtest.py", "--stations", "100", "--days", "2", "--runs", "1",
                          "--no-end-to-end"),
             "rule engine alone over all packs (the worker's ceiling)"),
        Step("throughput", ("bench/throughput.py", "--readings", "50000", "--runs", "1",
                            "--broker", broker),
             "end to end over HTTP through gateway, broker and worker"),
        Step("latency_rate", ("bench/latency_rate.py", "--rates", "50,5000", "--seconds", "10",
                              "--probes-per-s", "5", "--broker", broker),
             "publish → Kafka → warning event → notification, fixed vs adaptive batching"),
        Step("alerts", ("bench/alerts.py", "--stations", "400", "--findings", "2000"),
             "warning book storm, grouping on and off"),
        Step("warning_events", ("bench/warning_events.py", "--raises", "500", "--runs", "1",
                                "--broker", broker),
             "a storm of red raises through the real worker's book: seconds, CPU per raise"),
        Step("checkpoint", ("bench/checkpoint.py", "--series", "200", "--hours", "1", "--runs",
                            "1"), "window and warning state checkpoints"),
        Step("storm_view", ("bench/storm_view.py", "--readings", "100000", "--runs", "3"),
             "duty console's readings window"),
        Step("forecast", ("bench/forecast.py", "--repeat", "1"), "forecast ingest and rules"),
    ]


def parse(stdout: str) -> list[tuple[str, str, str]]:
    """``(label, name, value and the rest)`` of every figure line; comments (#) skipped."""
    rows = []
    for line in stdout.splitlines():
        m = LINE.match(line.strip())
        if m and not line.lstrip().startswith("#"):
            rows.append((m["label"] or "", m["name"].strip(), (m["value"] + m["rest"]).strip()))
    return rows


def run(step: Step, timeout_s: float, logs: Path) -> tuple[list[tuple[str, str, str]], str, float]:
    """Run one bench; its figures, a status word and the seconds it took."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    t0 = time.monotonic()
    with open(logs / f"{step.name}.log", "w", encoding="utf-8") as err:
        try:
            done = subprocess.run([sys.executable, *step.args], cwd=ROOT, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=err, timeout=timeout_s,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            return parse(out), f"timed out after {timeout_s:.0f} s", time.monotonic() - t0
    (logs / f"{step.name}.out").write_text(done.stdout, encoding="utf-8")
    status = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
    return parse(done.stdout), status, time.monotonic() - t0


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(results: list[tuple[Step, list[tuple[str, str, str]], str, float]],
             header: list[str]) -> str:
    lines = ["# Yujing benchmarks (quick profile)", "", *header, "",
             "| bench | case | figure | value |", "| --- | --- | --- | --- |"]
    for step, rows, status, _ in results:
        if status != "ok":
            lines.append(f"| {step.name} | | **{cell(status)}** | see {step.name}.log |")
        for label, name, value in rows:
            lines.append(f"| {step.name} | {cell(label)} | {cell(name)} | {cell(value)} |")
    lines += ["", "| bench | what it measures | status | wall s | command |",
              "| --- | --- | --- | --- | --- |"]
    for step, _, status, took in results:
        lines.append(f"| {step.name} | {cell(step.what)} | {cell(status)} | {took:.0f} | "
                     f"`python {' '.join(step.args)}` |")
    return "\n".join(lines) + "\n"


def default_broker() -> str:
    try:
        check_installed(kafka_home())
    except KafkaNotInstalled:
        return "tansu"
    return "kafka"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / ".yujing" / "bench" / "report.md")
    ap.add_argument("--only", default="", help="comma-separated step names (default: all)")
    ap.add_argument("--broker", choices=("kafka", "tansu"), default=None,
                    help="default: kafka when `make kafka` installed it, else tansu")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per bench")
    args = ap.parse_args()
    broker = args.broker or default_broker()
    chosen = [s for s in steps(broker) if not args.only or s.name in args.only.split(",")]
    if not chosen:
        ap.error(f"--only {args.only}: no such step; steps: "
                 + ", ".join(s.name for s in steps(broker)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    logs = args.out.parent
    results = []
    for step in chosen:
        print(f"# {step.name}: {' '.join(step.args)}", file=sys.stderr, flush=True)
        rows, status, took = run(step, args.timeout, logs)
        print(f"# {step.name}: {status}, {len(rows)} figures, {took:.0f} s", file=sys.stderr,
              flush=True)
        results.append((step, rows, status, took))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True, check=False).stdout.strip() or "?"
    header = [f"{time.strftime('%Y-%m-%d %H:%M %Z')}, commit {commit}, {os.cpu_count()} CPUs, "
              f"Python {platform.python_version()}, embedded broker {broker}. Each bench's "
              "own docstring (bench/README.md) says what a figure means; logs beside this file."]
    text = markdown(results, header)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    print(f"# written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
