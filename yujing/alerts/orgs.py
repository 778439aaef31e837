"""Enterprises and towns (企业、镇街/园区): the registry, their duty staff, and who belongs where. Pure.

The work plan asks for duty from the city through the towns (镇街/园区) down to the
enterprises: a warning at an enterprise's station reaches that enterprise's own
safety staff first, then the town's regulators, then the bureau. Rather than a
second rota engine, every enterprise and every town becomes a team of the duty
roster (:mod:`yujing.alerts.roster`): an enterprise's duty staff a team of domain
``enterprise`` (with ``enterprise:`` its id), a town's regulators one of domain
``town`` (with ``town:``). Their people join the roster's people, so A/B rotations,
shifts, overrides, contacts and ``yujing roster check`` work for them unchanged.

``enterprises.yaml`` (``alerts.enterprises`` in config.yaml) names the enterprises
(town or park, industry tags, principal, safety manager, duty) and the towns with
their regulators. A duty is either a simple on-call list (the first is A, the second
B) or a rotation in the roster's own form.

Scopes: a person named in an enterprise (principal, safety manager, duty) belongs to
that enterprise, a town's regulator to that town, everyone else to the bureau. An
enterprise's people see and act only on its stations' warnings, a town's on the
town's; the bureau on all (:class:`Scope`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from yujing.alerts.roster import Roster, Scope, load_roster
from yujing.alerts.roster_file import Person, RosterFile, Rotation, Shift, Slot, Team
from yujing.stations import Registry
from yujing.yamlsrc import Problem, SourceError, load_yaml, parse_yaml, validate

# the day an on-call list's one-slot rotation starts: any day before every warning will do
_ALWAYS = date(2000, 1, 3)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DutySpec(_Strict):
    """Who is on duty: an on-call list, or the roster's rotation and shifts."""

    on_call: list[str] = Field(default_factory=list, description="person ids: the first is A "
                               "(paged first), the second B, always")
    rotation: Rotation | None = None
    shifts: list[Shift] = Field(default_factory=list)
    leader: str | None = Field(None, description="their leader; default the safety manager")

    @model_validator(mode="after")
    def _some(self) -> DutySpec:
        if not (self.on_call or self.rotation or self.shifts):
            raise ValueError("name who is on duty: on_call: [person, ...] or rotation: {...}")
        if self.on_call and self.rotation:
            raise ValueError("give on_call: or rotation:, not both")
        if len(self.on_call) > 2:
            raise ValueError("on_call: lists A and B (two people at most); more people take "
                             "turns: write a rotation: with slots")
        return self


class Town(_Strict):
    name: str = Field(description="the 镇街 or 园区 as stations.yaml writes it in town:")
    id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                           description="its duty team's id in messages and `yujing roster "
                           "show` (default town-1, town-2, ... in file order)")
    kind: str = Field("town", pattern=r"^(town|park)$", description="town (镇街) or park (园区)")
    regulators: DutySpec


class Enterprise(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$",
                    description="as stations.yaml writes it in enterprise:")
    name: str
    town: str = Field(description="the town or park (towns:) whose regulators oversee it")
    industry: list[str] = Field(default_factory=list, description="e.g. 粉尘涉爆, 危化, 工贸")
    principal: str | None = Field(None, description="person id of the principal (主要负责人)")
    safety_manager: str | None = Field(None, description="person id of the safety manager")
    duty: DutySpec


class OrgsFile(_Strict):
    people: list[Person] = Field(default_factory=list)
    towns: list[Town] = Field(default_factory=list)
    enterprises: list[Enterprise] = Field(default_factory=list)


class Orgs:
    """The loaded registry: enterprises and towns by key, and every person's scope."""

    def __init__(self, spec: OrgsFile, source: str = "<enterprises>") -> None:
        self.spec = spec
        self.source = source
        self.enterprises = {e.id: e for e in spec.enterprises}
        self.towns = {t.name: t for t in spec.towns}
        self.scopes: dict[str, Scope] = {}
        for t in spec.towns:
            ents = frozenset(e.id for e in spec.enterprises if e.town == t.name)
            for pid in _duty_people(t.regulators):
                self.scopes[pid] = Scope("town", t.name, t.name, ents)
        for e in spec.enterprises:
            for pid in _duty_people(e.duty) | {e.principal, e.safety_manager} - {None}:
                self.scopes[pid] = Scope("enterprise", e.id, e.town)

    def scope_of(self, person: str) -> Scope:
        return self.scopes.get(person, Scope())

    def teams(self) -> list[Team]:
        """Every enterprise's and town's duty as roster teams."""
        out = [_team(t.id or f"town-{i + 1}", f"{t.name}监管", "town", t.regulators, None,
                     town=t.name) for i, t in enumerate(self.spec.towns)]
        out += [_team(f"ent-{e.id}", e.name, "enterprise", e.duty, e.safety_manager,
                      enterprise=e.id, town=e.town) for e in self.spec.enterprises]
        return out

    def unknown_enterprises(self, stations: dict[str, str]) -> list[str]:
        """Stations (id → enterprise id) that name an enterprise this registry lacks."""
        return [f"station {sid}: enterprise {ent!r} is not in {self.source}: add it under "
                "enterprises: (with its duty) or fix the station's enterprise:"
                for sid, ent in sorted(stations.items()) if ent and ent not in self.enterprises]


