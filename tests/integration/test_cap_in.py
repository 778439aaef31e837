"""Official signals in, end to end on real brokers (`yujing run`: Tansu, amqtt, gateway, worker):
a CAP alert posted → warning raised and paged; an update → upgraded; a cancel → cleared; one
that expires → cleared; an alert in a local Atom feed the gateway polls → raised; a token
without the right to post official signals → 403."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import aiohttp
import yaml
from aiohttp import web

from tests.support.capxml import cap_xml
from tests.support.run import ROOT, local_app
from yujing.alerts.capmap import SignalBook
from yujing.connectors.auth import hash_token
from yujing.connectors.embedded import free_port
from yujing.stations import load_registry

CST = timezone(timedelta(hours=8))
BUREAU, DEVICE = "bureau-0123456789abcdef0123456789abcdef", "device-0123456789abcdef0123456789abcd"


def at(minutes: float) -> str:
    t = datetime.now(CST) + timedelta(minutes=minutes)
    return t.replace(microsecond=0).isoformat()


async def post(session: aiohttp.ClientSession, url: str, body: bytes, token: str = BUREAU
               ) -> tuple[int, dict]:
    async with session.post(f"{url}/v1/cap", data=body,
                            headers={"Content-Type": "application/cap+xml",
                                     "Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json()


async def test_cap_posted_updated_cancelled_expired_and_polled(receiver, run_factory, tmp_path):
    feed_port = free_port()
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"tokens": [
        {"gateway": "gdqx", "sha256": hash_token(BUREAU), "official_signals": True},
        {"gateway": "gauge", "sha256": hash_token(DEVICE), "all_stations": True}]}))
    typhoon = cap_xml("TY1", event="台风蓝色预警信号", sent=at(0), expires=at(120), polygon=None,
                      circle="23.050,113.583 3")
    atom = (b'<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            b"<title>signals</title><id>urn:x</id><updated>2026-01-01T00:00:00Z</updated>"
            b"<entry><id>urn:ty1</id><title>t</title><updated>2026-01-01T00:00:00Z</updated>"
            b'<content type="application/cap+xml">'
            + typhoon.split(b"?>", 1)[1] + b"</content></entry></feed>")
    polls: list[str | None] = []

    async def feed(request: web.Request) -> web.Response:
        polls.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304)
        return web.Response(body=atom, content_type="application/atom+xml", headers={"ETag": '"v1"'})

    async with local_app(feed_port, web.get("/atom.xml", feed)):
        r = run_factory(receiver.port, http={"tokens_file": str(tokens)}, cap={
            "feeds": [{"url": f"http://127.0.0.1:{feed_port}/atom.xml", "interval": "1s"}],
            "station_kinds": ["rain_gauge"]})
        async with aiohttp.ClientSession() as s:
            # polled: the typhoon signal at 麻涌 is paged
            ty = await receiver.wait_for(lambda m: "麻涌" in m["title"] and "蓝色" in m["title"], 90)
            assert "官方预警信号" in ty["message"] and "台风蓝色预警信号" in ty["message"]
            assert '"v1"' in polls   # the second poll asked with the ETag (304)
            # a device's token may write readings, not official signals
            status, body = await post(s, r.http, typhoon, DEVICE)
            assert status == 403 and "official_signals" in body["error"]
            # refused: not CAP, and an XXE attempt
            status, body = await post(s, r.http, b"<alert>nope</alert>")
            assert status == 400 and body["code"] == "schema"
            status, body = await post(s, r.http, b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x '
                                                 b'SYSTEM "file:///etc/passwd">]><a>&x;</a>')
            assert status == 400 and body["code"] == "forbidden"
            # pushed: yellow rainstorm at 虎门 (a 3 km circle around its gauge)
            area = {"polygon": None, "circle": "22.815,113.673 3"}
            status, body = await post(s, r.http, cap_xml("RS1", sent=at(0), expires=at(120), **area))
            assert (status, body["warnings"]) == (200, 1), body
            y = await receiver.wait_for(lambda m: "虎门" in m["title"] and "黄色" in m["title"], 60)
            assert "东莞市气象台" in y["message"] and "http://www.tqyb.com.cn.example" in y["message"]
            status, body = await post(s, r.http, cap_xml(
                "RS2", "暴雨橙色预警信号", "Update", sent=at(0.1), expires=at(120),
                refs=[("RS1", at(0))], **area))
            assert (status, body["warnings"]) == (200, 1), body
            await receiver.wait_for(lambda m: "虎门" in m["title"] and "橙色" in m["title"], 60)
            n = len(receiver.messages)
            status, body = await post(s, r.http, cap_xml(
                "RS3", "暴雨橙色预警信号", "Cancel", sent=at(0.2), expires=at(120),
                refs=[("RS2", at(0.1))], info=False))
            assert (status, body["warnings"]) == (200, 1), body
            cleared = await receiver.wait_for(
                lambda m: receiver.messages.index(m) >= n and "虎门" in m["title"], 60)
            assert "解除" in cleared["title"] + cleared["message"], cleared
            # a signal that expires clears by itself (长安, 15 s)
            status, body = await post(s, r.http, cap_xml("RS9", sent=at(0), expires=at(0.25),
                                                         polygon=None, circle="22.816,113.803 3"))
            assert (status, body["warnings"]) == (200, 1), body
            await receiver.wait_for(lambda m: "长安" in m["title"] and "黄色" in m["title"], 60)
            gone = await receiver.wait_for(lambda m: "长安" in m["title"] and "到期" in m["message"], 60)
            assert "官方预警信号到期" in gone["message"]
    # what a restarted gateway takes up: only the typhoon signal is still in force
    saved = SignalBook(load_registry(ROOT / "stations.yaml"))
    saved.load((tmp_path / ".yujing" / "cap-signals.json").read_bytes())
    assert [s.root[1] for s in saved.signals.values()] == ["TY1"]
