"""The gateway's batching policy (yujing/connectors/batching.py): when an envelope goes out."""

from __future__ import annotations

import pytest

from yujing.connectors.batching import Batching


def test_adaptive_sends_a_lone_reading_at_once():
    b = Batching(2, "adaptive", linger_ms=50, max_envelope=500)
    assert b.due(0, 1000) is None  # nothing waiting
    b.added(0, 1, 1000)
    assert b.due(0, 1000) == 1000  # idle partition: now, not 50 ms later
    assert b.due(1, 1000) is None  # the other partition has nothing


def test_adaptive_fills_while_an_envelope_is_in_flight_and_sends_on_its_ack():
    b = Batching(1, "adaptive", linger_ms=50, max_envelope=500)
    b.added(0, 3, 1000)
    assert b.sent(0) == 3
    b.added(0, 1, 1002)
    b.added(0, 1, 1005)
    assert b.due(0, 1005) == 1052  # in flight: wait for the ack, at most the linger
    b.acked(0)
    assert b.due(0, 1010) == 1010  # acknowledged: what waited goes now
    assert b.sent(0) == 2


def test_adaptive_sends_a_full_envelope_even_while_one_is_in_flight():
    b = Batching(1, "adaptive", linger_ms=50, max_envelope=4)
    b.added(0, 1, 1000)
    b.sent(0)
    b.added(0, 4, 1001)
    assert b.due(0, 1001) == 1001


def test_adaptive_linger_caps_the_wait_behind_a_slow_ack():
    b = Batching(1, "adaptive", linger_ms=50, max_envelope=500)
    b.added(0, 1, 0)
    b.sent(0)
    b.added(0, 1, 10)
    assert b.due(0, 59) == 60
    assert b.due(0, 60) <= 60  # the oldest has waited linger_ms: send without the ack


def test_fixed_waits_the_linger_even_when_idle():
    b = Batching(1, "fixed", linger_ms=50, max_envelope=500)
    b.added(0, 1, 1000)
    b.added(0, 1, 1030)
    assert b.due(0, 1030) == 1050  # from the oldest reading, not the newest
    b.added(0, 498, 1031)
    assert b.due(0, 1031) == 1031  # full


def test_more_in_flight_allowed_sends_more_at_once():
    b = Batching(1, "adaptive", linger_ms=50, max_envelope=500, max_in_flight=2)
    b.added(0, 1, 0)
    b.sent(0)
    b.added(0, 1, 1)
    assert b.due(0, 1) == 1  # one in flight of two allowed
    b.sent(0)
    b.added(0, 1, 2)
    assert b.due(0, 2) == 52


def test_a_failed_or_repeated_ack_never_makes_in_flight_negative():
    b = Batching(1, "adaptive", linger_ms=50, max_envelope=500)
    b.acked(0)
    assert b.lanes[0].in_flight == 0
    assert b.sent(0) == 0 and b.lanes[0].in_flight == 0  # an empty send is not in flight


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="adaptive or fixed"):
        Batching(1, "nagle")  # type: ignore[arg-type]