def _duty_people(d: DutySpec) -> set[str]:
    out = set(d.on_call) | ({d.leader} if d.leader else set())
    for s in (d.rotation.slots if d.rotation else []):
        out |= {p for p in (s.A, s.B, s.leader) if p}
    for s in d.shifts:
        out |= {p for p in (s.A, s.B, s.leader) if p}
    return out


def _team(tid: str, name: str, domain: str, d: DutySpec, leader: str | None, **keys: str | None
          ) -> Team:
    rotation = d.rotation
    if rotation is None and d.on_call:
        a, b = (d.on_call + [None])[:2]
        rotation = Rotation(start=_ALWAYS, handover="00:00", length="1d", slots=[Slot(A=a, B=b)])
    return Team(id=tid, name=name, domain=domain, regions=["*"], leader=d.leader or leader,
                rotation=rotation, shifts=list(d.shifts), **keys)


def parse_orgs(text: str, file: str = "<enterprises>") -> Orgs:
    """enterprises.yaml text → Orgs; duplicate ids, unknown towns and people in two places
    are refused with the line."""
    src = parse_yaml(text, file)
    spec: OrgsFile = validate(OrgsFile, src)
    problems: list[Problem] = []

    def dup(kind: str, keys: list[str], field: str) -> None:
        for i, k in enumerate(keys):
            if k in keys[:i]:
                problems.append(Problem(file, src.line_of((kind, i, field)), f"{kind}[{i}].{field}",
                                        f"{k!r} is listed twice: keep one of them"))

    dup("people", [p.id for p in spec.people], "id")
    dup("towns", [t.name for t in spec.towns], "name")
    dup("enterprises", [e.id for e in spec.enterprises], "id")
    towns = {t.name for t in spec.towns}
    known = {p.id for p in spec.people}
    where: dict[str, str] = {}
    for i, t in enumerate(spec.towns):
        for pid in sorted(_duty_people(t.regulators)):
            _person(problems, file, src.line_of(("towns", i)), f"towns[{i}]", pid, known, where,
                    f"town {t.name}")
    for i, e in enumerate(spec.enterprises):
        if e.town not in towns:
            problems.append(Problem(file, src.line_of(("enterprises", i, "town")),
                                    f"enterprises[{i}].town", f"unknown town {e.town!r}: add it "
                                    "under towns: with its regulators, or write one of "
                                    + (", ".join(sorted(towns)) or "(no towns yet)")))
        ppl = _duty_people(e.duty) | {e.principal, e.safety_manager} - {None}
        for pid in sorted(ppl):
            _person(problems, file, src.line_of(("enterprises", i)), f"enterprises[{i}]", pid,
                    known, where, f"enterprise {e.id}")
    if problems:
        raise SourceError(problems)
    return Orgs(spec, file)


def _person(problems: list[Problem], file: str, line: int, key: str, pid: str, known: set[str],
            where: dict[str, str], owner: str) -> None:
    if pid not in known:
        problems.append(Problem(file, line, key, f"unknown person {pid!r}: add them under "
                                "people: with their contacts, or fix the id"))
    elif where.setdefault(pid, owner) != owner:
        problems.append(Problem(file, line, key, f"person {pid!r} is already with {where[pid]}: "
                                "a person belongs to one enterprise or town (their scope)"))


def load_orgs(path: str | Path) -> Orgs:
    load_yaml(path)  # located errors for a missing file or bad YAML
    return parse_orgs(Path(path).read_text(encoding="utf-8"), str(path))


def merge(roster: Roster, orgs: Orgs) -> Roster:
    """The roster with the enterprises' and towns' people and duty teams added."""
    spec = roster.spec
    ids = {p.id for p in spec.people}
    clash = [p.id for p in orgs.spec.people if p.id in ids]
    if clash:
        raise SourceError([Problem(orgs.source, 0, "people", f"{', '.join(clash)} also in the "
                                   f"roster {roster.source}: a person is in one file (the bureau's "
                                   "roster or an enterprise's/town's duty), rename one")])
    merged = RosterFile.model_validate({**spec.model_dump(by_alias=True),
                                        "people": spec.people + orgs.spec.people,
                                        "teams": spec.teams + orgs.teams()})
    extra = {t: rows for t, rows in roster.shifts.items() if t in roster.teams}
    extra = {t: rows[len(roster.teams[t].shifts):] for t, rows in extra.items()}
    out = Roster(merged, extra, roster.source)
    out.scopes = dict(orgs.scopes)
    return out


def unregistered(roster: Roster | None, registry: Registry | None) -> list[str]:
    """Stations of ``registry`` whose enterprise has no duty team in ``roster``.

    Warned, not refused: stations.yaml reloads while running and may name an enterprise
    before its duty is registered; such a station's warnings take the bureau's chain, so
    nobody goes untold, while refusing the registry would stop a safety sensor's readings.
    ``yujing config check`` refuses them.
    """
    if roster is None or registry is None \
            or not any(t.domain == "enterprise" for t in roster.spec.teams):
        return []
    return [f"station {sid}: enterprise {st.enterprise!r} is not in the enterprises file"
            for sid, st in sorted(registry.stations.items())
            if st.enterprise and roster.org_team("enterprise", st.enterprise) is None]


def load_duty(roster_path: Path | None, orgs_path: Path | None) -> Roster | None:
    """The duty roster of config.yaml's ``alerts.roster``, with ``alerts.enterprises`` merged."""
    if roster_path is None:
        return None
    roster = load_roster(roster_path)
    return merge(roster, load_orgs(orgs_path)) if orgs_path else roster
