"""Escalation (yujing.alerts.escalation) as a table: (case, inputs, expected notices).

Each row runs a script against one warning: ``raise`` starts the grade's
policy, ``tick`` asks :func:`escalation.due` at that minute, ``ack`` and
``clear`` are the book's own commands (incidents.acknowledge / manual_clear),
``mute``/``unmute`` set what inhibition and silences set, ``grade`` is a
downgrade (``retime``) or an upgrade (a fresh ``start``), as the book does.
Expected: every notice produced, as (minute, kind, roles, a piece of its reason).
"""

from __future__ import annotations

import pytest

from yujing.alerts import escalation, incidents
from yujing.alerts.records import State, Warning
from yujing.alerts.settings import AlertsSettings
from yujing.domain import Grade

T = 1_748_764_800_000   # 2025-06-01 08:00 UTC
MIN = 60_000
ALL = ("A", "B", "leader")

DEFAULTS = AlertsSettings()
ONE_STEP_HOURLY = AlertsSettings(escalation={"orange": {"first": ["A"], "ack_timeout": "5m",
                                                        "repeat": "1h"}})
NO_REMINDERS = AlertsSettings(escalation={"orange": {"first": ["A"], "ack_timeout": "5m",
                                                     "then": [["B"]], "repeat": "0s"}})
LEADER_WITH_A = AlertsSettings(escalation={"yellow": {"first": ["A"], "ack_timeout": "2m",
                                                      "then": [["B", "leader"]]}})

RED, ORANGE, YELLOW, BLUE = Grade.RED, Grade.ORANGE, Grade.YELLOW, Grade.BLUE

# (case, (settings, grade, script), expected notices)
CASES = [
    # -- each grade's default policy -------------------------------------------------------
    ("red pages A, B and leader at once, then reminds every 5m",
     (DEFAULTS, RED, [("raise", 0), ("tick", 4), ("tick", 5), ("tick", 9), ("tick", 10)]),
     [(0, "raised", ALL, "red policy pages A, B and leader first"),
      (5, "reminder", ALL, "still unacknowledged after 5m: reminder 1 to A, B and leader"),
      (10, "reminder", ALL, "reminder 2")]),
    ("orange: A, B after 10m, leader after 20m, then reminders every 10m",
     (DEFAULTS, ORANGE, [("raise", 0), ("tick", 9), ("tick", 10), ("tick", 20), ("tick", 30),
                    ("tick", 40)]),
     [(0, "raised", ("A",), "orange policy pages A first"),
      (10, "escalated", ("B",), "no acknowledgement in 10m (10m since the raise): escalated to B"),
      (20, "escalated", ("leader",), "(20m since the raise): escalated to leader"),
      (30, "reminder", ALL, "reminder 1 to A, B and leader"),
      (40, "reminder", ALL, "reminder 2")]),
    ("yellow: 15m steps",
     (DEFAULTS, YELLOW, [("raise", 0), ("tick", 14), ("tick", 15), ("tick", 29), ("tick", 30),
                    ("tick", 45)]),
     [(0, "raised", ("A",), "yellow policy pages A first"),
      (15, "escalated", ("B",), "no acknowledgement in 15m"),
      (30, "escalated", ("leader",), "escalated to leader"),
      (45, "reminder", ALL, "reminder 1")]),
    ("blue: 30m steps",
     (DEFAULTS, BLUE, [("raise", 0), ("tick", 29), ("tick", 30), ("tick", 60), ("tick", 90)]),
     [(0, "raised", ("A",), "blue policy pages A first"),
      (30, "escalated", ("B",), "no acknowledgement in 30m"),
      (60, "escalated", ("leader",), "(1h since the raise)"),
      (90, "reminder", ALL, "still unacknowledged after 90m")]),

    # -- acknowledgement ---------------------------------------------------------------------
    ("ack before the first timeout: nobody else is paged",
     (DEFAULTS, ORANGE, [("raise", 0), ("ack", 9), ("tick", 10), ("tick", 20), ("tick", 600)]),
     [(0, "raised", ("A",), "")]),
    ("ack after the first timeout stops the chain at B",
     (DEFAULTS, ORANGE, [("raise", 0), ("tick", 10), ("ack", 15), ("tick", 20), ("tick", 30)]),
     [(0, "raised", ("A",), ""), (10, "escalated", ("B",), "")]),
    ("ack of a red warning stops its reminders",
     (DEFAULTS, RED, [("raise", 0), ("tick", 5), ("ack", 6), ("tick", 10), ("tick", 60)]),
     [(0, "raised", ALL, ""), (5, "reminder", ALL, "")]),
    ("a manual clear stops the chain",
     (DEFAULTS, ORANGE, [("raise", 0), ("clear", 3), ("tick", 10), ("tick", 60)]),
     [(0, "raised", ("A",), "")]),

    # -- reminders and repeat ----------------------------------------------------------------
    ("a one-step policy reminds at its own repeat, not its timeout",
     (ONE_STEP_HOURLY, ORANGE, [("raise", 0), ("tick", 5), ("tick", 59), ("tick", 60),
                           ("tick", 120)]),
     [(0, "raised", ("A",), ""),
      (60, "reminder", ("A",), "still unacknowledged after 1h: reminder 1 to A"),
      (120, "reminder", ("A",), "after 2h: reminder 2 to A")]),
    ("repeat 0s: after the last step nothing more",
     (NO_REMINDERS, ORANGE, [("raise", 0), ("tick", 5), ("tick", 10), ("tick", 600)]),
     [(0, "raised", ("A",), ""), (5, "escalated", ("B",), "no acknowledgement in 5m")]),
    ("a step of two roles pages both; reminders go to everyone paged",
     (LEADER_WITH_A, YELLOW, [("raise", 0), ("tick", 2), ("tick", 4)]),
     [(0, "raised", ("A",), ""), (2, "escalated", ("B", "leader"), "escalated to B and leader"),
      (4, "reminder", ALL, "reminder 1 to A, B and leader")]),

    # -- downtime, holds and grade changes ---------------------------------------------------
    ("after downtime one step per tick, the next waits its own timeout",
     (DEFAULTS, ORANGE, [("raise", 0), ("tick", 45), ("tick", 46), ("tick", 54), ("tick", 55)]),
     [(0, "raised", ("A",), ""),
      (45, "escalated", ("B",), "no acknowledgement in 10m (45m since the raise)"),
      (55, "escalated", ("leader",), "")]),
    ("muted (inhibited or silenced): no step until unmuted",
     (DEFAULTS, ORANGE, [("raise", 0), ("mute", 1), ("tick", 10), ("tick", 30), ("unmute", 31),
                    ("tick", 31), ("tick", 40), ("tick", 41)]),
     [(0, "raised", ("A",), ""), (31, "escalated", ("B",), "(31m since the raise)"),
      (41, "escalated", ("leader",), "")]),
    ("a downgrade keeps the step and waits the lower grade's timeout from the last step",
     (DEFAULTS, ORANGE, [("raise", 0), ("grade", BLUE, 2), ("tick", 10), ("tick", 29), ("tick", 30)]),
     [(0, "raised", ("A",), ""), (30, "escalated", ("B",), "no acknowledgement in 30m")]),
    ("an upgrade starts the higher grade's policy again",
     (DEFAULTS, ORANGE, [("raise", 0), ("tick", 10), ("grade", RED, 12), ("tick", 16), ("tick", 17)]),
     [(0, "raised", ("A",), ""), (10, "escalated", ("B",), ""),
      (12, "upgraded", ALL, "upgraded red: red policy pages A, B and leader first"),
      (17, "reminder", ALL, "still unacknowledged after 5m: reminder 1")]),
]


