"""clock.local_time: the one formatter of instants for people (was two UTC+8 copies)."""

from __future__ import annotations

import random
import time

import pytest

from yujing.clock import local_time


def utc8_arithmetic(ts_ms: int) -> str:
    """What alerts/templates.py and pipeline.py each computed before (UTC+8 hard-coded)."""
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts_ms / 1000 + 8 * 3600))


CASES = [
    ("epoch", 0, "1970-01-01 08:00"),
    ("one ms before the epoch floors to the previous second", -1, "1970-01-01 07:59"),
    ("last ms of a minute", 59_999, "1970-01-01 08:00"),
    ("16:00 in Dongguan", 1_748_764_800_000, "2025-06-01 16:00"),
    ("UTC evening is the next local day", 1_748_808_000_000, "2025-06-02 04:00"),
]


@pytest.mark.parametrize("name,ts,expected", CASES, ids=[c[0] for c in CASES])
def test_default_zone_is_asia_shanghai(name, ts, expected):
    assert local_time(ts) == expected


def test_same_text_as_the_old_utc8_arithmetic_since_1992():
    rng = random.Random(7)
    start, end = 694_224_000_000, 4_102_444_800_000   # 1992-01-01 .. 2100-01-01 UTC
    for ts in [start, end] + [rng.randrange(start, end) for _ in range(20_000)]:
        assert local_time(ts) == utc8_arithmetic(ts), ts


def test_another_zone_is_a_parameter():
    assert local_time(1_748_764_800_000, "UTC") == "2025-06-01 08:00"
    assert local_time(1_748_764_800_000, "Europe/Berlin") == "2025-06-01 10:00"
