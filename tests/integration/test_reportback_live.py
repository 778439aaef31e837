"""Report-back (回报) and the period report on `yujing run` (embedded Tansu and amqtt), driven
over HTTP as the duty officers' clients do (issue 14).

An orange rain warning at 虎门镇: a manual clear is refused with the reason (409) until a
report is in; the report posted over /v1 shows on the timeline (in Chinese) and in the CAP
message (note and instruction, valid against the OASIS schema); the clear then goes through;
`yujing report --by town` read from the run's Kafka has the row of 虎门镇 with the report's
people and no report missing.
"""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import aiohttp
import xmlschema

from tests.support.duty import TOKENS, alert_config, write_roster
from tests.support.readings import rain

HOUR = 3_600_000
XSD = xmlschema.XMLSchema(str(Path(__file__).resolve().parents[1] / "data" / "CAP-v1.2.xsd"))
NS = {"c": "urn:oasis:names:tc:emergency:cap:1.2"}


async def call(http: aiohttp.ClientSession, method: str, url: str, body: object = None,
               who: str | None = "a1") -> tuple[int, object]:
    headers = {"Authorization": f"Bearer {TOKENS[who]}"} if who else {}
    async with http.request(method, url, json=body, headers=headers) as r:
        text = await r.text()
        return r.status, json.loads(text) if r.content_type == "application/json" else text


async def wait_for(http: aiohttp.ClientSession, base: str, pred, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        status, ws = await call(http, "GET", f"{base}/v1/warnings?state=all")
        for w in ws if status == 200 else []:
            status, full = await call(http, "GET", f"{base}/v1/warnings/{w['incident']}")
            if status == 200 and pred(full):
                return full
            last = full
        await asyncio.sleep(0.2)
    raise AssertionError(f"no matching incident in {timeout}s; last {last}")


async def test_clear_needs_a_report_which_reaches_timeline_cap_and_the_period_report(
        hooks, smtp, run_factory, tmp_path):
    roster = write_roster(tmp_path, hooks, smtp)
    r = run_factory(hooks.port, **alert_config(roster, 0, timeout="1h"))
    config = tmp_path / "config.yaml"
    start = int(time.time() * 1000) - 4 * HOUR
    async with aiohttp.ClientSession() as http:
        status, _ = await call(http, "POST", f"{r.http}/v1/readings",
                               rain("DG-HM-R01", start, 36, 1.5), who=None)
        assert status == 200
        w = await wait_for(http, r.http, lambda w: w["station"] == "DG-HM-R01"
                           and w["state"] == "active" and w["grade"] == 3)
        iid, url = w["incident"], f"{r.http}/v1/warnings/{w['incident']}"

        # 销警 without a report: refused with the reason, nothing changes
        status, out = await call(http, "POST", f"{url}/clear", {"reason": "雨停"})
        assert status == 409, out
        assert out["reason_zh"] == "橙色及以上预警销警前须先提交处置回报"
        status, out = await call(http, "POST", f"{url}/reports",
                                 {"status": "done", "measures": "x", "photos": ["javascript:x"]})
        assert status == 400 and "http" in out["error"]

        # the report over /v1: on the timeline, in words, and in CAP
        report = {"status": "done", "measures": "启动排涝站，封闭连升路下穿通道", "evacuated": 35,
                  "withdrawn": 6, "stopped": False, "photos": ["https://img.example/hm/1.jpg"]}
        status, out = await call(http, "POST", f"{url}/reports", report)
        assert status == 202 and out["by"] == "a1"
        w = await wait_for(http, r.http, lambda w: w["incident"] == iid and w["reports"], 30)
        assert (w["reports"][0]["evacuated"], w["reports"][0]["by"]) == (35, "a1")
        entry = next(e for e in w["timeline"] if e["kind"] == "report")
        assert entry["reason_zh"].startswith("回报（已处置）；措施：启动排涝站，封闭连升路下穿通道；"
                                             "转移35人，撤离6人；未停产；照片1张")
        status, detail = await call(http, "GET", f"{r.http}/console/api/warnings/{iid}")
        assert status == 200 and not detail["report_due"]
        assert any(e["kind"] == "report" and e["reason"].startswith("回报（已处置）")
                   for e in detail["timeline"])
        status, xml = await call(http, "GET", f"{r.http}/v1/cap/{iid}.xml", who=None)
        assert status == 200
        XSD.validate(xml)
        root = ET.fromstring(xml)
        assert root.findtext("c:msgType", namespaces=NS) == "Update"
        assert root.findtext("c:note", namespaces=NS).startswith("回报（已处置）；措施：启动排涝站")
        assert root.findtext("c:info/c:instruction", namespaces=NS).endswith(
            "处置回报：已处置；措施：启动排涝站，封闭连升路下穿通道")

        # now the clear goes through
        status, out = await call(http, "POST", f"{url}/clear", {"reason": "雨停，积水已退"})
        assert status == 202, out
        w = await wait_for(http, r.http, lambda w: w["incident"] == iid
                           and w["state"] == "cleared", 30)
        assert w["cleared_by"] == "a1"
        status, ws = await call(http, "GET", f"{r.http}/v1/warnings?state=all")
        here = [x for x in ws if x["town"] == "虎门镇" and x["raised_ms"]]   # other rules too
        assert iid in [x["incident"] for x in here]

    # the period report, read from the run's Kafka
    today = datetime.now().date()
    out_csv = tmp_path / "report.csv"
    done = subprocess.run([sys.executable, "-m", "yujing", "report", "--config", str(config),
                           "--kafka-bootstrap", r.kafka, "--by", "town",
                           "--from", str(today - timedelta(days=1)),
                           "--to", str(today + timedelta(days=2)), "--out", str(out_csv)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out_csv.read_text(encoding="utf-8-sig").splitlines()))
    hm = next(row for row in rows if row["镇街/园区"] == "虎门镇")
    assert (hm["预警数"], hm["缺回报"], hm["转移人数"], hm["撤离人数"]) == (
        str(len(here)), "0", "35", "6")
    assert hm["橙色"] == str(sum(x["grade"] == 3 for x in here)) != "0"
    assert hm["销警用时中位数(分钟)"] != ""
    assert rows[-1]["镇街/园区"] == "合计"
