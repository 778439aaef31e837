"""Who is asking, and in which language: shared by the /v1 API and the web pages.

A person proves who they are with their token from ``console.tokens``: as
``Authorization: Bearer <token>``, or as the HttpOnly, SameSite=Strict cookie
the console's login sets. A request that changes something with the cookie
must be JSON, which a cross-site form cannot send (no CSRF through the cookie).
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from yujing.console.i18n import LANGS
from yujing.console.state import Console

CONSOLE_KEY = web.AppKey("console", Console)
COOKIE = "yujing_token"
LANG_COOKIE = "yujing_lang"
PREFIX = "/console"


def console_of(request: web.Request) -> Console:
    return request.app[CONSOLE_KEY]


def who_is(request: web.Request) -> str | None:
    """The person behind the request's token or cookie; None when there is none."""
    c = console_of(request)
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return c.person_of(auth[7:].strip())
    cookie = request.cookies.get(COOKIE)
    if cookie:
        if request.method not in ("GET", "HEAD") and request.content_type != "application/json":
            return None  # a cross-site form cannot send JSON: no CSRF through the cookie
        return c.person_of(cookie)
    return None


def need_user(request: web.Request) -> str:
    """The person, or 401 telling an API client how to authenticate."""
    who = who_is(request)
    if who is None:
        raise web.HTTPUnauthorized(text='{"error": "send Authorization: Bearer <your token> '
                                        '(console.tokens in the config)"}',
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
