"""The duty roster page of the console (``/console/roster``): who is A, B and leader of
each team now, since when and why, who comes next, and for the bureau who answers for
each domain in each town.

Apart from ``pages.py`` because it is the one page drawn whole on the server from the
roster (``alerts/roster.py``), with the rights deciding which teams a person sees.
"""

from __future__ import annotations

import html

from aiohttp import web

from yujing import clock
from yujing.alerts.roster import DOMAINS, ORG_DOMAINS, Roster
from yujing.console.i18n import t
from yujing.console.pages import layout
from yujing.console.session import console_of, lang_of, need_page_user
from yujing.console.state import Console


def _person(c: Console, pid: str | None) -> str:
    if not pid:
        return '<span class="gap">—</span>'
    p = c.roster.person(pid) if c.roster is not None else None
    name = p.name if p else pid
    phone = f' <span class="phone">{html.escape(p.phone)}</span>' if p and p.phone else ""
    return f'<span class="person" data-person="{html.escape(pid)}">{html.escape(name)}</span>{phone}'


def _local(c: Console, ms: int) -> str:
    r = c.roster
    return r.local(ms).strftime("%m-%d %H:%M") if r is not None else str(ms)


async def roster_page(request: web.Request) -> web.Response:
    who = need_page_user(request)
    lang = lang_of(request)
    c = console_of(request)
    e = html.escape
    r = c.roster
    if r is None:
        return layout(request, "roster", t("roster", lang),
                       f'<p class="empty">{e(t("no_roster", lang))}</p>', who)
    now = clock.now_ms()
    head = (f'<tr><th>{e(t("team", lang))}</th><th>{e(t("domain", lang))}</th>'
            f'<th>{e(t("town", lang))}</th><th>{e(t("role_A", lang))}</th>'
            f'<th>{e(t("role_B", lang))}</th><th>{e(t("role_leader", lang))}</th>'
            f'<th>{e(t("since", lang))}/{e(t("until", lang))} · {e(t("why", lang))}</th>'
            f'<th>{e(t("duty_next", lang))} (A / B / {e(t("role_leader", lang))})</th></tr>')
    doms = [d for d in DOMAINS if d not in ("duty_room", *ORG_DOMAINS)]
    thead = (f'<tr><th>{e(t("town", lang))}</th>'
             + "".join(f'<th>{e(t("d_" + d, lang))}</th>' for d in doms) + "</tr>")
    body = (f'<h2>{e(t("per_team", lang))}</h2><div class="scrollx"><table class="roster" '
            f'id="roster-teams"><thead>{head}</thead><tbody>'
            f'{"".join(_team_rows(c, r, who, lang, now))}</tbody></table></div>'
            + ("" if c.rights.scope_of(who).level != "bureau" else  # the bureau's own rota
               f'<h2>{e(t("per_town", lang))}</h2><div class="scrollx"><table class="roster" '
               f'id="roster-towns"><thead>{thead}</thead><tbody>'
               f'{"".join(_town_rows(c, r, doms, now))}</tbody></table></div>') +
            f'<p class="help">{e(r.source)} · {e(str(r.tz))}</p>')
    return layout(request, "roster", t("roster", lang), body, who)


def _team_rows(c: Console, r: Roster, who: str, lang: str, now: int) -> list[str]:
    """Per team: who is A, B and leader now, since when and why, and who comes next."""
    e = html.escape
    rows = []
    scope = c.rights.scope_of(who)
    for tid, team in r.teams.items():
        # an enterprise's or town's people see their own duty (a town: its enterprises' too)
        if scope.level != "bureau" and not (team.domain in ORG_DOMAINS and scope.sees(
                team.town or "", team.enterprise or "")):
            continue
        d = r.duty(tid, now)
        n = r.duty(tid, d.end_ms) if d.end_ms > now else None
        regions = "、".join(team.regions) if team.regions != ["*"] else t("all", lang)
        mine = " mine" if who in c.rights._members.get(tid, set()) else ""
        rows.append(
            f'<tr class="team{mine}" data-team="{e(tid)}"><td><b>{e(team.name)}</b><br>'
            f'<small>{e(tid)}</small></td><td>{e(t("d_" + team.domain, lang))}</td>'
            f'<td>{e(regions)}</td><td class="now">{_person(c, d.A)}</td>'
            f'<td class="now">{_person(c, d.B)}</td><td>{_person(c, d.leader)}</td>'
            f'<td><small>{e(_local(c, d.start_ms))} – {e(_local(c, d.end_ms))}<br>'
            f'{e("; ".join(d.why))}</small></td>'
            + (f'<td>{_person(c, n.A)} / {_person(c, n.B)} / {_person(c, n.leader)}<br><small>'
               f'{e(t("since", lang))} {e(_local(c, n.start_ms))}</small></td>' if n else "<td></td>")
            + "</tr>")
    return rows


def _town_rows(c: Console, r: Roster, doms: list[str], now: int) -> list[str]:
    """Per town of the registry: which team and who answers for each domain there, now."""
    e = html.escape
    reg = c.registry()
    towns = sorted({s.town for s in (reg.stations.values() if reg else []) if s.town})
    rows = []
    for town in towns:
        cells = []
        for dom in doms:
            hazard = next((h for h, d in r.domains.items() if d == dom), dom)
            tid, _ = r.team_for(hazard, town)
            if tid is None:
                cells.append('<td class="gap">—</td>')
                continue
            d = r.duty(tid, now)
            cells.append(f'<td><small>{e(r.teams[tid].name)}</small><br>A {_person(c, d.A)}'
                         f' · B {_person(c, d.B)}</td>')
        rows.append(f'<tr data-town="{e(town)}"><th>{e(town)}</th>{"".join(cells)}</tr>')
    return rows
