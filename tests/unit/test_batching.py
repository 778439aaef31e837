"""The gateway's batching policy (yujing/connectors/batching.py): when an envelope goes out."""

from __future__ import annotations

import pytest

from yujing.connectors.batching import Batching


def test_adaptive_sends_a_lone_reading_at_once():
    b = Batching(2, "adaptive", linger_ms=50, max_envelope=500)
    assert b.due(0, 1000) is None  # nothing waiting
    b.added(0, 1, 1000)
    assert b.due(0, 1000) == 1000  # a quiet partition: now, not 50 ms later
    assert b.due(1, 1000) is None  # the other partition has nothing


def test_adaptive_batches_readings_that_follow_an_envelope_within_the_linger():
    b = Batching(1, "adaptive", linger_ms=50, max_envelope=500)
    b.added(0, 3, 1000)
    assert b.sent(0, 1000) == 3
    b.added(0, 1, 1002)
    b.added(0, 1, 1005)
    assert b.due(0, 1005) == 1050  # the next envelope: linger_ms after the last one
    assert b.sent(0, 1050) == 2
    b.added(0, 1, 1200)            # quiet for longer than the linger: at once again
    assert b.due(0, 1200) == 1200


def test_a_steady_stream_gets_at_most_one_envelope_per_linger():
    b = Batching(1, "adaptive", linger_ms=50, max_envelope=10_000)
    sizes, now = [], 0
    for t in range(0, 1000):       # one reading a millisecond for a second
        now = t
        b.added(0, 1, now)
        due = b.due(0, now)
        if due is not None and due <= now:
            sizes.append(b.sent(0, now))
    assert len(sizes) <= 1000 // 50 + 1
    assert sizes[0] == 1 and min(sizes[1:]) >= 49  # the first alone, then full lingers


def test_adaptive_sends_a_full_envelope_within_the_linger():
    b = Batching(1, "adaptive", linger_ms=50, max_envelope=4)
    b.added(0, 1, 1000)
    b.sent(0, 1000)
    b.added(0, 4, 1001)
    assert b.due(0, 1001) == 1001


def test_fixed_waits_the_linger_even_when_quiet():
    b = Batching(1, "fixed", linger_ms=50, max_envelope=500)
    b.added(0, 1, 1000)
    b.added(0, 1, 1030)
    assert b.due(0, 1030) == 1050  # from the oldest reading, not the newest
    b.added(0, 498, 1031)
    assert b.due(0, 1031) == 1031  # full


def test_an_empty_send_changes_nothing():
    b = Batching(1, "adaptive", linger_ms=50, max_envelope=500)
    assert b.sent(0, 1000) == 0
    b.added(0, 1, 1001)
    assert b.due(0, 1001) == 1001  # the empty send did not count as an envelope


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="adaptive or fixed"):
        Batching(1, "nagle")  # type: ignore[arg-type]
