"""Who may act on which warning: rights from the duty roster's teams. Pure.

A warning belongs to the team the roster routes it to (``Roster.team_for``:
the hazard's domain and the warning's town, else the duty room). A person may
acknowledge, annotate, clear or silence it when they are

- a member of that team: named anywhere in its rotation, holiday rotation,
  shifts (CSV tables included), overrides, swaps, or as its leader — whether
  or not they are on shift right now (an off-shift officer may still take a
  warning of their own team);
- a member of a duty-room team (domain ``duty_room``): the 值班室 receives and
  forwards every warning of the city;
- listed in ``console.admins``.

Without a roster there are no teams to derive rights from, so every person
with a console token may act (the tokens are the only gate).

Scopes (``alerts.enterprises``, :mod:`yujing.alerts.orgs`): a person of an
enterprise reads only that enterprise's stations and warnings, a town's
regulator only the town's; everyone else (the bureau) reads all. Acting needs
the scope AND a right: an enterprise's or town's people act on the warnings of
enterprise stations within their scope (their level is in those warnings'
chain), never on the bureau's own (a flood warning in their town they only
read), and never on all at once (no silences beyond one warning).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from yujing.alerts.roster import DEFAULT_DOMAINS, DOMAINS, ROLES, Roster, Scope


@dataclass(frozen=True)
class Verdict:
    ok: bool
    why: str            # shown on a refused button and in the 403 body
    team: str | None = None


def team_members(roster: Roster, team_id: str) -> set[str]:
    """Every person a team's rota names, at any time."""
    team = roster.teams.get(team_id)
    if team is None:
        return set()
    out: set[str] = set()
    for rot in (team.rotation, team.holiday_rotation):
        for s in rot.slots if rot else []:
            out.update(p for p in (s.A, s.B, s.leader) if p)
    for s in roster.shifts.get(team_id, []):
        out.update(p for p in (s.A, s.B, s.leader) if p)
    for ov in roster.spec.overrides:
        if ov.team == team_id:
            out.update(getattr(ov, r) for r in ROLES if getattr(ov, r))
    for sw in roster.spec.swaps:
        if sw.team == team_id:
            out.update((sw.person, sw.with_))
    if team.leader:
        out.add(team.leader)
    return out


class Rights:
    def __init__(self, roster: Roster | None, admins: Iterable[str] = ()) -> None:
        self.roster = roster
        self.admins = set(admins)
        self._members: dict[str, set[str]] = {}
        self._room: set[str] = set()
        if roster is not None:
            self._members = {t: team_members(roster, t) for t in roster.teams}
            for tid, team in roster.teams.items():
                if team.domain == "duty_room":
                    self._room |= self._members[tid]

    def teams_of(self, person: str) -> list[str]:
        return [t for t, m in self._members.items() if person in m]

    def domain_of(self, hazard: str) -> str:
        if self.roster is not None:
            return self.roster.domains.get(hazard, "duty_room")
        return DEFAULT_DOMAINS.get(hazard, "duty_room")

    def team_for(self, hazard: str, town: str) -> tuple[str | None, str]:
        if self.roster is None:
            return None, "no roster"
        return self.roster.team_for(hazard, town)

    def scope_of(self, person: str) -> Scope:
        return self.roster.scope_of(person) if self.roster is not None else Scope()

    def may_read(self, person: str, town: str, enterprise: str) -> Verdict:
        """May ``person`` see a station or warning of this town and enterprise? The reason
        (Chinese first: it is the 403 body an enterprise's officer reads)."""
        scope = self.scope_of(person)
        if scope.sees(town, enterprise):
            return Verdict(True, f"{person} belongs to {scope.level} {scope.key}".strip())
        whose = f"企业 {enterprise}" if enterprise else f"{town or '市局'}"
        return Verdict(False, f"无权查看：该预警属于{whose}，{person} 属于{scope.words()}，只能查看"
                              f"本{'企业' if scope.level == 'enterprise' else '镇街/园区'}的站点和预警 / "
                              f"not yours to see: it belongs to {enterprise or town}, {person} "
                              f"to {scope.level} {scope.key}")

    def acts_on_all(self, person: str) -> Verdict:
        """Rights over every warning (needed for silences not pinned to one warning)."""
        scope = self.scope_of(person)
        if scope.level != "bureau":
            return Verdict(False, f"{person} belongs to {scope.level} {scope.key}: only the "
                                  "bureau acts on every warning")
        if self.roster is None:
            return Verdict(True, "no roster: every console user may act")
        if person in self.admins:
            return Verdict(True, f"{person} is a console admin")
        if person in self._room:
            return Verdict(True, f"{person} is on the duty room (值班室) rota")
        return Verdict(False, f"{person} 既不是值班台管理员，也不在值班室排班中 / {person} is neither "
                              "a console admin (console.admins) nor on a duty room (值班室) rota")

    def may_act(self, person: str, hazard: str, town: str, enterprise: str = "") -> Verdict:
        """May ``person`` acknowledge, annotate, clear or silence this warning?"""
        read = self.may_read(person, town, enterprise)
        if not read.ok:
            return read
        scope = self.scope_of(person)
        if scope.level != "bureau":
            if enterprise and self.roster is not None \
                    and self.roster.org_team("enterprise", enterprise):
                return Verdict(True, f"{person} is on duty for {scope.level} {scope.key}, a level "
                                     "of this warning's chain", self.roster.org_team("enterprise",
                                                                                     enterprise))
            return Verdict(False, f"无权处置：该预警由市局值班处置，{person} 只能查看 / the bureau's "
                                  f"duty handles it; {person} ({scope.level} {scope.key}) may read it")
        team, _why = self.team_for(hazard, town)
        every = self.acts_on_all(person)
        if every.ok:
            return Verdict(True, every.why, team)
        if team is not None and person in self._members.get(team, set()):
            return Verdict(True, f"{person} is on the rota of team {team}", team)
        name = self.roster.teams[team].name if team and self.roster else ""
        dom = DOMAINS.get(self.domain_of(hazard), "")
        where = f"team {team} ({name})" if team else f"no team ({dom} {town})"
        where_zh = f"责任组{name or team}" if team else f"{dom}{town}（无责任组）"
        return Verdict(False, f"{person} 不在{where_zh}的排班中，也不在值班室排班中，也不是值班台"
                              f"管理员：请联系该组值班员 / {person} is not on the rota of {where}, "
                              "nor on the duty room's, nor a console admin: ask that team's duty "
                              "officer", team)
