"""No-data findings depend on the readings, not on envelope sizes or when the timer ran.

The backtest replays in large chunks, the worker in small envelopes with a
timer; both must report the same outages at the same event times.
"""

from __future__ import annotations

import numpy as np

from yujing.domain import Grade, Reading
from yujing.envelope import decode, encode_readings
from yujing.pipeline import Pipeline
from yujing.rules.nodata import NoDataTracker
from yujing.stations import Registry, Station

M = 60_000
LIMIT = 15 * M  # 5 m interval x factor 3


def feed(times: dict[str, list[int]], cuts: list[int], check_every: int) -> list[tuple]:
    """Readings of all stations merged in time order, cut into envelopes at ``cuts``."""
    stations = sorted(times)
    rows = sorted((t, i) for i, s in enumerate(stations) for t in times[s])
    ts = np.array([t for t, _ in rows], dtype=np.int64)
    si = np.array([i for _, i in rows], dtype=np.uint32)
    tr = NoDataTracker({s: 5 * M for s in stations + ["NEVER"]})
    out = []
    bounds = [0, *cuts, len(rows)]
    for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
        tr.observe(stations, si[a:b], ts[a:b])
        if k % check_every == 0:
            out += tr.check(int(ts[:b].max()))
    out += tr.check(int(ts.max()))
    return [(f.ts // M, f.station, int(f.grade), f.clear) for f in out]


TIMES = {
    "A": list(range(0, 300, 1)),                                   # steady
    "B": list(range(0, 100, 2)) + list(range(140, 300, 2)),        # 40 min gap from 98 to 140
    "C": list(range(0, 60, 5)) + list(range(80, 90, 5)) + list(range(200, 300, 5)),  # two gaps
    "D": list(range(0, 250, 1)),                                   # silent at the end
}
TIMES = {s: [t * M for t in ts] for s, ts in TIMES.items()}
EXPECTED = sorted([
    (15, "NEVER", int(Grade.BLUE), False),      # never reported: first reading (0) + 15 min
    (98 + 15, "B", int(Grade.BLUE), False), (140, "B", 0, True),
    (55 + 15, "C", int(Grade.BLUE), False), (80, "C", 0, True),
    (85 + 15, "C", int(Grade.BLUE), False), (200, "C", 0, True),
    (249 + 15, "D", int(Grade.BLUE), False),
])


def test_one_chunk_finds_every_gap_at_its_event_time():
    assert sorted(feed(TIMES, [], 1)) == EXPECTED


def test_many_envelopes_and_a_sparse_timer_give_the_same_findings():
    n = sum(len(v) for v in TIMES.values())
    rng = np.random.default_rng(1)
    for check_every in (1, 3, 50):
        cuts = sorted(rng.choice(np.arange(1, n), size=60, replace=False).tolist())
        assert sorted(feed(TIMES, cuts, check_every)) == EXPECTED


def test_a_station_found_silent_by_the_timer_clears_at_its_next_reading():
    tr = NoDataTracker({"S": 5 * M})
    tr.observe(["S"], np.array([0], np.uint32), np.array([0], np.int64))
    (off,) = tr.check(30 * M)
    assert (off.ts, off.grade, off.clear) == (15 * M, Grade.BLUE, False)
    assert tr.check(40 * M) == []  # still silent: said once
    tr.observe(["S"], np.array([0, 0], np.uint32), np.array([50 * M, 51 * M], np.int64))
    (back,) = tr.check(51 * M)
    assert (back.ts, back.clear) == (50 * M, True)
    assert "after 50 min" in back.reason


def test_wall_clock_check_waits_a_grace_period_after_start_and_ignores_old_backlog():
    """A restarted worker replaying an hour-old backlog must not page about silence at once."""
    reg = Registry([Station(id="a", name="A", kind="k", expected_interval="5m"),
                    Station(id="b", name="B", kind="k", expected_interval="5m")])
    p = Pipeline([], reg)
    now = 1_750_000_000_000
    old = [Reading("a", "x", now - 3_600_000 + i * 300_000, 1.0) for i in range(3)]
    p.handle(decode(encode_readings(old)), now)
    assert p.check_nodata(now, "wall") == []                # start: grace
    assert p.check_nodata(now + 60_000, "wall") == []       # still within grace
    later = p.check_nodata(now + 130_000, "wall")
    # a's newest reading is 50 min old: offline; b never reported, timed from the first check
    assert [(e.station, e.kind.value) for e in later] == [("a", "raised")]
    assert [(e.station, e.kind.value) for e in p.check_nodata(now + 16 * 60_000, "wall")] == [
        ("b", "raised")]
