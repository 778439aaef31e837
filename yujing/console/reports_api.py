"""Report-back (回报) over the ``/v1`` API: ``POST /v1/warnings/{id}/reports``.

The body is JSON (``alerts/reportback.py`` checks it: status, measures, people
transferred and withdrawn, production stopped, photo links); a bad one is a 400
with the reason, never a 500. Who may report is who may act on the warning
(``rights.py``). Like the other duty commands the report goes to the book's
partition on ``yujing.commands`` and answers 202 with the command id.

:func:`clear_refused` is the API's side of "report before clearing": a manual
clear of an orange or red warning without a report is refused here with 409 and
the reason, before it is sent (the book checks again when it applies it).
"""

from __future__ import annotations

import json
import uuid

import msgspec
from aiohttp import web

from yujing import clock
from yujing.alerts import reportback
from yujing.alerts.records import Command, Report, Warning
from yujing.alerts.reportback import ReportError, parse_report
from yujing.console.session import console_of, need_user
from yujing.console.state import Console


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def clear_refused(c: Console, w: Warning) -> web.Response | None:
    """The 409 a manual clear gets while the warning still needs a report, else None."""
    why = reportback.clear_refusal(w, c.cfg.alerts.reports)
    if why is None:
        return None
    return web.json_response({"error": f"{why.zh} / {why.en}", "reason_zh": why.zh,
                              "reason_en": why.en}, status=409)


async def read_body(request: web.Request, body_max: int) -> bytes:
    """The whole body, at most ``body_max`` bytes (413 beyond)."""
    raw = await request.read() if request.can_read_body else b""
    if len(raw) > body_max:
        raise web.HTTPRequestEntityTooLarge(
            max_size=body_max, actual_size=len(raw), content_type="application/json",
            text=json.dumps({"error": f"请求体过大 / the body is {len(raw)} bytes: at most "
                                      f"{body_max} (alerts.commands.body_max)"}))
    return raw


async def send_report(c: Console, w: Warning, report: Report) -> None:
    await c.send(Command("report", id=report.id, actor=report.by, incident=w.incident,
                         at=clock.now_ms(), report=report), w.partition)


async def post_report(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_user(request)
    iid = request.match_info["id"]
    w = c.incidents.get(iid)
    if w is None:
        return _error(404, f"unknown incident {iid!r}: GET /v1/warnings lists the open ones")
    verdict = c.may_act(who, w)
    if not verdict.ok:
        return _error(403, verdict.why)
    limits = c.cfg.alerts.commands
    raw = await read_body(request, limits.body_max)
    try:
        report = parse_report(raw, c.cfg.alerts.reports, limits.note_max)
    except ReportError as exc:
        return _error(400, str(exc))
    report = msgspec.structs.replace(report, id=uuid.uuid4().hex, by=who)
    await send_report(c, w, report)
    return web.json_response({"command": report.id, "incident": iid, "action": "report",
                              "by": who}, status=202)
