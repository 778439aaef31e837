"""Restart gap of a SIGKILLed worker on the embedded Tansu broker, by checkpoint history.

    .venv/bin/python bench/restart.py [--stations 1000] [--hours 4] [--checkpoints 60]

Starts Tansu, a gateway and a worker as separate processes (4 partitions), loads
``--stations`` rain gauges with ``--hours`` of 1-minute readings over HTTP, then keeps one
reading per gauge arriving every 0.5 s with ``worker.checkpoint_interval: 1s`` until each
partition has written about ``--checkpoints`` checkpoints (60 ≈ one hour at the default
60 s interval). Tansu has no compaction, so every checkpoint stays in the changelog and a
restarted worker's Faust recovery reads them all. Then SIGKILL, restart, and prints:

* ``changelog_bytes``: what the checkpoints put into the changelog (sum of stored sizes);
* ``recovery_s``: the new worker's partition assignment to Faust's "Recovery complete";
* ``gap_s``: SIGKILL to every partition restored and re-processed (processing again);
* ``restore_s`` / ``replayed``: the slowest partition's restore and what it re-processed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from yujing.connectors.embedded import free_port, tansu_command, wait_port

MIN = 60_000
STAMP = r"\[([\d\- :,]+)\] \[\d+\] \[\w+\] "


def stamp(s: str) -> float:
    return datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def wait_log(path: Path, pattern: str, count: int, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = re.findall(pattern, path.read_text(errors="replace")) if path.exists() else []
        if len(hits) >= count:
            return hits
        time.sleep(0.1)
    raise SystemExit(f"{path.name}: no {pattern!r} x{count} in {timeout}s")


async def post_all(base: str, batches: list[list[dict]]) -> None:
    async with aiohttp.ClientSession() as http:
        sem = asyncio.Semaphore(8)

        async def one(b: list[dict]) -> None:
            async with sem, http.post(f"{base}/v1/readings", json=b) as r:
                assert r.status == 200, await r.text()
        await asyncio.gather(*(one(b) for b in batches))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stations", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=4.0)
    ap.add_argument("--checkpoints", type=int, default=60)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="yujing-restart-"))
    procs: list[subprocess.Popen] = []

    def start(name: str, argv: list[str]) -> subprocess.Popen:
        p = subprocess.Popen(argv, stdout=open(tmp / f"{name}.log", "ab"),
                             stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True)
        procs.append(p)
        return p

    try:
        kport, hport = free_port(), free_port()
        start("tansu", tansu_command(kport))
        assert wait_port("127.0.0.1", kport, 20)
        reg = tmp / "stations.yaml"
        reg.write_text("stations:\n" + "".join(
            f"  - {{id: G{i:05d}, name: g{i}, kind: rain_gauge, town: T{i % 32}, "
            f"expected_interval: 1m}}\n" for i in range(a.stations)))
        cfg = {"kafka": {"bootstrap": f"127.0.0.1:{kport}", "partitions": 4},
               "http": {"port": hport, "max_body_bytes": 64 << 20, "rate_limit": None},
               "worker": {"rules_dir": str(ROOT / "rules"), "registry": str(reg),
                          "data_dir": str(tmp / "worker"), "nodata_check_s": 3600,
                          "checkpoint_interval": "1s"},
               "notify": {"default": []}}
        (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
        yj = [sys.executable, "-m", "yujing"]
        worker = [*yj, "worker", "--config", str(tmp / "config.yaml"), "--embedded-kafka"]
        start("gateway", [*yj, "gateway", "--config", str(tmp / "config.yaml")])
        assert wait_port("127.0.0.1", hport, 30)
        start("worker", worker)
        wlog = tmp / "worker.log"
        wait_log(wlog, r"partition \d: no checkpoint", 4, 60)
        base = f"http://127.0.0.1:{hport}"
        now = int(time.time() * 1000)
        minutes = int(a.hours * 60)
        t0 = now - (minutes + 1) * MIN
        rng = random.Random(11)   # showers: mostly dry minutes, 0.1 mm steps (bench/checkpoint.py)
        rows = [{"station": f"G{s:05d}", "metric": "rain_mm", "ts": t0 + m * MIN,
                 "value": round(rng.gammavariate(1.2, 0.4), 1) if rng.random() < 0.15 else 0.0}
                for m in range(minutes) for s in range(a.stations)]
        t = time.monotonic()
        asyncio.run(post_all(base, [rows[i:i + 5000] for i in range(0, len(rows), 5000)]))
        print(f"# loaded {len(rows)} readings in {time.monotonic() - t:.1f}s", file=sys.stderr)
        k = 0
        while len(re.findall(r"partition \d: checkpoint", wlog.read_text())) < 4 * a.checkpoints:
            k += 1
            ts = int(time.time() * 1000) - 1000   # new every time: the gateway drops repeats
            asyncio.run(post_all(base, [[{"station": f"G{s:05d}", "metric": "rain_mm",
                                          "ts": ts, "value": 0.0} for s in range(a.stations)]]))
            time.sleep(0.5)
        sizes = [int(x) for x in re.findall(r"raw, (\d+) stored", wlog.read_text())]
        procs[-1].send_signal(signal.SIGKILL)
        procs[-1].wait(10)
        killed = time.time()
        start("worker2", worker)
        w2 = tmp / "worker2.log"
        restored = wait_log(w2, STAMP + r"partition (\d): restored checkpoint \d+ .* in "
                                        r"([\d.]+)s; re-processed (\d+) envelopes \((\d+) "
                                        r"readings\) after it in ([\d.]+)s", 4, 600)
        assigned = stamp(wait_log(w2, STAMP + r"Executing _on_partitions_assigned", 1, 5)[0])
        recovered = stamp(wait_log(w2, STAMP + r"\[\^---Recovery\]: Recovery complete", 1, 5)[0])
        print(f"stations: {a.stations}")
        print(f"checkpoints_per_partition: {len(sizes) // 4}")
        print(f"changelog_bytes: {sum(sizes)}")
        print(f"last_checkpoint_bytes_per_partition: {sizes[-1]}")
        print(f"recovery_s: {recovered - assigned:.2f}")
        print(f"gap_s: {max(stamp(r[0]) for r in restored) - killed:.2f}")
        slow = max(restored, key=lambda r: float(r[2]) + float(r[5]))
        print(f"restore_s: {float(slow[2]):.3f}")
        print(f"replay_s: {float(slow[5]):.3f}")
        print(f"replayed: {slow[3]} envelopes, {slow[4]} readings")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
        print(f"# logs in {tmp}", file=sys.stderr)


if __name__ == "__main__":
    main()
