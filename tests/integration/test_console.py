"""The duty console end to end: `yujing run` (embedded Tansu and amqtt) started by a fixture,
readings published over MQTT, Debian's headless Chromium driven by playwright.

One run serves every test of this module (a start costs ~10 s). Escalation is shortened to
5 s per step so "A is paged, nobody acknowledges, B is paged, B acknowledges in the browser,
the leader is never paged" takes seconds. Screenshots of every page go to
tests/artifacts/console/ (gitignored; $YUJING_ARTIFACTS overrides).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from yujing.connectors.embedded import free_port

from .conftest import alive, start_run, stop_run, write_config

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("YUJING_ARTIFACTS") or ROOT / "tests" / "artifacts" / "console")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
TOKENS = {p: f"token-{p}-0123456789abcdef" for p in ("a1", "b1", "l1", "c1")}
STEP_S = 5          # ack timeout of each escalation step
HOUR = 3_600_000


class Hooks:
    """A real webhook receiver for apprise's json:// (one path per person)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.got: list[tuple[str, dict]] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hooks.got.append((self.path.strip("/"), json.loads(body or b"{}")))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def about(self, person: str, incident: str) -> list[dict]:
        return [m for p, m in self.got if p == person and incident in m.get("message", "")]


class Mqtt:
    """A connected publisher (connect and teardown stay out of the latency measured)."""

    def __init__(self, port: int) -> None:
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"console-{time.monotonic_ns()}",
                             protocol=paho.MQTTv311)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        deadline = time.monotonic() + 10
        while not self.c.is_connected():
            assert time.monotonic() < deadline, "no MQTT connection"
            time.sleep(0.01)

    def send(self, station: str, readings: list[dict]) -> None:
        self.c.publish(f"yujing/test/{station}/rain_mm", json.dumps(readings), qos=1
                       ).wait_for_publish(timeout=10)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def publish(port: int, station: str, readings: list[dict]) -> None:
    m = Mqtt(port)
    try:
        m.send(station, readings)
    finally:
        m.close()


def rain(station: str, n: int = 36, mm: float = 1.5) -> list[dict]:
    start = int(time.time() * 1000) - 4 * HOUR
    return [{"station": station, "metric": "rain_mm", "ts": start + i * 300_000, "value": mm}
            for i in range(n)]


def http(method: str, url: str, token: str | None = None, body: object = None,
         headers: dict | None = None, raw: bytes | None = None):  # noqa: ANN201
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    if body is not None:
        h.setdefault("Content-Type", "application/json")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kw):  # noqa: ANN002, ANN003, ANN201
            return None

    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def incidents(base: str, token: str = TOKENS["l1"]) -> list[dict]:
    status, _, body = http("GET", f"{base}/v1/warnings?state=all", token)
    assert status == 200, body
    return json.loads(body)


def wait_incident(base: str, station: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in incidents(base):
            if w["station"] == station and w["rule"] == "rainstorm-guangdong":
                return w
        time.sleep(0.2)
    raise AssertionError(f"no rainstorm warning at {station} in {timeout}s")


@pytest.fixture(scope="module")
def duty(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    hooks = Hooks()
    roster = {
        "people": [{"id": "a1", "name": "张三", "phone": "13800000001", "contacts": [hooks.url("a1")]},
                   {"id": "b1", "name": "李四", "phone": "13800000002", "contacts": [hooks.url("b1")]},
                   {"id": "l1", "name": "王五", "contacts": [hooks.url("l1")]},
                   {"id": "c1", "name": "赵六", "contacts": [hooks.url("c1")]}],
        "teams": [{"id": "flood", "name": "三防·全市", "domain": "flood", "regions": ["*"],
                   "rotation": {"start": "2025-01-01", "slots": [{"A": "a1", "B": "b1",
                                                                 "leader": "l1"}]}},
                  {"id": "chem", "name": "危化", "domain": "chemical",
                   "rotation": {"start": "2025-01-01", "slots": [{"A": "c1"}]}}],
    }
    (tmp / "roster.yaml").write_text(yaml.safe_dump(roster, allow_unicode=True))
    config, http_port, mqtt_port = write_config(tmp, hooks.port, **{
        "worker": {"metrics_port": free_port()},
        "alerts": {"roster": str(tmp / "roster.yaml"), "tick": "300ms",
                   "grouping": {"wait": "0s", "interval": "0s"},
                   "escalation": {"orange": {"first": ["A"], "ack_timeout": f"{STEP_S}s",
                                             "then": [["B"], ["leader"]], "repeat": "0s"}},
                   "delivery": {"retries": 1, "backoff": "100ms", "timeout": "5s"}},
        "console": {"tokens": TOKENS}})
    run = start_run(tmp, config, http_port, mqtt_port)
    try:
        # warm-up: the worker has joined its group once a first warning comes back
        publish(mqtt_port, "DG-MY-R01", rain("DG-MY-R01"))
        warm = wait_incident(run.http, "DG-MY-R01", 60)
        yield run, hooks, warm
    finally:
        stop_run(run)
        for pid in run.pids.values():
            if alive(pid):
                os.kill(pid, 9)
        hooks.server.shutdown()


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), \
        f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)"
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def shot(page, name: str) -> Path:  # noqa: ANN001
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(browser, base: str, who: str):  # noqa: ANN001, ANN201
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(f"{base}/console/")
    assert "/console/login" in page.url                     # pages need a login
    page.fill("#token", TOKENS[who])
    page.click("#login")
    page.wait_for_selector("#live:not([hidden])", timeout=10_000)
    return page


