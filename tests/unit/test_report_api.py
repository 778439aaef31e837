"""Report-back over HTTP (issue 14): ``POST /v1/warnings/{id}/reports`` (400 with a reason for
a bad body, never a 500), the 409 on clearing an orange warning without a report, the signed
report link from the acknowledge page, and the console's period report page and CSV. The
console runs on a bus in memory (what it sends is checked, not applied: the book's side is
test_reportback.py)."""

from __future__ import annotations

import csv
import io
import json

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.unit.test_console_bus import MemoryBus, warning
from yujing import clock
from yujing.alerts.records import Command, Report
from yujing.alerts.settings import person_hash
from yujing.alerts.signing import sign
from yujing.config import Config
from yujing.console.state import Console
from yujing.console.web import mount_console

TOKEN = "t-zhang-wei-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "s3cret-for-links-0123456789abcdef"


@pytest.fixture
async def api():
    bus = MemoryBus()
    cfg = Config.model_validate({"console": {"tokens": {"zhang.wei": person_hash(TOKEN)},
                                             "link_secret": SECRET},
                                 "worker": {"rules_dir": "/nonexistent/rules"}})
    app = web.Application()
    mount_console(app, Console(cfg, bus))
    client = TestClient(TestServer(app))
    await client.start_server()
    w = warning()                      # orange, active, partition 3
    w.raised_ms = clock.now_ms() - 3_600_000
    bus.followed["yujing.incidents"](w.incident.encode(), msgspec.json.encode(w))
    client.bus, client.w = bus, w
    yield client
    await client.close()


def sent(api) -> list[Command]:
    return [msgspec.json.decode(v, type=Command) for t, v, _ in api.bus.sent
            if t == "yujing.commands"]


async def post(api, path: str, body) -> tuple[int, dict]:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    r = await api.post(path, data=raw, headers={**AUTH, "Content-Type": "application/json"})
    return r.status, await r.json()


async def test_a_report_is_sent_to_the_book_as_the_person(api):
    status, out = await post(api, f"/v1/warnings/{api.w.incident}/reports",
                             {"status": "done", "measures": "抽排积水", "evacuated": 12,
                              "photos": ["https://img.example/a.jpg"]})
    assert status == 202 and out["by"] == "zhang.wei"
    [cmd] = sent(api)
    assert (cmd.cmd, cmd.actor, cmd.incident, cmd.id) == ("report", "zhang.wei", api.w.incident,
                                                          out["command"])
    assert (cmd.report.by, cmd.report.evacuated, cmd.report.measures) == ("zhang.wei", 12, "抽排积水")
    assert api.bus.sent[0][2] == api.w.partition


@pytest.mark.parametrize(("body", "why"), [
    ({"status": "done", "measures": "x", "photos": ["javascript:alert(1)"]}, "http"),
    ({"status": "ok", "measures": "x"}, "status"),
    ({"status": "done"}, "measures"),
    ({"status": "done", "measures": "x", "evacuated": -3}, "evacuated"),
    (b"[1,2]", "bad report"), (b"\xff\xfe", "JSON"), (b"[" * 5000 + b"]" * 5000, "report"),
])
async def test_a_bad_report_is_400_with_the_reason_and_nothing_is_sent(api, body, why):
    status, out = await post(api, f"/v1/warnings/{api.w.incident}/reports", body)
    assert status == 400 and why in out["error"], out
    assert sent(api) == []


async def test_reports_need_a_person_and_a_known_warning(api):
    r = await api.post(f"/v1/warnings/{api.w.incident}/reports", json={"status": "done"})
    assert r.status == 401
    status, out = await post(api, "/v1/warnings/nope/reports", {"status": "done", "text": "x"})
    assert status == 404 and "nope" in out["error"]


