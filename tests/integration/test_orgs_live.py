"""Enterprises and towns on `yujing run` (embedded Tansu and amqtt), real webhooks (apprise
json://): a dust warning at enterprise A pages A's safety officer, climbs to the town's
regulator when nobody acknowledges, then to the bureau; A's officer sees A's warnings only
over /v1 (enterprise B's is a 403 and missing from the list) and acknowledges A's.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from pathlib import Path

import aiohttp
import yaml

from tests.support.duty import SECRET
from yujing.alerts.settings import person_hash

TOKENS = {"e1.safety": "token-e1-safety-0123456789", "e2.safety": "token-e2-safety-0123456789",
          "ind.a": "token-ind-a-0123456789abcd"}
ENT_A, ENT_B = "ENT-DG-0001", "ENT-DG-0002"     # stations DG-CA-D01 (长安镇), DG-HJ-D01 (厚街镇)


def write_files(tmp: Path, hooks) -> tuple[Path, Path]:
    roster = {
        "domains": {"dust_explosion": "industrial"},
        "people": [{"id": "ind.a", "name": "工贸A", "contacts": [hooks.url("ind.a")]},
                   {"id": "ind.b", "name": "工贸B", "contacts": [hooks.url("ind.b")]},
                   {"id": "room.a", "name": "值班员", "contacts": [hooks.url("room.a")]}],
        "teams": [{"id": "industrial", "name": "工贸", "domain": "industrial",
                   "rotation": {"start": "2025-01-01", "slots": [{"A": "ind.a", "B": "ind.b"}]}},
                  {"id": "room", "name": "值班室", "domain": "duty_room",
                   "rotation": {"start": "2025-01-01", "slots": [{"A": "room.a", "B": "room.a"}]}}],
    }
    orgs = {
        "people": [{"id": p, "name": n, "contacts": [hooks.url(p)]} for p, n in
                   (("e1.safety", "甲厂安全员"), ("e2.safety", "乙厂安全员"),
                    ("ca.reg", "长安镇监管"), ("hj.reg", "厚街镇监管"))],
        "towns": [{"name": "长安镇", "regulators": {"on_call": ["ca.reg"]}},
                  {"name": "厚街镇", "regulators": {"on_call": ["hj.reg"]}}],
        "enterprises": [{"id": ENT_A, "name": "甲厂", "town": "长安镇", "industry": ["粉尘涉爆"],
                         "duty": {"on_call": ["e1.safety"]}},
                        {"id": ENT_B, "name": "乙厂", "town": "厚街镇", "industry": ["粉尘涉爆"],
                         "duty": {"on_call": ["e2.safety"]}}],
    }
    (tmp / "roster.yaml").write_text(yaml.safe_dump(roster, allow_unicode=True))
    (tmp / "enterprises.yaml").write_text(yaml.safe_dump(orgs, allow_unicode=True))
    return tmp / "roster.yaml", tmp / "enterprises.yaml"


def hot(station: str) -> list[dict]:
    now = int(time.time() * 1000)
    return [{"station": station, "metric": "dust_inlet_temp_c", "ts": now - (5 - i) * 60_000,
             "value": v} for i, v in enumerate((40.0, 45.0, 60.0, 78.0, 82.0))]


async def get(http: aiohttp.ClientSession, url: str, who: str):
    async with http.get(url, headers={"Authorization": f"Bearer {TOKENS[who]}"}) as r:
        return r.status, await r.json()


async def incident_at(http, base: str, station: str, who: str = "ind.a",
                      timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, ws = await get(http, f"{base}/v1/warnings", who)
        hit = [w for w in ws if w["station"] == station] if status == 200 else []
        if hit:
            return hit[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no warning at {station} in {timeout}s")


async def test_enterprise_town_bureau_levels_and_scopes(hooks, run_factory, tmp_path):
    roster, orgs = write_files(tmp_path, hooks)
    r = run_factory(hooks.port, alerts={
        "roster": str(roster), "enterprises": str(orgs), "tick": "300ms",
        "grouping": {"wait": "0s", "interval": "0s"},
        "levels": {"orange": {"first": ["enterprise"], "ack_timeout": "3s",
                              "then": [["town"], ["bureau"]], "repeat": "0s"}},
        "delivery": {"retries": 1, "backoff": "100ms", "timeout": "5s"}},
        console={"tokens": {p: person_hash(t) for p, t in TOKENS.items()}, "link_secret": SECRET})
    async with aiohttp.ClientSession() as http:
        for station in ("DG-CA-D01", "DG-HJ-D01"):
            async with http.post(f"{r.http}/v1/readings", json=hot(station)) as resp:
                assert resp.status == 200, await resp.text()
        a = await incident_at(http, r.http, "DG-CA-D01")
        b = await incident_at(http, r.http, "DG-HJ-D01")
        assert (a["enterprise"], b["enterprise"]) == (ENT_A, ENT_B)

        # level 1: the enterprise's own safety officer, nobody else yet
        first = (await hooks.wait("e1.safety", lambda m: a["incident"] in m["message"], 30))[0]
        assert "甲厂安全员（企业值班安全员）" in first["message"]
        assert "按橙色预警规程先通知企业值班安全员" in first["message"]
        assert not [m for m in hooks.to("ind.a") if a["incident"] in m["message"]]
        # level 2 after 3 s without an acknowledgement: the town's regulator
        town = (await hooks.wait("ca.reg", lambda m: a["incident"] in m["message"], 20))[0]
        assert "企业值班安全员未在3秒内确认" in town["message"] and "升级至镇街监管人员" in town["message"]
        assert not [m for m in hooks.to("hj.reg") if a["incident"] in m["message"]]
        # level 3: the bureau (the 工贸 team's A)
        bureau = (await hooks.wait("ind.a", lambda m: a["incident"] in m["message"], 20))[0]
        assert "升级至市局值班员" in bureau["message"]
        # the console's view follows the book a moment after the message went out
        deadline = time.monotonic() + 20
        while True:
            status, full = await get(http, f"{r.http}/v1/warnings/{a['incident']}", "ind.a")
            steps = [e["reason_zh"] for e in full["timeline"] if e["kind"] == "escalated"]
            if len(steps) >= 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert len(steps) == 2 and steps[0].startswith("企业值班安全员未在3秒内确认")

        # scopes: A's officer lists A's warnings only; B's is a 403 with the reason in Chinese
        status, mine = await get(http, f"{r.http}/v1/warnings?state=all", "e1.safety")
        assert status == 200 and {w["enterprise"] for w in mine} == {ENT_A}
        assert a["incident"] in {w["incident"] for w in mine}
        status, body = await get(http, f"{r.http}/v1/warnings/{b['incident']}", "e1.safety")
        assert status == 403 and body["error"].startswith("无权查看")
        async with http.post(f"{r.http}/v1/warnings/{b['incident']}/ack", json={},
                             headers={"Authorization": f"Bearer {TOKENS['e1.safety']}"}) as resp:
            assert resp.status == 403
        status, body = await get(http, f"{r.http}/console/api/warnings/{b['incident']}",
                                 "e1.safety")
        assert status == 403
        status, board = await get(http, f"{r.http}/console/api/board", "e1.safety")
        assert status == 200 and {w["incident"] for w in board["warnings"]} == {a["incident"]}
        # the bureau sees both
        status, all_ = await get(http, f"{r.http}/v1/warnings", "ind.a")
        assert {a["incident"], b["incident"]} <= {w["incident"] for w in all_}
        # the period report counts what each may see: A's officer A's enterprise only
        units = {}
        for who in ("e1.safety", "ind.a"):
            async with http.get(f"{r.http}/console/report.csv?by=enterprise&lang=en",
                                headers={"Authorization": f"Bearer {TOKENS[who]}"}) as resp:
                assert resp.status == 200
                rows = list(csv.DictReader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
            units[who] = {row["enterprise"] for row in rows} - {"total"}
        assert units["e1.safety"] == {ENT_A}
        assert {ENT_A, ENT_B} <= units["ind.a"]

        # A's officer acknowledges A's warning
        async with http.post(f"{r.http}/v1/warnings/{a['incident']}/ack", json={"note": "已停机"},
                             headers={"Authorization": f"Bearer {TOKENS['e1.safety']}"}) as resp:
            assert resp.status == 202, await resp.text()
        deadline = time.monotonic() + 20
        while True:
            status, full = await get(http, f"{r.http}/v1/warnings/{a['incident']}", "e1.safety")
            if full["state"] == "acknowledged":
                break
            assert time.monotonic() < deadline, full["state"]
            await asyncio.sleep(0.2)
        assert full["acked_by"] == "e1.safety"
