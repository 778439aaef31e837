"""A latch on the row alarm (yujing/models/latch.py): hysteresis on one part's rank."""

from __future__ import annotations

import numpy as np
import pytest

from yujing.models.holdoff import RowAlarm
from yujing.models.latch import LatchedAlarm, LatchRule, latch


def test_latch_starts_on_start_and_holds_while_keep_holds() -> None:
    start = np.array([0, 1, 0, 0, 0, 0, 1, 0], dtype=bool)
    keep = np.array([1, 1, 1, 1, 0, 1, 1, 1], dtype=bool)
    group = np.zeros(8, dtype=int)
    # keep alone never alarms (row 0); the latch ends at the first row keep fails (4) and
    # the keep rows after it (5) do not alarm until a new start (6)
    assert latch(start, keep, group).tolist() == [False, True, True, True, False, False, True, True]


def test_latch_does_not_cross_stations() -> None:
    start = np.array([0, 1, 1, 0, 0, 0], dtype=bool)
    keep = np.ones(6, dtype=bool)
    group = np.array(["a", "a", "a", "b", "b", "b"])
    # station b is never started: a's latch must not run into b's rows
    assert latch(start, keep, group).tolist() == [False, True, True, False, False, False]
    with pytest.raises(ValueError, match="one value per row"):
        latch(start, keep[:3], group)


def test_rule_parsing_and_checks() -> None:
    names = ["neighbours", "stuck", "local.steps.ends"]
    r = LatchRule.parse("local.steps.ends:0.0002:0.1:3", names)
    assert (r.part, r.start_rate, r.keep_rate, r.patience) == (2, 0.0002, 0.1, 3)
    assert LatchRule.parse("stuck:0.001:0.01", names).patience == 1
    with pytest.raises(ValueError, match="PART"):
        LatchRule.parse("local.steps:0.001:0.01", names)
    with pytest.raises(ValueError, match="start rate"):
        LatchRule(0, 0.1, 0.01)
    with pytest.raises(ValueError, match="patience"):
        LatchRule(0, 0.001, 0.01, 0)


def test_latch_keeps_the_rate_on_normal_rows_and_holds_a_fault() -> None:
    rng = np.random.default_rng(11)
    n = 40_000
    cal_a, cal_b = rng.normal(size=n), rng.normal(size=n)
    group = np.repeat(np.arange(4), n // 4)
    rule = LatchRule(0, 0.0005, 0.05, 2)
    la = LatchedAlarm.fit([cal_a, cal_b], group, 0.01, [rule])
    assert 0.008 < la.calibration_rate <= 0.01
    # on fresh normal rows the rate holds (the latch's share included)
    test_a, test_b = rng.normal(size=n), rng.normal(size=n)
    assert 0.007 < la.alarm([test_a, test_b], group).mean() < 0.013
    # a fault: one sure row, then 29 rows at a moderate level (above the keep level, below
    # the row threshold) with a one-row dip every third row
    fa = np.full(40, 0.0)
    fa[5] = 6.0
    fa[6:35] = 2.2
    fa[8:35:3] = 0.0
    fb = np.zeros(40)
    g = np.zeros(40, dtype=int)
    row, latched = la.parts([fa, fb], g)
    assert not row[6:35].any()  # the row threshold alone sees only the sure row
    assert latched[5:35].all()  # the latch holds through the dips (patience 2)
    assert not latched[36:].any()  # and ends with the evidence (plus patience - 1 rows)
    # with patience 1 the first dip ends it
    la1 = LatchedAlarm.fit([cal_a, cal_b], group, 0.01, [LatchRule(0, 0.0005, 0.05, 1)])
    assert la1.parts([fa, fb], g)[1][5:8].all() and not la1.parts([fa, fb], g)[1][8:35].all()


def test_a_latch_lowers_nothing_without_a_rule_and_refuses_a_rate_it_cannot_keep() -> None:
    rng = np.random.default_rng(12)
    a, b = rng.normal(size=20_000), rng.normal(size=20_000)
    group = np.zeros(a.size, dtype=int)
    plain = RowAlarm.fit([a, b], group, 0.01)
    none = LatchedAlarm.fit([a, b], group, 0.01, [])
    assert none.threshold == pytest.approx(plain.threshold)
    with pytest.raises(ValueError, match="latches alone"):
        LatchedAlarm.fit([a, b], group, 0.001, [LatchRule(0, 0.0005, 0.5, 1)])
    with pytest.raises(ValueError, match="no part"):
        LatchedAlarm.fit([a, b], group, 0.01, [LatchRule(5, 0.001, 0.01)])
