"""The notification chain, Alertmanager style: grade → inhibit → silence → route.

Each stage is a small function from a list of :class:`Item` (a notice and its
warning) to the items that go on, with ``now`` passed in. A stage that holds an
item back says why on the warning's timeline, so "why did nobody get this?"
always has an answer. Grouping happens before the chain (outbox.py flushes a
group's outbox through it); delivery with retry and fallback happens after it
(outbox.py records it, notify.py sends it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from yujing.alerts import phrases
from yujing.alerts.channels import channel_kind
from yujing.alerts.phrases import Text
from yujing.alerts.records import Contact, Notice, Silence, State, Warning
from yujing.alerts.roster import Roster
from yujing.alerts.settings import InhibitRule
from yujing.alerts.silences import describe, matches_all, silencing
from yujing.domain import Grade

ACTIONABLE = ("raised", "upgraded", "escalated", "reminder", "unmuted")
INFORMATIONAL = ("downgraded", "cleared")


@dataclass
class Recipient:
    id: str
    name: str
    contacts: list[Contact]
    roles: list[str] = field(default_factory=list)


@dataclass
class Item:
    notice: Notice
    warning: Warning
    recipients: list[Recipient] = field(default_factory=list)


Stage = Callable[[list[Item], int], list[Item]]


def chain(*stages: Stage) -> Stage:
    def run(items: list[Item], now_ms: int) -> list[Item]:
        for stage in stages:
            if not items:
                break
            items = stage(items, now_ms)
        return items
    return run


def grade_stage(min_grade: int, notify_downgrades: bool) -> Stage:
    """Drop what no longer needs telling: below the minimum grade, or overtaken by events."""
    def stage(items: list[Item], now_ms: int) -> list[Item]:
        out = []
        for it in items:
            n, w = it.notice, it.warning
            if n.kind in ACTIONABLE and w.grade < min_grade:
                w.log(now_ms, "held", f"{n.kind} {Grade(w.grade).label} not notified: below the "
                      f"minimum grade {Grade(min_grade).label}",
                      **phrases.below_minimum(n.kind, Grade(w.grade), Grade(min_grade)).kw())
            elif n.kind in ("escalated", "reminder") and w.state != State.ACTIVE:
                w.log(now_ms, "held", f"{n.kind} dropped: {w.state.value} before it went out",
                      **phrases.dropped(n.kind, w.state.value).kw())
            elif n.kind in ("raised", "upgraded", "unmuted") and w.state == State.CLEARED:
                w.log(now_ms, "held", f"{n.kind} dropped: cleared before the group was sent",
                      **phrases.dropped(n.kind, "cleared", grouped=True).kw())
            elif n.kind == "downgraded" and not notify_downgrades:
                pass
            else:
                out.append(it)
        return out
    return stage


def mute(w: Warning, held: tuple[str, Text], now_ms: int) -> bool:
    """Hold ``w``'s notifications; its timeline says why (once). True if that is news."""
    why, words = held
    if w.muted == why:
        return False
    w.muted = why
    w.log(now_ms, why.split(" ", 1)[0], why, **words.kw())
    return True


def inhibited_by(w: Warning, rules: list[InhibitRule], peers: list[Warning]) -> str:
    """Why ``w`` is inhibited by an open peer, or ''."""
    held = inhibition(w, rules, peers)
    return held[0] if held else ""


def silence_hold(s: Silence) -> tuple[str, Text]:
    """Why a silence holds a warning: the English sentence (``muted``) and the words."""
    return f"silenced by {describe(s)}", phrases.silenced(s.id, s.created_by, s.reason)


def inhibition(w: Warning, rules: list[InhibitRule], peers: list[Warning]
               ) -> tuple[str, Text] | None:
    """The open peer that inhibits ``w``, as the English sentence and the words, or None."""
    labels = w.labels()
    for rule in rules:
        if not matches_all(rule.target_matchers, labels):
            continue
        for src in peers:
            if src.incident == w.incident or not src.open:
                continue
            sl = src.labels()
            if matches_all(rule.source_matchers, sl) and all(sl.get(k) == labels.get(k)
                                                              for k in rule.equal):
                where = src.station_name or src.station
                return (f"inhibited by {Grade(src.grade).label} {src.incident} ({src.rule_name} "
                        f"at {where})",
                        phrases.inhibited(Grade(src.grade), src.incident, src.rule_name, where))
    return None


