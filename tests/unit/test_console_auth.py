"""Console sign-in as an attacker would try it (issue 12, finding 11).

Person tokens are stored hashed; the browser holds a random session id, never the
token; logging out ends the session on the server; the Secure flag follows a
trusted TLS proxy; wrong tokens are rate-limited per client (429 + Retry-After);
logout and the language switch change nothing on a GET or from another site.
The console runs on an in-process aiohttp server over the in-memory bus.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from aiohttp import DummyCookieJar, web
from aiohttp.test_utils import TestClient, TestServer

from tests.unit.test_console_bus import MemoryBus
from yujing.config import Config
from yujing.console.sessions import FailureLimit, Sessions
from yujing.console.state import Console
from yujing.console.web import mount_console
from yujing.yamlsrc import SourceError, parse_yaml, validate

TOKEN = "t-zhang-wei-0123456789-abcdefghijkl"
OTHER = "t-li-na-0123456789-abcdefghijklmnop"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def hashed(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def config(**console) -> Config:
    return Config.model_validate({
        "console": {"tokens": {"zhang.wei": hashed(TOKEN), "li.na": hashed(OTHER)}, **console},
        "worker": {"rules_dir": "/nonexistent/rules"}})


async def serve(**console) -> TestClient:
    app = web.Application()
    mount_console(app, Console(config(**console), MemoryBus(), lambda: None, dict))
    client = TestClient(TestServer(app), cookie_jar=DummyCookieJar())   # cookies as sent
    await client.start_server()
    return client


async def login(client: TestClient, token: str = TOKEN, headers: dict | None = None):
    return await client.post("/console/login", data={"token": token, "next": "/console/"},
                             headers=headers or {}, allow_redirects=False)


def session_of(resp) -> str:
    morsel = resp.cookies.get("yujing_session")
    assert morsel is not None, resp.headers.getall("Set-Cookie", [])
    return morsel.value


async def board(client: TestClient, sid: str) -> int:
    r = await client.get("/console/api/board", headers={"Cookie": f"yujing_session={sid}"},
                         allow_redirects=False)
    return r.status


# --- config: hashes only -------------------------------------------------------------------

def test_a_plain_person_token_in_the_config_is_refused_with_the_fix():
    src = parse_yaml("console:\n  tokens:\n    zhang.wei: t-zhang-wei-0123456789-abcdef\n",
                     "config.yaml")
    with pytest.raises(SourceError) as exc:
        validate(Config, src)
    [p] = exc.value.problems
    assert (p.file, p.line, p.key) == ("config.yaml", 2, "console.tokens")
    assert "yujing token new --person zhang.wei" in p.message and "sha256:" in p.message
    assert "t-zhang-wei" not in p.message                  # the secret is not echoed


def test_one_hash_for_two_people_is_refused():
    h = hashed(TOKEN)
    with pytest.raises(ValueError, match="same token"):
        Config.model_validate({"console": {"tokens": {"a": h, "b": h}}})


# --- sessions ------------------------------------------------------------------------------

async def test_the_cookie_holds_a_random_session_id_never_the_token():
    client = await serve()
    try:
        r1, r2 = await login(client), await login(client)
        assert r1.status == 302 and r1.headers["Location"] == "/console/"
        cookie = r1.headers["Set-Cookie"]
        assert TOKEN not in cookie and hashed(TOKEN)[7:] not in cookie
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert re.search(r"Max-Age=\d+", cookie)
        sid1, sid2 = session_of(r1), session_of(r2)
        assert sid1 != sid2 and len(sid1) >= 40
        assert await board(client, sid1) == 200
        assert await board(client, TOKEN) == 401            # the token is not a session id
        r = await client.get("/console/api/board", headers={"Cookie": f"yujing_token={TOKEN}"})
        assert r.status == 401                               # the old raw-token cookie is dead
    finally:
        await client.close()


async def test_logout_ends_the_session_on_the_server_and_a_replayed_cookie_gets_nothing():
    client = await serve()
    try:
        sid = session_of(await login(client))
        other = session_of(await login(client))             # the same person on another screen
        assert await board(client, sid) == 200
        r = await client.post("/console/logout", headers={"Cookie": f"yujing_session={sid}"},
                              allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == "/console/login"
        assert await board(client, sid) == 401                # replayed after logout
        page = await client.get("/console/", headers={"Cookie": f"yujing_session={sid}"},
                                allow_redirects=False)
        assert page.status == 302 and page.headers["Location"].startswith("/console/login")
        assert await board(client, other) == 200              # only that session ended
    finally:
        await client.close()


async def test_a_get_on_logout_or_the_language_switch_changes_nothing():
    client = await serve()
    try:
        sid = session_of(await login(client))
        jar = {"Cookie": f"yujing_session={sid}"}
        r = await client.get("/console/logout", headers=jar, allow_redirects=False)
        assert "yujing_session" not in r.headers.get("Set-Cookie", "")
        assert await board(client, sid) == 200
        r = await client.get("/console/lang?to=en&next=/console/", headers=jar,
                             allow_redirects=False)
        assert "yujing_lang" not in r.headers.get("Set-Cookie", "")
        r = await client.post("/console/lang", data={"to": "en", "next": "/console/"},
                              headers=jar, allow_redirects=False)
        assert r.status == 302 and r.cookies["yujing_lang"].value == "en"
    finally:
        await client.close()


async def test_a_post_from_another_site_is_refused():
    client = await serve()
    try:
        sid = session_of(await login(client))
        evil = {"Cookie": f"yujing_session={sid}", "Origin": "https://evil.example"}
        r = await client.post("/console/logout", headers=evil, allow_redirects=False)
        assert r.status == 403 and "跨站" in await r.text()
        assert await board(client, sid) == 200
        r = await client.post("/console/lang", data={"to": "en"}, headers=evil,
                              allow_redirects=False)
        assert r.status == 403 and "yujing_lang" not in r.headers.get("Set-Cookie", "")
        r = await login(client, headers={"Origin": "https://evil.example"})
        assert r.status == 403 and "yujing_session" not in r.headers.get("Set-Cookie", "")
        r = await client.post("/console/logout", headers={**evil, "Origin": "null"},
                              allow_redirects=False)
        assert r.status == 403
    finally:
        await client.close()


def test_a_session_expires_after_its_lifetime_and_when_idle():
    s = Sessions(ttl_ms=10_000, idle_ms=4_000, per_person=3)
    sid = s.new("zhang.wei", b"h", now_ms=0)
    assert s.get(sid, 3_000).person == "zhang.wei"
    assert s.get(sid, 6_500).person == "zhang.wei"         # used at 3 s: idle until 7 s
    assert s.get(sid, 10_001) is None                       # past its lifetime, even in use
    idle = s.new("zhang.wei", b"h", now_ms=0)
    assert s.get(idle, 4_001) is None
    assert s.get("nonsense", 0) is None


def test_a_person_holds_a_bounded_number_of_sessions_oldest_ends_first():
    s = Sessions(ttl_ms=10_000, idle_ms=10_000, per_person=3)
    sids = [s.new("zhang.wei", b"h", now_ms=i) for i in range(4)]
    assert s.get(sids[0], 5) is None
    assert all(s.get(x, 5) is not None for x in sids[1:])


# --- rate limit ----------------------------------------------------------------------------

async def test_the_sixth_wrong_login_in_a_minute_gets_429_with_retry_after_even_with_a_right_token():
    client = await serve()
    try:
        for _ in range(5):
            r = await login(client, "wrong-token-0123456789")
            assert r.status == 302 and "bad=1" in r.headers["Location"]
        r = await login(client, "wrong-token-0123456789")
        assert r.status == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
        assert "登录失败次数过多" in await r.text()
        r = await login(client)                               # no oracle while blocked
        assert r.status == 429 and "yujing_session" not in r.headers.get("Set-Cookie", "")
        # guessing through the API's Bearer header is the same door
        r = await client.get("/v1/warnings", headers={"Authorization": "Bearer guess-0123456789"})
        assert r.status == 429 and "Retry-After" in r.headers
    finally:
        await client.close()


async def test_wrong_bearer_tokens_count_like_wrong_logins():
    client = await serve()
    try:
        for _ in range(5):
            r = await client.get("/v1/warnings", headers={"Authorization": "Bearer guess-0123"})
            assert r.status == 401
        r = await client.get("/v1/warnings", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status == 429
    finally:
        await client.close()


async def test_a_forwarded_for_header_counts_only_from_a_trusted_proxy():
    # untrusted: a new X-Forwarded-For per guess does not reset the count
    client = await serve()
    try:
        for i in range(5):
            await login(client, "wrong-token-0123456789", {"X-Forwarded-For": f"10.0.0.{i}"})
        r = await login(client, "wrong-token-0123456789", {"X-Forwarded-For": "10.0.0.99"})
        assert r.status == 429
    finally:
        await client.close()
    # trusted proxy: each client behind it is counted alone
    client = await serve(trusted_proxies=["127.0.0.1/32"])
    try:
        for _ in range(5):
            await login(client, "wrong-token-0123456789", {"X-Forwarded-For": "203.0.113.7"})
        r = await login(client, "wrong-token-0123456789", {"X-Forwarded-For": "203.0.113.7"})
        assert r.status == 429
        r = await login(client, headers={"X-Forwarded-For": "203.0.113.8"})
        assert r.status == 302 and session_of(r)
    finally:
        await client.close()


async def test_an_ipv6_client_is_counted_by_its_64_and_a_session_id_from_before_login_ends():
    client = await serve(trusted_proxies=["127.0.0.1"])
    try:
        for i in range(5):
            await login(client, "wrong-token-0123456789", {"X-Forwarded-For": f"2001:db8:1:2::{i}"})
        r = await login(client, headers={"X-Forwarded-For": "2001:db8:1:2:ffff::9"})
        assert r.status == 429                                 # same /64: same client
        r = await login(client, headers={"X-Forwarded-For": "2001:db8:1:3::1"})
        planted = session_of(r)
        r = await login(client, headers={"X-Forwarded-For": "2001:db8:1:3::1",
                                         "Cookie": f"yujing_session={planted}"})
        assert session_of(r) != planted and await board(client, planted) == 401
    finally:
        await client.close()


def test_a_right_login_does_not_reset_the_count_of_wrong_ones():
    """An insider with one good token cannot interleave it to keep guessing others'."""
    lim = FailureLimit(limit=5, window_ms=60_000)
    for i in range(5):
        assert lim.wait_s("c", i) == 0
        lim.fail("c", i)
    assert lim.wait_s("c", 10) == 60
    assert lim.wait_s("c", 59_999) == 1
    assert lim.wait_s("c", 60_000) == 0                     # the first failure left the window
    assert lim.wait_s("other", 10) == 0


