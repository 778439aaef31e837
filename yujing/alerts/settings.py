"""The ``alerts:`` and ``console:`` sections of config.yaml (pydantic, unknown keys rejected).

Kept beside the code that uses them so config.py only names the sections.
Defaults follow the issue: red pages A, B and the duty leader at once with a
5-minute acknowledgement timeout; orange, yellow and blue page A first, then
B, then the leader, after 10, 15 and 30 minutes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from yujing.alerts.notice_settings import NoticeSettings
from yujing.alerts.records import Matcher
from yujing.alerts.report_settings import ReportSettings
from yujing.alerts.silences import parse_matcher
from yujing.domain import GRADE_NAMES, Grade
from yujing.durations import Duration

ROLES = ("A", "B", "leader")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


LEVELS = ("enterprise", "town", "bureau")
# A role is A, B or leader of the team the roster routes the hazard to (today's chain), or a
# level's: "enterprise" (its on-duty safety officer, A), "town.B", "bureau.leader", ...
ALL_ROLES = list(ROLES) + [f"{lv}{sub}" for lv in LEVELS for sub in ("", ".B", ".leader")]


def _role(v: str) -> str:
    v = v[:-2] if v.endswith(".A") else v
    if v not in ALL_ROLES:
        raise ValueError(f"unknown role {v!r}: use A, B, leader, or a level enterprise, town, "
                         "bureau (its A), optionally .B or .leader, e.g. town.B")
    return v


class GradePolicy(_Strict):
    """Who is paged first, how long to wait for an acknowledgement, who next."""

    first: list[str] = Field(description="roles paged at the raise, e.g. [A] or [enterprise]")
    ack_timeout: Duration = Field(description="wait this long for an acknowledgement before each "
                                         "next step, e.g. 10m")
    then: list[list[str]] = Field(
        default_factory=list, description="roles paged at each later step, e.g. [[B], [leader]]")
    waits: list[Duration] = Field(default_factory=list, description="the wait before each step "
                                  "of then: in turn (missing ones: ack_timeout)")
    repeat: Duration | None = Field(None, description="after the last step, remind everyone paged "
                                                 "at this interval; null = ack_timeout; 0s = never")

    @field_validator("first")
    @classmethod
    def _first(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("page at least one role first, e.g. [A]")
        return [_role(r) for r in v]

    @field_validator("then")
    @classmethod
    def _then(cls, v: list[list[str]]) -> list[list[str]]:
        return [[_role(r) for r in step] for step in v]

    @model_validator(mode="after")
    def _waits(self) -> GradePolicy:
        if len(self.waits) > len(self.then):
            raise ValueError(f"waits: {len(self.waits)} waits for {len(self.then)} later steps "
                             "(then:): give one wait per step")
        return self

    @property
    def steps(self) -> list[list[str]]:
        return [list(self.first)] + [list(s) for s in self.then]

    @property
    def timeout_ms(self) -> int:
        return self.ack_timeout.ms

    def wait_ms(self, step: int) -> int:
        """The wait before step ``step`` (1 = the first of ``then``)."""
        return self.waits[step - 1].ms if 0 < step <= len(self.waits) else self.timeout_ms

    @property
    def repeat_ms(self) -> int:
        return self.timeout_ms if self.repeat is None else self.repeat.ms


def _default_policies() -> dict[str, GradePolicy]:
    return {
        "red": GradePolicy(first=["A", "B", "leader"], ack_timeout="5m"),
        "orange": GradePolicy(first=["A"], ack_timeout="10m", then=[["B"], ["leader"]]),
        "yellow": GradePolicy(first=["A"], ack_timeout="15m", then=[["B"], ["leader"]]),
        "blue": GradePolicy(first=["A"], ack_timeout="30m", then=[["B"], ["leader"]]),
    }


def _default_levels() -> dict[str, GradePolicy]:
    """A warning at an enterprise's station: the enterprise, then the town, then the bureau;
    red pages all three at once."""
    def up(wait: str) -> GradePolicy:
        return GradePolicy(first=["enterprise"], ack_timeout=wait,
                           then=[["town"], ["bureau"], ["bureau.leader"]])
    return {"red": GradePolicy(first=["enterprise", "town", "bureau"], ack_timeout="5m",
                               then=[["bureau.leader"]]),
            "orange": up("10m"), "yellow": up("15m"), "blue": up("30m")}


def _check_grades(v: dict[str, GradePolicy], defaults: dict[str, GradePolicy]
                  ) -> dict[str, GradePolicy]:
    for name in v:
        if name not in GRADE_NAMES:
            raise ValueError(f"unknown grade {name!r}: use {', '.join(GRADE_NAMES)}")
    return {**defaults, **v}


class Grouping(_Strict):
    enabled: bool = Field(True, description="false: one message per warning per person")
    wait: Duration = Field(Duration("5s"), description="hold a new group's first message this long to "
                                        "collect the rest of a storm")
    interval: Duration = Field(Duration("30s"), description="at most one message per group and person per "
                                             "interval; later notices wait and go together")
    max_per_message: int = Field(30, ge=1, le=500, description="split bigger groups")

    @property
    def wait_ms(self) -> int:
        return self.wait.ms if self.enabled else 0

    @property
    def interval_ms(self) -> int:
        return self.interval.ms if self.enabled else 0


class InhibitRule(_Strict):
    """While a warning matching ``source`` is open, warnings matching ``target`` with the
    same values of the ``equal`` labels are not notified (Alertmanager's inhibit_rules)."""

    source: list[str]
    target: list[str]
    equal: list[str] = Field(default_factory=lambda: ["station", "hazard"])

    @field_validator("source", "target")
    @classmethod
    def _matchers(cls, v: list[str]) -> list[str]:
        for text in v:
            parse_matcher(text)
        return v

    @property
    def source_matchers(self) -> list[Matcher]:
        return [parse_matcher(t) for t in self.source]

    @property
    def target_matchers(self) -> list[Matcher]:
        return [parse_matcher(t) for t in self.target]


class DeliverySettings(_Strict):
    retries: int = Field(2, ge=1, le=10, description="attempts per channel before the next one")
    backoff: Duration = Field(Duration("1s"), description="first pause between attempts; doubles each time")
    backoff_max: Duration = Duration("30s")
    timeout: Duration = Field(Duration("15s"), description="longest one apprise call may take")
    concurrency: int = Field(32, ge=1, le=1000, description="deliveries in flight per worker")


class CommandLimits(_Strict):
    """Bounds on what a person may send as a duty command (/v1 API, CLI, console).

    A body is read whole before it is decoded, so it is capped in bytes; the texts end
    up on timelines, in messages and in the audit trail, so they are capped in characters.
    """

    body_max: int = Field(65_536, ge=1_024, le=4_194_304, description="bytes of one command's "
                          "JSON body; more is refused with 413")
    note_max: int = Field(2_000, ge=1, le=100_000, description="characters of a note (ack or note)")
    reason_max: int = Field(500, ge=1, le=100_000, description="characters of a clear's, a "
                            "silence's or an expiry's reason")
    matchers_max: int = Field(20, ge=1, le=1_000, description="matchers of one silence")
    silence_max: Duration = Field(Duration("7d"), description="the longest a silence may last; "
                                  "a longer maintenance is a new silence, seen again by its author")
    silence_ahead: Duration = Field(Duration("30d"), description="how far ahead a silence may "
                                    "be scheduled to start")

    @field_validator("silence_max", "silence_ahead")
    @classmethod
    def _positive(cls, v: Duration) -> Duration:
        if v.ms <= 0:
            raise ValueError(f"{v} is no time at all: give a positive duration, e.g. 7d")
        return v


class AlertsSettings(_Strict):
    roster: Path | None = Field(None, description="duty roster YAML; null sends every message "
                                                  "to the notify: URLs")
    region_code: str = Field("441900", pattern=r"^\d{6}$",
                             description="administrative division code in incident ids")
    sender: str = Field("yujing@dg.gov.cn.example", description="CAP <sender>")
    sender_name: str = "东莞市应急管理局 (Yujing)"
    min_grade: Literal["blue", "yellow", "orange", "red"] = Field(
        "blue", description="warnings below this grade are kept on the books, not notified")
    notify_downgrades: bool = True
    tick: Duration = Field(Duration("2s"),
                           description="how often escalation deadlines and groups are checked")
    grouping: Grouping = Grouping()
    inhibit: list[InhibitRule] = Field(default_factory=lambda: [
        InhibitRule(source=["grade=red"], target=["grade!=red"])])
    escalation: dict[str, GradePolicy] = Field(default_factory=_default_policies)
    enterprises: Path | None = Field(None, description="enterprises.yaml: enterprises and towns "
                                     "with their duty staff (needs roster:)")
    levels: dict[str, GradePolicy] = Field(default_factory=_default_levels, description="per "
                                           "grade: the levels a warning at an enterprise's "
                                           "station climbs (enterprise, town, bureau)")
    levels_by_hazard: dict[str, dict[str, GradePolicy]] = Field(
        default_factory=dict, description="hazard: {grade: policy} replacing levels: for it")
    delivery: DeliverySettings = DeliverySettings()
    silence_reminder: Duration = Field(Duration("30m"), description="remind a silence's creator this long "
                                                     "before it ends")
    retention: Duration = Field(Duration("7d"), description="cleared incidents are kept this long")
    commands: CommandLimits = CommandLimits()
    reports: ReportSettings = ReportSettings()
    notices: NoticeSettings = NoticeSettings()

    @field_validator("escalation")
    @classmethod
    def _grades(cls, v: dict[str, GradePolicy]) -> dict[str, GradePolicy]:
        return _check_grades(v, _default_policies())

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: dict[str, GradePolicy]) -> dict[str, GradePolicy]:
        return _check_grades(v, _default_levels())

    @field_validator("levels_by_hazard")
    @classmethod
    def _by_hazard(cls, v: dict[str, dict[str, GradePolicy]]) -> dict[str, dict[str, GradePolicy]]:
        for per in v.values():
            _check_grades(per, {})
        return v

    @model_validator(mode="after")
    def _orgs_need_roster(self) -> AlertsSettings:
        if self.enterprises is not None and self.roster is None:
            raise ValueError("enterprises: needs roster: too (the bureau's duty room is the last "
                             "level a warning climbs): set alerts.roster, e.g. roster.yaml")
        return self

    def policy(self, grade: int, hazard: str = "", enterprise: bool = False) -> GradePolicy:
        """The grade's policy; for a warning at a registered enterprise's station, the levels'
        (the hazard's own if ``levels_by_hazard`` names it)."""
        label = Grade(max(1, grade)).label
        if enterprise:
            return self.levels_by_hazard.get(hazard, {}).get(label) or self.levels[label]
        return self.escalation[label]

    @property
    def tick_s(self) -> float:
        return self.tick.s


