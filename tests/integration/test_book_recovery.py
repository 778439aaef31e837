"""The warning book's tables come back whole after a worker's SIGKILL, on Tansu and on
Apache Kafka.

The book keeps incidents, acknowledgements, silences, groups, deliveries and deadlines in
changelog-backed Faust tables (yujing/streams/alerting.py). A storm over forty gauges in
eight towns raises dozens of incidents at once; half are acknowledged and six silences
added, each in a burst, so the producer packs several records into one batch. The worker
is killed; the changelogs are read back from the broker (every record, to the last); the
new worker logs a count and a digest of every table as Faust recovered it, before it
processes anything, and each must equal the changelog's. On Tansu, whose end offsets
stop at the first record of a partition's last batch, this held only once the worker
fenced its book writes (yujing/streams/changelog.py).
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.support.brokers import BrokerKind
from tests.support.duty import HASHED, ROOT, SECRET, TOKENS, Procs
from tests.support.readings import HOUR, rain
from yujing.connectors.embedded import free_port, wait_port
from yujing.connectors.topicspec import changelog
from yujing.streams.changelog import digest

TOWNS = [f"测试{i}镇" for i in range(8)]
GAUGES = [f"BK-{t}-R{g}" for t in range(len(TOWNS)) for g in range(5)]
BOOK = ("incidents", "open", "alias", "groups", "deliveries", "silences", "due")
AUTH = {"Authorization": f"Bearer {TOKENS['a1']}"}
RECOVERED = r"book table (\w+) recovered for partitions ([\d,]+): (\d+) records, digest (\w+)"


def registry(tmp: Path) -> Path:
    path = tmp / "stations.yaml"
    path.write_text(yaml.safe_dump({"stations": [
        {"id": sid, "name": f"{TOWNS[int(sid.split('-')[1])]}雨量站{sid[-1]}", "kind": "rain_gauge",
         "town": TOWNS[int(sid.split("-")[1])], "lat": 22.8, "lon": 113.7,
         "expected_interval": "5m"} for sid in GAUGES]}, allow_unicode=True))
    return path


def stack(procs: Procs, tmp: Path, hooks, kind: BrokerKind) -> tuple[str, list[str], str]:
    """A fresh broker and a gateway: (bootstrap, a worker's command line, the gateway URL)."""
    broker = kind.start(procs, tmp)
    hport = free_port()
    cfg = {"kafka": {"bootstrap": broker.bootstrap, "partitions": 2},
           "http": {"port": hport},
           "gateway": {"linger_ms": 20},
           "worker": {"rules_dir": str(ROOT / "rules"), "registry": str(registry(tmp)),
                      "data_dir": str(tmp / "worker"), "nodata_check_s": 3600},
           "notify": {"default": [hooks.url("duty")]},
           "alerts": {"tick": "300ms", "grouping": {"wait": "0s", "interval": "0s"},
                      "delivery": {"retries": 1, "backoff": "100ms", "timeout": "5s"}},
           "console": {"tokens": HASHED, "link_secret": SECRET}}
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    yj = [sys.executable, "-m", "yujing"]
    procs.start("gateway", [*yj, "gateway", "--config", str(config)])
    assert wait_port("127.0.0.1", hport, 30)
    return (broker.bootstrap, [*yj, "worker", "--config", str(config), "--embedded-kafka"],
            f"http://127.0.0.1:{hport}")


async def until(what: str, probe, timeout: float = 60, every: float = 0.3):
    """``await probe()`` until it returns something true; fails with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        got = await probe()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        await asyncio.sleep(every)


async def changelog_digests(bootstrap: str, partitions: int, quiet_s: float = 2.0
                            ) -> dict[str, tuple[int, str]]:
    """Count and digest of each book table as its changelog holds it: the last value of
    every key, read to the very end: past the end offsets the broker reports and until
    nothing new came for ``quiet_s`` (Tansu's end offsets stop short of the last batch's
    end; after the kill nothing writes the changelogs)."""
    tps = {TopicPartition(changelog(f"yujing-{name}"), p): name
           for name in BOOK for p in range(partitions)}
    last: dict[str, dict[str, bytes | None]] = {name: {} for name in BOOK}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(tps))
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(list(tps))
        quiet_since = time.monotonic()
        while True:
            behind = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
            if not behind and time.monotonic() - quiet_since >= quiet_s:
                break
            for tp, recs in (await consumer.getmany(timeout_ms=300)).items():
                for rec in recs:
                    last[tps[tp]][orjson.loads(rec.key)] = rec.value
                quiet_since = time.monotonic()
    finally:
        await consumer.stop()
    return {name: digest(kv.items()) for name, kv in last.items()}


async def test_every_book_record_survives_a_sigkill(hooks, procs, tmp_path, broker_kind):
    bootstrap, worker, base = stack(procs, tmp_path, hooks, broker_kind)
    procs.start("worker", worker)
    await until("both partitions started", lambda: asyncio.to_thread(
        lambda: len(re.findall(r"partition \d: no checkpoint", procs.log("worker"))) >= 2), 120)
    async with aiohttp.ClientSession(headers=AUTH) as http:
        async def listed(state: str = "all") -> list[dict]:
            async with http.get(f"{base}/v1/warnings?state={state}") as r:
                return await r.json()

        # 54 mm in 3 h at every gauge: orange storm warnings, forty at once
        start = int(time.time() * 1000) - 4 * HOUR
        async with http.post(f"{base}/v1/readings",
                             json=[r for g in GAUGES for r in rain(g, start, 36, 1.5)]) as r:
            assert r.status == 200, await r.text()
        storm = await until("a storm warning at every gauge", lambda: _storm(listed))
        # half acknowledged, six towns silenced: two more bursts of book writes
        acked = sorted(w["incident"] for w in storm[::2])

        async def ack(iid: str) -> None:
            async with http.post(f"{base}/v1/warnings/{iid}/ack", json={"note": "已派人"}) as r:
                assert r.status == 202, await r.text()

        async def silence(town: str) -> str:
            async with http.post(f"{base}/v1/silences", json={
                    "matchers": [f"town={town}"], "duration": "6h", "reason": "雨量站检修"}) as r:
                assert r.status == 202, await r.text()
                return (await r.json())["id"]

        await asyncio.gather(*map(ack, acked))
        sids = await asyncio.gather(*map(silence, TOWNS[:6]))

        async def settled() -> bool:
            states = {w["incident"]: w["state"] for w in await listed()}
            async with http.get(f"{base}/v1/silences") as r:
                silenced = {s["id"] for s in await r.json()}
            return (all(states.get(i) == "acknowledged" for i in acked)
                    and set(sids) <= silenced)
        await until("every ack and silence in the book", settled)

        async def both_books_silenced() -> bool:   # partition 1's copies are not listed
            return (await changelog_digests(bootstrap, 2, 0.5))["silences"][0] == 2 * len(sids)
        await until("each partition's book holds every silence", both_books_silenced)

    procs.procs["worker"].send_signal(signal.SIGKILL)
    procs.procs["worker"].wait(10)
    want = await changelog_digests(bootstrap, 2)
    print(f"[{broker_kind.name}] changelogs at the kill: {want}")
    assert want["incidents"][0] >= len(GAUGES) and want["silences"][0] == 2 * len(sids), want
    assert want["groups"][0] >= len(TOWNS) and want["due"][0] > 0, want

    procs.start("worker2", worker)
    found = await until("every book table's recovery logged", lambda: asyncio.to_thread(
        lambda: re.findall(RECOVERED, procs.log("worker2"))
        if len(re.findall(RECOVERED, procs.log("worker2"))) >= len(BOOK) else None), 120)
    got = {name: (int(n), fp) for name, parts, n, fp in found[:len(BOOK)]}
    assert {parts for _, parts, _, _ in found[:len(BOOK)]} == {"0,1"}, found
    lost = {name: (want[name], got[name]) for name in BOOK if got[name] != want[name]}
    assert not lost, f"[{broker_kind.name}] recovered tables differ from their changelogs " \
                     f"(want, got): {lost}"


async def _storm(listed) -> list[dict]:
    storm = [w for w in await listed() if w["rule"] == "rainstorm-guangdong"
             and w["state"] == "active"]
    return storm if {w["station"] for w in storm} == set(GAUGES) else []
