"""The period report in the console: ``/console/report`` (a form and a table) and
``/console/report.csv`` (the same rows as CSV, Chinese or English headers).

From the console's read model (the incident snapshots of ``yujing.incidents``) and
its station registry; the counting is ``alerts/period_report.py``'s, the same as
``yujing report``. From and to are local dates (the config's time zone); the end
date is included.
"""

from __future__ import annotations

import html
import io
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from yujing import clock
from yujing.alerts import period_report as pr
from yujing.alerts.phrases import Text
from yujing.console.i18n import t
from yujing.console.pages import layout
from yujing.console.session import console_of, lang_of, need_page_user, need_web_user
from yujing.console.state import Console


class _Bad(ValueError):
    pass


def _span(q: dict[str, str], zone: ZoneInfo, now_ms: int) -> tuple[date, date, str]:
    """The query's from and to dates (default: yesterday and today) and its --by."""
    today = datetime.fromtimestamp(now_ms / 1000, zone).date()
    try:
        end = date.fromisoformat(q["to"]) if q.get("to") else today
        start = date.fromisoformat(q["from"]) if q.get("from") else end - timedelta(days=1)
    except ValueError:
        raise _Bad("日期格式应为 2026-12-01 / dates are written 2026-12-01") from None
    by = q.get("by") or "town"
    if by not in pr.UNIT_HEADERS:
        raise _Bad(f"by={by!r}: town or enterprise")
    if start > end:
        raise _Bad("开始日期晚于结束日期 / the start is after the end")
    return start, end, by


def _rows(c: Console, who: str, start: date, end: date, by: str,
          zone: ZoneInfo) -> tuple[list[pr.Row], Text | None]:
    """The period's rows over the warnings ``who`` may see (an enterprise's people count
    their enterprise only, a town's its town: the same scope as the board), and why they
    are incomplete, if the period starts before the book's retention."""
    t0, t1 = _bounds(start, end, zone)
    rows = pr.aggregate(c.visible(who), pr.unit_of(by, c.station), t0, t1,
                        c.cfg.alerts.reports)
    return rows, pr.incomplete(t0, clock.now_ms(), c.cfg.alerts.retention)


def _bounds(start: date, end: date, zone: ZoneInfo) -> tuple[int, int]:
    """Epoch ms of the start day's midnight and of the day after the end (included)."""
    return (int(datetime.combine(start, time(), zone).timestamp() * 1000),
            int(datetime.combine(end + timedelta(days=1), time(), zone).timestamp() * 1000))


async def report_page(request: web.Request) -> web.Response:
    who = need_page_user(request)
    c = console_of(request)
    lang = lang_of(request)
    zone = ZoneInfo(c.cfg.timezone)
    e = html.escape
    q = dict(request.query)
    try:
        start, end, by = _span(q, zone, clock.now_ms())
    except _Bad as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    rows, why = _rows(c, who, start, end, by, zone)
    head = "".join(f"<th>{e(h)}</th>" for h in pr.headers(by, lang))
    body_rows = []
    for row in rows:
        cells = row.values()
        if lang == "en":
            cells["unit"] = {"合计": "total", pr.NONE_ZH: pr.NONE_EN}.get(row.unit, row.unit)
        cls = ' class="total"' if row is rows[-1] else ""
        body_rows.append(f"<tr{cls}>" + "".join(f"<td>{e(str(cells[k]))}</td>"
                                                for k, _, _ in pr.COLUMNS) + "</tr>")
    by_opts = "".join(f'<option value="{k}"{" selected" if k == by else ""}>'
                      f"{e(v[0] if lang == 'zh' else v[1])}</option>"
                      for k, v in pr.UNIT_HEADERS.items())
    gap = (f'<p class="warn" id="report-incomplete" role="status">'
           f'{e(why.zh if lang == "zh" else why.en)}</p>' if why else "")
    csv_q = urlencode({"from": start.isoformat(), "to": end.isoformat(), "by": by, "lang": lang})
    body = f"""<section id="report"><h1>{e(t("report", lang))}</h1>
<form class="filters" method="get" action="report">
<label>{e(t("report_from", lang))} <input type="date" name="from" value="{start.isoformat()}"></label>
<label>{e(t("report_to", lang))} <input type="date" name="to" value="{end.isoformat()}"></label>
<label>{e(t("report_by", lang))} <select name="by">{by_opts}</select></label>
<button type="submit">{e(t("report_show", lang))}</button>
<a id="report-csv" href="report.csv?{e(csv_q)}">CSV</a></form>
<p class="help">{e(t("report_help", lang))}</p>{gap}
<div class="scrollx"><table class="board" id="report-table"><thead><tr>{head}</tr></thead>
<tbody>{"".join(body_rows)}</tbody></table></div></section>"""
    return layout(request, "report", t("report", lang), body, who)


async def report_csv(request: web.Request) -> web.Response:
    who = need_web_user(request)
    c = console_of(request)
    zone = ZoneInfo(c.cfg.timezone)
    q = dict(request.query)
    lang = q.get("lang") if q.get("lang") in ("zh", "en") else "zh"
    try:
        start, end, by = _span(q, zone, clock.now_ms())
    except _Bad as exc:
        return web.json_response({"error": str(exc)}, status=400)
    rows, why = _rows(c, who, start, end, by, zone)
    buf = io.StringIO()
    pr.write_csv(rows, by, lang, buf)
    name = f"yujing-report-{by}-{start.isoformat()}-{end.isoformat()}.csv"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    if why:   # a header carries ASCII only: the English text
        headers["X-Yujing-Incomplete"] = why.en
    return web.Response(body=("\ufeff" + buf.getvalue()).encode(), charset="utf-8",
                        content_type="text/csv", headers=headers)
