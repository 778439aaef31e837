"""Matchers and silences (maintenance windows), pure, time passed in.

A silence holds notifications for warnings whose labels match all its
matchers, between ``starts`` and ``ends``; with ``weekly`` windows only inside
those (e.g. a gauge serviced every Saturday 02:00-04:00). Every change is
appended to the silence's audit trail with who, when and why. Warnings stay
on the books while silenced: their timeline says which silence held them, and
they are notified when the silence ends if they are still open.

Regular expressions in matchers (silences from any officer, inhibit rules from
config) run on RE2 (google-re2): its matching time is linear in the label, where
Python's backtracking ``re`` took 24 s for ``(.*.*)*X`` on a 16-character label
and doubled with each character more. RE2 has no back-references or
look-around; such a pattern is refused when the matcher is parsed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import re2

from yujing.alerts.records import Audit, Matcher, Silence, Weekly

SHANGHAI = ZoneInfo("Asia/Shanghai")
LABELS = ("rule", "hazard", "station", "town", "grade", "incident", "group", "state")
_OPS = ("=~", "!~", "!=", "=")
PATTERN_MAX = 1000      # characters of one matcher's regular expression
DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def parse_matcher(text: str) -> Matcher:
    """``label=value``, ``label!=value``, ``label=~regex`` or ``label!~regex``."""
    for op in _OPS:
        label, sep, value = text.partition(op)
        if sep and label.strip():
            label = label.strip()
            if label not in LABELS:
                raise ValueError(f"matcher {text!r}: unknown label {label!r}; use one of "
                                 f"{', '.join(LABELS)}")
            value = value.strip()
            if op in ("=~", "!~"):
                _checked_pattern(text, value)
            return Matcher(label, op, value)
    raise ValueError(f"bad matcher {text!r}: write label=value, label!=value, label=~regex or "
                     f"label!~regex, e.g. town=虎门镇 or grade=~blue|yellow")


def _options() -> re2.Options:
    o = re2.Options()
    o.log_errors = False        # a refused pattern is the caller's error, not a log line
    return o


_OPTIONS = _options()


def _checked_pattern(text: str, pattern: str) -> str:
    if len(pattern) > PATTERN_MAX:
        raise ValueError(f"matcher {text[:40]!r}...: a regular expression of at most "
                         f"{PATTERN_MAX} characters, please")
    try:
        re2.compile(pattern, _OPTIONS)
    except (re2.error, ValueError) as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(
            exc.args[0], bytes) else str(exc)
        raise ValueError(f"matcher {text!r}: not a regular expression RE2 accepts ({detail}); "
                         "RE2 matches in linear time and has no back-references or "
                         "look-around: write e.g. grade=~orange|red") from None
    return pattern


@lru_cache(maxsize=1024)
def _regex(pattern: str):
    """The compiled pattern, or None for one RE2 refuses (a silence stored by an older
    version, whose Python pattern RE2 cannot run): that matcher matches nothing."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except (re2.error, ValueError):     # ValueError: text UTF-8 cannot encode (a lone surrogate)
        return None


def matches(m: Matcher, labels: dict[str, str]) -> bool:
    v = labels.get(m.label, "")
    if m.op == "=":
        return v == m.value
    if m.op == "!=":
        return v != m.value
    rx = _regex(m.value)
    if rx is None:
        return False    # never silence or inhibit on a pattern nobody can check
    try:
        hit = rx.fullmatch(v) is not None  # anchored, as in Alertmanager
    except ValueError:
        return False    # a label UTF-8 cannot encode: no pattern speaks of it
    return hit if m.op == "=~" else not hit


def matches_all(ms: list[Matcher], labels: dict[str, str]) -> bool:
    return all(matches(m, labels) for m in ms)


