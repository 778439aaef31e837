"""The duty console (值班台) at ``/console``: pages, their JSON, and a live event stream.

Server-rendered page shells (``pages.py``, ``warning_page.py``, ``roster_page.py``:
with the words of the chosen language and the roster and map drawn there) plus one
small vanilla JS file that fills the live parts from JSON (``views.py``) and keeps
them current over Server-Sent Events. Every asset ships in the package
(``static/``): no CDN, no map tiles, no fonts.

- ``/console/``                the live board      ``/console/map``     station map
- ``/console/warnings/{id}``   warning detail      ``/console/stations/{id}``
- ``/console/roster``          who is on duty      ``/console/health``  health
- ``/console/storm``           storm view (暴雨专题): rain sums ranked, waterlogging depths
- ``/console/report``          period report per town or enterprise (and ``report.csv``)
- ``/console/notices``         safety notices: the bureau (a town: its own) sends and tracks,
                               enterprises acknowledge
- ``/console/events``          SSE: ``incident``, ``removed``, ``silence`` events as the
                               incident snapshots arrive from ``yujing.incidents``
- ``/console/api/...``         the JSON the pages read

Actions (acknowledge, note, clear, silence) go to the ``/v1`` API, which checks
the person's rights (``rights.py``) and records them as that person.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from yujing.console import notices_page, pages, report_page, roster_page, views, warning_page
from yujing.console.api import make_console
from yujing.console.session import CONSOLE_KEY
from yujing.console.state import Console

STATIC = Path(__file__).parent / "static"


def make_web(console: Console) -> web.Application:
    """The ``/console`` sub-application."""
    app = web.Application()
    app[CONSOLE_KEY] = console
    r = app.router
    r.add_get("/", pages.board_page)
    r.add_get("/login", pages.login_page)
    r.add_post("/login", pages.login)
    r.add_get("/logout", pages.logout_page)
    r.add_post("/logout", pages.logout)
    r.add_get("/lang", pages.lang_page)
    r.add_post("/lang", pages.set_lang)
    r.add_get("/map", pages.map_page)
    r.add_get("/roster", roster_page.roster_page)
    r.add_get("/health", pages.health_page)
    r.add_get("/storm", pages.storm_page)
    r.add_get("/report", report_page.report_page)
    r.add_get("/report.csv", report_page.report_csv)
    r.add_get("/notices", notices_page.notices_page)
    r.add_get("/warnings/{id}", warning_page.warning_page)
    r.add_get("/stations/{id}", pages.station_page)
    r.add_get("/events", views.events)
    r.add_get("/api/board", views.api_board)
    r.add_get("/api/warnings/{id}", views.api_warning)
    r.add_get("/api/stations/{id}", views.api_station)
    r.add_get("/api/health", views.api_health)
    r.add_get("/api/storm", views.api_storm)
    r.add_static("/static", STATIC, append_version=False)
    return app


def mount_console(app: web.Application, console: Console) -> None:
    """Mount the duty console API (``/v1/...``) and the web console (``/console/...``) on
    the serving process's app, both on one read model; ``/`` leads to the console."""
    app.add_subapp("/v1", make_console(console))
    app.add_subapp("/console", make_web(console))
    app.router.add_get("/", _to_console)


async def _to_console(request: web.Request) -> web.Response:
    raise web.HTTPFound("/console/")
