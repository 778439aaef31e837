"""The duty console over HTTP: `yujing run` (embedded Tansu and amqtt) started by the `duty`
fixture (tests/conftest.py), readings published over MQTT, the console's pages, assets and
API read with a plain HTTP client. The browser tests are in tests/browser/test_console.py.
"""

from __future__ import annotations

import json
import re
import time

from tests.support.console import TOKENS, http

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
