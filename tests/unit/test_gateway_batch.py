"""The gateway's per-batch checks give what its per-item checks give.

``Gateway.screen`` first tries the whole batch at once (``screen_clean``: scope per
station, ``validate.all_pass``, ``Deduper.offer_all_new``) and looks at the items one by
one only when that says "not sure". A second gateway with the batch step switched off is
the reference: for the same generated batches both must keep, reject and count alike and
end with the same duplicate memory. The envelope side (``EnvelopeBuilder.add_many``, the
Batcher's ``by_partition``) is checked against reading-by-reading adds the same way.
"""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from yujing import clock
from yujing.config import Config
from yujing.connectors.auth import OPEN, Identity
from yujing.connectors.gateway import Gateway
from yujing.connectors.kafka import by_partition
from yujing.connectors.validate import Deduper, Limits, all_pass, check
from yujing.domain import Forecast, Reading
from yujing.envelope import EnvelopeBuilder, decode, partition_for

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3_600_000


_PAIR: list[Gateway] = []


def gateways() -> tuple[Gateway, Gateway]:
    """A gateway and its reference (the batch step switched off), with empty duplicate
    memories; built once, as loading the registry is the slow part."""
    if not _PAIR:
        cfg = Config.model_validate({"worker": {"registry": str(ROOT / "stations.yaml")},
                                     "gateway": {"unknown_station": "reject"}})
        _PAIR[:] = Gateway(cfg, "127.0.0.1:9", None), Gateway(cfg, "127.0.0.1:9", None)
        _PAIR[1].screen_clean = lambda *args: None   # the reference: item by item only
    for gw in _PAIR:
        gw.dedup = Deduper(6)
    return _PAIR[0], _PAIR[1]


stations = st.sampled_from(["DG-HM-R01", "DG-CA-R01", "DG-HJ-R01", "XX-UNKNOWN"])
metrics = st.sampled_from(["rain_mm", "water_level_m", "humidity_pct", "bench_x", "rain_mm_fcst"])
offsets = st.sampled_from([-HOUR, -2 * HOUR, HOUR, -30 * 24 * HOUR])   # ok, ok, future, old
values = st.one_of(st.sampled_from([0.0, 1.5, 3.0, 600.0, -1.0, math.nan, math.inf]),
                   st.floats(-10, 1000, allow_nan=False))


@st.composite
def readings(draw) -> Reading:
    station, metric, ts, value = draw(stations), draw(metrics), draw(offsets), draw(values)
    if draw(st.integers(0, 9)) == 0:
        return Forecast(station, metric, ts, value, ts - HOUR)
    return Reading(station, metric, ts, value)


def at(now: int, r: Reading) -> Reading:
    """``r`` with its time offset made absolute (the strategies draw offsets from now)."""
    if isinstance(r, Forecast):
        return Forecast(r.station, r.metric, now + r.ts, r.value, now + r.issued)
    return Reading(r.station, r.metric, now + r.ts, r.value)


batches = st.lists(st.lists(readings(), max_size=8), min_size=1, max_size=5)
idents = st.sampled_from([OPEN, Identity("hm", stations=("DG-HM-*", "DG-CA-R01")),
                          Identity("none", stations=("ZZ-*",))])


@settings(max_examples=300, deadline=None)
@given(batches, idents)
def test_screen_batch_equals_item_by_item(batches, ident) -> None:
    fast, ref = gateways()
    now = clock.now_ms()
    for batch in batches:
        items = [(i, at(now, r)) for i, r in enumerate(batch)]
        a, b = fast.screen(items, ident), ref.screen(items, ident)
        assert (a.keep, a.kept_index, a.duplicates, a.corrections) == (
            b.keep, b.kept_index, b.duplicates, b.corrections)
        assert [(r.index, r.code, r.reason) for r in a.rejected] == [
            (r.index, r.code, r.reason) for r in b.rejected]
        assert list(fast.dedup._seen.items()) == list(ref.dedup._seen.items())


def test_a_clean_batch_is_screened_at_once_and_a_repeat_is_not() -> None:
    fast, _ = gateways()
    now = clock.now_ms()
    items = [(i, Reading("DG-HM-R01", "rain_mm", now - HOUR - i, 1.0)) for i in range(4)]
    ident = Identity("hm", stations=("DG-HM-*",))
    s = fast.screen_clean(items, ident, now, fast.known())
    assert s is not None and s.keep == [r for _, r in items] and s.kept_index == [0, 1, 2, 3]
    assert fast.screen_clean(items, ident, now, fast.known()) is None   # repeats: item by item
    assert fast.screen(items, ident).duplicates == 4
    other = [(0, Reading("DG-CA-R01", "rain_mm", now - HOUR, 1.0))]
    assert fast.screen_clean(other, ident, now, fast.known()) is None   # out of scope
    assert fast.screen(other, ident).rejected[0].code == "forbidden"


@settings(max_examples=300, deadline=None)
@given(st.lists(readings(), max_size=10))
def test_all_pass_is_check_on_every_reading(rs) -> None:
    now = clock.now_ms()
    rs = [at(now, r) for r in rs]
    limits = Limits(reject_unknown_stations=True)
    known = {"DG-HM-R01", "DG-CA-R01", "DG-HJ-R01"}.__contains__
    each = bool(rs) and all(check(r, now, limits, known) is None for r in rs)
    if any(isinstance(r, Forecast) for r in rs):
        assert not all_pass(rs, now, limits, known)   # forecasts: always item by item
    else:
        assert all_pass(rs, now, limits, known) == each


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(readings(), max_size=6), max_size=6), st.integers(0, 8))
def test_offer_all_new_is_offer_on_each(batches, capacity) -> None:
    batched, single = Deduper(capacity), Deduper(capacity)
    for batch in batches:
        before = list(batched._seen.items())
        if batched.offer_all_new(batch):
            assert [single.offer(r) for r in batch] == ["new"] * len(batch)
        else:
            assert list(batched._seen.items()) == before   # nothing remembered
            batched = Deduper(capacity)
            batched._seen.update(before)
            [batched.offer(r) for r in batch]
            [single.offer(r) for r in batch]
        assert list(batched._seen.items()) == list(single._seen.items())


@given(st.lists(readings(), max_size=30), st.integers(1, 5))
def test_add_many_and_the_partition_split_build_the_same_envelopes(rs, partitions) -> None:
    one, many = EnvelopeBuilder(0), EnvelopeBuilder(0)
    for r in rs:
        one.add(r, 7)
    many.add_many(rs[:3], 7)
    many.add_many(rs[3:], 7)
    assert one.build() == many.build()
    parts = by_partition(rs, partitions)
    assert sum(map(len, parts.values())) == len(rs)
    for p, part in parts.items():
        assert part == [r for r in rs if partition_for(r.station, partitions) == p]
    if rs:
        assert len(decode(many.build())) == len(rs)
