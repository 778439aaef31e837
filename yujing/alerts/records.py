"""Records of the warning book: incidents, timelines, notices, deliveries, commands.

``msgspec.Struct`` so the Faust tables, the ``yujing.commands`` and
``yujing.incidents`` topics and the console encode them with one schema. These
are plain data: the decisions live in incidents, escalation, stages, outbox and book.
"""

from __future__ import annotations

import enum

import msgspec

from yujing.domain import Grade


class State(str, enum.Enum):
    PENDING = "pending"            # condition holds, ``for:`` not met: nobody is told
    ACTIVE = "active"              # at a grade, not acknowledged: escalation runs
    ACKNOWLEDGED = "acknowledged"  # a person took it: escalation stops
    CLEARED = "cleared"            # by the rule's clear condition or an officer's 销警


class Entry(msgspec.Struct, omit_defaults=True):
    """One line of a warning's timeline: what happened, when, by whom, and why."""

    at: int                 # wall-clock ms of the decision
    kind: str               # pending, raised, upgraded, downgraded, acknowledged, note, cleared,
                            # escalated, reminder, notified, failed, inhibited, silenced, unmuted,
                            # report (a report-back), refused (a clear refused for want of one)
    reason: str
    grade: int = 0
    actor: str = ""         # person id, "rule" or "system"
    reason_zh: str = ""     # a rule's reason in words (``reason`` keeps the expression)
    reason_en: str = ""
    channel: str = ""       # redacted channel (scheme://host) of a delivery
    ok: bool | None = None  # delivery result


class Report(msgspec.Struct, omit_defaults=True):
    """A report-back (回报) on a warning: what the people on the spot did. Checked by
    :mod:`yujing.alerts.reportback` before it is sent; kept on the warning for good."""

    id: str                 # the command id: applying it twice changes nothing
    at: int                 # wall-clock ms the book recorded it
    by: str                 # person id
    status: str             # handling (处置中), done (已处置), support (需支援)
    measures: str = ""      # 措施
    evacuated: int = 0      # 转移人数
    withdrawn: int = 0      # 撤离人数
    stopped: bool | None = None   # 停产: None = not said
    photos: list[str] = msgspec.field(default_factory=list)   # http(s) URLs
    text: str = ""          # free text


class Escalation(msgspec.Struct, omit_defaults=True):
    """Where an unacknowledged warning is in its grade's escalation policy."""

    grade: int
    step: int               # index of the next step; len(steps) means reminders
    next_ms: int            # when the next step or reminder is due; 0 = nothing left
    started_ms: int
    last_ms: int            # when the previous step ran (timeouts count from here)
    reminders: int = 0


class CapRef(msgspec.Struct):
    """One CAP message issued for the incident (Alert, Update or Cancel)."""

    n: int
    msg_type: str
    sent_ms: int
    grade: int


class Warning(msgspec.Struct, omit_defaults=True):
    """One incident: a rule at a station from raise (or pending) to clear."""

    incident: str
    key: str
    rule: str
    rule_name: str
    hazard: str
    station: str
    station_name: str = ""
    town: str = ""
    enterprise: str = ""         # the station's enterprise (stations.yaml): its levels apply
    group: str = ""
    partition: int = 0
    state: State = State.PENDING
    grade: int = 0
    peak: int = 0
    value: float = 0.0
    window: str = ""
    reason: str = ""             # the rule expression: the analysts' detail line
    reason_zh: str = ""          # the reason in words (「过去3小时累计雨量52.5毫米，达到橙色标准…」)
    reason_en: str = ""
    measure_zh: str = ""         # the measured value alone (「3小时雨量52.5毫米」), for SMS
    measure_en: str = ""
    source_id: str = ""          # the episode that opened it (a proposed id, from old workers)
    sources: list[str] = msgspec.field(default_factory=list)  # every episode aliased to it
    first_ts: int = 0            # event time the condition first held
    last_ts: int = 0             # event time of the newest applied event
    seen_at_last: list[str] = msgspec.field(default_factory=list)
    raised_ms: int = 0
    updated_ms: int = 0
    acked_by: str = ""
    acked_ms: int = 0
    ack_note: str = ""
    cleared_ms: int = 0
    cleared_by: str = ""         # "rule" or the officer's id
    manual_grade: int = 0        # grade at a manual clear: only a higher one reopens
    reopened_as: str = ""        # the incident a grade rise after the manual clear opened
    muted: str = ""              # why notifications are held (inhibited / silenced)
    esc: Escalation | None = None
    notified: list[str] = msgspec.field(default_factory=list)
    commands: list[str] = msgspec.field(default_factory=list)
    cap: list[CapRef] = msgspec.field(default_factory=list)
    reports: list[Report] = msgspec.field(default_factory=list)   # 回报, oldest first
    timeline: list[Entry] = msgspec.field(default_factory=list)

    def labels(self) -> dict[str, str]:
        """What silences and inhibition rules match on."""
        return {"rule": self.rule, "hazard": self.hazard, "station": self.station,
                "town": self.town, "grade": Grade(self.grade).label if self.grade else "none",
                "incident": self.incident, "group": self.group, "state": self.state.value}

    def log(self, at: int, kind: str, reason: str, **kw) -> None:
        self.timeline.append(Entry(at, kind, reason, **kw))

    @property
    def open(self) -> bool:
        return self.state in (State.ACTIVE, State.ACKNOWLEDGED)