# --- HTTP only ----------------------------------------------------------------------------

def test_console_http_login_assets_and_api(duty):
    run, _, warm = duty
    base = run.http
    status, headers, _ = http("GET", f"{base}/console/")
    assert status == 302 and headers["Location"].startswith("/console/login?next=")
    status, headers, _ = http("GET", f"{base}/")
    assert status == 302 and headers["Location"] == "/console/"
    for asset in ("console.js", "console.css", "icon.svg"):
        status, _, body = http("GET", f"{base}/console/static/{asset}")
        assert status == 200 and body
        # no CDN, no fonts or tiles from elsewhere: nothing but our own origin
        assert not re.search(rb"https?://(?!www\.w3\.org/2000/svg)", body), asset
    assert http("GET", f"{base}/console/api/board")[0] == 401
    status, _, body = http("GET", f"{base}/console/api/board", TOKENS["c1"])
    board = json.loads(body)
    assert status == 200 and board["user"] == "c1"
    w = next(x for x in board["warnings"] if x["incident"] == warm["incident"])
    assert w["grade"] == 3 and w["domain"] == "flood" and w["team"] == "flood"
    assert not w["can_act"] and "c1" in w["why"]

    # login: a wrong token goes back to the form; a right one sets an HttpOnly cookie
    status, headers, _ = http("POST", f"{base}/console/login", raw=b"token=wrong&next=/console/",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 302 and "bad=1" in headers["Location"]
    status, headers, _ = http("POST", f"{base}/console/login",
                              raw=f"token={TOKENS['a1']}&next=//evil.example/".encode(),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    cookie = headers["Set-Cookie"]
    assert status == 302 and headers["Location"] == "/console/"      # no open redirect
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    jar = cookie.split(";", 1)[0]
    status, _, body = http("GET", f"{base}/console/api/warnings/{warm['incident']}",
                           headers={"Cookie": jar})
    d = json.loads(body)
    assert status == 200 and d["can_act"] and d["duty"]["now"]["A"]["name"] == "张三"
    assert d["chart"][0]["metric"] == "rain_mm" and d["chart"][0]["lines"][0]["value"] == 50
    assert max(d["chart"][0]["aggs"][0]["val"]) >= 50                  # the 3 h sum crossed it
    # the cookie acts only with a JSON body: a cross-site form cannot post as the officer
    status, _, _ = http("POST", f"{base}/v1/warnings/{warm['incident']}/note", raw=b"text=x",
                        headers={"Cookie": jar, "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 401
    # a silence from the console is pinned to the warning's rule and station
    status, _, out = http("POST", f"{base}/v1/silences", TOKENS["a1"],
                          {"incident": warm["incident"], "duration": "1h", "reason": "检修",
                           "matchers": ["town=~.*"]})
    assert status == 202, out
    sid = json.loads(out)["id"]
    deadline = time.monotonic() + 10
    while not (sil := [x for x in json.loads(http("GET", f"{base}/v1/silences", TOKENS["c1"])[2])
                       if x["id"] == sid]):
        assert time.monotonic() < deadline, "the silence never reached the console"
        time.sleep(0.2)
    assert sil[0]["matchers"] == ["rule=rainstorm-guangdong", "station=DG-MY-R01"]
    assert sil[0]["created_by"] == "a1"
    assert http("POST", f"{base}/v1/silences/{sid}/expire", TOKENS["c1"], {})[0] == 403
    assert http("POST", f"{base}/v1/silences/{sid}/expire", TOKENS["a1"], {})[0] == 202
    status, _, body = http("GET", f"{base}/console/api/stations/DG-MY-R01", TOKENS["c1"])
    st = json.loads(body)
    assert status == 200 and st["latest"][0]["metric"] == "rain_mm" and st["warnings"]
    status, _, body = http("GET", f"{base}/console/api/health", TOKENS["c1"])
    h = json.loads(body)
    assert status == 200 and h["incidents"]["caught_up"] and h["window"]["readings"] >= 36
    assert any(s["what"] == "worker" and s["ok"] and "lag" in s for s in h["scraped"])


# --- authorization ------------------------------------------------------------------------

def test_a_user_without_rights_gets_403_and_disabled_buttons(duty, browser):
    run, hooks, warm = duty
    base, iid = run.http, warm["incident"]
    for action, body in (("ack", {}), ("note", {"text": "x"}), ("clear", {"reason": "x"})):
        status, _, out = http("POST", f"{base}/v1/warnings/{iid}/{action}", TOKENS["c1"], body)
        assert status == 403, out
        assert "c1 is not on the rota of team flood (三防·全市)" in json.loads(out)["error"]
    status, _, out = http("POST", f"{base}/v1/silences", TOKENS["c1"],
                          {"incident": iid, "duration": "1h", "reason": "x"})
    assert status == 403
    # a silence not pinned to one warning needs the duty room or an admin
    status, _, out = http("POST", f"{base}/v1/silences", TOKENS["a1"],
                          {"matchers": ["town=麻涌镇"], "duration": "1h", "reason": "x"})
    assert status == 403 and "duty room" in json.loads(out)["error"]

    page = login(browser, base, "c1")
    page.goto(f"{base}/console/warnings/{iid}")
    page.wait_for_selector("#timeline li")
    for button in ("#btn-ack", "#btn-note", "#btn-clear", "#btn-silence"):
        assert page.is_disabled(button), button
    assert "无权操作" in page.inner_text("#act-msg")
    assert "c1" in page.get_attribute("#btn-ack", "title")
    # forcing the form anyway: the server refuses and says why
    page.evaluate("document.querySelector('#btn-note').disabled = false;"
                  "document.querySelector('#f-note input').disabled = false")
    page.fill("#f-note input", "我来处理")
    page.click("#btn-note")
    page.wait_for_function("document.querySelector('#act-msg').textContent.startsWith('403')")
    shot(page, "warning-no-rights")
    assert not page.errors
    page.context.close()
    assert not any(e.get("reason") == "我来处理" for e in
                   json.loads(http("GET", f"{base}/v1/warnings/{iid}", TOKENS["l1"])[2])["timeline"])


# --- the whole duty path in the browser ---------------------------------------------------

def test_live_board_detail_ack_stops_escalation_and_every_page(duty, browser):
    run, hooks, _ = duty
    base = run.http
    page = login(browser, base, "b1")
    assert page.inner_text("#me") == "李四"

    # a new warning reaches the open board within 2 s of the MQTT publish, without reload
    # the page notes when each row first appears (browser and test share the clock)
    page.evaluate("""window.__seen = {};
      new MutationObserver(() => { for (const tr of document.querySelectorAll('#board tbody tr'))
        if (!(tr.dataset.incident in __seen)) __seen[tr.dataset.incident] = Date.now(); })
      .observe(document.querySelector('#board tbody'), {childList: true})""")
    mqtt = Mqtt(run.mqtt_port)
    readings = rain("DG-HM-R01")
    t0 = time.time() * 1000
    mqtt.send("DG-HM-R01", readings)
    row = '#board tbody tr:has-text("DG-HM-R01")[data-grade="3"]'
    page.wait_for_selector(row, timeout=10_000)
    mqtt.close()
    w = next(w for w in incidents(base) if w["station"] == "DG-HM-R01" and w["grade"] == 3)
    seen = page.evaluate("window.__seen")[w["incident"]]
    # MQTT → gateway → Kafka → worker → book → yujing.incidents → gateway → SSE → browser;
    # the console's own part (book → board) must stay within 1 s
    print(f"MQTT to board {seen - t0:.0f} ms, book to board {seen - w['raised_ms']:.0f} ms")
    assert seen - t0 <= 2000, f"the warning took {seen - t0:.0f} ms to reach the board"
    assert seen - w["raised_ms"] <= 1000
    assert page.evaluate("typeof window.__seen") == "object"           # no reload
    assert page.inner_text('.counter[data-grade="3"] .n') == "2"        # with the warm-up one
    assert "橙色 II" in page.inner_text(row) and "生效·未确认" in page.inner_text(row)
    shot(page, "board")
    page.select_option("#f-town", "虎门镇")
    towns = page.locator("#board tbody tr td:nth-child(4)").all_inner_texts()
    assert towns and set(towns) == {"虎门镇"}
    page.select_option("#f-town", "")

    # open it: raised, A notified on her channel; after the step timeout B is paged
    page.click(row)
    page.wait_for_selector("#timeline li[data-kind=raised]")
    iid = page.get_attribute("#detail", "data-incident")
    page.wait_for_selector("#timeline li[data-kind=notified]:has-text('张三 (A)')", timeout=10_000)
    page.wait_for_selector("#timeline li[data-kind=escalated]", timeout=3 * STEP_S * 1000)
    page.wait_for_selector("#timeline li[data-kind=notified]:has-text('李四 (B)')",
                           timeout=10_000)
    assert "B岗" in page.inner_text("#esc") or "带班领导" in page.inner_text("#esc")
    assert "张三" in page.inner_text("#duty-box [data-role=A]")
    assert page.locator("#chart svg[data-metric=rain_mm] line.thr[data-grade='3']").count() == 1
    assert page.inner_text("#plan").strip()
    shot(page, "warning-escalated")

    # B acknowledges in the browser: recorded as B with the note, escalation stops
    page.fill("#f-ack input", "收到，已通知虎门镇排涝")
    page.click("#btn-ack")
    page.wait_for_selector("#timeline li[data-kind=acknowledged]", timeout=5_000)
    ack = page.inner_text("#timeline li[data-kind=acknowledged]")
    assert "acknowledged by b1: 收到，已通知虎门镇排涝" in ack and "李四" in ack
    page.wait_for_selector("#esc.stopped")
    assert "李四" in page.inner_text("#esc")
    assert page.is_disabled("#btn-ack")
    shot(page, "warning-acknowledged")
    time.sleep(max(0.0, w["raised_ms"] / 1000 + 2 * STEP_S + 2 - time.time()))  # past the leader
    assert hooks.about("a1", iid) and hooks.about("b1", iid)
    assert hooks.about("l1", iid) == [], "the leader was paged after the acknowledgement"
    assert page.locator("#timeline li[data-kind=escalated]").count() == 1
    w = json.loads(http("GET", f"{base}/v1/warnings/{iid}", TOKENS["l1"])[2])
    assert w["state"] == "acknowledged" and w["acked_by"] == "b1" and w["esc"] is None

    # the board shows it acknowledged, live
    page.goto(f"{base}/console/")
    page.wait_for_selector(f'#board tbody tr[data-incident="{iid}"].st-acknowledged')

    # the map colours the station by its worst grade; a click opens the station
    page.goto(f"{base}/console/map")
    st = '#map .st[data-station="DG-HM-R01"]'
    page.wait_for_selector(f"{st}.g3")
    assert page.get_attribute('#map .st[data-station="DG-QX-R01"]', "class") == "st g0"
    shot(page, "map")
    page.click(st)
    page.wait_for_url(re.compile(r"/console/stations/DG-HM-R01$"))
    page.wait_for_selector("#chart svg[data-metric=rain_mm]")
    assert "虎门镇雨量站" in page.inner_text("#s-head")
    shot(page, "station")

    # roster: who is on duty now and next, per team and per town
    page.goto(f"{base}/console/roster")
    flood = page.inner_text('#roster-teams tr[data-team="flood"]')
    assert "张三" in flood and "李四" in flood and "王五" in flood
    assert "张三" in page.inner_text('#roster-towns tr[data-town="虎门镇"]')
    shot(page, "roster")

    # health: ingest rates, dead letters by reason, consumer lag
    status, _, _ = http("POST", f"{base}/v1/readings", body=[{"station": "DG-HM-R01",
                        "metric": "rain_mm", "ts": "yesterday", "value": 1}])
    assert status == 400
    page.goto(f"{base}/console/health")
    page.wait_for_function("document.querySelector('#h-dead').textContent.includes('yesterday')",
                           timeout=10_000)
    assert "mqtt" in page.inner_text("#h-ingest")
    page.wait_for_selector("#h-lag table")
    shot(page, "health")

    # English on demand
    page.goto(f"{base}/console/")
    page.click("#lang")
    page.wait_for_selector("#board tbody tr")
    assert page.inner_text("header nav a.on") == "Live warnings"
    assert "Orange II" in page.inner_text(f'#board tbody tr[data-incident="{iid}"]')
    shot(page, "board-en")
    assert not page.errors, page.errors
    page.context.close()
