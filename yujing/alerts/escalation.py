"""AB-role escalation, pure: who is paged next, and when, until someone acknowledges.

A grade's policy is a list of steps (roles paged together) separated by the
acknowledgement timeout, then reminders to everyone paged so far at the
``repeat`` interval. Timeouts count from the previous step, so a worker that
was down catches up with one step per tick instead of paging everybody at
once; every notice says why it was sent, in words (「A岗10分钟未确认（发布后已过10分钟），
已升级通知B岗」, :mod:`phrases`) beside the old English sentence in ``reason``.
"""

from __future__ import annotations

from yujing.alerts import phrases
from yujing.alerts.records import Escalation, Notice, State, Warning
from yujing.alerts.settings import ALL_ROLES, GradePolicy
from yujing.domain import Grade
from yujing.durations import format_duration

ROLES = ALL_ROLES   # the order roles are named in: A, B, leader, then the levels'


def start(w: Warning, policy: GradePolicy, kind: str, now_ms: int) -> Notice:
    """Begin (or restart, on an upgrade) the escalation; returns the first step's notice."""
    steps = policy.steps
    w.esc = Escalation(grade=w.grade, step=1, next_ms=0, started_ms=now_ms, last_ms=now_ms)
    w.esc.next_ms = _next_due(w.esc, policy, now_ms)
    roles = list(steps[0])
    grade = Grade(w.grade)
    reason = f"{kind} {grade.label}: {grade.label} policy pages {_roles(roles)} first"
    words = phrases.first_page(kind, grade, roles)
    return Notice(w.incident, kind, w.grade, reason, now_ms, roles=roles, **words.kw())


def _next_due(esc: Escalation, policy: GradePolicy, last_ms: int) -> int:
    if esc.step < len(policy.steps):
        return last_ms + policy.wait_ms(esc.step)
    return last_ms + policy.repeat_ms if policy.repeat_ms > 0 else 0


def due(w: Warning, policy: GradePolicy, now_ms: int) -> Notice | None:
    """The next escalation step or reminder if its deadline has passed, else None.

    Runs at most one step per call: after downtime the chain resumes where it
    stood, and the next step waits its own timeout from now.
    """
    esc = w.esc
    if esc is None or w.state != State.ACTIVE or w.muted or not esc.next_ms or now_ms < esc.next_ms:
        return None
    steps = policy.steps
    since_ms = max(0, now_ms - esc.started_ms)
    waited = format_duration(since_ms // 1000 * 1000)
    if esc.step < len(steps):
        roles = list(steps[esc.step])
        wait_ms = policy.wait_ms(esc.step)
        reason = (f"no acknowledgement in {format_duration(wait_ms)} "
                  f"({waited} since the raise): escalated to {_roles(roles)}")
        paged = sorted({r for s in steps[:esc.step] for r in s}, key=ROLES.index)
        words = phrases.escalated(paged, wait_ms, since_ms, roles)
        kind = "escalated"
    else:
        roles = sorted({r for s in steps for r in s}, key=ROLES.index)
        esc.reminders += 1
        reason = (f"still unacknowledged after {waited}: reminder {esc.reminders} to "
                  f"{_roles(roles)}")
        words = phrases.reminder(esc.reminders, since_ms, roles)
        kind = "reminder"
    esc.step += 1
    esc.last_ms = now_ms
    esc.next_ms = _next_due(esc, policy, now_ms)
    return Notice(w.incident, kind, w.grade, reason, now_ms, roles=roles, **words.kw())


def retime(w: Warning, policy: GradePolicy) -> None:
    """A downgrade keeps the step but waits the lower grade's (longer) timeout."""
    if w.esc is not None:
        w.esc.grade = w.grade
        w.esc.next_ms = _next_due(w.esc, policy, w.esc.last_ms)


def _roles(roles: list[str]) -> str:
    return " and ".join(roles) if len(roles) < 3 else ", ".join(roles[:-1]) + " and " + roles[-1]