class Notice(msgspec.Struct, omit_defaults=True):
    """Something a person must be told about one incident, waiting in its group."""

    incident: str
    kind: str               # raised, upgraded, downgraded, cleared, escalated, reminder, unmuted
    grade: int
    reason: str
    at: int
    roles: list[str] = msgspec.field(default_factory=list)   # A, B, leader
    people: list[str] = msgspec.field(default_factory=list)  # explicit person ids
    reason_zh: str = ""     # why now, in words (「A岗15分钟未确认…，已升级通知B岗」); ``reason``
    reason_en: str = ""     # keeps the old English sentence (and is all an old record has)


class Group(msgspec.Struct, omit_defaults=True):
    """Warnings of one region and hazard: notified together, a storm is one message."""

    key: str
    town: str
    hazard: str
    partition: int = 0
    members: list[str] = msgspec.field(default_factory=list)   # open incident ids
    outbox: list[Notice] = msgspec.field(default_factory=list)
    first_ms: int = 0        # arrival of the oldest unsent notice
    last_flush_ms: int = 0
    seq: int = 0


class Contact(msgspec.Struct, frozen=True):
    """One address a delivery is sent to: an apprise URL and the message variant it takes.

    Resolved from the duty roster (``Person.channels()``) or the notify: URLs.
    Not :class:`yujing.stations.StationContact`, a person named in a station's
    response plan, whom the alerting never messages.
    """

    url: str
    kind: str               # sms, markdown, email, text


class Rendered(msgspec.Struct):
    title: str
    sms: str
    markdown: str
    text: str


class Delivery(msgspec.Struct, omit_defaults=True):
    """One message to one person, kept while in flight so a restart can finish it."""

    id: str
    group: str
    partition: int
    person: str
    person_name: str
    roles: list[str]
    contacts: list[Contact]
    incidents: list[str]
    kinds: list[str]
    message: Rendered
    run: str                # the worker run that handed it to apprise
    created_ms: int
    redispatched: int = 0
    notice_at: list[int] = msgspec.field(default_factory=list)  # when each item was decided


class Attempt(msgspec.Struct):
    channel: str
    ok: bool
    error: str
    at: int


class DeliveryResult(msgspec.Struct):
    delivery: str
    ok: bool
    channel: str
    attempts: list[Attempt]
    at: int


class Matcher(msgspec.Struct, frozen=True):
    label: str
    op: str                 # =, !=, =~, !~
    value: str

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.value}"


class Weekly(msgspec.Struct, frozen=True):
    """A weekly window in Asia/Shanghai time, e.g. Saturdays 02:00-04:00."""

    days: list[int]         # 0 = Monday
    start: str              # HH:MM
    end: str                # HH:MM; before start means it runs past midnight


class Audit(msgspec.Struct):
    at: int
    actor: str
    action: str             # created, updated, expired, reminded
    reason: str


class Silence(msgspec.Struct, omit_defaults=True):
    id: str
    matchers: list[Matcher]
    starts_ms: int
    ends_ms: int
    created_by: str
    reason: str
    weekly: list[Weekly] = msgspec.field(default_factory=list)
    audit: list[Audit] = msgspec.field(default_factory=list)
    reminded_ms: int = 0


class Command(msgspec.Struct, omit_defaults=True):
    """What travels on ``yujing.commands``: officers' commands, ticks, delivery results."""

    cmd: str                # ack, note, clear, report, silence_add, silence_expire, tick, result
    id: str = ""            # unique per command: applying it twice changes nothing
    actor: str = ""
    incident: str = ""
    text: str = ""
    at: int = 0
    silence: Silence | None = None
    silence_id: str = ""
    result: DeliveryResult | None = None
    delivery: str = ""
    report: Report | None = None


COMMANDS = ("ack", "note", "clear", "report", "silence_add", "silence_expire")


def tick_time(sent_ms: int, now_ms: int) -> int:
    """The moment a tick acts as of: when it was sent, never later than now.

    Ticks share ``yujing.commands`` with officers' commands, and a partition is applied in
    offset order. A worker that dies before committing leaves its last ticks to the next
    one, which may take them long after: acting on them "now" would escalate a warning
    whose acknowledgement is the very next record (accepted while no worker ran). Taken as
    of the moment they were sent, they act on what was due then; the new worker's own
    ticks, after the acknowledgement, act on the present. Ticks without a time (older
    workers) act on the present."""
    return min(sent_ms, now_ms) if sent_ms > 0 else now_ms
