"""Window and warning state survive a worker's SIGKILL and a rebalance, on Tansu and on
Apache Kafka (each test runs on both: ``broker_kind``).

The worker checkpoints each partition's pipeline to a changelog-backed Faust table and, on
assignment, restores the checkpoint and re-processes the readings after it
(yujing/streams/state.py). The broker, the gateway and the workers run as separate
processes so one worker alone can die.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

import aiohttp
import yaml

from tests.support.brokers import BrokerKind
from tests.support.duty import HASHED, ROOT, SECRET, TOKENS, Procs
from tests.support.readings import rain
from yujing.connectors.embedded import free_port, wait_port

MIN = 60_000
STORM = "DG-HM-R01"      # partition 0 of 2: its 3 h sum crosses 50 mm only across the kill
BURST = "DG-DL-R01"      # partition 1 of 2: short intense rain raised before the kill


def stack(procs: Procs, tmp: Path, hooks, kind: BrokerKind) -> tuple[list[str], str]:
    """A fresh broker, a gateway, and the command line of a worker (6 s session and
    rebalance timeouts, as for any broker on this machine; a record Faust loses at a move
    is read again after 3 s, streams/commit_stall.py); the gateway's base URL."""
    broker = kind.start(procs, tmp)
    hport = free_port()
    cfg = {"kafka": {"bootstrap": broker.bootstrap, "partitions": 2},
           "http": {"port": hport},
           "gateway": {"linger_ms": 20},
           "worker": {"rules_dir": str(ROOT / "rules"), "registry": str(ROOT / "stations.yaml"),
                      "data_dir": str(tmp / "worker"), "nodata_check_s": 3600,
                      "checkpoint_interval": "2s", "commit_stall": "3s"},
           "notify": {"default": [hooks.url("duty")]},
           "alerts": {"tick": "300ms", "grouping": {"wait": "0s", "interval": "0s"},
                      "delivery": {"retries": 1, "backoff": "100ms", "timeout": "5s"}},
           "console": {"tokens": HASHED, "link_secret": SECRET}}
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    yj = [sys.executable, "-m", "yujing"]
    procs.start("gateway", [*yj, "gateway", "--config", str(config)])
    assert wait_port("127.0.0.1", hport, 30)
    return [*yj, "worker", "--config", str(config), "--embedded-kafka"], f"http://127.0.0.1:{hport}"


async def post(http: aiohttp.ClientSession, base: str, readings: list[dict]) -> None:
    async with http.post(f"{base}/v1/readings", json=readings) as r:
        assert r.status == 200, await r.text()


async def incidents(http: aiohttp.ClientSession, base: str, rule: str, station: str) -> list[dict]:
    headers = {"Authorization": f"Bearer {TOKENS['a1']}"}
    async with http.get(f"{base}/v1/warnings?state=all", headers=headers) as r:
        return [w for w in await r.json() if w["rule"] == rule and w["station"] == station]


async def wait_incident(http: aiohttp.ClientSession, base: str, rule: str, station: str,
                        pred, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in await incidents(http, base, rule, station):
            if pred(w):
                return w
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {rule}@{station} incident as expected in {timeout}s: "
                         f"{await incidents(http, base, rule, station)}")


def wait_log(procs: Procs, name: str, pattern: str, count: int = 1, timeout: float = 60) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = re.findall(pattern, procs.log(name))
        if len(hits) >= count:
            return hits
        time.sleep(0.1)
    raise AssertionError(f"{name}.log: no {pattern!r} x{count} in {timeout}s:\n"
                         f"{procs.log(name)[-3000:]}")


