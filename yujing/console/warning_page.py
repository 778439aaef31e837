"""The warning page of the console (``/console/warnings/{id}``): the actions a duty officer
takes on one warning (acknowledge, note, clear, silence) and the report-back (回报) form.

Apart from ``pages.py`` because it is the page a duty officer acts from; console.js
fills its head, plan, timeline and chart from ``/console/api/warnings/{id}`` and posts
the forms to the ``/v1`` API, which checks the person's rights.
"""

from __future__ import annotations

import html

from aiohttp import web

from yujing.console.i18n import t
from yujing.console.pages import layout
from yujing.console.session import lang_of, need_page_user


async def warning_page(request: web.Request) -> web.Response:
    who = need_page_user(request)
    lang = lang_of(request)
    iid = request.match_info["id"]
    e = html.escape
    silence_opts = "".join(f'<option value="{d}">{d}</option>' for d in ("1h", "2h", "6h", "24h"))
    body = f"""<section id="detail" data-incident="{e(iid)}">
<div class="head" id="w-head"></div>
<div class="actions" id="actions" role="group" aria-label="{e(t("actions", lang))}">
<form id="f-ack"><input name="note" placeholder="{e(t("note_ph", lang))}"><button id="btn-ack" type="submit">{e(t("ack", lang))}</button></form>
<form id="f-note"><input name="text" required placeholder="{e(t("note_req", lang))}"><button id="btn-note" type="submit">{e(t("note", lang))}</button></form>
<form id="f-clear"><input name="reason" required placeholder="{e(t("reason_req", lang))}"><button id="btn-clear" type="submit">{e(t("clear", lang))}</button></form>
<p id="act-msg" class="msg" role="status"></p></div>
{_report_form(lang)}
<div class="actions more" id="actions-more">
<form id="f-silence"><label>{e(t("silence_for", lang))} <select name="duration">{silence_opts}</select></label><input name="reason" required placeholder="{e(t("silence_reason", lang))}"><button id="btn-silence" type="submit">{e(t("silence", lang))}</button></form></div>
<div class="cols"><div class="col">
<h2>{e(t("plan", lang))}</h2><div id="plan" class="plan"></div>
<div id="events-box" hidden><h2>{e(t("events", lang))}</h2><div id="events"></div></div>
<h2>{e(t("timeline", lang))}</h2><ol id="timeline" class="timeline"></ol></div>
<div class="col"><h2>{e(t("chart", lang))}</h2><div id="chart"></div>
<h2>{e(t("duty_now", lang))}</h2><div id="duty"></div></div></div></section>"""
    return layout(request, "warning", iid, body, who, {"incident": iid})


def _report_form(lang: str) -> str:
    """The report-back (回报) form of the warning page; console.js posts it to
    ``/v1/warnings/{id}/reports``."""
    e = html.escape
    status = "".join(f'<option value="{k}">{e(t("rs_" + k, lang))}</option>'
                     for k in ("handling", "done", "support"))
    stopped = "".join(f'<option value="{v}">{e(t(k, lang))}</option>'
                      for v, k in (("", "stop_unsaid"), ("yes", "stop_yes"), ("no", "stop_no")))
    return f"""<details class="actions more" id="report-box"><summary>{e(t("report_back", lang))} <b id="report-due" hidden>{e(t("report_due", lang))}</b></summary>
<form id="f-report"><label>{e(t("report_status", lang))} <select name="status">{status}</select></label>
<label>{e(t("report_measures", lang))} <textarea name="measures" rows="2" required></textarea></label>
<label>{e(t("report_evac", lang))} <input name="evacuated" type="number" min="0" value="0"></label>
<label>{e(t("report_withdrawn", lang))} <input name="withdrawn" type="number" min="0" value="0"></label>
<label>{e(t("report_stopped", lang))} <select name="stopped">{stopped}</select></label>
<label>{e(t("report_photos", lang))} <textarea name="photos" rows="2" placeholder="https://…"></textarea></label>
<label>{e(t("report_text", lang))} <input name="text"></label>
<button id="btn-report" type="submit">{e(t("report_send", lang))}</button></form></details>"""
