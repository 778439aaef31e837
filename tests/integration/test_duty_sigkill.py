"""SIGKILL the worker mid-escalation, restart it, and check (on Tansu and on Apache Kafka):
nothing already delivered is sent again (at most the one in flight), the pending
escalation deadline resumes (B, then the leader, are paged), and an acknowledgement made
before the kill is not lost (that incident never escalates).

The broker, the gateway and the worker run as separate processes so the worker alone can die.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time

import aiohttp
import yaml

from tests.support.duty import ROOT, TOKENS, alert_config, write_roster
from tests.support.readings import rain
from yujing.connectors.embedded import free_port, wait_port

HOUR = 3_600_000


class NoSmtp:
    def url(self, to: str) -> str:
        return "json://127.0.0.1:1/unused"


async def api(http: aiohttp.ClientSession, base: str, path: str, body=None):
    headers = {"Authorization": f"Bearer {TOKENS['a1']}"}
    if body is None:
        async with http.get(base + path, headers=headers) as r:
            return await r.json()
    async with http.post(base + path, json=body, headers=headers) as r:
        assert r.status == 202, await r.text()
        return await r.json()


async def incident(http: aiohttp.ClientSession, base: str, town: str, pred, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in await api(http, base, "/v1/warnings?state=all"):
            if w["rule"] == "rainstorm-guangdong" and w["town"] == town:
                full = await api(http, base, f"/v1/warnings/{w['incident']}")
                if pred(full):
                    return full
        await asyncio.sleep(0.2)
    raise AssertionError(f"no matching {town} incident in {timeout}s")


async def test_sigkill_mid_escalation_resends_nothing_delivered_and_keeps_acks(hooks, procs,
                                                                              tmp_path,
                                                                              broker_kind):
    hooks.failing.add("a1-dead")                       # A's first contact is down: fallback
    broker = broker_kind.start(procs, tmp_path)
    hport = free_port()
    roster = write_roster(tmp_path, hooks, NoSmtp())   # A: dead json, then json; B, leader: json
    roster_data = yaml.safe_load(roster.read_text())
    roster_data["people"][1]["contacts"] = [hooks.url("b1")]
    roster.write_text(yaml.safe_dump(roster_data, allow_unicode=True))
    cfg = {"kafka": {"bootstrap": broker.bootstrap, "partitions": 2},
           "http": {"port": hport},
           "worker": {"rules_dir": str(ROOT / "rules"), "registry": str(ROOT / "stations.yaml"),
                      "data_dir": str(tmp_path / "worker"), "nodata_check_s": 3600},
           "notify": {"default": [hooks.url("default")]},
           **alert_config(roster, hport, timeout="8s")}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    yj = [sys.executable, "-m", "yujing"]
    worker = [*yj, "worker", "--config", str(config), "--embedded-kafka"]
    procs.start("gateway", [*yj, "gateway", "--config", str(config)])
    procs.start("worker", worker)
    base = f"http://127.0.0.1:{hport}"
    assert wait_port("127.0.0.1", hport, 30)
    start = int(time.time() * 1000) - 4 * HOUR
    async with aiohttp.ClientSession() as http:
        for station in ("DG-HM-R01", "DG-CA-R01"):
            async with http.post(f"{base}/v1/readings", json=rain(station, start, 36, 1.5)) as r:
                assert r.status == 200
        hm = await incident(http, base, "虎门镇", lambda w: "a1" in w["notified"],
                            120)   # a first start on a fresh Kafka waits for its coordinator
        ca = await incident(http, base, "长安镇", lambda w: "a1" in w["notified"])
        await api(http, base, f"/v1/warnings/{ca['incident']}/ack", {"note": "我去处理"})
        await incident(http, base, "长安镇", lambda w: w["state"] == "acknowledged", 10)
        hm_id, ca_id = hm["incident"], ca["incident"]
        assert not any(hm_id in m["message"] for m in hooks.to("b1"))   # B not paged yet

        procs.procs["worker"].send_signal(signal.SIGKILL)
        procs.procs["worker"].wait(10)
        killed_at = time.monotonic()
        def to_a(iid: str) -> list[dict]:
            return [m for m in hooks.to("a1") if iid in m["message"]]

        a_before = len(to_a(hm_id))
        procs.start("worker2", worker)

        # The deadline passed while the worker was down: B is paged once it is back.
        b_msgs = await hooks.wait("b1", lambda m: hm_id in m["message"], 90)
        gap = time.monotonic() - killed_at
        print(f"restart gap (SIGKILL to B paged by the new worker): {gap:.1f}s")
        assert re.search(r"通知原因：A岗8秒未确认（发布后已过\d+秒），已升级通知B岗",
                         b_msgs[0]["message"]), b_msgs[0]["message"]
        # ... and the chain goes on: the leader after another timeout
        await hooks.wait("l1", lambda m: hm_id in m["message"], 20)
        await api(http, base, f"/v1/warnings/{hm_id}/ack", {"note": "收到"})
        w = await incident(http, base, "虎门镇", lambda w: w["state"] == "acknowledged", 15)
        await asyncio.sleep(1.5)

    resent = sum("in flight when its worker stopped" in e["reason"] for e in w["timeline"])
    assert resent <= 1
    assert len(to_a(hm_id)) == a_before + resent == len(to_a(hm_id))
    assert a_before == 1 or resent == 1                      # A's raise message: never twice
    assert len([m for m in hooks.to("b1") if hm_id in m["message"]]) == 1
    assert len([m for m in hooks.to("l1") if hm_id in m["message"]]) == 1
    # the acknowledgement made before the kill survived: that incident never escalated
    assert not any(ca_id in m["message"] for m in hooks.to("b1") + hooks.to("l1"))
    kinds = [e["kind"] for e in w["timeline"]]
    assert kinds.count("escalated") == 2 and kinds[-1] in ("acknowledged", "notified")
    assert os.path.exists(tmp_path / "worker2.log")


async def test_an_acknowledgement_made_while_the_worker_is_down_is_applied_by_the_next(
        hooks, procs, tmp_path, broker_kind):
    """The console stays up when the worker dies: an acknowledgement it accepts (202) in the
    gap is a command on yujing.commands, and the next worker must apply it — the warning is
    acknowledged and B is never paged for it, however long the gap."""
    broker = broker_kind.start(procs, tmp_path)
    hport = free_port()
    roster = write_roster(tmp_path, hooks, NoSmtp())
    cfg = {"kafka": {"bootstrap": broker.bootstrap, "partitions": 2},
           "http": {"port": hport},
           "worker": {"rules_dir": str(ROOT / "rules"), "registry": str(ROOT / "stations.yaml"),
                      "data_dir": str(tmp_path / "worker"), "nodata_check_s": 3600},
           "notify": {"default": [hooks.url("default")]},
           **alert_config(roster, hport, timeout="8s")}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    yj = [sys.executable, "-m", "yujing"]
    worker = [*yj, "worker", "--config", str(config), "--embedded-kafka"]
    procs.start("gateway", [*yj, "gateway", "--config", str(config)])
    procs.start("worker", worker)
    base = f"http://127.0.0.1:{hport}"
    assert wait_port("127.0.0.1", hport, 30)
    start = int(time.time() * 1000) - 4 * HOUR
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/v1/readings", json=rain("DG-HM-R01", start, 36, 1.5)) as r:
            assert r.status == 200
        hm = await incident(http, base, "虎门镇", lambda w: "a1" in w["notified"], 120)
        procs.procs["worker"].send_signal(signal.SIGKILL)
        procs.procs["worker"].wait(10)
        await api(http, base, f"/v1/warnings/{hm['incident']}/ack", {"note": "停机期间确认"})
        procs.start("worker2", worker)
        w = await incident(http, base, "虎门镇", lambda w: w["state"] == "acknowledged", 90)
    assert w["acked_by"] == "a1"
    assert not any(hm["incident"] in m["message"] for m in hooks.to("b1"))
