"""The readings agent's pacing (yujing/streams/pacing.py): it waits only when busy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yujing.streams.pacing import Pacer


def run(p: Pacer, t: float, seconds: float, pass_s: float, every_s: float) -> float:
    """Passes of ``pass_s`` every ``every_s`` for ``seconds`` from ``t``; the end time."""
    end = t + seconds
    while t < end:
        p.spent(pass_s, t + pass_s)
        t += every_s
    return t


def test_a_quiet_worker_never_waits():
    p = Pacer(0.005)
    t = run(p, 0.0, 3.0, 0.0013, 0.005)          # 5,000 readings/s: passes take 26 %
    assert p.share(t) == pytest.approx(0.26, abs=0.03)
    assert p.hold(t) == 0.0


def test_a_busy_worker_waits_and_stops_waiting_when_the_load_goes():
    p = Pacer(0.005)
    t = run(p, 0.0, 2.0, 0.004, 0.006)            # passes take two thirds of the time
    assert p.hold(t) == 0.005
    assert p.hold(t + 1.5) == 0.0                  # idle for three half-lives: share < 0.4


def test_off_when_the_wait_is_zero():
    p = Pacer(0.0)
    t = run(p, 0.0, 1.0, 0.009, 0.01)
    assert p.hold(t) == 0.0


@given(st.lists(st.tuples(st.floats(0, 0.05), st.floats(0, 0.05)), max_size=60))
def test_the_share_stays_between_zero_and_one(steps):
    p, t = Pacer(0.005), 0.0
    for busy, idle in steps:
        p.spent(busy, t + busy)
        t += busy + idle
        assert 0.0 <= p.share(t) <= 1.0 + 1e-9
