"""Console sign-in in a real browser against `yujing run` (issue 12, finding 11): the cookie
Chromium keeps is a session id the page's script cannot read, never the token; the header's
logout button ends the session on the server, so the same cookie replayed afterwards gets
nothing; the language switch is a form post that works from the page itself."""

from __future__ import annotations

from tests.browser.test_console import login
from tests.support.console import TOKENS, http


def test_logout_in_the_browser_ends_the_session_a_copied_cookie_is_worthless_after(duty, browser):
    run, _, warm = duty
    base = run.http
    page = login(browser, base, "a1")
    [cookie] = [c for c in page.context.cookies() if c["name"] == "yujing_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert TOKENS["a1"] not in cookie["value"]
    assert "yujing_session" not in page.evaluate("document.cookie")     # no script reads it
    jar = {"Cookie": f"yujing_session={cookie['value']}"}
    assert http("GET", f"{base}/console/api/board", headers=jar)[0] == 200

    page.click("#lang")                                   # a POST form on the page itself
    page.wait_for_selector("#board tbody tr")
    assert page.inner_text("header nav a.on") == "Live warnings"

    page.click("#logout")
    page.wait_for_url("**/console/login")
    assert not [c for c in page.context.cookies() if c["name"] == "yujing_session"]
    assert http("GET", f"{base}/console/api/board", headers=jar)[0] == 401
    status, headers, _ = http("GET", f"{base}/console/warnings/{warm['incident']}", headers=jar)
    assert status == 302 and headers["Location"].startswith("/console/login")
    page.goto(f"{base}/console/")
    assert "/console/login" in page.url
    assert not page.errors, page.errors
    page.context.close()
