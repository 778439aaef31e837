"""The duty roster (值班表): teams, AB-role shifts, leaders and contacts. Pure resolution.

A roster YAML names people (with apprise contact URLs in preference order),
teams by domain (三防 flood/wind, 森防 forest fire, 危化 hazardous chemicals,
工贸 industrial safety, 值班室 duty room) and region (镇街), and for each team
a rotation of shifts with an A person, a B person and the duty leader. Explicit
shifts (also from CSV shift tables exported by the duty office), holiday
rotations, overrides and swaps refine it. ``Roster.duty(team, at)`` answers
"who is A, B and leader at this instant" with the reason, in Asia/Shanghai time.

The file's schema and its CSV shift tables are in ``roster_file.py``; parsing
is pure (``parse_roster``); ``load_roster`` reads the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from yujing.alerts.roster_file import (
    DEFAULT_DOMAINS,
    DOMAINS,
    ORG_DOMAINS,
    ROLES,
    Person,
    RosterFile,
    Rotation,
    Shift,
    Slot,
    parse_hhmm,
    parse_shift_csv,
)
from yujing.durations import format_duration, parse_duration_ms
from yujing.yamlsrc import Problem, SourceError, load_yaml, parse_yaml, validate


@dataclass
class Duty:
    team: str
    A: str | None
    B: str | None
    leader: str | None
    start_ms: int
    end_ms: int
    why: list[str] = field(default_factory=list)

    def who(self, role: str) -> str | None:
        return {"A": self.A, "B": self.B, "leader": self.leader}[role]


@dataclass(frozen=True)
class Scope:
    """What a person sees and acts on: the bureau (everything), one town, or one enterprise."""

    level: str = "bureau"        # bureau, town, enterprise
    key: str = ""                # the town's name or the enterprise's id
    town: str = ""               # an enterprise's town
    # a town's enterprises: their stations may sit in a neighbouring town's area (a park
    # spanning two towns) and still be the town's to oversee
    enterprises: frozenset[str] = frozenset()

    def sees(self, town: str, enterprise: str) -> bool:
        """Whether a station or warning of this town and enterprise is within the scope."""
        if self.level == "bureau":
            return True
        if self.level == "enterprise":
            return enterprise == self.key
        return town == self.key or (bool(enterprise) and enterprise in self.enterprises)

    def words(self) -> str:
        return {"bureau": "市应急管理局", "town": f"{self.key}（镇街/园区）",
                "enterprise": f"企业 {self.key}"}[self.level]


class Roster:
    def __init__(self, spec: RosterFile, extra_shifts: dict[str, list[Shift]] | None = None,
                 source: str = "<roster>") -> None:
        self.spec = spec
        self.source = source
        self.tz = ZoneInfo(spec.timezone)
        self.people = {p.id: p for p in spec.people}
        self.teams = {t.id: t for t in spec.teams}
        self.domains = {**DEFAULT_DOMAINS, **spec.domains}
        self.shifts: dict[str, list[Shift]] = {t.id: list(t.shifts) for t in spec.teams}
        for team, rows in (extra_shifts or {}).items():
            self.shifts.setdefault(team, []).extend(rows)
        # who belongs to an enterprise or a town (yujing.alerts.orgs.merge); the rest: the bureau
        self.scopes: dict[str, Scope] = {}
        self.holidays = {spec_h.start + timedelta(days=i)
                         for spec_h in spec.holidays
                         for i in range((spec_h.end - spec_h.start).days + 1)}

    # -- time helpers ------------------------------------------------------
    def _ms(self, dt: datetime) -> int:
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=self.tz)
        return int(dt.timestamp() * 1000)

    def local(self, ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, self.tz)

    def _rotation_slot(self, rot: Rotation, at_ms: int) -> tuple[Slot, int, int, int]:
        anchor = self._ms(datetime.combine(rot.start, parse_hhmm(rot.handover)))
        length = parse_duration_ms(rot.length)
        n = (at_ms - anchor) // length
        start = anchor + n * length
        return rot.slots[n % len(rot.slots)], int(n % len(rot.slots)), start, start + length

    # -- resolution --------------------------------------------------------
    def duty(self, team_id: str, at_ms: int) -> Duty:
        """Who is A, B and leader of a team at an instant, and why."""
        team = self.teams[team_id]
        d = Duty(team_id, None, None, None, at_ms, at_ms)
        shift = next((s for s in self.shifts.get(team_id, [])
                      if self._ms(s.start) <= at_ms < self._ms(s.end)), None)
        if shift is not None:
            d.A, d.B, d.leader = shift.A, shift.B, shift.leader
            d.start_ms, d.end_ms = self._ms(shift.start), self._ms(shift.end)
            d.why.append(f"shift {self.local(d.start_ms):%m-%d %H:%M}–"
                         f"{self.local(d.end_ms):%m-%d %H:%M}")
        else:
            rot = team.rotation
            label = "rotation"
            if team.holiday_rotation is not None and team.rotation is not None:
                _, _, s0, _ = self._rotation_slot(team.rotation, at_ms)
                if self.local(s0).date() in self.holidays:
                    rot, label = team.holiday_rotation, "holiday rotation"
            elif team.holiday_rotation is not None:
                rot, label = team.holiday_rotation, "holiday rotation"
            if rot is not None:
                slot, i, s0, s1 = self._rotation_slot(rot, at_ms)
                d.A, d.B, d.leader = slot.A, slot.B, slot.leader
                d.start_ms, d.end_ms = s0, s1
                d.why.append(f"{label} slot {i + 1} ({self.local(s0):%m-%d %H:%M} handover)")
            else:
                d.why.append("no rotation or shift covers this time")
        if d.leader is None and team.leader:
            d.leader = team.leader
        for sw in self.spec.swaps:
            if sw.team == team_id and self._ms(sw.start) <= at_ms < self._ms(sw.end):
                swap = {sw.person: sw.with_, sw.with_: sw.person}
                d.A, d.B, d.leader = (swap.get(d.A, d.A) if d.A else None,
                                      swap.get(d.B, d.B) if d.B else None,
                                      swap.get(d.leader, d.leader) if d.leader else None)
                d.why.append(f"swap {sw.person}↔{sw.with_}" + (f" ({sw.reason})" if sw.reason else ""))
                d.start_ms, d.end_ms = max(d.start_ms, self._ms(sw.start)), min(d.end_ms, self._ms(sw.end))
        for ov in self.spec.overrides:
            if ov.team == team_id and self._ms(ov.start) <= at_ms < self._ms(ov.end):
                for role in ROLES:
                    if getattr(ov, role):
                        setattr(d, role, getattr(ov, role))
                d.why.append("override" + (f" ({ov.reason})" if ov.reason else ""))
                d.start_ms, d.end_ms = max(d.start_ms, self._ms(ov.start)), min(d.end_ms, self._ms(ov.end))
        return d

    def team_for(self, hazard: str, region: str) -> tuple[str | None, str]:
        """The team that answers for a hazard in a region, and why that one."""
        domain = self.domains.get(hazard, "duty_room")
        if domain in ORG_DOMAINS:   # a level, not a hazard's domain (check() says so)
            domain = "duty_room"
        for dom in (domain, "duty_room") if domain != "duty_room" else ("duty_room",):
            exact = [t for t in self.spec.teams if t.domain == dom and region in t.regions]
            if exact:
                return exact[0].id, f"{DOMAINS[dom]} team for {region}"
            wide = [t for t in self.spec.teams if t.domain == dom and "*" in t.regions]
            if wide:
                return wide[0].id, f"{DOMAINS[dom]} team for all regions"
        return None, f"no team for {hazard} ({domain}) in {region} and no duty room team"

    def org_team(self, level: str, key: str) -> str | None:
        """The team of an enterprise (``level`` enterprise, ``key`` its id) or of a town's
        regulators (``level`` town, ``key`` the town's name), or None."""
        if not key or level not in ORG_DOMAINS:
            return None
        for t in self.spec.teams:
            if t.domain == level and (t.enterprise if level == "enterprise" else t.town) == key:
                return t.id
        return None

    def scope_of(self, person: str) -> Scope:
        return self.scopes.get(person, Scope())

    def person(self, pid: str) -> Person | None:
        return self.people.get(pid)

    # -- checks ------------------------------------------------------------
    def check(self, from_ms: int, horizon_ms: int = 14 * 86_400_000) -> list[str]:
        """Gaps (no A or no B), unknown people, people without contacts."""
        problems: list[str] = []
        known = set(self.people)

        def ref(pid: str | None, where: str) -> None:
            if pid and pid not in known:
                problems.append(f"{where}: unknown person {pid!r}: add them under people: or fix "
                                "the id")

        for t in self.spec.teams:
            for rot_name in ("rotation", "holiday_rotation"):
                rot = getattr(t, rot_name)
                for i, s in enumerate(rot.slots if rot else []):
                    for role in ROLES:
                        ref(getattr(s, role), f"team {t.id} {rot_name} slot {i + 1} {role}")
            ref(t.leader, f"team {t.id} leader")
        for team, rows in self.shifts.items():
            for s in rows:
                for role in ROLES:
                    ref(getattr(s, role), f"team {team} shift {s.start:%Y-%m-%d %H:%M} {role}")
        for i, ov in enumerate(self.spec.overrides):
            if ov.team not in self.teams:
                problems.append(f"overrides[{i}]: unknown team {ov.team!r}")
            for role in ROLES:
                ref(getattr(ov, role), f"overrides[{i}] {role}")
        for i, sw in enumerate(self.spec.swaps):
            if sw.team not in self.teams:
                problems.append(f"swaps[{i}]: unknown team {sw.team!r}")
            ref(sw.person, f"swaps[{i}] person")
            ref(sw.with_, f"swaps[{i}] with")
        for p in self.spec.people:
            if not p.contacts:
                problems.append(f"person {p.id} ({p.name}) has no contacts: nobody can reach them")
        for hazard, dom in self.domains.items():
            if dom not in DOMAINS:
                problems.append(f"domains: {hazard}: unknown domain {dom!r}")
        for hazard, dom in self.domains.items():
            if dom in ORG_DOMAINS:
                problems.append(f"domains: {hazard}: {dom} is a level, not a hazard's domain: "
                                "warnings reach enterprises and towns by alerts.levels")
        if not any(t.domain == "duty_room" for t in self.spec.teams):
            problems.append("no duty room (值班室) team: warnings no other team covers reach nobody")
        end = from_ms + horizon_ms
        for t in self.spec.teams:
            problems += self._gaps(t.id, from_ms, end)
        return problems

    def _gaps(self, team_id: str, from_ms: int, end_ms: int) -> list[str]:
        out = []
        at, gap_start, gap_roles = from_ms, None, ""
        while at < end_ms:
            d = self.duty(team_id, at)
            missing = [r for r in ("A", "B") if d.who(r) is None]
            nxt = d.end_ms if d.end_ms > at else at + 1_800_000
            nxt = min(nxt, self._next_boundary(team_id, at), end_ms)
            roles = " and ".join(missing)
            if gap_start is not None and roles != gap_roles:
                out.append(self._gap_text(team_id, gap_start, at, gap_roles))
                gap_start = None
            if missing and gap_start is None:
                gap_start, gap_roles = at, roles
            at = max(nxt, at + 60_000)
        if gap_start is not None:
            out.append(self._gap_text(team_id, gap_start, end_ms, gap_roles))
        return out

    def _next_boundary(self, team_id: str, at: int) -> int:
        cands = [self._ms(x) for s in self.shifts.get(team_id, []) for x in (s.start, s.end)]
        cands += [self._ms(x) for o in self.spec.overrides if o.team == team_id
                  for x in (o.start, o.end)]
        cands += [self._ms(x) for o in self.spec.swaps if o.team == team_id
                  for x in (o.start, o.end)]
        later = [c for c in cands if c > at]
        return min(later) if later else at + 86_400_000

    def _gap_text(self, team: str, a: int, b: int, roles: str) -> str:
        return (f"team {team}: no {roles} from {self.local(a):%Y-%m-%d %H:%M} to "
                f"{self.local(b):%Y-%m-%d %H:%M} ({format_duration((b - a) // 60000 * 60000)}): "
                "add a shift, a rotation slot or an override")


def parse_roster(text: str, file: str = "<roster>",
                 tables: dict[str, str] | None = None) -> Roster:
    """Roster YAML text (+ the text of its CSV shift tables, by name) → Roster."""
    src = parse_yaml(text, file)
    spec: RosterFile = validate(RosterFile, src)
    problems: list[Problem] = []
    ids = [p.id for p in spec.people]
    for i, pid in enumerate(ids):
        if pid in ids[:i]:
            problems.append(Problem(file, src.line_of(("people", i, "id")), f"people[{i}].id",
                                    f"duplicate person id {pid!r}: keep one of them"))
    tids = [t.id for t in spec.teams]
    for i, tid in enumerate(tids):
        if tid in tids[:i]:
            problems.append(Problem(file, src.line_of(("teams", i, "id")), f"teams[{i}].id",
                                    f"duplicate team id {tid!r}: keep one of them"))
    try:
        ZoneInfo(spec.timezone)
    except Exception:
        problems.append(Problem(file, src.line_of(("timezone",)), "timezone",
                                f"unknown time zone {spec.timezone!r}: write Asia/Shanghai"))
    if problems:
        raise SourceError(problems)
    extra: dict[str, list[Shift]] = {}
    for name in spec.shift_tables:
        text_csv = (tables or {}).get(name)
        if text_csv is None:
            raise SourceError([Problem(file, src.line_of(("shift_tables",)), "shift_tables",
                                       f"shift table {name!r} not found next to the roster")])
        for team, rows in parse_shift_csv(text_csv, name).items():
            if team not in tids:
                raise SourceError([Problem(name, 0, "team", f"unknown team {team!r}: use one "
                                           f"of {', '.join(tids)}")])
            extra.setdefault(team, []).extend(rows)
    return Roster(spec, extra, file)


def load_roster(path: str | Path) -> Roster:
    p = Path(path)
    if p.suffix.lower() == ".csv":
        raise SourceError([Problem(str(p), 0, "", "a CSV holds shifts only: name it under "
                                   "shift_tables: in a roster YAML that lists the people and teams")])
    src = load_yaml(p)  # located errors for a missing file or bad YAML
    tables = {}
    names = src.data.get("shift_tables") if isinstance(src.data, dict) else None
    # not a list: parse_roster's validation says so, with the line
    for name in names if isinstance(names, list) else []:
        f = p.parent / str(name)
        try:
            if f.is_file():
                tables[str(name)] = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise SourceError([Problem(str(f), 0, "", "not UTF-8 text: save the shift "
                                       "table as UTF-8 CSV")]) from None
        except OSError as exc:  # a name the file system cannot hold (too long, NUL, …)
            raise SourceError([Problem(str(p), src.line_of(("shift_tables",)), "shift_tables",
                                       f"cannot open {str(name)[:60]!r}: {exc.strerror}; "
                                       "name a CSV file beside the roster")]) from None
    return parse_roster(p.read_text(encoding="utf-8"), str(p), tables)