async def test_clearing_orange_without_a_report_is_409_with_the_chinese_reason(api):
    status, out = await post(api, f"/v1/warnings/{api.w.incident}/clear", {"reason": "水退"})
    assert status == 409
    assert out["reason_zh"] == "橙色及以上预警销警前须先提交处置回报"
    assert sent(api) == []
    w = msgspec.structs.replace(api.w, reports=[Report("r", 1, "zhang.wei", "done", "ok")],
                                updated_ms=api.w.updated_ms + 1)
    api.bus.followed["yujing.incidents"](w.incident.encode(), msgspec.json.encode(w))
    status, out = await post(api, f"/v1/warnings/{api.w.incident}/clear", {"reason": "水退"})
    assert status == 202 and [c.cmd for c in sent(api)] == ["clear"]


def link(action: str, person: str = "zhang.wei", ttl: int = 3_600_000, iids=None) -> str:
    return sign(SECRET.encode(), action, person, iids or [warning().incident],
                clock.now_ms() + ttl)


async def test_the_ack_page_leads_to_a_report_form_that_reports_as_the_person(api):
    page = await (await api.get("/v1/ack/" + link("ack"))).text()
    assert "填写处置回报" in page and 'href="../report/' in page
    token = page.split('href="../report/')[1].split('"')[0]
    form = await api.get("/v1/report/" + token)
    assert form.status == 200 and "提交回报" in await form.text()
    assert sent(api) == []                                  # opening the form changes nothing
    data = {"status": "support", "measures": "转移群众", "evacuated": "40", "withdrawn": "2",
            "stopped": "yes", "photos": "https://img.example/1.jpg\n", "text": ""}
    for _ in range(2):                                      # a double click reports once
        r = await api.post("/v1/report/" + token, data=data)
        assert r.status == 200 and "回报已提交" in await r.text()
    cmds = sent(api)
    assert len({c.id for c in cmds}) == 1
    rep = cmds[0].report
    assert (cmds[0].actor, rep.status, rep.evacuated, rep.withdrawn, rep.stopped, rep.photos) == (
        "zhang.wei", "support", 40, 2, True, ["https://img.example/1.jpg"])


async def test_the_report_link_refuses_bad_forms_other_tokens_and_other_sites(api):
    token = link("report")
    r = await api.post("/v1/report/" + token, data={"status": "done", "measures": "x",
                                                    "photos": "javascript:alert(1)"})
    assert r.status == 400 and "http" in await r.text()
    r = await api.post("/v1/report/" + token, data={"status": "done", "measures": "x",
                                                    "evacuated": "many"})
    assert r.status == 400 and "整数" in await r.text()
    assert (await api.get("/v1/report/" + link("ack"))).status == 403           # an ack token
    assert (await api.get("/v1/report/" + link("report", ttl=-1))).status == 403  # expired
    assert (await api.get("/v1/report/" + token[:-3] + "AAA")).status == 403     # forged
    r = await api.post("/v1/report/" + token, data={"status": "done", "measures": "x"},
                       headers={"Origin": "https://evil.example"})
    assert r.status == 403
    assert sent(api) == []


async def test_the_console_report_page_and_csv(api):
    r = await api.get("/console/report?by=town", headers=AUTH)
    text = await r.text()
    assert r.status == 200 and "虎门镇" in text and "缺回报" in text
    r = await api.get("/console/report.csv?by=town&lang=en", headers=AUTH)
    assert r.status == 200 and r.content_type == "text/csv"
    table = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
    head = table[0]
    row = dict(zip(head, table[1]))
    assert head[0] == "town" and row["town"] == "虎门镇"
    assert (row["warnings"], row["orange"], row["reports missing"]) == ("1", "1", "1")
    assert "X-Yujing-Incomplete" not in r.headers and "统计不完整" not in text   # yesterday-today
    r = await api.get("/console/report.csv?from=2020-01-01&to=2020-01-31", headers=AUTH)
    assert "alerts.retention" in r.headers["X-Yujing-Incomplete"]
    r = await api.get("/console/report?from=2020-01-01&to=2020-01-31", headers=AUTH)
    text = await r.text()
    assert 'id="report-incomplete"' in text and "统计不完整" in text and "incomplete:" not in text
    r = await api.get("/console/report.csv?from=2026-13-01", headers=AUTH)
    assert r.status == 400
    r = await api.get("/console/report?by=nobody", headers=AUTH)
    assert r.status == 400