def run(settings: AlertsSettings, grade: Grade, script: list[tuple]) -> list[tuple]:
    w = Warning(incident="441900-20250601080000-0001", key="rain@g1", rule="rain",
                rule_name="暴雨", hazard="rainstorm", station="g1", state=State.ACTIVE,
                grade=int(grade))
    out = []
    for step in script:
        action, at = step[0], T + step[-1] * MIN
        if action == "raise":
            out.append(escalation.start(w, settings.policy(w.grade), "raised", at))
        elif action == "tick":
            n = escalation.due(w, settings.policy(w.grade), at)
            if n is not None:
                out.append(n)
        elif action == "ack":
            assert incidents.acknowledge(w, "a1", "", at).kind == "acknowledged"
        elif action == "clear":
            assert incidents.manual_clear(w, "a1", "false alarm", at).kind == "cleared"
        elif action == "mute":
            w.muted = "silenced by silence s1"
        elif action == "unmute":
            w.muted = ""
        elif action == "grade":
            new = int(step[1])
            if new > w.grade:
                w.grade = new
                out.append(escalation.start(w, settings.policy(new), "upgraded", at))
            else:
                w.grade = new
                escalation.retime(w, settings.policy(new))
    return [((n.at - T) // MIN, n.kind, tuple(n.roles), n.reason) for n in out]


@pytest.mark.parametrize("case, inputs, expected", CASES, ids=[c[0] for c in CASES])
def test_escalation(case, inputs, expected):
    got = run(*inputs)
    assert [g[:3] for g in got] == [e[:3] for e in expected]
    for (minute, kind, _, reason), (_, _, _, part) in zip(got, expected):
        assert part in reason, f"minute {minute} {kind}: {reason!r} lacks {part!r}"
