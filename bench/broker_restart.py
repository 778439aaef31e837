"""Start and restart times of the embedded brokers and of a worker on them.

    .venv/bin/python bench/broker_restart.py --broker kafka|tansu [--timeouts short|faust]

Starts the broker (Apache Kafka from ``make kafka`` on a fresh data dir, or Tansu), a
gateway and a worker as separate processes (2 partitions), posts a little rain so both
partitions write a checkpoint, then restarts the worker twice: once after SIGTERM (it
leaves its consumer group) and once after SIGKILL (the group waits for its session to
expire). ``--timeouts short`` passes ``--embedded-kafka`` (6 s session and rebalance
timeouts); ``faust`` keeps Faust's defaults (60 s each). Prints:

* ``broker_first_start_s`` / ``broker_later_start_s`` (Kafka: format + start until it
  answers a metadata request; then a restart of the same data dir; Tansu: until it listens);
* ``worker_first_start_s``: worker launched → both partitions assigned and started;
* ``worker_sigterm_gap_s`` / ``worker_sigkill_gap_s``: the signal → both partitions
  restored from their checkpoints by the next worker (which is launched right away).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from restart import stamp, wait_log  # bench/restart.py: the same log clock and waits

from yujing.connectors.embedded import free_port, tansu_command, wait_port
from yujing.connectors.kafka_broker import (
    BrokerSpec,
    kafka_home,
    prepare,
    wait_answering,
)

MIN = 60_000
STAMP = r"\[([\d\- :,]+)\] \[\d+\] \[\w+\] "
GAUGES = ("DG-HM-R01", "DG-DL-R01")   # partitions 0 and 1 of 2


class Procs:
    def __init__(self, tmp: Path) -> None:
        self.tmp, self.procs = tmp, {}

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        p = subprocess.Popen(argv, stdout=open(self.tmp / f"{name}.log", "ab"),
                             stderr=subprocess.STDOUT, cwd=self.tmp, start_new_session=True)
        self.procs[name] = p
        return p

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        p = self.procs[name]
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)


def start_broker(procs: Procs, broker: str, tmp: Path, port: int, controller: int) -> float:
    t = time.monotonic()
    if broker == "tansu":
        procs.start("broker", tansu_command(port))
        assert wait_port("127.0.0.1", port, 20)
    else:
        spec = BrokerSpec(tmp / "kafka", port, controller)
        p = procs.start("broker", prepare(spec, kafka_home()))
        assert wait_answering(spec.bootstrap, 120, lambda: p.poll() is None)
    return time.monotonic() - t


async def post(base: str, readings: list[dict]) -> None:
    async with aiohttp.ClientSession() as http, \
            http.post(f"{base}/v1/readings", json=readings) as r:
        assert r.status == 200, await r.text()


def rain(t0: int, n: int) -> list[dict]:
    return [{"station": g, "metric": "rain_mm", "ts": t0 + i * 5 * MIN, "value": 0.5}
            for g in GAUGES for i in range(n)]


def restart_gap(procs: Procs, worker: list[str], old: str, new: str, sig: int) -> float:
    procs.stop(old, sig)
    stopped = time.time()
    procs.start(new, worker)
    hits = wait_log(procs.tmp / f"{new}.log", STAMP + r"partition \d: restored checkpoint", 2, 300)
    return max(stamp(h) for h in hits) - stopped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--broker", choices=("kafka", "tansu"), default="kafka")
    ap.add_argument("--timeouts", choices=("short", "faust"), default="short")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix=f"yujing-{a.broker}-restart-"))
    procs = Procs(tmp)
    try:
        kport, cport, hport = free_port(), free_port(), free_port()
        first = start_broker(procs, a.broker, tmp, kport, cport)
        later = None
        if a.broker == "kafka":
            procs.stop("broker")
            later = start_broker(procs, a.broker, tmp, kport, cport)
        cfg = {"kafka": {"bootstrap": f"127.0.0.1:{kport}", "partitions": 2},
               "http": {"port": hport},
               "worker": {"rules_dir": str(ROOT / "rules"), "registry": str(ROOT / "stations.yaml"),
                          "data_dir": str(tmp / "worker"), "nodata_check_s": 3600,
                          "checkpoint_interval": "1s"},
               "notify": {"default": []}}
        (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
        yj = [sys.executable, "-m", "yujing"]
        worker = [*yj, "worker", "--config", str(tmp / "config.yaml"),
                  *(["--embedded-kafka"] if a.timeouts == "short" else [])]
        procs.start("gateway", [*yj, "gateway", "--config", str(tmp / "config.yaml")])
        assert wait_port("127.0.0.1", hport, 60)
        t = time.time()
        procs.start("w1", worker)
        hits = wait_log(tmp / "w1.log", STAMP + r"partition \d: no checkpoint", 2, 300)
        worker_first = max(stamp(h) for h in hits) - t
        t0 = int(time.time() * 1000) - 6 * 3_600_000
        base = f"http://127.0.0.1:{hport}"
        asyncio.run(post(base, rain(t0, 12)))
        wait_log(tmp / "w1.log", r"partition \d: checkpoint 1 at", 2, 60)
        sigterm = restart_gap(procs, worker, "w1", "w2", signal.SIGTERM)
        asyncio.run(post(base, rain(t0 + 60 * MIN, 12)))
        wait_log(tmp / "w2.log", r"partition \d: checkpoint \d+ at", 2, 60)
        sigkill = restart_gap(procs, worker, "w2", "w3", signal.SIGKILL)
        print(f"broker: {a.broker}")
        print(f"timeouts: {a.timeouts}")
        print(f"broker_first_start_s: {first:.1f}")
        if later is not None:
            print(f"broker_later_start_s: {later:.1f}")
        print(f"worker_first_start_s: {worker_first:.1f}")
        print(f"worker_sigterm_gap_s: {sigterm:.1f}")
        print(f"worker_sigkill_gap_s: {sigkill:.1f}")
    finally:
        procs.stop_all()
        print(f"# logs in {tmp}", file=sys.stderr)


if __name__ == "__main__":
    main()
