"""Safety notices over HTTP: ``/v1/notices`` (the bureau sends to any enterprise, a town's
regulator to the town's only, an enterprise never: 403 otherwise; 400 with the reasons),
lists filtered by scope, acknowledgement by an enterprise's people only, the signed link in
the message, and the console page. The console runs on a bus in memory: what it sends is
checked here, the worker's side is test_notices.py."""

from __future__ import annotations

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.unit.test_console_bus import MemoryBus
from tests.unit.test_notices import ORGS, ROSTER, three
from yujing import clock
from yujing.alerts.notice_desk import NoticeCommand
from yujing.alerts.orgs import parse_orgs
from yujing.alerts.settings import person_hash
from yujing.alerts.signing import sign
from yujing.config import Config
from yujing.console.state import Console
from yujing.console.web import mount_console

SECRET = "s3cret-for-links-0123456789abcdef"
PEOPLE = ("room.a", "a.s", "d.s", "ca.reg")


def auth(person: str) -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{person}-0123456789"}


@pytest.fixture
async def api(tmp_path):
    (tmp_path / "roster.yaml").write_text(ROSTER, encoding="utf-8")
    (tmp_path / "enterprises.yaml").write_text(ORGS, encoding="utf-8")
    bus = MemoryBus()
    cfg = Config.model_validate({
        "console": {"tokens": {p: person_hash(f"tok-{p}-0123456789") for p in PEOPLE},
                    "link_secret": SECRET},
        "alerts": {"roster": str(tmp_path / "roster.yaml"),
                   "enterprises": str(tmp_path / "enterprises.yaml")},
        "worker": {"rules_dir": "/nonexistent/rules"}})
    app = web.Application()
    console = Console(cfg, bus)
    mount_console(app, console)
    client = TestClient(TestServer(app))
    await client.start_server()
    client.bus, client.console = bus, console
    yield client
    await client.close()


def sent(api) -> list[tuple[NoticeCommand, int]]:
    return [(msgspec.json.decode(v, type=NoticeCommand), p) for t, v, p in api.bus.sent
            if t == "yujing.commands"]


def snapshot(api, n) -> None:
    api.bus.followed["yujing.incidents"](f"notice:{n.id}".encode(), msgspec.json.encode(n))


async def test_the_bureau_sends_and_the_enterprises_are_resolved_at_send_time(api):
    body = {"title": "粉尘防爆提示", "body": "检查除尘器", "kind": "防御提示",
            "to": {"tags": ["粉尘涉爆"], "enterprises": ["ENT-D"]}}
    r = await api.post("/v1/notices", json=body, headers=auth("room.a"))
    out = await r.json()
    assert r.status == 202, out
    assert out["enterprises"] == ["ENT-A", "ENT-B", "ENT-D"]
    [(cmd, p)] = sent(api)
    assert p == 0 and cmd.cmd == "notice_send" and cmd.actor == "room.a"
    assert cmd.notice.id == out["notice"]
    assert [t.enterprise for t in cmd.notice.targets] == ["ENT-A", "ENT-B", "ENT-D"]


async def test_an_enterprise_may_not_send(api):
    body = {"title": "t", "body": "b", "to": {"tags": ["粉尘涉爆"]}}
    r = await api.post("/v1/notices", json=body, headers=auth("a.s"))
    assert r.status == 403
    assert "只有市局和镇街监管人员可以发送" in (await r.json())["error"]
    assert sent(api) == []


async def test_a_town_regulator_sends_to_the_town_s_enterprises_only(api):
    body = {"title": "长安镇粉尘提示", "body": "检查除尘器", "to": {"tags": ["粉尘涉爆", "危化"]}}
    r = await api.post("/v1/notices", json=body, headers=auth("ca.reg"))
    out = await r.json()
    assert r.status == 202, out
    assert out["enterprises"] == ["ENT-A", "ENT-C"]          # 长安镇's; ENT-B of 厚街镇 left out
    [(cmd, _)] = sent(api)
    assert cmd.actor == "ca.reg" and [t.enterprise for t in cmd.notice.targets] == ["ENT-A", "ENT-C"]


