"""The worker's warning transitions, pure, with time passed in.

:class:`Lifecycle` runs inside the evaluator, right after the rules engine. It
turns findings into transition events (pending, raised, upgraded, downgraded,
cleared) per warning key (rule@station). A finding that changes nothing
returns no event, so re-delivered findings are harmless.

It does not name incidents. Each event carries its *episode*: the warning key
and the event time of the finding that opened it (``opened_ts``), restored
from the checkpoint with the rest, so a replay repeats it exactly. The warning
book, which alone names incidents, takes the pair as its idempotency key and
keeps the authoritative record of each incident (state, acknowledgement,
manual clear, timeline): :mod:`yujing.alerts.book` and :mod:`yujing.alerts.incidents`.

Known limit: a key whose newest reading is judged three times by late data
(raise, clear, raise, all at one event time) opens its second episode at the
same time as the first, and the book takes the second raise for a replay of the
first. Nothing short of remembering ended episodes prevents it, and it needs
two late readings flipping the outcome of one reading twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from yujing.clock import DEFAULT_ZONE
from yujing.domain import EventKind, Finding, Grade, WarningEvent, episode_ref, warning_key
from yujing.rules.wording import describe


@dataclass
class Active:
    grade: Grade
    since_ts: int       # event time of the finding that opened the episode: its identity
    pending: bool = False
    last_ts: int = 0    # newest finding applied: an older one is a replay, not a change


@dataclass(frozen=True)
class RuleMeta:
    name: str
    hazard: str


class Lifecycle:
    """Findings → transition events, per warning key (rule@station)."""

    def __init__(self, zone: str = DEFAULT_ZONE) -> None:
        self.active: dict[str, Active] = {}
        self.zone = zone  # the duty officers' zone: times named in reasons (a silent gauge's)
        # Set for a live lifecycle that starts empty although the book may hold warnings
        # raised before (a worker that found no checkpoint to restore): the first clear of
        # each key since start is passed on; the book ignores it when nothing is open.
        self.forward_first_clear = False
        self._looked_at: set[str] = set()

    def apply(self, f: Finding, meta: RuleMeta, now_ms: int) -> WarningEvent | None:
        """The event this finding makes of its key's warning, or None if it changes nothing."""
        key = warning_key(f.rule, f.station)
        cur = self.active.get(key)
        first_look = self.forward_first_clear and key not in self._looked_at
        if first_look:
            self._looked_at.add(key)
        if cur is not None:
            if f.ts < cur.last_ts:
                return None  # re-delivered: the engine only ever re-judges its newest time
            cur.last_ts = f.ts
        if f.grade > Grade.NONE and f.pending:
            return self._pending(key, cur, f, meta, now_ms)
        if f.grade > Grade.NONE:
            return self._graded(key, cur, f, meta, now_ms)
        if f.clear and cur is not None:
            del self.active[key]
            if cur.pending:
                reason = f"ended while pending (for: never met): {f.reason}"
            else:
                reason = f"cleared after {cur.grade.label}: {f.reason}"
            return self._event(EventKind.CLEARED, key, cur, f, meta, cur.grade, reason, now_ms,
                               cur.grade, ended=cur.pending)
        if f.clear and first_look:
            # An episode of its own: the book finds the open incident by the key.
            ghost = Active(Grade.NONE, f.ts)
            reason = f"clear condition holds at the first look since start: {f.reason}"
            return self._event(EventKind.CLEARED, key, ghost, f, meta, Grade.NONE, reason,
                               now_ms, Grade.NONE)
        return None

    def _pending(self, key: str, cur: Active | None, f: Finding, meta: RuleMeta,
                 now_ms: int) -> WarningEvent | None:
        """A grade holds but its ``for:`` has not: news only while nothing is active yet."""
        if cur is not None and not cur.pending:
            return None  # a higher grade waiting for its for: while active: not yet news
        if cur is not None and cur.grade == f.grade:
            return None
        if cur is None:
            cur = self.active[key] = Active(f.grade, f.ts, True, f.ts)
        else:
            cur.grade = f.grade
        reason = f"pending {f.grade.label} (for: not met yet): {f.reason}"
        return self._event(EventKind.PENDING, key, cur, f, meta, Grade.NONE, reason, now_ms,
                           f.grade)

    def _graded(self, key: str, cur: Active | None, f: Finding, meta: RuleMeta,
                now_ms: int) -> WarningEvent | None:
        """A grade holds with its ``for:`` met: a raise, an upgrade, a downgrade or nothing."""
        if cur is None or cur.pending:
            if cur is None:
                cur = Active(f.grade, f.ts, last_ts=f.ts)
                reason = f"raised {f.grade.label}: {f.reason}"
            else:
                reason = f"raised {f.grade.label} (for: met): {f.reason}"
            cur.pending, cur.grade = False, f.grade
            self.active[key] = cur
            return self._event(EventKind.RAISED, key, cur, f, meta, Grade.NONE, reason,
                               now_ms, f.grade)
        if f.grade == cur.grade:
            return None
        previous = cur.grade
        kind = EventKind.UPGRADED if f.grade > previous else EventKind.DOWNGRADED
        reason = f"{kind.value} {previous.label} -> {f.grade.label}: {f.reason}"
        cur.grade = f.grade
        return self._event(kind, key, cur, f, meta, previous, reason, now_ms, f.grade)

    def snapshot(self) -> dict:
        """The active warnings, as plain values.

        A row keeps the six columns of before incident identity moved to the book, the
        second now the episode (what this build sends as ``incident``), and ``issued``
        stays, empty: a build rolled back to before the move restores it and goes on
        sending the same episodes as proposed ids.
        """
        return {"active": [[k, episode_ref(k, a.since_ts), int(a.grade), a.since_ts,
                            a.pending, a.last_ts] for k, a in self.active.items()],
                "issued": [],
                "looked_at": sorted(self._looked_at)}

    def restore(self, snap: dict) -> None:
        """Resume from :meth:`snapshot`, or from one written before the move (its proposed
        ids and ``issued`` are ignored): open warnings keep their episodes."""
        self.active = {k: Active(Grade(g), since, bool(pending), last)
                       for k, _episode, g, since, pending, last in snap["active"]}
        self._looked_at = set(snap["looked_at"])

    def _event(self, kind: EventKind, key: str, cur: Active, f: Finding, meta: RuleMeta,
               previous: Grade, reason: str, now_ms: int, grade: Grade,
               ended: bool = False) -> WarningEvent:
        """``reason`` is the expression (the analysts' detail); the reason in words is
        made here from the finding's terms (a pending grade reads at its own grade)."""
        value = None if math.isnan(f.value) else f.value
        words = describe("ended" if ended else kind.value, f.grade or grade, f.terms, f.hold_ms,
                         self.zone)
        return WarningEvent(kind=kind, key=key, episode=episode_ref(key, cur.since_ts),
                            opened_ts=cur.since_ts, rule=f.rule, rule_name=meta.name,
                            hazard=meta.hazard, station=f.station, grade=grade,
                            previous=previous, ts=f.ts, value=value, window=f.window,
                            reason=reason, emitted_ms=now_ms, reason_zh=words.zh,
                            reason_en=words.en, measure_zh=words.measure_zh,
                            measure_en=words.measure_en, terms=f.terms)
