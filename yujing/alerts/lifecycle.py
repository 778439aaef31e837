"""The worker's warning transitions, pure, with time passed in.

:class:`Lifecycle` runs inside the evaluator, right after the rules engine. It
turns findings into transition events (pending, raised, upgraded, downgraded,
cleared) per warning key (rule@station) and proposes an incident id. A finding
that changes nothing returns no event, so re-delivered findings are harmless.

The warning book keeps the authoritative record of each incident (state,
acknowledgement, manual clear, timeline): that is :mod:`yujing.alerts.incidents`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from yujing.alerts.incident_ids import DONGGUAN, incident_id
from yujing.domain import EventKind, Finding, Grade, WarningEvent, warning_key


@dataclass
class Active:
    incident: str
    grade: Grade
    since_ts: int
    pending: bool = False
    last_ts: int = 0    # newest finding applied: an older one is a replay, not a change


@dataclass(frozen=True)
class RuleMeta:
    name: str
    hazard: str


class Lifecycle:
    """Findings → transition events, per warning key (rule@station).

    ``shard_of`` maps a warning key to the partition of the warning book that
    will own it, so the proposed incident id already obeys that partition's
    residue class. The book mints the id the incident keeps (the same one
    unless it collides, a manual clear reopens the incident, or this lifecycle
    started without a checkpoint) and maps the proposed id to it.
    """

    def __init__(self, region_code: str = DONGGUAN,
                 shard_of: Callable[[str], int] | None = None, shards: int = 1) -> None:
        self.region_code = region_code
        self.shard_of = shard_of
        self.shards = shards
        self.active: dict[str, Active] = {}
        self._issued: dict[int, set[str]] = {}   # event second -> ids minted in it
        # Set for a live lifecycle that starts empty although the book may hold warnings
        # raised before (a worker that found no checkpoint to restore): the first clear of
        # each key since start is passed on; the book ignores it when nothing is open.
        self.forward_first_clear = False
        self._looked_at: set[str] = set()

    def _mint(self, key: str, ts: int) -> str:
        sec = ts // 1000
        used = self._issued.setdefault(sec, set())
        shard = self.shard_of(key) if self.shard_of else 0
        iid = incident_id(self.region_code, key, ts, used.__contains__, shard, self.shards)
        used.add(iid)
        if len(self._issued) > 4096:  # keep a day of seconds at most; older ones cannot recur
            newest = max(self._issued)
            for s in [s for s in self._issued if s < newest - 86_400]:
                del self._issued[s]
        return iid

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
                               cur.grade)
        if f.clear and first_look:
            # An id of its own per key: the book remembers which warning a proposed id
            # stood for, and one shared id would close only the first key's warning.
            ghost = Active(f"{self.region_code}-unknown-{key}", Grade.NONE, f.ts)
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
            cur = self.active[key] = Active(self._mint(key, f.ts), f.grade, f.ts, True, f.ts)
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
                cur = Active(self._mint(key, f.ts), f.grade, f.ts, last_ts=f.ts)
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
        """The active warnings and the ids minted per second, as plain values."""
        return {"active": [[k, a.incident, int(a.grade), a.since_ts, a.pending, a.last_ts]
                           for k, a in self.active.items()],
                "issued": [[sec, sorted(ids)] for sec, ids in self._issued.items()],
                "looked_at": sorted(self._looked_at)}

    def restore(self, snap: dict) -> None:
        """Resume from :meth:`snapshot`: open warnings keep their incident ids, and replayed
        findings mint the same new ids as the first time (``_issued`` is part of it)."""
        self.active = {k: Active(iid, Grade(g), since, bool(pending), last)
                       for k, iid, g, since, pending, last in snap["active"]}
        self._issued = {int(sec): set(ids) for sec, ids in snap["issued"]}
        self._looked_at = set(snap["looked_at"])

    @staticmethod
    def _event(kind: EventKind, key: str, cur: Active, f: Finding, meta: RuleMeta,
               previous: Grade, reason: str, now_ms: int, grade: Grade) -> WarningEvent:
        return WarningEvent(kind=kind, key=key, incident=cur.incident, rule=f.rule,
                            rule_name=meta.name, hazard=meta.hazard, station=f.station,
                            grade=grade, previous=previous, ts=f.ts, value=f.value,
                            window=f.window, reason=reason, emitted_ms=now_ms)