@pytest.mark.parametrize("to, why", [({"towns": ["厚街镇"]}, "无权发送给镇街 '厚街镇'"),
                                     ({"enterprises": ["ENT-A", "ENT-B"]}, "无权发送给企业 'ENT-B'"),
                                     ({"tags": ["工贸"]}, "本镇街（长安镇）没有符合条件的企业")])
async def test_a_town_regulator_is_refused_beyond_the_town(api, to, why):
    r = await api.post("/v1/notices", json={"title": "t", "body": "b", "to": to},
                       headers=auth("ca.reg"))
    assert r.status == 403
    assert why in (await r.json())["error"]
    assert sent(api) == []


async def test_a_bad_notice_is_400_with_the_reasons(api):
    r = await api.post("/v1/notices", json={"title": "t", "body": "b", "to": {"towns": ["虎门镇"]}},
                       headers=auth("room.a"))
    assert r.status == 400 and "unknown town '虎门镇'" in (await r.json())["error"]
    r = await api.post("/v1/notices", data=b"{", headers=auth("room.a"))
    assert r.status == 400 and "JSON" in (await r.json())["error"]
    r = await api.post("/v1/notices", json={"title": "t"}, headers={})
    assert r.status == 401
    assert sent(api) == []


async def test_lists_are_filtered_by_scope(api):
    n = three(parse_orgs(ORGS))          # ENT-A, ENT-B (厚街镇), ENT-C (长安镇)
    snapshot(api, n)

    async def listed(person: str) -> list[dict]:
        r = await api.get("/v1/notices", headers=auth(person))
        assert r.status == 200
        return await r.json()

    bureau = await listed("room.a")
    assert [t["enterprise"] for t in bureau[0]["targets"]] == ["ENT-A", "ENT-B", "ENT-C"]
    assert (bureau[0]["acked"], bureau[0]["total"]) == (0, 3)
    assert bureau[0]["missing"] == ["ENT-A", "ENT-B", "ENT-C"]
    mine = await listed("a.s")
    assert [t["enterprise"] for t in mine[0]["targets"]] == ["ENT-A"]
    town = await listed("ca.reg")
    assert [t["enterprise"] for t in town[0]["targets"]] == ["ENT-A", "ENT-C"]
    assert await listed("d.s") == []
    r = await api.get(f"/v1/notices/{n.id}", headers=auth("d.s"))
    assert r.status == 403
    r = await api.get("/v1/notices/nope", headers=auth("room.a"))
    assert r.status == 404


async def test_only_the_people_of_an_enterprise_it_went_to_acknowledge(api):
    n = three(parse_orgs(ORGS))
    snapshot(api, n)
    r = await api.post(f"/v1/notices/{n.id}/ack", json={"ack": "已落实"}, headers=auth("a.s"))
    assert r.status == 202, await r.text()
    [(cmd, p)] = sent(api)
    assert (cmd.cmd, cmd.actor, cmd.notice_id, cmd.enterprise, cmd.ack, p) == (
        "notice_ack", "a.s", n.id, "ENT-A", "done", 0)
    for person in ("room.a", "ca.reg", "d.s"):
        r = await api.post(f"/v1/notices/{n.id}/ack", json={}, headers=auth(person))
        assert r.status == 403, person
    r = await api.post(f"/v1/notices/{n.id}/ack", json={"ack": "ok"}, headers=auth("a.s"))
    assert r.status == 400
    assert len(sent(api)) == 1