def inhibit_stage(rules: list[InhibitRule], peers: Callable[[Warning], list[Warning]]) -> Stage:
    """A red warning at a station mutes its lower grades of the same hazard (configurable)."""
    def stage(items: list[Item], now_ms: int) -> list[Item]:
        out = []
        for it in items:
            w = it.warning
            held = inhibition(w, rules, peers(w)) if w.open else None
            if held and it.notice.kind in ACTIONABLE:
                mute(w, held, now_ms)
            elif held and w.incident and not w.notified:
                pass  # nobody heard of it: nothing to downgrade or clear for them
            else:
                out.append(it)
        return out
    return stage


def silence_stage(silences: Callable[[], list[Silence]]) -> Stage:
    def stage(items: list[Item], now_ms: int) -> list[Item]:
        active = silences()
        out = []
        for it in items:
            w = it.warning
            s = silencing(active, w.labels(), now_ms)
            if s is not None and it.notice.kind in ACTIONABLE:
                mute(w, silence_hold(s), now_ms)
            elif s is not None and not w.notified:
                pass
            else:
                out.append(it)
        return out
    return stage


def route_stage(roster: Roster | None, fallback: Callable[[int], list[str]]) -> Stage:
    """Roles → the people on duty now (team by hazard domain and region), or the notify URLs.

    Without a roster every notify URL for the grade is its own recipient, as
    before rosters existed. A role nobody holds falls back to the duty room's
    same role; if that is empty too, the timeline says nobody could be paged.
    """
    def stage(items: list[Item], now_ms: int) -> list[Item]:
        out = []
        for it in items:
            n, w = it.notice, it.warning
            people: dict[str, Recipient] = {}
            if roster is None:
                for i, url in enumerate(fallback(n.grade if n.kind != "cleared" else -1)):
                    people[f"notify-{i}"] = Recipient(f"notify-{i}", "notify",
                                                      [Contact(url, channel_kind(url))],
                                                      list(n.roles))
            else:
                for role in n.roles:
                    pid, why = _holder(roster, w, role, now_ms)
                    if pid is None:
                        words = (phrases.nobody_at_level(role, why) if role in phrases.LEVEL_ROLES
                                 else phrases.nobody_holds(role, why))
                        w.log(now_ms, "held", f"nobody to page as {role}: {why}", **words.kw())
                        continue
                    _add(people, roster, pid, role)
                for pid in n.people:
                    if pid not in people and (roster.person(pid) or pid.startswith("notify-")):
                        _add(people, roster, pid, "informed")
            it.recipients = list(people.values())
            if it.recipients:
                out.append(it)
        return out
    return stage


def _holder(roster: Roster, w: Warning, role: str, now_ms: int) -> tuple[str | None, str]:
    level, _, sub = role.partition(".")
    if level in ("enterprise", "town"):
        return _org_holder(roster, w, level, sub or "A", now_ms)
    if level == "bureau":   # the bureau's level is the chain of before: hazard team, duty room
        role = sub or "A"
    team, why = roster.team_for(w.hazard, w.town)
    tried = []
    for t in [team] + [t.id for t in roster.spec.teams if t.domain == "duty_room" and t.id != team]:
        if t is None:
            continue
        d = roster.duty(t, now_ms)
        pid = d.who(role)
        if pid and roster.person(pid):
            return pid, why
        tried.append(f"team {t} has no {role} on duty ({'; '.join(d.why)})")
    return None, "; ".join(tried) or why


def _org_holder(roster: Roster, w: Warning, level: str, role: str, now_ms: int
                ) -> tuple[str | None, str]:
    """The enterprise's own duty staff, or the regulators of its town (镇街/园区)."""
    ent = roster.org_team("enterprise", w.enterprise)
    if level == "enterprise":
        team, what = ent, f"enterprise {w.enterprise}"
    else:
        town = (roster.teams[ent].town if ent else "") or w.town
        team, what = roster.org_team("town", town), f"town {town}"
    if team is None:
        return None, f"no duty team for {what} in the enterprises file"
    d = roster.duty(team, now_ms)
    pid = d.who(role)
    if pid and roster.person(pid):
        return pid, f"{what} on duty"
    return None, f"team {team} has no {role} on duty ({'; '.join(d.why)})"


def _add(people: dict[str, Recipient], roster: Roster, pid: str, role: str) -> None:
    if pid in people:
        if role not in people[pid].roles:
            people[pid].roles.append(role)
        return
    p = roster.person(pid)
    if p is None:
        return
    people[pid] = Recipient(pid, p.name, p.channels(), [role])
