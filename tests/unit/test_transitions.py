"""for:, held grades, hysteresis and clears (yujing.rules.transitions), as a table of cases.

The conditions are given directly, one letter per condition that holds at a point
(b, y, o, r: the grade's condition; c: the clear condition), so each case reads as
a timeline: ``"0:o 5:o 10:o"`` is orange's condition true at minutes 0, 5 and 10.
Expected findings are ``minute:label`` with ``orange?`` for a pending orange.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yujing.domain import Grade
from yujing.rules import transitions as tr
from yujing.rules.compiled import compile_rule
from yujing.rules.schema import Rule

MIN = 60_000
T0 = 1_750_000_000_000 - 1_750_000_000_000 % 3_600_000
LETTER = {"blue": "b", "yellow": "y", "orange": "o", "red": "r"}


def rule(grades: dict[str, str | None], clear: str | None = "", **kw):
    """Grades with an optional ``for:`` each (None: none); ``clear`` '' = no clear
    condition (the rule clears when no grade holds), else the clear's ``for:`` or None."""
    spec = {g: ({"when": "last(x) > 0", "for": hold} if hold else "last(x) > 0")
            for g, hold in grades.items()}
    doc = {"id": "t", "name": "t", "hazard": "test", "grades": spec, **kw}
    if clear != "":
        doc["clear"] = {"when": "last(x) < 0", "for": clear} if clear else "last(x) < 0"
    return compile_rule(Rule.model_validate(doc))


def parse(steps: str) -> list[tuple[int, str]]:
    return [(int(m), flags) for m, _, flags in (s.partition(":") for s in steps.split())]


def judge_points(c, state, points: list[tuple[int, int, str]], nst: int = 4):
    """Judge (station, minute, flags) points (sorted by station, minute); labelled findings."""
    pst = np.asarray([p[0] for p in points], np.int64)
    pt = np.asarray([T0 + p[1] * MIN for p in points], np.int64)
    conds = [np.asarray([LETTER[g.label] in p[2] for p in points]) for g, _ in c.grades]
    clear = np.asarray(["c" in p[2] for p in points]) if c.clear is not None else None
    judged = tr.judge(c, state, conds, clear, pst, pt, nst)
    names = [f"s{i}" for i in range(nst)]
    found = tr.findings(c, judged, pst, pt, names, lambda node: np.zeros(pst.size))
    return [(f.station, (f.ts - T0) // MIN, "clear" if f.clear else
             f.grade.label + ("?" if f.pending else "")) for f in found]


def run(c, steps: str) -> list[str]:
    got = judge_points(c, tr.RuleState(), [(0, m, flags) for m, flags in parse(steps)])
    return [f"{m}:{label}" for _, m, label in got]


CASES = [
    # (name, rule, timeline, expected findings)
    ("a grade without for: is raised at once; the first point reports its outcome",
     rule({"orange": None}, None), "0:o 5:o 10:", ["0:orange"]),
    ("the first point may be a clear", rule({"orange": None}, None), "0:c 5:c 10:o",
     ["0:clear", "10:orange"]),
    ("between grade and clear nothing is said (hysteresis band)",
     rule({"orange": None}, None), "0: 5:o 10: 15: 20:c 25:", ["5:orange", "20:clear"]),
    ("without a clear condition the rule clears when no grade holds",
     rule({"orange": None}), "0:o 5: 10:o", ["0:orange", "5:clear", "10:orange"]),
    ("for: pending until held long enough, measured in event time",
     rule({"orange": "10m"}, None), "0:o 5:o 10:o 15:o", ["0:orange?", "10:orange"]),
    ("a broken run starts over",
     rule({"orange": "10m"}), "0:o 5:o 7: 8:o 17:o 18:o",
     ["0:orange?", "7:clear", "8:orange?", "18:orange"]),
    ("a run held through a gap of points still counts from its start",
     rule({"orange": "10m"}, None), "0:o 30:o", ["0:orange?", "30:orange"]),
    ("without downgrade the highest grade holds until the clear",
     rule({"yellow": None, "red": None}, None), "0:yr 5:y 10:y 15:c 20:y",
     ["0:red", "15:clear", "20:yellow"]),
    ("with downgrade the grade follows the conditions",
     rule({"yellow": None, "red": None}, None, downgrade=True), "0:yr 5:y 10: 15:c",
     ["0:red", "5:yellow", "15:clear"]),
    ("a clear needs every grade condition false",
     rule({"orange": None}, None), "0:o 5:oc 10:c", ["0:orange", "10:clear"]),
    ("the clear's for: is a minimum clear time",
     rule({"orange": None}, "5m"), "0:o 2:c 4:c 7:c 9:o", ["0:orange", "7:clear", "9:orange"]),
    ("a higher grade pending above a held one changes the outcome: the held grade is restated",
     rule({"yellow": None, "red": "10m"}, None), "0:y 5:yr 10:yr 15:yr",
     ["0:yellow", "5:yellow", "15:red"]),
    ("a pending grade at or below the held one is not news",
     rule({"orange": "10m", "red": None}, None), "0:r 5:ro 10:o",
     ["0:red"]),
    ("pending that never holds falls back to clear",
     rule({"orange": "10m"}), "0:o 5: 10:", ["0:orange?", "5:clear"]),
    ("a grade per hold: yellow at once, orange after 10m of its own condition",
     rule({"yellow": None, "orange": "10m"}, None, downgrade=True), "0:yo 5:yo 10:yo 12:y",
     ["0:yellow", "10:orange", "12:yellow"]),
]


