"""The duty roster (值班表): teams, AB-role shifts, leaders and contacts. Pure resolution.

A roster YAML names people (with apprise contact URLs in preference order),
teams by domain (三防 flood/wind, 森防 forest fire, 危化 hazardous chemicals,
工贸 industrial safety, 值班室 duty room) and region (镇街), and for each team
a rotation of shifts with an A person, a B person and the duty leader. Explicit
shifts (also from CSV shift tables exported by the duty office), holiday
rotations, overrides and swaps refine it. ``Roster.duty(team, at)`` answers
"who is A, B and leader at this instant" with the reason, in Asia/Shanghai time.

Parsing is pure (``parse_roster``); ``load_roster`` reads the files.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from yujing.durations import format_duration, parse_duration_ms
from yujing.yamlsrc import Problem, SourceError, load_yaml, parse_yaml, validate
from yujing.alerts.records import Contact

DOMAINS = {"flood": "三防", "forest": "森防", "chemical": "危化", "industrial": "工贸",
           "duty_room": "值班室"}
DEFAULT_DOMAINS = {"rainstorm": "flood", "flood": "flood", "wind": "flood", "typhoon": "flood",
                   "waterlogging": "flood", "reservoir": "flood", "river": "flood",
                   "forest_fire": "forest", "fire": "forest", "gas": "chemical",
                   "chemical": "chemical", "dust": "industrial", "industrial": "industrial",
                   "nodata": "duty_room"}
ROLES = ("A", "B", "leader")

_EMAIL = ("mailto", "mailtos", "email", "smtp")
_MARKDOWN = ("dingtalk", "wecombot", "wxteams", "feishu", "lark", "slack", "msteams",
             "mattermost", "rocket", "discord", "tgram", "matrix", "ntfy", "pushplus", "serverchan",
             "wxpusher", "qq")
_SMS = ("sms", "twilio", "sns", "clicksend", "smseagle", "httpsms", "msg91", "kavenegar",
        "bulksms", "d7sms", "seven", "sinch", "plivo", "vonage", "nexmo", "aliyun", "smsmgr",
        "signal", "bulkvs", "voipms", "burstsms", "messagebird", "africas")


def channel_kind(url: str) -> str:
    """Which template a channel gets: sms (≤ 70 characters), markdown, email or text."""
    scheme = url.split("://", 1)[0].lower()
    if scheme in _EMAIL:
        return "email"
    if scheme in _MARKDOWN:
        return "markdown"
    if scheme in _SMS:
        return "sms"
    return "text"


def redact(url: str) -> str:
    """scheme://host of a channel: tokens and passwords never reach a timeline or a log."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    if scheme.lower() in ("dingtalk", "wecombot", "tgram", "discord", "slack"):
        host = host[:4] + "…" if host else ""
    return f"{scheme}://{host}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContactSpec(_Strict):
    url: str
    kind: Literal["sms", "markdown", "email", "text"] | None = None


