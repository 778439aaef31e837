"""The roster YAML's schema (pydantic, unknown keys rejected) and its CSV shift tables.

What an operator writes: people with their apprise contact URLs, teams by
domain and region, rotations, explicit shifts, holidays, overrides and swaps.
Who is on duty at an instant is worked out from these by
:class:`yujing.alerts.roster.Roster`.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from yujing.alerts.channels import channel_kind
from yujing.alerts.records import Contact
from yujing.durations import parse_duration_ms
from yujing.yamlsrc import Problem, SourceError

DOMAINS = {"flood": "三防", "forest": "森防", "chemical": "危化", "industrial": "工贸",
           "duty_room": "值班室", "enterprise": "企业值班", "town": "镇街监管"}
# The levels a warning at an enterprise's station climbs (yujing.alerts.orgs): a team of the
# enterprise or town domain serves one enterprise or one town and is never picked by hazard.
ORG_DOMAINS = ("enterprise", "town")
DEFAULT_DOMAINS = {"rainstorm": "flood", "flood": "flood", "wind": "flood", "typhoon": "flood",
                   "waterlogging": "flood", "reservoir": "flood", "river": "flood",
                   "forest_fire": "forest", "fire": "forest", "gas": "chemical",
                   "chemical": "chemical", "dust": "industrial", "industrial": "industrial",
                   "nodata": "duty_room"}
ROLES = ("A", "B", "leader")


def parse_hhmm(v: str) -> time:
    try:
        h, m = v.split(":")
        return time(int(h), int(m))
    except ValueError:
        raise ValueError(f"bad time {v!r}: write HH:MM, e.g. 08:30") from None



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
        parse_hhmm(v)
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
    def _order(self) -> Shift:
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
    enterprise: str | None = Field(None, description="domain enterprise: the enterprise id "
                                   "(stations.yaml enterprise:) whose own duty staff this is")
    town: str | None = Field(None, description="domain town: the 镇街/园区 whose regulators this "
                             "is; domain enterprise: the enterprise's town")

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        if v not in DOMAINS:
            raise ValueError(f"unknown domain {v!r}: use one of "
                             + ", ".join(f"{k} ({z})" for k, z in DOMAINS.items()))
        return v

    @model_validator(mode="after")
    def _org(self) -> Team:
        if self.domain == "enterprise" and not self.enterprise:
            raise ValueError("a team of domain enterprise names its enterprise: (the id "
                             "stations.yaml uses)")
        if self.domain == "town" and not self.town:
            raise ValueError("a team of domain town names its town: (the 镇街 stations.yaml uses)")
        if self.domain not in ORG_DOMAINS and (self.enterprise or self.town):
            raise ValueError("enterprise:/town: belong to teams of domain enterprise or town")
        return self


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
        except Exception as exc:
            msg = str(exc).splitlines()
            problems.append(Problem(file, line, "", "bad shift row: " + " ".join(msg[1:3]).strip()
                                    + " (times like 2025-06-01 08:30)"))
            continue
        out.setdefault(row["team"].strip(), []).append(shift)
    if problems:
        raise SourceError(problems)
    return out
