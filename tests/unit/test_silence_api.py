"""Silences over the /v1 API (issue 12, finding 6): nobody takes over another's silence.

The server makes every silence id; replacing or expiring a silence is for its creator or
an admin (403 otherwise); a silence lasts at most ``alerts.commands.silence_max`` and its
times must be sane (400, never a 500); the list answers whatever silence is stored.
The console runs on a bus in memory with the repository's roster (zhang.wei and li.na:
flood-south; chen.jie: the duty room, who acts on every warning).
"""

from __future__ import annotations

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.unit.test_console_bus import MemoryBus
from yujing import clock
from yujing.alerts.records import Audit, Command, Matcher, Silence, State, Warning
from yujing.alerts.settings import person_hash
from yujing.config import Config
from yujing.console.state import Console
from yujing.console.web import mount_console

from .test_console import ROOT

TOKENS = {p: f"token-{p}-0123456789abcdef" for p in ("zhang.wei", "li.na", "chen.jie")}
HOUR = 3_600_000


def auth(who: str) -> dict:
    return {"Authorization": f"Bearer {TOKENS[who]}"}


class Rig:
    def __init__(self, **alerts) -> None:
        self.bus = MemoryBus()
        self.cfg = Config.model_validate({
            "console": {"tokens": {p: person_hash(t) for p, t in TOKENS.items()}},
            "alerts": {"roster": str(ROOT / "roster.yaml"), **alerts},
            "worker": {"rules_dir": "/nonexistent/rules"}})

    async def start(self) -> TestClient:
        app = web.Application()
        mount_console(app, Console(self.cfg, self.bus))
        self.client = TestClient(TestServer(app))
        await self.client.start_server()
        self.snapshot(Warning(incident="441900-20250601080000-0001", key="rain@DG-HM-R01",
                              rule="rain", rule_name="暴雨", hazard="rainstorm",
                              station="DG-HM-R01", town="虎门镇", state=State.ACTIVE, grade=3,
                              updated_ms=1))
        return self.client

    def snapshot(self, item: Warning | Silence) -> None:
        key = f"silence:0:{item.id}" if isinstance(item, Silence) else item.incident
        self.bus.followed["yujing.incidents"](key.encode(), msgspec.json.encode(item))

    def commands(self) -> list[Command]:
        return [msgspec.json.decode(v, type=Command) for _, v, _ in self.bus.sent]

    async def post(self, path: str, who: str, body) -> tuple[int, dict]:
        r = await self.client.post(path, json=body, headers=auth(who))
        return r.status, await r.json()

    def stored(self, sid: str, created_by: str, ends_ms: int | None = None) -> Silence:
        now = clock.now_ms()
        s = Silence(id=sid, matchers=[Matcher("station", "=", "DG-HM-R01")], starts_ms=now,
                    ends_ms=ends_ms or now + HOUR, created_by=created_by, reason="检修",
                    audit=[Audit(now, created_by, "created", "检修")])
        self.snapshot(s)
        return s


@pytest.fixture
async def rig():
    r = Rig()
    await r.start()
    yield r
    await r.client.close()


INCIDENT = "441900-20250601080000-0001"


async def test_the_server_makes_the_id_and_a_chosen_one_is_refused(rig):
    status, out = await rig.post("/v1/silences", "zhang.wei", {
        "incident": INCIDENT, "duration": "2h", "reason": "检修"})
    assert status == 202
    made = out["id"]
    assert len(made) >= 12 and {c.silence.id for c in rig.commands()} == {made}
    rig.bus.sent.clear()
    status, out = await rig.post("/v1/silences", "chen.jie", {
        "id": "my-own-id", "matchers": ["station=DG-HM-R01"], "duration": "2h", "reason": "检修"})
    assert status == 400 and "id" in out["error"] and rig.bus.sent == []


async def test_only_the_creator_or_an_admin_replaces_or_expires(rig):
    s = rig.stored("abc123def456", created_by="zhang.wei")
    body = {"id": s.id, "incident": INCIDENT, "duration": "1h", "reason": "接管"}
    status, out = await rig.post("/v1/silences", "li.na", body)    # same team, not the creator
    assert status == 403 and "zhang.wei" in out["error"]
    status, out = await rig.post(f"/v1/silences/{s.id}/expire", "li.na", {"reason": "x"})
    assert status == 403
    assert rig.bus.sent == []
    status, out = await rig.post("/v1/silences", "zhang.wei", dict(body, reason="延长"))
    assert status == 202 and out["id"] == s.id                      # the creator replaces it
    status, out = await rig.post("/v1/silences", "chen.jie", dict(body, reason="值班室调整"))
    assert status == 202 and out["id"] == s.id                      # the duty room (admin) too
    status, _ = await rig.post(f"/v1/silences/{s.id}/expire", "chen.jie", {"reason": "完成"})
    assert status == 202
    kinds = [(c.cmd, c.actor) for c in rig.commands()]
    assert ("silence_add", "zhang.wei") in kinds and ("silence_add", "chen.jie") in kinds
    assert ("silence_expire", "chen.jie") in kinds


@pytest.mark.parametrize("body, words", [
    ({"duration": "30d"}, "7d"),                        # longer than alerts.commands.silence_max
    ({"ends_ms": 1e20}, "ends_ms"),
    ({"ends_ms": 10**30}, "ends_ms"),
    ({"ends_ms": "tomorrow"}, "ends_ms"),
    ({"ends_ms": True}, "ends_ms"),
    ({"duration": "2h", "starts_ms": -5}, "starts_ms"),
    ({"duration": "2h", "starts_ms": 2**63}, "starts_ms"),
    ({"duration": "2h", "starts_ms": 1.5}, "starts_ms"),
    ({"duration": "-2h"}, "duration"),
    ({"duration": ["2h"]}, "duration"),
])
async def test_bounded_duration_and_sane_timestamps(rig, body, words):
    status, out = await rig.post("/v1/silences", "chen.jie", {
        "matchers": ["station=DG-HM-R01"], "reason": "检修", **body})
    assert status == 400, out
    assert words in out["error"]
    assert rig.bus.sent == []
    r = await rig.client.get("/v1/silences", headers=auth("zhang.wei"))
    assert r.status == 200


async def test_a_silence_up_to_the_maximum_is_accepted(rig):
    now = clock.now_ms()
    status, out = await rig.post("/v1/silences", "chen.jie", {
        "matchers": ["station=DG-HM-R01"], "reason": "检修", "starts_ms": now + HOUR,
        "ends_ms": now + HOUR + 7 * 24 * HOUR})
    assert status == 202, out


async def test_the_list_answers_whatever_silence_is_stored(rig):
    rig.stored("huge00000001", "zhang.wei", ends_ms=9 * 10**18)   # beyond any calendar
    rig.stored("fine00000002", "zhang.wei")
    r = await rig.client.get("/v1/silences?all=1", headers=auth("li.na"))
    assert r.status == 200
    got = {s["id"]: s for s in await r.json()}
    assert set(got) == {"huge00000001", "fine00000002"}
    assert got["huge00000001"]["ends_ms"] == 9 * 10**18
