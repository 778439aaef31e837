"""What the browser tests share: signing in to the console as a person."""

from __future__ import annotations


def login_as(browser, base: str, token: str, **context):
    """A page signed in with ``token`` once the live board shows; ``context`` overrides the
    desktop viewport and Chinese locale (a phone's, say). Page errors collect in
    ``page.errors`` for the test to assert on."""
    ctx = browser.new_context(**{"viewport": {"width": 1400, "height": 900}, "locale": "zh-CN",
                                 **context})
    page = ctx.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(f"{base}/console/login")
    page.fill("#token", token)
    page.click("#login")
    page.wait_for_selector("#live:not([hidden])", timeout=10_000)
    return page