def test_the_limit_remembers_a_bounded_number_of_clients():
    lim = FailureLimit(limit=2, window_ms=60_000, max_clients=100)
    for i in range(1000):
        lim.fail(f"10.0.{i // 256}.{i % 256}", 0)
    assert len(lim) <= 100


# --- Secure behind a TLS proxy -------------------------------------------------------------

@pytest.mark.parametrize(("console", "headers", "secure"), [
    ({}, {}, False),
    ({}, {"X-Forwarded-Proto": "https"}, False),                        # anyone can send it
    ({"trusted_proxies": ["127.0.0.1"]}, {"X-Forwarded-Proto": "https"}, True),
    ({"trusted_proxies": ["10.9.0.0/16"]}, {"X-Forwarded-Proto": "https"}, False),
    ({"secure_cookies": True}, {}, True),
])
async def test_the_secure_flag_follows_a_trusted_tls_proxy_or_the_config(console, headers, secure):
    client = await serve(**console)
    try:
        r = await login(client, headers=headers)
        assert r.status == 302
        assert ("Secure" in r.headers["Set-Cookie"]) == secure
    finally:
        await client.close()


def test_a_trusted_proxy_must_be_an_address_or_network():
    with pytest.raises(ValueError, match="trusted_proxies"):
        Config.model_validate({"console": {"trusted_proxies": ["proxy.example"]}})
