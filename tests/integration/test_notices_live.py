"""Safety notices on `yujing run` (embedded Tansu and amqtt), real webhooks (apprise json://):
the bureau sends a notice to the three 粉尘涉爆 enterprises; each one's safety officer gets it
with a signed acknowledge link; enterprise A acknowledges with the link, B over /v1, C stays
silent, is reminded (the reminder reaches its webhook) and is then listed 未确认; the tracking
shows 2/3 with C missing, over /v1, the console page and `yujing notice list`.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import yaml

from tests.support.duty import SECRET
from yujing.alerts.settings import person_hash

TOKENS = {"ind.a": "token-ind-a-0123456789abcd", "e1.safety": "token-e1-safety-0123456789",
          "e2.safety": "token-e2-safety-0123456789", "e3.safety": "token-e3-safety-0123456789"}
ENTS = (("ENT-A", "甲厂", "长安镇", "e1.safety"), ("ENT-B", "乙厂", "厚街镇", "e2.safety"),
        ("ENT-C", "丙厂", "长安镇", "e3.safety"))
LINK = re.compile(r"https?://\S+/v1/notice-link/[A-Za-z0-9._-]+")


def write_files(tmp: Path, hooks) -> tuple[Path, Path]:
    roster = {
        "people": [{"id": "ind.a", "name": "工贸A", "contacts": [hooks.url("ind.a")]}],
        "teams": [{"id": "room", "name": "值班室", "domain": "duty_room",
                   "rotation": {"start": "2025-01-01", "slots": [{"A": "ind.a"}]}}],
    }
    orgs = {
        "people": [{"id": p, "name": f"{n}安全员", "contacts": [hooks.url(p)]}
                   for _, n, _, p in ENTS]
        + [{"id": "ca.reg", "name": "长安镇监管", "contacts": [hooks.url("ca.reg")]},
           {"id": "hj.reg", "name": "厚街镇监管", "contacts": [hooks.url("hj.reg")]}],
        "towns": [{"name": "长安镇", "regulators": {"on_call": ["ca.reg"]}},
                  {"name": "厚街镇", "regulators": {"on_call": ["hj.reg"]}}],
        "enterprises": [{"id": e, "name": n, "town": t, "industry": ["粉尘涉爆"],
                         "duty": {"on_call": [p]}} for e, n, t, p in ENTS],
    }
    (tmp / "roster.yaml").write_text(yaml.safe_dump(roster, allow_unicode=True))
    (tmp / "enterprises.yaml").write_text(yaml.safe_dump(orgs, allow_unicode=True))
    return tmp / "roster.yaml", tmp / "enterprises.yaml"


def bearer(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who]}"}


async def tracking(http, base: str, nid: str, pred, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        async with http.get(f"{base}/v1/notices/{nid}", headers=bearer("ind.a")) as r:
            if r.status == 200:
                last = await r.json()
                if pred(last):
                    return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"tracking of {nid} not as expected in {timeout}s: {last}")


async def test_a_notice_to_three_tracks_two_acks_and_reminds_the_third(hooks, run_factory,
                                                                       tmp_path):
    roster, orgs = write_files(tmp_path, hooks)
    r = run_factory(hooks.port, alerts={
        "roster": str(roster), "enterprises": str(orgs), "tick": "300ms",
        "notices": {"remind_after": "8s", "reminders": 1},
        "delivery": {"retries": 1, "backoff": "100ms", "timeout": "5s"}},
        console={"tokens": {p: person_hash(t) for p, t in TOKENS.items()}, "link_secret": SECRET})
    async with aiohttp.ClientSession() as http:
        body = {"title": "高温天气粉尘防爆提示", "body": "请立即检查除尘器入口温度并清灰",
                "kind": "防御提示", "to": {"tags": ["粉尘涉爆"]}}
        async with http.post(f"{r.http}/v1/notices", json=body, headers=bearer("e1.safety")) as resp:
            assert resp.status == 403            # an enterprise does not send notices
        async with http.post(f"{r.http}/v1/notices", json=body, headers=bearer("ind.a")) as resp:
            out = await resp.json()
            assert resp.status == 202, out
        nid = out["notice"]
        assert out["enterprises"] == ["ENT-A", "ENT-B", "ENT-C"]

        # each enterprise's on-duty officer gets it through their own channel, with a link
        got = {p: (await hooks.wait(p, lambda m: "高温天气粉尘防爆提示" in m["title"], 30))[0]
               for _, _, _, p in ENTS}
        for p, m in got.items():
            assert "请立即检查除尘器入口温度并清灰" in m["message"] and LINK.search(m["message"]), p
        # A: the link (GET shows, POST acknowledges); B: over /v1 with its token
        link = LINK.search(got["e1.safety"]["message"]).group(0)
        async with http.get(link) as resp:
            assert resp.status == 200 and "已收到" in await resp.text()
        async with http.post(link, data={"ack": "received"}) as resp:
            assert resp.status == 200, await resp.text()
        async with http.post(f"{r.http}/v1/notices/{nid}/ack", json={"ack": "done"},
                             headers=bearer("e2.safety")) as resp:
            assert resp.status == 202, await resp.text()
        async with http.post(f"{r.http}/v1/notices/{nid}/ack", json={},
                             headers=bearer("ind.a")) as resp:
            assert resp.status == 403            # the bureau does not acknowledge for them

        two = await tracking(http, r.http, nid, lambda n: n["acked"] == 2)
        assert two["missing"] == ["ENT-C"] and two["total"] == 3
        acks = {t["enterprise"]: t.get("acks", []) for t in two["targets"]}
        assert [(a["kind"], a["by"]) for a in acks["ENT-A"]] == [("received", "e1.safety")]
        assert [(a["kind"], a["by"]) for a in acks["ENT-B"]] == [("done", "e2.safety")]

        # C is reminded at its own webhook; A and B are not
        reminder = (await hooks.wait("e3.safety", lambda m: "第1次提醒" in m["title"], 40))[0]
        assert "请立即检查除尘器入口温度并清灰" in reminder["message"] and LINK.search(reminder["message"])
        for p in ("e1.safety", "e2.safety"):
            assert not [m for m in hooks.to(p) if "提醒" in m["title"]], p
        # after its last reminder C is listed 未确认 to the bureau
        done = await tracking(http, r.http, nid, lambda n: n["unconfirmed"] == ["ENT-C"], 40)
        assert (done["acked"], done["total"], done["missing"]) == (2, 3, ["ENT-C"])
        c = next(t for t in done["targets"] if t["enterprise"] == "ENT-C")
        assert c["reminders"] == 1 and c["status"] == "unconfirmed"

        # scopes: A sees the notice with its own row only
        async with http.get(f"{r.http}/v1/notices", headers=bearer("e1.safety")) as resp:
            mine = await resp.json()
        assert [[t["enterprise"] for t in n["targets"]] for n in mine] == [["ENT-A"]]
        # the console page: 已确认 2/3 and who is missing
        async with http.get(f"{r.http}/console/notices", headers=bearer("ind.a")) as resp:
            page = await resp.text()
        assert resp.status == 200 and "已确认 2/3" in page and "未确认：丙厂" in page

    # the CLI shows the same tracking
    env = {**os.environ, "YUJING_TOKEN": TOKENS["ind.a"]}
    cli = subprocess.run([sys.executable, "-m", "yujing", "notice", "list", "--as", "ind.a",
                          "--config", str(tmp_path / "config.yaml"), "--api", r.http],
                         capture_output=True, text=True, env=env, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert "已确认 2/3" in cli.stdout and "未确认/unconfirmed" in cli.stdout