def log_time(line_ts: str) -> float:
    return datetime.strptime(line_ts, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def about(hooks, iid: str) -> list[str]:
    return [m["title"] for m in hooks.to("duty") if iid in m["message"]]


async def test_sigkill_restart_keeps_windows_and_warnings(hooks, procs, tmp_path, broker_kind):
    worker, base = stack(procs, tmp_path, hooks, broker_kind)
    procs.start("worker", worker)
    # a worker's first start on a fresh Kafka also waits for the group coordinator
    wait_log(procs, "worker", r"partition \d: no checkpoint, starting empty", 2, 120)
    t0 = int(time.time() * 1000) - 7 * 3_600_000   # every part lies in the past
    t0 -= t0 % (5 * MIN)
    async with aiohttp.ClientSession() as http:
        # Before the kill: 2 h of 1.25 mm (30 mm; never 16 mm in an hour) at STORM, and an
        # intense hour (18 mm: blue short-intense rain) at BURST. The first parts are
        # checkpointed; the last part is processed but not checkpointed (interval 2 s).
        ckpt = r"partition \d: checkpoint {} at offset"
        await post(http, base, rain(STORM, t0, 12, 1.25) + rain(BURST, t0, 12, 0.2))
        await asyncio.to_thread(wait_log, procs, "worker", ckpt.format(1), 2)
        await asyncio.sleep(2.2)     # the interval (2 s) has passed: the next envelope is saved
        await post(http, base, rain(STORM, t0 + 60 * MIN, 6, 1.25)
                   + rain(BURST, t0 + 60 * MIN, 6, 1.5))
        await asyncio.to_thread(wait_log, procs, "worker", ckpt.format(2), 2)
        await post(http, base, rain(STORM, t0 + 90 * MIN, 6, 1.25)
                   + rain(BURST, t0 + 90 * MIN, 6, 1.5))
        burst = await wait_incident(http, base, "rain-short-intense", BURST,
                                    lambda w: w["state"] == "active")
        await hooks.wait("duty", lambda m: burst["incident"] in m["message"], 15)
        assert not await incidents(http, base, "rainstorm-guangdong", STORM)

        procs.procs["worker"].send_signal(signal.SIGKILL)
        procs.procs["worker"].wait(10)
        killed = time.time()
        procs.start("worker2", worker)
        restored = await asyncio.to_thread(
            wait_log, procs, "worker2", r"\[([\d\- :,]+)\] \[\d+\] \[INFO\] partition (\d): "
            r"restored checkpoint \d+ \(offset (\d+).*re-processed (\d+) envelopes", 2, 90)
        gap = max(log_time(ts) for ts, *_ in restored) - killed
        print(f"restart gap (SIGKILL to both partitions restored): {gap:.1f}s; {restored}")
        # the last envelope before the kill was processed but not checkpointed: replayed
        assert sorted((p, int(n)) for _, p, _, n in restored) == [("0", 1), ("1", 1)]

        # After the restart: one more hour, 2 mm every 5 minutes (24 mm). Only with the
        # 30 mm from before the kill does the 3 h sum reach 50 mm (orange).
        await post(http, base, rain(STORM, t0 + 120 * MIN, 12, 2.0)
                   + rain(BURST, t0 + 120 * MIN, 12, 0.6))   # BURST: 7.2 mm, inside the band
        orange = await wait_incident(http, base, "rainstorm-guangdong", STORM,
                                     lambda w: w["grade"] == 3, timeout=30)

        # The warning raised before the kill is still the same incident, and the rule clears
        # it: an hour without rain brings the past hour under 5 mm.
        still = await incidents(http, base, "rain-short-intense", BURST)
        assert [(w["incident"], w["state"]) for w in still] == [(burst["incident"], "active")]
        await post(http, base, rain(BURST, t0 + 180 * MIN, 13, 0.0))
        cleared = await wait_incident(http, base, "rain-short-intense", BURST,
                                      lambda w: w["state"] == "cleared")
        await hooks.wait("duty", lambda m: orange["incident"] in m["message"], 15)
        await hooks.wait("duty", lambda m: "解除" in m["title"] and burst["incident"] in m["message"],
                         15)
        await asyncio.sleep(2.0)     # room for a duplicate to show up
        storm = await incidents(http, base, "rainstorm-guangdong", STORM)
        assert len(storm) == 1 and storm[0]["state"] == "active"
        assert cleared["incident"] == burst["incident"] and cleared["cleared_by"] == "rule"

    assert len(about(hooks, orange["incident"])) == 1, about(hooks, orange["incident"])
    burst_msgs = about(hooks, burst["incident"])
    raised = [t for t in burst_msgs if "解除" not in t]
    assert 1 <= len(raised) <= 2          # at most the one in flight at the kill, again
    assert len(burst_msgs) - len(raised) == 1


async def test_rebalance_moves_windows_and_warnings_between_workers(hooks, procs, tmp_path,
                                                                    broker_kind):
    """Two gauges, one per partition. A second worker joins (one partition moves to it with
    its state), then leaves (the partition moves back): each 3 h sum that spans a move
    still reaches orange once, and each warning clears once."""
    worker, base = stack(procs, tmp_path, hooks, broker_kind)
    gauges = {"0": STORM, "1": BURST}
    procs.start("w1", worker)
    wait_log(procs, "w1", r"partition \d: no checkpoint, starting empty", 2, 120)
    t0 = int(time.time() * 1000) - 7 * 3_600_000   # every part lies in the past
    t0 -= t0 % (5 * MIN)
    async with aiohttp.ClientSession() as http:
        await post(http, base, [r for g in gauges.values() for r in rain(g, t0, 24, 1.25)])
        await asyncio.to_thread(wait_log, procs, "w1", r"partition \d: checkpoint 1 at", 2)

        procs.start("w2", worker)               # joins: one partition moves to it
        (moved, n), = await asyncio.to_thread(
            wait_log, procs, "w2", r"partition (\d): restored checkpoint \d+ \(offset \d+.*"
                                   r"re-processed (\d+) envelopes", 1, 60)
        await asyncio.to_thread(wait_log, procs, "w1", rf"partition {moved}: revoked", 1, 30)
        # 24 mm more: orange only with the 30 mm the first worker saw
        await post(http, base, [r for g in gauges.values()
                                for r in rain(g, t0 + 120 * MIN, 12, 2.0)])
        oranges = {p: await wait_incident(http, base, "rainstorm-guangdong", g,
                                          lambda w: w["grade"] == 3, timeout=30)
                   for p, g in gauges.items()}
        await asyncio.to_thread(wait_log, procs, "w2", rf"partition {moved}: checkpoint \d+ at", 1)

        procs.procs["w2"].send_signal(signal.SIGTERM)    # leaves: the partition moves back
        procs.procs["w2"].wait(30)
        await asyncio.to_thread(
            wait_log, procs, "w1", rf"partition {moved}: restored checkpoint \d+", 1, 60)
        # three dry hours: the 3 h sum falls under 10 mm and both warnings clear
        await post(http, base, [r for g in gauges.values()
                                for r in rain(g, t0 + 180 * MIN, 37, 0.0)])
        for g in gauges.values():
            await wait_incident(http, base, "rainstorm-guangdong", g,
                                lambda w: w["state"] == "cleared", timeout=30)
        await asyncio.sleep(2.0)
        for p, g in gauges.items():
            found = await incidents(http, base, "rainstorm-guangdong", g)
            assert [w["incident"] for w in found] == [oranges[p]["incident"]]
            titles = about(hooks, oranges[p]["incident"])
            assert len(titles) == 2 and "解除" in titles[-1], titles
    print(f"partition {moved} moved to the second worker and back")
