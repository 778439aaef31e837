"""Issue 13's console pieces in a browser (Debian's headless Chromium through playwright, on
a desktop and on a 390×844 phone viewport) against `yujing run` (the `duty` fixture,
tests/conftest.py): the pending section of the board, the camera event's detail on the
warning page, the storm view (暴雨专题) kept live, and the phone layout (no horizontal
scroll, the header's menu, the board as cards, the action bar in reach of a thumb).

Screenshots of every page at both sizes go to tests/artifacts/console/ (gitignored;
$YUJING_ARTIFACTS overrides), named desktop-* and phone-*.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.browser.pages import login_as
from tests.support.console import TOKENS, http, incidents
from tests.support.readings import HOUR, MIN, rain

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("YUJING_ARTIFACTS") or ROOT / "tests" / "artifacts" / "console")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 900}


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def login(browser, base: str, who: str, viewport: dict):
    phone = viewport is PHONE
    return login_as(browser, base, TOKENS[who], viewport=viewport, has_touch=phone,
                    is_mobile=phone, device_scale_factor=2 if phone else 1)


def post(base: str, path: str, body: object) -> None:
    status, _, out = http("POST", f"{base}{path}", body=body)
    assert status == 200, out


def wait_for(base: str, pred, what: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in incidents(base):
            if pred(w):
                return w
        time.sleep(0.2)
    raise AssertionError(f"no {what} in {timeout}s: {incidents(base)}")


def no_sideways_scroll(page) -> None:
    width = page.evaluate("document.scrollingElement.scrollWidth")
    # what sticks out, to name it when the assertion fails
    wide = page.evaluate("""[...document.querySelectorAll('body *')].filter((el) =>
        el.getBoundingClientRect().right > 391 && !el.closest('svg')).slice(0, 12).map((el) =>
        `${el.tagName}#${el.id}.${el.className}:${el.getBoundingClientRect().right}`)""")
    assert width <= PHONE["width"], f"{page.url}: {width} px wide, scrolls sideways: {wide}"


def in_view(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return (box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]
            and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"])


def test_pending_section_event_detail_and_storm_view_on_desktop_and_phone(duty, browser):
    run, _, warm = duty
    base = run.http
    now = int(time.time() * 1000)
    # a waterlogging point under water for one minute: its rule wants 5 minutes (for: 5m),
    # so the warning is pending: nobody is told yet
    post(base, "/v1/readings", [{"station": "DG-NC-L01", "metric": "waterlogging_depth_m",
                                 "ts": now - MIN + i * 30_000, "value": 0.12} for i in range(3)])
    pend = wait_for(base, lambda w: w["station"] == "DG-NC-L01" and w["state"] == "pending",
                    "pending waterlogging warning")
    # a camera's smoke detection with a box, an image and detail: a yellow forest-fire warning
    post(base, "/v1/events", {"type": "smoke", "camera": "DG-QX-C02", "ts": now,
                              "confidence": 0.87, "bbox": [0.42, 0.31, 0.12, 0.09],
                              "image_url": "https://cams.example.org/qx-c02/frame-0815.jpg",
                              "detail": {"preset": 3, "azimuth_deg": 127.5}, "id": "QX-C02-0815"})
    fire = wait_for(base, lambda w: w["station"] == "DG-QX-C02" and w["state"] == "active",
                    "camera warning")

    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = login(browser, base, "b1", viewport)
        # board: the pending warning in its own section, not among the open ones
        row = f'#pending tbody tr[data-incident="{pend["incident"]}"]'
        page.wait_for_selector(row)
        assert page.locator(f'#board tbody tr[data-incident="{pend["incident"]}"]').count() == 0
        assert "南城鸿福路下穿隧道易涝点" in page.inner_text(row)
        assert "/ 5m" in page.inner_text(f"{row} td.held")
        assert page.inner_text("#pending-n") == "1"
        page.wait_for_selector(f'#board tbody tr[data-incident="{warm["incident"]}"]')
        shot(page, f"{name}-board-pending")

        # warning page of the camera warning: the event's image link, box and detail fields
        page.goto(f"{base}/console/warnings/{fire['incident']}")
        ev = "#events .event[data-type=smoke]"
        page.wait_for_selector(ev)
        assert page.get_attribute(f"{ev} a.image", "href") == \
            "https://cams.example.org/qx-c02/frame-0815.jpg"
        assert "0.42, 0.31, 0.12, 0.09" in page.inner_text(f"{ev} .bbox")
        assert page.locator(f"{ev} svg.frame rect.bx").count() == 1
        detail = page.inner_text(f"{ev} table.detail")
        assert "azimuth_deg" in detail and "127.5" in detail and "QX-C02-0815" in page.inner_text(ev)
        assert "置信度 0.87" in page.inner_text(ev)
        assert page.inner_text("#plan").strip()
        shot(page, f"{name}-warning-event")
        assert not page.errors, page.errors
        page.context.close()

    # the storm view: gauges ranked, the open rain warning, the waterlogging points with plans
    page = login(browser, base, "b1", DESKTOP)
    page.goto(f"{base}/console/storm")
    first = "#rain tbody tr:first-child"
    page.wait_for_selector(f'{first}[data-station="DG-MY-R01"]')
    assert page.get_attribute(f"{first} td:nth-child(5)", "data-grade") == "3"   # 3 h ≥ 50 mm
    assert page.inner_text(f"{first} td:nth-child(5)").startswith("54")
    assert page.locator("#rain tbody tr").count() >= 12                          # every gauge
    page.wait_for_selector(f'#storm-warnings li[data-incident="{warm["incident"]}"]')
    page.wait_for_selector(f'#storm-warnings li[data-incident="{pend["incident"]}"]')
    pt = '#points li[data-station="DG-NC-L01"]'
    assert "0.12 米" in page.inner_text(pt) and "示例方案，非正式" in page.inner_text(pt)
    assert "封路" in page.inner_text(f"{pt} .plan") and page.get_attribute(pt, "data-grade") == "1"
    assert "暴雨日" in page.inner_text("#bands") and "rain-short-intense" not in page.inner_text("#bands")
    # live: a heavier storm at Humen goes to the top without a reload (red: 3 h ≥ 100 mm)
    page.evaluate("window.__same = true")
    post(base, "/v1/readings", rain("DG-HM-R01", int(time.time() * 1000) - 4 * HOUR, mm=3.0))
    page.wait_for_selector(f'{first}[data-station="DG-HM-R01"][data-grade="4"]', timeout=20_000)
    assert page.evaluate("window.__same") is True
    shot(page, "desktop-storm")
    assert not page.errors, page.errors
    page.context.close()

    page = login(browser, base, "b1", PHONE)
    page.goto(f"{base}/console/storm")
    page.wait_for_selector(f'{first}[data-station="DG-HM-R01"]')
    no_sideways_scroll(page)
    shot(page, "phone-storm")
    assert not page.errors, page.errors
    page.context.close()


def test_phone_layout_menu_cards_and_thumb_reachable_actions(duty, browser):
    run, _, warm = duty
    base = run.http
    page = login(browser, base, "b1", PHONE)
    page.wait_for_selector(f'#board tbody tr[data-incident="{warm["incident"]}"]')
    no_sideways_scroll(page)
    # the header is one row: the menu button shows, the links hide until it is opened
    assert page.is_visible("#menu") and not page.is_visible("header nav")
    assert page.locator("header").bounding_box()["height"] < 70
    page.click("#menu")
    page.wait_for_selector("header nav a[href$='/storm']", state="visible")
    assert page.get_attribute("#menu", "aria-expanded") == "true"
    assert page.is_visible("#lang") and page.is_visible("#logout")
    shot(page, "phone-menu-open")
    page.click("#menu")
    page.wait_for_selector("header nav", state="hidden")
    # the board is a list of cards; a station's name stays on one line, not one per character
    row = f'#board tbody tr[data-incident="{warm["incident"]}"]'
    assert page.evaluate(f"getComputedStyle(document.querySelector('{row}')).display") == "block"
    name = page.locator(f"{row} a.name").bounding_box()
    assert name["width"] > 80 and name["height"] < 40, name
    shot(page, "phone-board")

    # the warning page: acknowledge, note (回报) and clear stay on screen while reading
    page.goto(f"{base}/console/warnings/{warm['incident']}")
    page.wait_for_selector("#timeline li")
    no_sideways_scroll(page)
    for button in ("#btn-ack", "#btn-note", "#btn-clear"):
        assert in_view(page, button), button
    page.evaluate("window.scrollTo(0, document.scrollingElement.scrollHeight)")
    page.wait_for_function("window.scrollY > 0")
    for button in ("#btn-ack", "#btn-note", "#btn-clear"):
        assert in_view(page, button), f"{button} scrolled away"
    shot(page, "phone-warning")
    # the bar works: a note from the thumb bar lands on the timeline
    page.fill("#f-note input", "排涝队已到场")
    page.click("#btn-note")
    page.wait_for_selector("#timeline li[data-kind=note]:has-text('排涝队已到场')", timeout=10_000)
    assert any(e.get("kind") == "note" for e in json.loads(
        http("GET", f"{base}/v1/warnings/{warm['incident']}", TOKENS["l1"])[2])["timeline"])

    # every other page fits the phone's width too
    for path, ready in (("/map", "#map .st"), ("/roster", "#roster-teams tbody tr"),
                        ("/health", "#h-ingest table"), ("/stations/DG-MY-R01", "#s-head h1")):
        page.goto(f"{base}/console{path}")
        page.wait_for_selector(ready)
        no_sideways_scroll(page)
        shot(page, "phone-" + path.strip("/").replace("/", "-"))
        if path == "/map":   # no package carries the towns' boundaries: the legend says so
            assert "未找到东莞各镇街的行政边界" in page.inner_text("#no-bounds")
    assert not page.errors, page.errors
    page.context.close()
