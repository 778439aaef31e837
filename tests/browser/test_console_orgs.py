"""The console as an enterprise's safety officer (Chromium, playwright, `yujing run`): the
board lists only the enterprise's warnings, another enterprise's warning page says 无权查看,
the map draws only the enterprise's stations, the town's regulator sees its town's enterprise only, and
the bureau sees both; the header names each one's scope.

Its own run (the shared `duty` fixture has no enterprises): a roster with the 工贸 team and
the duty room, and an enterprises file with two dust enterprises in two towns.
"""

from __future__ import annotations

import os
import time

import pytest
import yaml

from tests.browser.pages import login_as
from tests.browser.test_console import shot
from tests.support.console import Hooks, http
from tests.support.run import alive, start_run, stop_run, write_config
from yujing.alerts.settings import person_hash

TOKENS = {p: f"token-{p}-0123456789abcdef" for p in ("e1.safety", "ind.a", "ca.reg")}


def hot(station: str) -> list[dict]:
    now = int(time.time() * 1000)
    return [{"station": station, "metric": "dust_inlet_temp_c", "ts": now - (3 - i) * 60_000,
             "value": v} for i, v in enumerate((50.0, 75.0, 82.0))]


@pytest.fixture(scope="module")
def orgs_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("orgs")
    hooks = Hooks()
    roster = {"domains": {"dust_explosion": "industrial"},
              "people": [{"id": "ind.a", "name": "工贸A", "contacts": [hooks.url("ind.a")]}],
              "teams": [{"id": "room", "name": "值班室", "domain": "duty_room",
                         "rotation": {"start": "2025-01-01", "slots": [{"A": "ind.a"}]}}]}
    orgs = {"people": [{"id": p, "name": p, "contacts": [hooks.url(p)]}
                       for p in ("e1.safety", "e2.safety", "ca.reg", "hj.reg")],
            "towns": [{"name": "长安镇", "regulators": {"on_call": ["ca.reg"]}},
                      {"name": "厚街镇", "regulators": {"on_call": ["hj.reg"]}}],
            "enterprises": [{"id": "ENT-DG-0001", "name": "甲厂", "town": "长安镇",
                             "duty": {"on_call": ["e1.safety"]}},
                            {"id": "ENT-DG-0002", "name": "乙厂", "town": "厚街镇",
                             "duty": {"on_call": ["e2.safety"]}}]}
    (tmp / "roster.yaml").write_text(yaml.safe_dump(roster, allow_unicode=True))
    (tmp / "enterprises.yaml").write_text(yaml.safe_dump(orgs, allow_unicode=True))
    config, http_port, mqtt_port = write_config(tmp, hooks.port, alerts={
        "roster": str(tmp / "roster.yaml"), "enterprises": str(tmp / "enterprises.yaml"),
        "tick": "300ms", "grouping": {"wait": "0s", "interval": "0s"}},
        console={"tokens": {p: person_hash(t) for p, t in TOKENS.items()}})
    run = start_run(tmp, config, http_port, mqtt_port)
    try:
        for station in ("DG-CA-D01", "DG-HJ-D01"):
            status, _, out = http("POST", f"{run.http}/v1/readings", None, hot(station))
            assert status == 200, out
        deadline, seen = time.monotonic() + 60, {}
        while len(seen) < 2:
            assert time.monotonic() < deadline, f"warnings at both stations: {seen}"
            status, _, out = http("GET", f"{run.http}/v1/warnings", TOKENS["ind.a"])
            seen = {w["station"]: w for w in (yaml.safe_load(out) if status == 200 else [])
                    if w["station"] in ("DG-CA-D01", "DG-HJ-D01")}
            time.sleep(0.2)
        yield run, seen
    finally:
        stop_run(run)
        for pid in run.pids.values():
            if alive(pid):
                os.kill(pid, 9)
        hooks.server.shutdown()


def login(browser, base: str, who: str):
    return login_as(browser, base, TOKENS[who])


def test_an_enterprise_officer_sees_only_the_enterprise(orgs_run, browser):
    run, seen = orgs_run
    mine, theirs = seen["DG-CA-D01"]["incident"], seen["DG-HJ-D01"]["incident"]
    page = login(browser, run.http, "e1.safety")
    page.wait_for_selector(f"#board tbody tr[data-incident='{mine}']", timeout=15_000)
    rows = page.eval_on_selector_all("#board tbody tr[data-incident]",
                                     "rs => rs.map(r => r.dataset.incident)")
    assert rows == [mine]
    assert page.inner_text("#scope") == "企业：甲厂"           # what this officer is scoped to
    assert page.get_attribute("#scope", "data-level") == "enterprise"
    shot(page, "orgs-board-enterprise")

    page.goto(f"{run.http}/console/warnings/{theirs}")
    page.wait_for_function("document.querySelector('#w-head').textContent.includes('无权查看')")
    assert page.query_selector("#timeline li") is None
    shot(page, "orgs-warning-refused")

    page.goto(f"{run.http}/console/map")
    drawn = page.eval_on_selector_all("g.st", "gs => gs.map(g => g.dataset.station)")
    assert set(drawn) == {"DG-CA-D01", "DG-CA-D02"}       # ENT-DG-0001's two collectors
    assert not page.errors
    page.context.close()

    page = login(browser, run.http, "ca.reg")                # 长安镇's regulator: 甲厂 only
    page.wait_for_selector(f"#board tbody tr[data-incident='{mine}']", timeout=15_000)
    assert page.query_selector(f"#board tbody tr[data-incident='{theirs}']") is None
    assert page.inner_text("#scope") == "镇街/园区：长安镇"
    assert not page.errors
    page.context.close()

    page = login(browser, run.http, "ind.a")                 # the bureau sees both
    for iid in (mine, theirs):
        page.wait_for_selector(f"#board tbody tr[data-incident='{iid}']", timeout=15_000)
    assert page.inner_text("#scope") == "市局：全市"
    assert not page.errors
    page.context.close()