@pytest.mark.parametrize("name, c, steps, expected", CASES, ids=[c[0] for c in CASES])
def test_transition_table(name, c, steps, expected):
    assert run(c, steps) == expected


@pytest.mark.parametrize("name, c, steps, expected", CASES, ids=[c[0] for c in CASES])
def test_the_table_point_by_point_carries_its_state_across_chunks(name, c, steps, expected):
    state, got = tr.RuleState(), []
    for m, flags in parse(steps):
        got += [f"{mm}:{label}" for _, mm, label in judge_points(c, state, [(0, m, flags)])]
    assert got == expected


def test_findings_name_the_grade_and_the_condition():
    c = rule({"orange": "10m"}, None)
    state = tr.RuleState()
    pst, pt = np.zeros(2, np.int64), T0 + np.asarray([0, 10 * MIN], np.int64)
    j = tr.judge(c, state, [np.ones(2, bool)], np.zeros(2, bool), pst, pt, 1)
    found = tr.findings(c, j, pst, pt, ["s"], lambda node: np.full(2, 7.0))
    assert [(f.grade, f.pending, f.value) for f in found] == [(Grade.ORANGE, True, 7.0),
                                                              (Grade.ORANGE, False, 7.0)]
    assert found[1].reason == "last(x) = 7 (orange: last(x) > 0 for 10m)"
    assert found[0].reason == "last(x) = 7 (orange pending: last(x) > 0 for 10m)"


@st.composite
def timelines(draw):
    """Points of up to 3 stations, each minute at most once, with random conditions."""
    points = []
    for s in range(draw(st.integers(1, 3))):
        minutes = sorted(set(draw(st.lists(st.integers(0, 90), min_size=1, max_size=25))))
        points += [(s, m, draw(st.sampled_from(["", "y", "o", "yo", "c", "yc", "oc"])))
                   for m in minutes]
    cuts = draw(st.lists(st.integers(0, 90), max_size=5))
    return points, sorted(set(cuts))


@settings(max_examples=150, deadline=None)
@given(timeline=timelines(), downgrade=st.booleans(),
       holds=st.tuples(st.sampled_from([None, "5m", "20m"]), st.sampled_from([None, "10m"]),
                       st.sampled_from(["", None, "3m"])))
def test_findings_do_not_depend_on_where_chunks_end(timeline, downgrade, holds):
    """The same points judged at once or in time slices (each slice sorted by station)."""
    points, cuts = timeline
    c = rule({"yellow": holds[0], "orange": holds[1]}, holds[2], downgrade=downgrade)
    whole = judge_points(c, tr.RuleState(), sorted(points))
    state, split = tr.RuleState(), []
    for lo, hi in zip([-1] + cuts, cuts + [10**6]):
        part = sorted(p for p in points if lo < p[1] <= hi)
        if part:
            split += judge_points(c, state, part)
    assert sorted(split, key=lambda f: (f[1], f[0])) == sorted(whole, key=lambda f: (f[1], f[0]))