PERSON_HASH = re.compile(r"sha256:[0-9a-f]{64}")


def person_hash(token: str) -> str:
    """How ``console.tokens`` stores a person's token: ``sha256:<hex>``, never the token."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


class ConsoleSettings(_Strict):
    public_url: str | None = Field(None, description="base of links in messages; null = "
                                                     "http://<http.host>:<http.port>")
    link_secret: str | None = Field(None, description="HMAC key of acknowledge links; null = "
                                                      "$YUJING_LINK_SECRET (yujing run sets one)")
    link_ttl: Duration = Field(Duration("24h"), description="an acknowledge link works this long")
    tokens: dict[str, str] = Field(default_factory=dict, description="person id: "
                                          "sha256:<hex> of their token (yujing token new --person)")
    admins: list[str] = Field(default_factory=list, description="person ids who may act on "
                              "every warning; others act on their roster teams' warnings "
                              "(duty room teams on all)")
    readings_window: Duration = Field(Duration("24h"), description="the web console keeps readings this "
                                 "long (receive time) for its charts")
    readings_max: int = Field(1_000_000, ge=0, description="... and at most this many "
                              "(about 24 bytes each); 0 = no charts")
    scrape: list[str] = Field(default_factory=list, description="more /metrics URLs for the "
                              "health page (other workers, sinks); the local worker's and "
                              "sink's metrics ports are read when set")
    session_ttl: Duration = Field(Duration("24h"), description="a console login lasts at most "
                                  "this long (the session lives in the gateway's memory)")
    session_idle: Duration = Field(Duration("2h"), description="... and ends sooner when no page "
                                   "of it asked anything for this long (an open page keeps it)")
    secure_cookies: bool = Field(False, description="mark the session cookie Secure always (the "
                                 "console is reached over HTTPS, e.g. through a TLS proxy)")
    trusted_proxies: list[str] = Field(default_factory=list, description="addresses or networks "
                                       "of reverse proxies whose X-Forwarded-For and "
                                       "X-Forwarded-Proto are believed")
    login_failures: int = Field(5, ge=1, le=1000, description="wrong tokens a client may send "
                                "per login_window; more get 429 with Retry-After")
    login_window: Duration = Duration("1m")

    @field_validator("tokens")
    @classmethod
    def _hashes_only(cls, v: dict[str, str]) -> dict[str, str]:
        """Hashes as ``yujing token new --person`` prints them; plain tokens are refused with
        the fix. Checked over the whole mapping so the message never repeats a value (it may
        be a real token) but names every person concerned."""
        plain = [who for who, text in v.items() if not PERSON_HASH.fullmatch(text)]
        if plain:
            who = plain[0]
            raise ValueError(
                f"the token of {', '.join(plain)} is not a hash: the config keeps only "
                f"sha256:<64 hex digits> of each token. Make a new token with `yujing token new "
                f"--person {who}` (it prints the token once and the line to put here), or hash "
                f"the one {who} has with `yujing token hash --person {who}`")
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for text in v:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {text!r} is not an address or network: write "
                                 "e.g. 10.0.0.5 or 10.0.0.0/24 (names are not resolved)") from None
        return v

    @model_validator(mode="after")
    def _one_token_one_person(self) -> ConsoleSettings:
        seen: dict[str, str] = {}
        for who, digest in self.tokens.items():
            if digest in seen:
                raise ValueError(f"tokens: {seen[digest]} and {who} have the same token: give "
                                 "every person their own (yujing token new --person)")
            seen[digest] = who
        return self
