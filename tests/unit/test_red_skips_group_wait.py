"""A new red warning is handed to delivery with its event, not after the group wait (issue 17);
other grades still collect a storm for the group wait."""

from __future__ import annotations

from tests.unit.test_book import Rig, S
from yujing.domain import Grade


def test_a_red_warning_is_sent_at_once_despite_the_group_wait():
    r = Rig(grouping={"wait": "10s", "interval": "1m"})
    r.find(Grade.ORANGE, station="g1")
    assert r.sent == []                                        # orange waits for the group
    r.clock.advance(200)
    r.find(Grade.RED, station="g2")
    sent = dict(r.who())
    assert sent["a1"] == ("raised", "raised")                  # red took the waiting orange along
    assert sent["b1"] == ("raised",)                           # red pages B at once as well


def test_an_upgrade_to_red_is_sent_at_once_and_an_orange_storm_still_waits():
    r = Rig(grouping={"wait": "10s", "interval": "1m"})
    for i in range(3):
        r.find(Grade.ORANGE, station=f"g{i}")
    assert r.sent == []
    r.tick(10 * S)
    assert r.who() == [("a1", ("raised",) * 3)]
    r.deliver_all()
    r.clock.advance(5 * S)                                     # within the group interval
    r.find(Grade.RED, station="g0")                            # g0 orange → red
    assert r.sent and all(d.kinds == ["upgraded"] for d in r.sent)
