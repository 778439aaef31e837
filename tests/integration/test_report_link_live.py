"""The report-back link in a warning's message, on `yujing run` with real webhooks: an orange
dust warning (a grade that needs a report, alerts.reports.required_for) reaches the
enterprise's officer with 「填写处置回报：<link>」; the link opens the form and its POST puts
the report on the warning — no acknowledge page needed on the way."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp

from tests.integration.test_orgs_live import TOKENS, get, hot, incident_at, write_files
from tests.support.duty import SECRET
from yujing.alerts.settings import person_hash

REPORT = re.compile(r"填写处置回报：(\S+/v1/report/[A-Za-z0-9._-]+)")


async def test_an_orange_warning_message_carries_a_working_report_link(hooks, run_factory,
                                                                      tmp_path):
    roster, orgs = write_files(tmp_path, hooks)
    r = run_factory(hooks.port, alerts={
        "roster": str(roster), "enterprises": str(orgs), "tick": "300ms",
        "grouping": {"wait": "0s", "interval": "0s"},
        "delivery": {"retries": 1, "backoff": "100ms", "timeout": "5s"}},
        console={"tokens": {p: person_hash(t) for p, t in TOKENS.items()}, "link_secret": SECRET})
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{r.http}/v1/readings", json=hot("DG-CA-D01")) as resp:
            assert resp.status == 200, await resp.text()
        w = await incident_at(http, r.http, "DG-CA-D01")
        assert w["grade"] == 3, w                     # orange: a report is required
        msg = (await hooks.wait("e1.safety", lambda m: w["incident"] in m["message"], 30))[0]
        link = REPORT.search(msg["message"]).group(1)
        assert link.startswith(f"{r.http}/v1/report/")
        async with http.get(link) as resp:
            assert resp.status == 200 and "提交回报" in await resp.text()
        async with http.post(link, data={"status": "handling", "measures": "停机降温，清理积灰"}) as resp:
            assert resp.status == 200, await resp.text()
        deadline = time.monotonic() + 20
        while True:
            status, full = await get(http, f"{r.http}/v1/warnings/{w['incident']}", "e1.safety")
            if full.get("reports"):
                break
            assert time.monotonic() < deadline, full
            await asyncio.sleep(0.2)
        assert [(x["by"], x["measures"]) for x in full["reports"]] == [("e1.safety", "停机降温，清理积灰")]
