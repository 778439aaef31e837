"""The duty workflow end to end on `yujing run` (embedded Tansu and amqtt), with real
channels: apprise json:// to a local webhook receiver and mailto:// to a local SMTP server.

One run walks the whole path, to keep the suite's time modest:
A's first channel is dead → fallback to A's second; A does not acknowledge → B gets an
e-mail after the (shortened) timeout; B clicks the signed link → escalation stops, the
leader is never paged; the CLI adds a note, its clear is refused until a report-back (回报)
is in, then clears; the CAP messages validate against
the OASIS schema; a silence holds a second warning until it is expired.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import aiohttp
import xmlschema

from tests.support.duty import TOKENS, alert_config, body_text, write_roster
from tests.support.readings import rain

HOUR = 3_600_000
XSD = xmlschema.XMLSchema(str(Path(__file__).resolve().parents[1] / "data" / "CAP-v1.2.xsd"))


def cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI as the person after --as, with their own token (the config holds hashes)."""
    who = args[args.index("--as") + 1] if "--as" in args else ""
    env = {k: v for k, v in os.environ.items() if k != "YUJING_TOKEN"}
    env.update({"YUJING_TOKEN": TOKENS[who]} if who in TOKENS else {})
    return subprocess.run([sys.executable, "-m", "yujing", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=60, env=env)


async def get(http: aiohttp.ClientSession, url: str, token: str | None = TOKENS["l1"]):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(url, headers=headers) as r:
        return r.status, (await r.json() if r.content_type == "application/json" else await r.text())


async def wait_incident(http: aiohttp.ClientSession, base: str, pred, timeout: float = 20):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        status, ws = await get(http, f"{base}/v1/warnings?state=all")
        for w in ws if status == 200 else []:
            status, full = await get(http, f"{base}/v1/warnings/{w['incident']}")
            if status == 200 and pred(full):
                return full
            last = full
        await asyncio.sleep(0.2)
    raise AssertionError(f"no matching incident in {timeout}s; last {last}")


async def test_fallback_escalation_signed_link_cli_cap_and_silence(hooks, smtp, run_factory,
                                                                  tmp_path):
    hooks.failing.add("a1-dead")
    roster = write_roster(tmp_path, hooks, smtp)
    r = run_factory(hooks.port, **alert_config(roster, 0))
    config = tmp_path / "config.yaml"
    start = int(time.time() * 1000) - 4 * HOUR
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{r.http}/v1/readings", json=rain("DG-HM-R01", start, 36, 1.5)) as resp:
            assert resp.status == 200, await resp.text()

        # A: the dead channel fails, the next contact gets it
        raised_at = time.monotonic()
        w = await wait_incident(http, r.http, lambda w: w["rule"] == "rainstorm-guangdong" and any(
            e["kind"] == "notified" for e in w["timeline"]), 60)
        iid = w["incident"]
        msg = (await hooks.wait("a1", lambda m: iid in m["message"], 5))[0]
        assert "橙色" in msg["title"] and "虎门" in msg["title"] and "张三（A岗）" in msg["message"]
        # the reason in the duty officer's words; the expression only on the detail line
        assert "依据：过去3小时累计雨量" in msg["message"] and "达到橙色标准（≥50毫米）" in msg["message"]
        assert "sum(rain_mm" not in msg["message"].split("明细：")[0]
        # why A is paged now, in words (no "policy pages A first", no role code)
        assert "通知原因：橙色预警：按橙色预警规程先通知A岗。" in msg["message"]
        assert "policy" not in msg["message"] and "leader" not in msg["message"]
        assert w["reason_zh"].startswith("过去3小时累计雨量") and "sum(rain_mm" in w["reason"]
        assert "a1-dead" in hooks.failed
        kinds = [(e["kind"], e.get("channel", "")) for e in w["timeline"]]
        port = hooks.port
        # the channel as apprise's privacy rendering shows it (a webhook path is no secret)
        assert ("failed", f"json://127.0.0.1:{port}/a1-dead") in kinds and \
               ("notified", f"json://127.0.0.1:{port}/a1") in kinds
        failed = next(e for e in w["timeline"] if e["kind"] == "failed")
        assert "张三 (A) via" in failed["reason"]
        assert failed["reason_zh"].startswith(f"张三（A岗）经 json://127.0.0.1:{port}/a1-dead 发送失败")

        # No ack from A: B gets an e-mail after the 4 s timeout, with the acknowledge link
        mail = await smtp.wait("b1@example.org", 30)
        assert time.monotonic() - raised_at >= 3.5
        deadline = time.monotonic() + 10
        while not any(iid in body_text(m) for m in smtp.to("b1@example.org")):
            assert time.monotonic() < deadline, "no e-mail to B about the incident"
            await asyncio.sleep(0.1)
        mail = next(m for m in smtp.to("b1@example.org") if iid in body_text(m))
        text = body_text(mail)
        assert "橙色" in mail["Subject"] and "李四（B岗）" in text
        assert re.search(r"通知原因：A岗4秒未确认（发布后已过\d+秒），已升级通知B岗。", text), text
        assert "no acknowledgement" not in text and "escalated to" not in text
        link = re.search(r"一键确认：(\S+)", text).group(1)
        assert link.startswith(f"{r.http}/v1/ack/")

        # B acknowledges with one click: escalation stops, the leader is never paged
        status, page = await get(http, link, token=None)   # no login: the link is the key
        assert status == 200 and "确认 / Acknowledge" in page   # opening it only asks
        async with http.post(link) as resp:                  # the page's button
            status, page = resp.status, await resp.text()
        assert status == 200 and "已确认" in page
        status, _ = await get(http, f"{r.http}/v1/warnings", token=None)
        assert status == 401                                 # timelines need a token
        w = await wait_incident(http, r.http, lambda w: w["incident"] == iid
                                and w["state"] == "acknowledged")
        assert w["acked_by"] == "b1"
        assert [e["kind"] for e in w["timeline"]].count("escalated") == 1
        # the timeline in words, both languages, beside the English sentence of before
        esc = next(e for e in w["timeline"] if e["kind"] == "escalated")
        assert esc["reason_zh"].startswith("A岗4秒未确认") and esc["reason_en"].startswith(
            "Not acknowledged by officer A in 4 s") and "no acknowledgement in 4s" in esc["reason"]
        ack = next(e for e in w["timeline"] if e["kind"] == "acknowledged")
        assert ack["reason_zh"].startswith("b1已确认") and ack["reason_zh"].endswith("；停止升级通知")
        assert ack["reason_en"].startswith("Acknowledged by b1")
        tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
        status, page = await get(http, tampered, token=None)
        assert status == 403 and "bad signature" in page
        await asyncio.sleep(5)                     # longer than the next step's timeout
        assert [m for m in hooks.to("l1") if iid in m["message"]] == []

        # CLI: a note, then a manual clear (销警) with a reason; API needs a token
        out = cli(config, "note", iid, "--as", "a1", "--text", "抽水泵已到位")
        assert out.returncode == 0, out.stderr
        # an orange warning is cleared after its report-back (回报), refused before it
        out = cli(config, "clear", iid, "--as", "b1", "--reason", "雨停，积水已退")
        assert out.returncode == 1 and "橙色及以上预警销警前须先提交处置回报" in out.stderr
        async with http.post(f"{r.http}/v1/warnings/{iid}/reports",
                             json={"status": "done", "measures": "泵车抽排"},
                             headers={"Authorization": f"Bearer {TOKENS['b1']}"}) as resp:
            assert resp.status == 202, await resp.text()
        await wait_incident(http, r.http, lambda w: w["incident"] == iid and w["reports"])
        out = cli(config, "clear", iid, "--as", "b1", "--reason", "雨停，积水已退")
        assert out.returncode == 0, out.stderr
        assert "cleared" in out.stdout
        status, body = await get(http, f"{r.http}/v1/warnings/{iid}")
        assert body["state"] == "cleared" and body["cleared_by"] == "b1"
        reasons = [e["reason"] for e in body["timeline"]]
        assert "抽水泵已到位" in reasons and any("雨停，积水已退" in x for x in reasons)
        assert "b1销警：雨停，积水已退" in [e.get("reason_zh") for e in body["timeline"]]
        out = cli(config, "ack", iid, "--as", "nobody")
        assert out.returncode == 2 and "no API token for 'nobody'" in out.stderr
        async with http.post(f"{r.http}/v1/warnings/{iid}/ack", json={},
                             headers={"Authorization": "Bearer wrong"}) as resp:
            assert resp.status == 401
        await hooks.wait("a1", lambda m: "解除" in m["title"] and iid in m["message"], 15)

        # CAP 1.2: Alert then Cancel, valid against the OASIS schema; the Atom feed lists it
        status, xml = await get(http, f"{r.http}/v1/cap/{iid}.xml", token=None)  # public
        assert status == 200
        XSD.validate(xml)
        root = ET.fromstring(xml)
        ns = {"c": "urn:oasis:names:tc:emergency:cap:1.2"}
        assert root.findtext("c:msgType", namespaces=ns) == "Cancel"
        assert root.findtext("c:info/c:severity", namespaces=ns) == "Severe"
        assert f"{iid}.1" in root.findtext("c:references", namespaces=ns)
        status, feed = await get(http, f"{r.http}/v1/cap/feed.xml")
        assert status == 200 and f"/v1/cap/{iid}.xml" in feed

        # A silence over 长安镇 holds its warning until the silence is expired
        out = cli(config, "silence", "add", "--as", "a1", "--match", "town=长安镇", "--for", "1h",
                  "--reason", "雨量站检修")
        assert out.returncode == 0, out.stderr
        sid = re.search(r"silence (\S+) added", out.stdout).group(1)
        await asyncio.sleep(1)
        async with http.post(f"{r.http}/v1/readings", json=rain("DG-CA-R01", start, 36, 1.5)) as resp:
            assert resp.status == 200
        w = await wait_incident(http, r.http, lambda w: w["town"] == "长安镇" and w["muted"])
        assert w["muted"].startswith(f"silenced by silence {sid}") and "雨量站检修" in w["muted"]
        assert not any("长安" in m["title"] for m in hooks.to("a1"))
        held = next(e for e in w["timeline"] if e["kind"] == "silenced")
        assert held["reason_zh"] == f"暂停通知：静默 {sid} 生效中（a1设置：雨量站检修）"
        out = cli(config, "silence", "list", "--as", "a1")
        assert out.returncode == 0 and sid in out.stdout and "town=长安镇" in out.stdout
        assert "a1 created: 雨量站检修" in out.stdout
        out = cli(config, "silence", "expire", sid, "--as", "b1", "--reason", "检修完成")
        assert out.returncode == 0, out.stderr
        released = await hooks.wait("a1", lambda m: "长安" in m["title"], 15)
        assert "通知原因：暂停通知已解除，现在通知。橙色预警：按橙色预警规程先通知A岗。" in \
            released[0]["message"], released[0]["message"]
        out = cli(config, "silence", "list", "--as", "a1", "--all")
        assert "b1 expired: 检修完成" in out.stdout
