"""The console's safety notices page, ``/console/notices``.

The bureau's people get a send form (title, body, kind, severity, a link, and the
enterprises by industry tag, town or id) and the tracking of every notice:
已确认 x/y, and the enterprises still missing, reminded or 未确认. An enterprise's
people get the notices sent to their enterprise, each with 已收到 / 已落实 buttons; a
town's the rows of its enterprises. Server-rendered; the forms are sent by
``static/notices.js`` as JSON to ``/v1/notices`` (the session cookie counts for JSON only,
which a cross-site form cannot send), so the checks are ``notices_api.py``'s.
"""

from __future__ import annotations

import html

from aiohttp import web

from yujing.alerts import notices as nt
from yujing.clock import local_time
from yujing.console.notices_api import (
    notice_dict,
    orgs_of,
    refuse_sender,
    visible,
)
from yujing.console.pages import layout
from yujing.console.session import PREFIX, console_of, lang_of, name_of, need_page_user
from yujing.console.state import Console
from yujing.yamlsrc import SourceError

e = html.escape


def _w(lang: str, zh: str, en: str) -> str:
    return en if lang == "en" else zh


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.replace("，", ",").replace("、", ",").split(",") if x.strip()]


def _form(c: Console, lang: str) -> str:
    s = c.cfg.alerts.notices
    try:
        orgs = orgs_of(c)
    except SourceError:
        orgs = None
    tags = sorted({t for en in (orgs.spec.enterprises if orgs else []) for t in en.industry})
    towns = sorted(orgs.towns) if orgs else []
    kinds = "".join(f"<option>{e(k)}</option>" for k in s.kinds)
    sev = "".join(f'<option value="{k}"{" selected" if k == "warning" else ""}>'
                  f"{e(_w(lang, v.zh, v.en))}</option>" for k, v in nt.SEVERITIES.items())
    def field(name: str, label: str, hint: str = "", size: int = 30) -> str:
        return (f'<label>{label} <input name="{name}" size="{size}" '
                f'placeholder="{e(hint)}"></label>')

    return (f'<form id="notice-form">'
            f'<p>{field("title", _w(lang, "标题", "Title"), size=50)}</p>'
            f'<p><label>{_w(lang, "正文", "Body")}<br><textarea name="body" rows="4" cols="60">'
            f'</textarea></label></p>'
            f'<p><label>{_w(lang, "类别", "Kind")} <select name="kind">{kinds}</select></label> '
            f'<label>{_w(lang, "紧急程度", "Severity")} <select name="severity">{sev}</select>'
            f'</label></p><p>{field("link", _w(lang, "链接（可选）", "Link (optional)"), size=40)}</p>'
            f'<p>{field("tags", _w(lang, "行业标签", "Industry tags"), "、".join(tags))} '
            f'{field("towns", _w(lang, "镇街/园区", "Towns"), "、".join(towns))} '
            f'{field("enterprises", _w(lang, "企业编号", "Enterprise ids"))}</p>'
            f'<button id="notice-send" type="submit">{_w(lang, "发送", "Send")}</button></form>')


def _tracking(c: Console, n: nt.Notice, lang: str) -> str:
    d = notice_dict(c, n)
    rows = []
    for t, row in zip(n.targets, d["targets"]):
        st = nt.STATUS_WORDS[row["status"]]
        who = "；".join(f"{_w(lang, nt.ACKS[a.kind].zh, nt.ACKS[a.kind].en)} {name_of(c, a.by)} "
                       f"{local_time(a.at, c.cfg.timezone)}" for a in t.acks)
        extra = f"（{_w(lang, '提醒', 'reminders')} {t.reminders}）" if t.reminders else ""
        rows.append(f'<tr class="{row["status"]}" data-enterprise="{e(t.enterprise)}">'
                    f"<td>{e(t.name)} ({e(t.enterprise)})</td><td>{e(t.town)}</td>"
                    f"<td>{e(_w(lang, st.zh, st.en))}{e(extra)}</td><td>{e(who)}</td>"
                    f"<td>{e(t.failed)}</td></tr>")
    missing = "、".join(t.name for t in n.targets if not t.acked)
    return (f'<table class="board notice-targets"><thead><tr><th>{_w(lang, "企业", "Enterprise")}'
            f'</th><th>{_w(lang, "镇街", "Town")}</th><th>{_w(lang, "状态", "Status")}</th><th>'
            f'{_w(lang, "确认人", "Acknowledged by")}</th><th>{_w(lang, "送达问题", "Delivery")}</th>'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            + (f'<p class="missing">{_w(lang, "未确认", "Missing")}：{e(missing)}</p>'
               if missing else ""))


def _ack_buttons(n: nt.Notice, lang: str) -> str:
    return (f'<form class="inline notice-ack" data-notice="{e(n.id)}"><button name="ack" '
            f'value="received" type="submit">'
            f'{_w(lang, "已收到", "Received")}</button> <button name="ack" value="done" '
            f'type="submit">{_w(lang, "已落实", "Carried out")}</button></form>')


def _section(c: Console, who: str, n: nt.Notice, lang: str, bureau: bool) -> str:
    d = notice_dict(c, n)
    mine = not bureau and c.rights.scope_of(who).level == "enterprise"
    head = (f'<h2>【{e(n.kind)}】{e(n.title)} <small class="tally">{_w(lang, "已确认", "acknowledged")} '
            f'{d["acked"]}/{d["total"]}</small></h2><p class="meta">{e(n.id)} · '
            f'{e(local_time(n.at, c.cfg.timezone))} · {e(name_of(c, n.by))}'
            f'{" · " + e(n.to.words()) if bureau else ""}</p><p>{e(n.body)}</p>')
    link = f'<p><a href="{e(n.link, quote=True)}">{_w(lang, "详情", "details")}</a></p>' if n.link else ""
    act = _ack_buttons(n, lang) if mine else ""
    return (f'<section class="notice" data-notice="{e(n.id)}">{head}{link}{act}'
            f"{_tracking(c, n, lang)}</section>")


async def notices_page(request: web.Request) -> web.Response:
    who = need_page_user(request)
    c = console_of(request)
    lang = lang_of(request)
    bureau = refuse_sender(c, who) is None
    sent = request.query.get("sent", "")   # set by notices.js after a send
    note = (f'<p class="ok" id="notice-sent">{_w(lang, "已发送", "Sent")} {e(sent)}：'
            f'{_w(lang, "跟踪表稍后更新", "the tracking appears in a moment")}</p>' if sent else "")
    acked = request.query.get("acked", "")   # set by notices.js after 已收到/已落实
    if acked:
        note += (f'<p class="ok" id="notice-acked">{_w(lang, "已确认", "Acknowledged")} {e(acked)}：'
                 f'{_w(lang, "状态稍后更新", "the status appears in a moment")}</p>')
    items = "".join(_section(c, who, n, lang, bureau) for n in visible(c, who))
    body = (f'<section id="notices"><h1>{_w(lang, "安全提示", "Safety notices")}</h1>{note}'
            + (_form(c, lang) if bureau else "")
            + (items or f"<p>{_w(lang, '暂无通知', 'No notices')}</p>") + "</section>")
    body += f'<script src="{PREFIX}/static/notices.js" defer></script>'
    return layout(request, "notices", _w(lang, "安全提示", "Safety notices"), body, who)
