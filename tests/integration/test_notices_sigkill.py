"""A safety notice's tracking survives the worker's SIGKILL (on Tansu and on Apache Kafka).

The bureau sends a notice to three enterprises; A acknowledges; the worker is killed and
a new one started; B acknowledges after that. The new worker must have the notice back
from its changelog table with A's acknowledgement: B's ack lands (an ack of a notice the
desk does not know is refused), the tracking shows 2/3 with A's and B's, and the reminder
of the silent C is sent by the new worker, once.

The broker, the gateway and the worker run as separate processes so the worker alone can die.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

import aiohttp
import yaml

from tests.integration.test_notices_live import ENTS, TOKENS, bearer, tracking, write_files
from tests.support.duty import ROOT, SECRET
from yujing.alerts.settings import person_hash
from yujing.connectors.embedded import free_port, wait_port


async def test_a_notice_and_its_acks_survive_a_worker_sigkill(hooks, procs, tmp_path,
                                                               broker_kind):
    broker = broker_kind.start(procs, tmp_path)
    hport = free_port()
    roster, orgs = write_files(tmp_path, hooks)
    cfg = {"kafka": {"bootstrap": broker.bootstrap, "partitions": 2},
           "http": {"port": hport},
           "worker": {"rules_dir": str(ROOT / "rules"), "registry": str(ROOT / "stations.yaml"),
                      "data_dir": str(tmp_path / "worker"), "nodata_check_s": 3600},
           "notify": {"default": [hooks.url("default")]},
           "alerts": {"roster": str(roster), "enterprises": str(orgs), "tick": "300ms",
                      "notices": {"remind_after": "25s", "reminders": 1},
                      "delivery": {"retries": 1, "backoff": "100ms", "timeout": "5s"}},
           "console": {"tokens": {p: person_hash(t) for p, t in TOKENS.items()},
                       "link_secret": SECRET, "public_url": f"http://127.0.0.1:{hport}"}}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    yj = [sys.executable, "-m", "yujing"]
    worker = [*yj, "worker", "--config", str(config), "--embedded-kafka"]
    procs.start("gateway", [*yj, "gateway", "--config", str(config)])
    procs.start("worker", worker)
    base = f"http://127.0.0.1:{hport}"
    assert wait_port("127.0.0.1", hport, 30)
    async with aiohttp.ClientSession() as http:
        body = {"title": "台风停工提示", "body": "今晚起停止室外作业", "kind": "停工提示",
                "to": {"enterprises": [e for e, _, _, _ in ENTS]}}
        async with http.post(f"{base}/v1/notices", json=body, headers=bearer("ind.a")) as r:
            out = await r.json()
            assert r.status == 202, out
        nid = out["notice"]
        for _, _, _, p in ENTS:      # a fresh Kafka waits for its group coordinator
            await hooks.wait(p, lambda m: "台风停工提示" in m["title"], 120)
        # the desk stores the snapshot before it sends; the console reads it from Kafka
        await tracking(http, base, nid, lambda n: n["total"] == 3, 30)
        async with http.post(f"{base}/v1/notices/{nid}/ack", json={"ack": "received"},
                             headers=bearer("e1.safety")) as r:
            assert r.status == 202
        await tracking(http, base, nid, lambda n: n["acked"] == 1, 30)

        procs.procs["worker"].send_signal(signal.SIGKILL)
        procs.procs["worker"].wait(10)
        procs.start("worker2", worker)
        deadline = time.monotonic() + 120
        while "Worker]: Ready" not in (tmp_path / "worker2.log").read_text(errors="replace"):
            assert time.monotonic() < deadline, "worker2 not ready"
            await asyncio.sleep(0.2)
        async with http.post(f"{base}/v1/notices/{nid}/ack", json={"ack": "done"},
                             headers=bearer("e2.safety")) as r:
            assert r.status == 202
        two = await tracking(http, base, nid, lambda n: n["acked"] == 2, 120)
        acks = {t["enterprise"]: [(a["kind"], a["by"]) for a in t.get("acks", [])]
                for t in two["targets"]}
        assert acks == {"ENT-A": [("received", "e1.safety")], "ENT-B": [("done", "e2.safety")],
                        "ENT-C": []}
        await hooks.wait("e3.safety", lambda m: "第1次提醒" in m["title"], 90)
        done = await tracking(http, base, nid, lambda n: n["unconfirmed"] == ["ENT-C"], 60)
    assert done["missing"] == ["ENT-C"]
    reminders = [m for m in hooks.to("e3.safety") if "提醒" in m["title"]]
    assert len(reminders) == 1, reminders
