"""Issue 12, findings 5-8 on the real server: `yujing run` (embedded Tansu and amqtt) with
real channels (webhooks, SMTP), driven over HTTP as a client, a scanner and an attacker would.

- Opening the acknowledge link (GET, HEAD) changes nothing: A's timeout passes and B is
  e-mailed as if nobody had opened it; the page's POST acknowledges, once.
- Every malformed body on ack/note/clear, /v1/silences and .../expire is a 400 with a reason;
  an oversized body a 413; texts are bounded.
- Silence ids are the server's; another person cannot replace or expire one; absurd times are
  400 and the list keeps answering.
- A silence with the pattern that froze the worker (``rule=~(.*.*)*X``) is accepted, and the
  worker goes on raising and notifying the next warning.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from tests.support.duty import HASHED, SECRET, TOKENS, alert_config, write_roster
from tests.support.readings import rain
from yujing.alerts.settings import person_hash
from yujing.alerts.signing import sign

HOUR = 3_600_000
X1 = "token-x1-0123456789abcdef"          # a person on no team: no rights over silences
MALFORMED = [b"not json", b"[1, 2]", b'"text"', b"null", b"{", b"\xff\xfe",
             b"[" * 5000 + b"]" * 5000, b'{"note": ["x"]}', b'{"reason": 7}', b'{"unknown": 1}']


class Api:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base

    async def call(self, method: str, path: str, who: str | None = "a1", raw: bytes | None = None,
                   body: object = None, headers: dict | None = None) -> tuple[int, object]:
        h = dict(headers or {})
        if who:
            h["Authorization"] = f"Bearer {X1 if who == 'x1' else TOKENS[who]}"
        if body is not None:
            raw = json.dumps(body).encode()
        if raw is not None:
            h.setdefault("Content-Type", "application/json")
        async with self.http.request(method, self.base + path, data=raw, headers=h) as r:
            text = await r.text()
            return r.status, (json.loads(text) if r.content_type == "application/json" else text)

    async def incident(self, pred, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            status, ws = await self.call("GET", "/v1/warnings?state=all")
            for w in ws if status == 200 else []:
                _, full = await self.call("GET", f"/v1/warnings/{w['incident']}")
                if isinstance(full, dict) and pred(full):
                    return full
                last = full
            await asyncio.sleep(0.2)
        raise AssertionError(f"no matching incident in {timeout}s; last {last}")

    async def silence(self, sid: str, timeout: float = 20) -> dict:
        """The silence once the books applied it (it is in their snapshots)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, ss = await self.call("GET", "/v1/silences")
            assert status == 200
            for s in ss:
                if s["id"] == sid:
                    return s
            await asyncio.sleep(0.2)
        raise AssertionError(f"silence {sid} never reached the console")


async def test_commands_and_the_ack_link_against_the_running_server(hooks, smtp, run_factory,
                                                                    tmp_path):
    roster = write_roster(tmp_path, hooks, smtp)
    cfg = alert_config(roster, 0)
    cfg["console"]["tokens"] = {**HASHED, "x1": person_hash(X1)}
    r = run_factory(hooks.port, **cfg)
    start = int(time.time() * 1000) - 4 * HOUR
    async with aiohttp.ClientSession() as http:
        api = Api(http, r.http)
        status, _ = await api.call("POST", "/v1/readings", None, body=rain("DG-HM-R01", start))
        assert status == 200
        w = await api.incident(lambda w: w["station"] == "DG-HM-R01" and w["rule"] ==
                               "rainstorm-guangdong" and any(e["kind"] == "notified"
                                                             for e in w["timeline"]))
        iid = w["incident"]

        # --- finding 5: a scanner opens a1's link; nothing happens, escalation goes on
        link = "/v1/ack/" + sign(SECRET.encode(), "ack", "a1", [iid], int(time.time() * 1000) + HOUR)
        status, page = await api.call("GET", link, None)
        assert status == 200 and "确认 / Acknowledge" in page and "已确认" not in page
        assert (await api.call("HEAD", link, None))[0] == 200
        await smtp.wait("b1@example.org", 30)                  # B paged after A's 4 s timeout
        w = await api.incident(lambda w: w["incident"] == iid and "escalated" in
                               [e["kind"] for e in w["timeline"]])
        assert w["state"] == "active" and w["acked_by"] == ""
        status, page = await api.call("POST", link, None, headers={"Origin": "https://evil.example"})
        assert status == 403
        status, page = await api.call("POST", link, None)
        assert status == 200 and "已确认" in page
        assert (await api.call("POST", link, None))[0] == 200   # a second click
        status, _ = await api.call("POST", f"/v1/warnings/{iid}/note", body={"text": "已到现场"})
        assert status == 202
        w = await api.incident(lambda w: w["incident"] == iid and "已到现场" in
                               [e["reason"] for e in w["timeline"]])
        assert (w["state"], w["acked_by"]) == ("acknowledged", "a1")
        assert [e["kind"] for e in w["timeline"]].count("acknowledged") == 1

        # --- finding 8: malformed bodies are 400 with a reason, oversized ones 413
        for raw in MALFORMED:
            for path in (f"/v1/warnings/{iid}/ack", f"/v1/warnings/{iid}/note",
                         f"/v1/warnings/{iid}/clear", "/v1/silences"):
                status, out = await api.call("POST", path, raw=raw)
                assert status == 400 and out["error"], (path, raw[:20], out)
        status, out = await api.call("POST", f"/v1/warnings/{iid}/note", body={"text": "长" * 2001})
        assert status == 400 and "2000" in out["error"]
        status, out = await api.call("POST", f"/v1/warnings/{iid}/note",
                                     body={"text": "x" * 70_000})
        assert status == 413 and out["error"]

        # --- finding 6: server-made ids, rights on replace and expire, sane times
        body = {"matchers": ["town=长安镇"], "duration": "1h", "reason": "雨量站检修"}
        status, out = await api.call("POST", "/v1/silences", body=dict(body, id="my-id"))
        assert status == 400 and "id" in out["error"]
        for bad in ({"ends_ms": 1e20}, {"duration": "30d"}, {"starts_ms": -1}):
            status, out = await api.call("POST", "/v1/silences", body={**body, **bad})
            assert status == 400 and out["error"], bad
        status, out = await api.call("POST", "/v1/silences", body=body)
        assert status == 202 and len(out["id"]) == 16
        sid = out["id"]
        assert (await api.silence(sid))["created_by"] == "a1"
        for raw in MALFORMED:
            status, out = await api.call("POST", f"/v1/silences/{sid}/expire", raw=raw)
            assert status == 400 and out["error"], (raw[:20], out)
        status, out = await api.call("POST", f"/v1/silences/{sid}/expire", "x1", body={})
        assert status == 403 and "a1" in out["error"]
        status, out = await api.call("POST", "/v1/silences", "x1", body=dict(body, id=sid))
        assert status == 403

        # --- finding 7: the pathological pattern is accepted and the worker keeps working
        status, out = await api.call("POST", "/v1/silences", body={
            "matchers": ["rule=~(.*.*)*X"], "duration": "1h", "reason": "RE2"})
        assert status == 202, out
        evil = out["id"]
        await api.silence(evil)
        status, _ = await api.call("POST", "/v1/readings", None, body=rain("DG-DL-R01", start))
        assert status == 200
        await api.incident(lambda w: w["station"] == "DG-DL-R01" and any(
            e["kind"] == "notified" for e in w["timeline"]), 60)
        status, ss = await api.call("GET", "/v1/silences", "b1")
        assert status == 200 and {sid, evil} <= {s["id"] for s in ss}