class Person(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str
    phone: str = ""
    contacts: list[str | ContactSpec] = Field(default_factory=list,
                                              description="apprise URLs in preference order")

    @field_validator("contacts", mode="before")
    @classmethod
    def _scalars(cls, v: Any) -> Any:
        # a phone number written bare would fail as "not a string": say what to write instead
        return [str(c) if isinstance(c, (int, float)) else c for c in v] if isinstance(v, list) else v

    @field_validator("contacts")
    @classmethod
    def _urls(cls, v: list[Any]) -> list[Any]:
        for c in v:
            url = c if isinstance(c, str) else c.url
            if "://" not in url:
                raise ValueError(f"contact {url!r} is not an apprise URL: write e.g. "
                                 "dingtalk://token/, mailto://user:pass@host or json://host/path")
        return v

    def channels(self) -> list[Contact]:
        out = []
        for c in self.contacts:
            url, kind = (c, None) if isinstance(c, str) else (c.url, c.kind)
            out.append(Contact(url, kind or channel_kind(url)))
        return out


class Slot(_Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    A: str | None = None
    B: str | None = None
    leader: str | None = None


class Rotation(_Strict):
    start: date = Field(description="local date of the first slot's handover")
    handover: str = Field("08:30", description="local time the first slot begins (HH:MM)")
    length: str = Field("1d", description="one shift; 12h gives day and night shifts")
    slots: list[Slot]

    @field_validator("handover")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        _parse_hhmm(v)
        return v

    @field_validator("length")
    @classmethod
    def _length(cls, v: str) -> str:
        if parse_duration_ms(v) < 3_600_000:
            raise ValueError("a shift is at least 1h long")
        return v

    @field_validator("slots")
    @classmethod
    def _slots(cls, v: list[Slot]) -> list[Slot]:
        if not v:
            raise ValueError("give at least one slot {A: id, B: id, leader: id}")
        return v


class Shift(_Strict):
    start: datetime
    end: datetime
    A: str | None = None
    B: str | None = None
    leader: str | None = None

    @model_validator(mode="after")
    def _order(self) -> "Shift":
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Team(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str
    domain: str = Field(description=f"one of {', '.join(DOMAINS)}")
    regions: list[str] = Field(default_factory=lambda: ["*"], description="镇街 served; * = all")
    leader: str | None = Field(None, description="default duty leader when a slot names none")
    rotation: Rotation | None = None
    holiday_rotation: Rotation | None = None
    shifts: list[Shift] = Field(default_factory=list)

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        if v not in DOMAINS:
            raise ValueError(f"unknown domain {v!r}: use one of "
                             + ", ".join(f"{k} ({z})" for k, z in DOMAINS.items()))
        return v


class Holiday(_Strict):
    name: str
    start: date
    end: date = Field(description="last holiday date (inclusive)")


class Override(_Strict):
    team: str
    start: datetime
    end: datetime
    A: str | None = None
    B: str | None = None
    leader: str | None = None
    reason: str = ""


class Swap(_Strict):
    team: str
    person: str
    with_: str = Field(alias="with")
    start: datetime
    end: datetime
    reason: str = ""
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RosterFile(_Strict):
    timezone: str = "Asia/Shanghai"
    domains: dict[str, str] = Field(default_factory=dict, description="hazard: domain")
    people: list[Person] = Field(default_factory=list)
    teams: list[Team] = Field(default_factory=list)
    holidays: list[Holiday] = Field(default_factory=list)
    overrides: list[Override] = Field(default_factory=list)
    swaps: list[Swap] = Field(default_factory=list)
    shift_tables: list[str] = Field(default_factory=list,
                                    description="CSV files: team,start,end,A,B,leader")


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


def _parse_hhmm(v: str) -> time:
    try:
        h, m = v.split(":")
        return time(int(h), int(m))
    except ValueError:
        raise ValueError(f"bad time {v!r}: write HH:MM, e.g. 08:30") from None


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
        anchor = self._ms(datetime.combine(rot.start, _parse_hhmm(rot.handover)))
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
        for dom in (domain, "duty_room") if domain != "duty_room" else ("duty_room",):
            exact = [t for t in self.spec.teams if t.domain == dom and region in t.regions]
            if exact:
                return exact[0].id, f"{DOMAINS[dom]} team for {region}"
            wide = [t for t in self.spec.teams if t.domain == dom and "*" in t.regions]
            if wide:
                return wide[0].id, f"{DOMAINS[dom]} team for all regions"
        return None, f"no team for {hazard} ({domain}) in {region} and no duty room team"

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


def parse_shift_csv(text: str, file: str = "<csv>") -> dict[str, list[Shift]]:
    """Shift table CSV (columns team,start,end,A,B,leader; local times like 2025-06-01 08:30)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    need = ("team", "start", "end")
    header = reader.fieldnames or []
    problems = [Problem(file, 1, c, "required column is missing: add it") for c in need
                if c not in header]
    problems += [Problem(file, 1, c, "unknown column: use team,start,end,A,B,leader")
                 for c in header if c not in ("team", "start", "end", "A", "B", "leader")]
    if problems:
        raise SourceError(problems)
    out: dict[str, list[Shift]] = {}
    for row in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        try:
            shift = Shift(start=row["start"].strip(), end=row["end"].strip(),
                          A=(row.get("A") or "").strip() or None,
                          B=(row.get("B") or "").strip() or None,
                          leader=(row.get("leader") or "").strip() or None)
        except Exception as exc:  # noqa: BLE001 - pydantic's message, located
            msg = str(exc).splitlines()
            problems.append(Problem(file, line, "", "bad shift row: " + " ".join(msg[1:3]).strip()
                                    + " (times like 2025-06-01 08:30)"))
            continue
        out.setdefault(row["team"].strip(), []).append(shift)
    if problems:
        raise SourceError(problems)
    return out


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
    except Exception:  # noqa: BLE001
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
    for name in (src.data or {}).get("shift_tables", []) if isinstance(src.data, dict) else []:
        f = p.parent / str(name)
        if f.is_file():
            tables[str(name)] = f.read_text(encoding="utf-8")
    return parse_roster(p.read_text(encoding="utf-8"), str(p), tables)