async def test_the_link_shows_the_notice_and_its_post_acknowledges_as_the_person(api):
    n = three(parse_orgs(ORGS))
    snapshot(api, n)
    token = sign(SECRET.encode(), "notice", "a.s", [n.id, "ENT-A"], clock.now_ms() + 60_000)
    r = await api.get(f"/v1/notice-link/{token}")
    page = await r.text()
    assert r.status == 200 and "请检查除尘器温度与清灰" in page and "已收到" in page
    assert sent(api) == []                       # opening the link changes nothing
    r = await api.post(f"/v1/notice-link/{token}", data={"ack": "received"})
    assert r.status == 200 and "已确认" in await r.text()
    r = await api.post(f"/v1/notice-link/{token}", data={"ack": "received"})
    [(a, _), (b, _)] = sent(api)
    assert (a.actor, a.enterprise, a.ack) == ("a.s", "ENT-A", "received")
    assert a.id == b.id                          # a second click is the same command
    ack = sign(SECRET.encode(), "ack", "a.s", [n.id], clock.now_ms() + 60_000)
    r = await api.get(f"/v1/notice-link/{ack}")
    assert r.status == 403                       # a warning's ack token is not a notice link
    r = await api.post(f"/v1/notice-link/{token}", data={"ack": "received"},
                       headers={"Origin": "https://evil.example"})
    assert r.status == 403


async def test_the_console_page_bureau_form_and_tracking_enterprise_buttons(api):
    n = three(parse_orgs(ORGS))
    snapshot(api, n)
    r = await api.get("/console/notices", headers=auth("room.a"))
    page = await r.text()
    assert r.status == 200 and 'id="notice-form"' in page and "已确认 0/3" in page
    assert "甲厂、乙厂、丙厂" in page
    r = await api.get("/console/notices", headers=auth("a.s"))
    page = await r.text()
    assert 'id="notice-form"' not in page and "notice-ack" in page and "乙厂" not in page
    assert "/console/static/notices.js" in page
    r = await api.get("/console/static/notices.js")
    assert r.status == 200 and "/v1/notices" in await r.text()


async def test_a_notice_past_retention_leaves_the_console_with_its_tombstone(api):
    n = three(parse_orgs(ORGS))
    snapshot(api, n)
    r = await api.get(f"/v1/notices/{n.id}", headers=auth("room.a"))
    assert r.status == 200
    api.bus.followed["yujing.incidents"](f"notice:{n.id}".encode(), None)
    r = await api.get(f"/v1/notices/{n.id}", headers=auth("room.a"))
    assert r.status == 404
    r = await api.get("/v1/notices", headers=auth("room.a"))
    assert await r.json() == []


async def test_an_ack_of_a_notice_issued_just_now_waits_for_the_console_to_read_it(api):
    """The desk delivers as soon as it stored the notice: the officer may answer before the
    console has read the record (a 404 in CI under load). The ack waits for it."""
    import asyncio

    from yujing.console.notices_api import new_id

    n = msgspec.structs.replace(three(parse_orgs(ORGS)),
                                id=new_id(clock.now_ms(), "Asia/Shanghai"))
    console = api.console
    ack = asyncio.ensure_future(api.post(f"/v1/notices/{n.id}/ack", json={"ack": "received"},
                                         headers=auth("a.s")))
    while n.id not in console.notice_waiters:  # the request waits for the record
        assert not ack.done(), await (await ack).text()
        await asyncio.sleep(0.01)
    snapshot(api, n)
    r = await ack
    assert r.status == 202, await r.text()
    [(cmd, _)] = sent(api)
    assert (cmd.notice_id, cmd.enterprise) == (n.id, "ENT-A")
    assert console.notice_waiters == {}


async def test_an_unknown_notice_that_was_not_issued_just_now_is_404_at_once(api):
    import time

    for nid in ("N20200101000000-abcdef", "made-up"):
        t = time.monotonic()
        r = await api.post(f"/v1/notices/{nid}/ack", json={}, headers=auth("a.s"))
        assert r.status == 404 and time.monotonic() - t < 1.0, nid
