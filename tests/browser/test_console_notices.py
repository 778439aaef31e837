"""The console's safety notices page (Chromium, playwright, `yujing run`): the bureau sends a
notice to the 粉尘涉爆 enterprises with the form and sees 已确认 0/2; an enterprise's officer
sees it (and no send form), presses 已收到; the bureau's tracking then shows 已确认 1/2 with
the other enterprise missing.
"""

from __future__ import annotations

import os
import time

import pytest
import yaml

from tests.browser.pages import login_as
from tests.browser.test_console import shot
from tests.support.console import Hooks
from tests.support.run import alive, start_run, stop_run, write_config
from yujing.alerts.settings import person_hash

TOKENS = {p: f"token-{p}-0123456789abcdef" for p in ("e1.safety", "ind.a")}


@pytest.fixture(scope="module")
def notices_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("notices")
    hooks = Hooks()
    roster = {"people": [{"id": "ind.a", "name": "工贸A", "contacts": [hooks.url("ind.a")]}],
              "teams": [{"id": "room", "name": "值班室", "domain": "duty_room",
                         "rotation": {"start": "2025-01-01", "slots": [{"A": "ind.a"}]}}]}
    orgs = {"people": [{"id": p, "name": p, "contacts": [hooks.url(p)]}
                       for p in ("e1.safety", "e2.safety", "e3.safety", "ca.reg")],
            "towns": [{"name": "长安镇", "regulators": {"on_call": ["ca.reg"]}}],
            "enterprises": [{"id": "ENT-1", "name": "甲厂", "town": "长安镇", "industry": ["粉尘涉爆"],
                             "duty": {"on_call": ["e1.safety"]}},
                            {"id": "ENT-2", "name": "乙厂", "town": "长安镇", "industry": ["粉尘涉爆"],
                             "duty": {"on_call": ["e2.safety"]}},
                            {"id": "ENT-3", "name": "丙厂", "town": "长安镇", "industry": ["危化"],
                             "duty": {"on_call": ["e3.safety"]}}]}
    (tmp / "roster.yaml").write_text(yaml.safe_dump(roster, allow_unicode=True))
    (tmp / "enterprises.yaml").write_text(yaml.safe_dump(orgs, allow_unicode=True))
    config, http_port, mqtt_port = write_config(tmp, hooks.port, alerts={
        "roster": str(tmp / "roster.yaml"), "enterprises": str(tmp / "enterprises.yaml"),
        "tick": "300ms"}, console={"tokens": {p: person_hash(t) for p, t in TOKENS.items()}})
    run = start_run(tmp, config, http_port, mqtt_port)
    try:
        yield run
    finally:
        stop_run(run)
        for pid in run.pids.values():
            if alive(pid):
                os.kill(pid, 9)
        hooks.server.shutdown()


def login(browser, base: str, who: str):
    return login_as(browser, base, TOKENS[who])


def until(page, url: str, text: str, timeout: float = 60) -> None:
    """Reload ``url`` until the page shows ``text`` (the tracking follows the worker)."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        if text in page.inner_text("#notices"):
            return
        assert time.monotonic() < deadline, f"{text!r} not on {url}: {page.inner_text('#notices')}"
        time.sleep(0.3)


def test_the_bureau_sends_and_tracks_an_enterprise_acknowledges(notices_run, browser):
    base = notices_run.http
    page = login(browser, base, "ind.a")
    page.click("nav a[href='/console/notices']")
    page.wait_for_selector("#notice-form")
    page.fill("input[name=title]", "高温粉尘防爆提示")
    page.fill("textarea[name=body]", "请检查除尘器入口温度")
    page.select_option("select[name=kind]", "防御提示")
    page.fill("input[name=tags]", "粉尘")                       # no such tag: refused, kept
    page.click("#notice-send")
    page.wait_for_selector("#notice-error")
    assert "粉尘" in page.inner_text("#notice-error")
    assert page.input_value("input[name=title]") == "高温粉尘防爆提示"
    page.fill("input[name=tags]", "粉尘涉爆")
    page.click("#notice-send")
    page.wait_for_selector("#notice-sent")
    until(page, f"{base}/console/notices", "已确认 0/2")
    assert "丙厂" not in page.inner_text(".notice-targets")   # 危化, not 粉尘涉爆
    shot(page, "notices-bureau-sent")
    assert not page.errors

    officer = login(browser, base, "e1.safety")
    officer.goto(f"{base}/console/notices")
    assert officer.query_selector("#notice-form") is None
    assert "高温粉尘防爆提示" in officer.inner_text("#notices")
    assert "乙厂" not in officer.inner_text("#notices")          # its own row only
    officer.click(".notice-ack button[value=received]")
    officer.wait_for_selector("#notice-acked")   # posted and reloaded: a goto now cannot cut it
    until(officer, f"{base}/console/notices", "已确认 1/1")
    shot(officer, "notices-enterprise-acked")
    assert not officer.errors
    officer.context.close()

    until(page, f"{base}/console/notices", "已确认 1/2")
    assert "未确认：乙厂" in page.inner_text("#notices")
    row = page.inner_text(".notice-targets tr[data-enterprise='ENT-1']")
    assert "已确认" in row and "e1.safety" in row
    assert not page.errors
    page.context.close()
