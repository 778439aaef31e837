"""StallWatch (yujing/streams/stall.py): a changelog recovery whose offsets stop moving
while a partition is still behind is reported once per stall period, never while the
recovery makes progress or has nothing left to read."""

from yujing.streams.stall import StallWatch

A, B = ("alias-changelog", 1), ("pipeline-changelog", 0)


def test_a_recovery_that_stops_moving_is_reported_after_the_stall_period():
    w = StallWatch(20)
    offsets, remaining = {A: -1, B: 3}, {A: 7, B: 0}
    assert w.look(offsets, remaining, 100) == {}
    assert w.look(offsets, remaining, 119.9) == {}
    assert w.look(offsets, remaining, 120) == {A: -1}          # B is done: not read again
    assert w.look(offsets, remaining, 130) == {}               # once per period
    assert w.look(offsets, remaining, 140) == {A: -1}


def test_progress_or_nothing_left_is_never_a_stall():
    w = StallWatch(20)
    for t in range(0, 100, 5):                                 # one record every 5 s
        assert w.look({A: t // 5}, {A: 30 - t // 5}, t) == {}
    w2 = StallWatch(20)
    for t in range(0, 100, 5):                                 # caught up: waits for nothing
        assert w2.look({A: 7}, {A: 0}, t) == {}


def test_a_new_recovery_starts_a_fresh_count():
    w = StallWatch(20)
    w.look({A: -1}, {A: 7}, 0)
    w.reset()
    assert w.look({A: -1}, {A: 7}, 25) == {}                   # the count restarts at 25
    assert w.look({A: -1}, {A: 7}, 45) == {A: -1}
