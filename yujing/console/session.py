"""Who is asking, and in which language: shared by the /v1 API and the web pages.

A person proves who they are with their own token (its hash is in
``console.tokens``): as ``Authorization: Bearer <token>``, or by logging in on
the console, which sets a cookie holding a random session id (``sessions.py``),
never the token: HttpOnly, SameSite=Strict, Secure when the console is reached
over HTTPS (directly, through a proxy in ``console.trusted_proxies`` saying
``X-Forwarded-Proto: https``, or always with ``console.secure_cookies``).

Cross-site requests: a request that changes something with the cookie must be
JSON, which a cross-site form cannot send; the form posts of the console itself
(login, logout, language) must come from its own origin (``Origin`` /
``Sec-Fetch-Site``). Wrong tokens, at the login or in a Bearer header, count
against the client (``console.login_failures`` per ``console.login_window``);
past that the client gets 429 with Retry-After.
"""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import quote, urlsplit

from aiohttp import web

from yujing import clock
from yujing.console.i18n import LANGS
from yujing.console.sessions import digest
from yujing.console.state import Console

CONSOLE_KEY = web.AppKey("console", Console)
COOKIE = "yujing_session"
LANG_COOKIE = "yujing_lang"
PREFIX = "/console"


def console_of(request: web.Request) -> Console:
    return request.app[CONSOLE_KEY]


def who_is(request: web.Request) -> str | None:
    """The person behind the request's Bearer token or session cookie; None when there is none.

    A wrong Bearer token counts as a failed login; a client past the limit gets 429.
    """
    c = console_of(request)
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        client = client_of(request)
        wait = c.login_limit.wait_s(client, clock.now_ms())
        if wait:
            raise web.HTTPTooManyRequests(
                text=json.dumps({"error": f"too many wrong tokens from {client}: try again in "
                                          f"{wait} s"}),
                content_type="application/json", headers={"Retry-After": str(wait)})
        who = c.person_of(auth[7:].strip())
        if who is None:
            c.login_limit.fail(client, clock.now_ms())
        return who
    sid = request.cookies.get(COOKIE)
    if sid:
        if request.method not in ("GET", "HEAD") and request.content_type != "application/json":
            return None  # a cross-site form cannot send JSON: no CSRF through the cookie
        s = c.sessions.get(sid, clock.now_ms())
        if s is None or c.tokens.person_of_digest(s.token) != s.person:
            return None  # ended, expired, or the person's token changed since the login
        return s.person
    return None


def start_session(request: web.Request, resp: web.StreamResponse, who: str, token: str) -> None:
    """Log ``who`` in: a new server-side session, its id in the cookie (a session id the
    browser already had ends: nobody can plant one before the login and use it after)."""
    c = console_of(request)
    old = request.cookies.get(COOKIE)
    if old:
        c.sessions.end(old)
    sid = c.sessions.new(who, digest(token), clock.now_ms())
    resp.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", path="/",
                    max_age=c.cfg.console.session_ttl.ms // 1000, secure=is_https(request))


def end_session(request: web.Request, resp: web.StreamResponse) -> None:
    """Log out: the session ends on the server (a copied cookie is worth nothing after)."""
    sid = request.cookies.get(COOKIE)
    if sid:
        console_of(request).sessions.end(sid)
    resp.del_cookie(COOKIE, path="/")


def _trusted(request: web.Request) -> bool:
    nets = console_of(request).cfg.console.trusted_proxies
    if not nets or not request.remote:
        return False
    try:
        addr = ipaddress.ip_address(request.remote)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(n, strict=False) for n in nets)


def client_of(request: web.Request) -> str:
    """Whom wrong tokens are counted against: the client's address, an IPv6 client's /64
    (one host holds a whole /64). The address is the peer's, or, behind a trusted proxy,
    the last one in X-Forwarded-For that is not itself a trusted proxy (what a client
    writes there itself comes first and is ignored)."""
    addr = _client_address(request)
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return addr
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else addr


def _client_address(request: web.Request) -> str:
    peer = request.remote or "?"
    if not _trusted(request):
        return peer
    nets = [ipaddress.ip_network(n, strict=False)
            for n in console_of(request).cfg.console.trusted_proxies]
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            addr = ipaddress.ip_address(hop)
        except ValueError:
            return peer
        if not any(addr in n for n in nets):
            return str(addr)
    return peer


def is_https(request: web.Request) -> bool:
    """Whether the browser reached us over HTTPS (the Secure flag of our cookies)."""
    if console_of(request).cfg.console.secure_cookies or request.secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return proto == "https" and _trusted(request)


def same_origin(request: web.Request) -> bool:
    """Whether a form post comes from the console's own pages (not from another site)."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True   # browsers send Origin on every POST; a script without one is no CSRF
    host = request.headers.get("X-Forwarded-Host") if _trusted(request) else None
    return origin != "null" and urlsplit(origin).netloc == (host or request.host)


def need_user(request: web.Request) -> str:
    """The person, or 401 telling an API client how to authenticate."""
    who = who_is(request)
    if who is None:
        raise web.HTTPUnauthorized(text='{"error": "send Authorization: Bearer <your token> '
                                        '(yujing token new --person)"}',
                                   content_type="application/json")
    return who


def need_page_user(request: web.Request) -> str:
    """The person, or a redirect to the login page and back."""
    who = who_is(request)
    if who is None:
        raise web.HTTPFound(f"{PREFIX}/login?next={quote(request.path_qs)}")
    return who


def need_web_user(request: web.Request) -> str:
    """The person, or 401 telling the page's script to log in."""
    who = who_is(request)
    if who is None:
        raise web.HTTPUnauthorized(text='{"error": "log in at /console/login or send '
                                        'Authorization: Bearer <your token>"}',
                                   content_type="application/json")
    return who


def lang_of(request: web.Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, "zh")
    return lang if lang in LANGS else "zh"


def name_of(c: Console, pid: str | None) -> str:
    """A person's name from the roster (their id when the roster does not know them)."""
    if not pid:
        return ""
    p = c.roster.person(pid) if c.roster is not None else None
    return p.name if p is not None else pid