def parse_weekly(text: str) -> Weekly:
    """``sat 02:00-04:00`` or ``mon,tue,wed 22:00-06:00`` (Asia/Shanghai)."""
    try:
        days_part, span = text.strip().split()
        start, end = span.split("-")
        days = sorted({DAYS[d.strip().lower()[:3]] for d in days_part.split(",")})
        for t in (start, end):
            h, m = t.split(":")
            if not (0 <= int(h) <= 24 and 0 <= int(m) < 60):
                raise ValueError
    except (ValueError, KeyError):
        raise ValueError(f"bad weekly window {text!r}: write days and a time span, e.g. "
                         "'sat 02:00-04:00' or 'mon,wed 22:00-06:00' (Asia/Shanghai)") from None
    return Weekly(days, start, end)


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def in_weekly(w: Weekly, now_ms: int) -> bool:
    local = datetime.fromtimestamp(now_ms / 1000, SHANGHAI)
    minute = local.hour * 60 + local.minute
    start, end = _minutes(w.start), _minutes(w.end)
    if start <= end:
        return local.weekday() in w.days and start <= minute < end
    # past midnight: the evening of a listed day, or the morning after it
    yesterday = (local - timedelta(days=1)).weekday()
    return (local.weekday() in w.days and minute >= start) or (yesterday in w.days and minute < end)


def is_active(s: Silence, now_ms: int) -> bool:
    if not (s.starts_ms <= now_ms < s.ends_ms):
        return False
    return not s.weekly or any(in_weekly(w, now_ms) for w in s.weekly)


def silencing(silences: list[Silence], labels: dict[str, str], now_ms: int) -> Silence | None:
    """The first active silence whose matchers all match, or None."""
    for s in silences:
        if is_active(s, now_ms) and matches_all(s.matchers, labels):
            return s
    return None


def describe(s: Silence) -> str:
    what = ", ".join(str(m) for m in s.matchers)
    when = ""
    if s.weekly:
        names = {v: k for k, v in DAYS.items()}
        when = " weekly " + "; ".join(
            f"{','.join(names.get(d, str(d)) for d in w.days)} {w.start}-{w.end}" for w in s.weekly)
    return f"silence {s.id} [{what}]{when} by {s.created_by}: {s.reason}"


def add(existing: Silence | None, new: Silence, actor: str, now_ms: int) -> Silence:
    """Create, or replace an existing silence with the same id, keeping its audit trail."""
    if not new.matchers:
        raise ValueError(f"silence {new.id}: give at least one matcher, or it would silence "
                         "everything")
    if new.ends_ms <= new.starts_ms:
        raise ValueError(f"silence {new.id}: ends must be after starts")
    audit = list(existing.audit) if existing else []
    action = "updated" if existing else "created"
    audit.append(Audit(now_ms, actor, action, new.reason))
    return Silence(id=new.id, matchers=new.matchers, starts_ms=new.starts_ms, ends_ms=new.ends_ms,
                   created_by=existing.created_by if existing else new.created_by,
                   reason=new.reason, weekly=new.weekly, audit=audit)


def expire(s: Silence, actor: str, reason: str, now_ms: int) -> Silence:
    if s.ends_ms <= now_ms:
        return s
    audit = list(s.audit) + [Audit(now_ms, actor, "expired", reason)]
    return Silence(id=s.id, matchers=s.matchers, starts_ms=s.starts_ms, ends_ms=now_ms,
                   created_by=s.created_by, reason=s.reason, weekly=s.weekly, audit=audit,
                   reminded_ms=s.reminded_ms)


def needs_reminder(s: Silence, now_ms: int, lead_ms: int) -> bool:
    """Remind the creator once, ``lead_ms`` before the silence ends."""
    return (not s.reminded_ms and s.starts_ms <= now_ms < s.ends_ms
            and s.ends_ms - now_ms <= lead_ms)


def reminded(s: Silence, now_ms: int) -> Silence:
    audit = list(s.audit) + [Audit(now_ms, "system", "reminded",
                                   f"creator {s.created_by} reminded that it ends soon")]
    return Silence(id=s.id, matchers=s.matchers, starts_ms=s.starts_ms, ends_ms=s.ends_ms,
                   created_by=s.created_by, reason=s.reason, weekly=s.weekly, audit=audit,
                   reminded_ms=now_ms)
