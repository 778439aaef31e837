"""The warning state machine: raise, upgrade, clear; one incident per raise.

Pure: time comes in as ``now_ms``. A finding that changes nothing (the same or
a lower grade while active, a clear while idle) returns no event, which makes
re-delivered findings harmless.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass

from ..domain import EventKind, Finding, Grade, WarningEvent, warning_key

DONGGUAN = "441900"


@dataclass
class Active:
    incident: str
    grade: Grade
    since_ts: int


def incident_id(region_code: str, key: str, ts_ms: int) -> str:
    """GB/T 35965.1-style id: region code, event date-time (UTC), a sequence from the key.

    Deterministic in (key, raise time), so replaying the same readings gives
    the same incident id instead of a second incident.
    """
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(ts_ms // 1000))
    return f"{region_code}-{stamp}-{zlib.crc32(key.encode()) % 10000:04d}"


@dataclass(frozen=True)
class RuleMeta:
    name: str
    hazard: str


class Lifecycle:
    def __init__(self, region_code: str = DONGGUAN) -> None:
        self.region_code = region_code
        self.active: dict[str, Active] = {}

    def apply(self, f: Finding, meta: RuleMeta, now_ms: int) -> WarningEvent | None:
        key = warning_key(f.rule, f.station)
        cur = self.active.get(key)
        if f.grade > Grade.NONE and (cur is None or f.grade > cur.grade):
            if cur is None:
                cur = Active(incident_id(self.region_code, key, f.ts), f.grade, f.ts)
                kind, previous = EventKind.RAISED, Grade.NONE
                reason = f"raised {f.grade.label}: {f.reason}"
            else:
                kind, previous = EventKind.UPGRADED, cur.grade
                reason = f"upgraded {cur.grade.label} -> {f.grade.label}: {f.reason}"
                cur.grade = f.grade
            self.active[key] = cur
            return self._event(kind, key, cur, f, meta, previous, reason, now_ms, f.grade)
        if f.clear and cur is not None:
            del self.active[key]
            reason = f"cleared after {cur.grade.label}: {f.reason}"
            return self._event(EventKind.CLEARED, key, cur, f, meta, cur.grade, reason, now_ms,
                               cur.grade)
        return None

    @staticmethod
    def _event(kind: EventKind, key: str, cur: Active, f: Finding, meta: RuleMeta,
               previous: Grade, reason: str, now_ms: int, grade: Grade) -> WarningEvent:
        return WarningEvent(kind=kind, key=key, incident=cur.incident, rule=f.rule,
                            rule_name=meta.name, hazard=meta.hazard, station=f.station,
                            grade=grade, previous=previous, ts=f.ts, value=f.value,
                            window=f.window, reason=reason, emitted_ms=now_ms)
