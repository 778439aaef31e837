"""The fast JSON path (yujing.connectors.fastparse) against the item-by-item one (parse.py).

The fast path must give exactly parse.py's readings, or step aside (None) so parse.py
answers: checked on clean bodies (where it must not step aside), on every kind of bad
item, and on generated bodies.
"""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from yujing.connectors.fastparse import fast_readings, parse_readings
from yujing.connectors.parse import parse_payload_indexed

TS = 1_748_764_800_000  # 2025-06-01T08:00:00Z
OK = {"station": "DG001", "metric": "rain_mm", "ts": TS, "value": 1.5}


def same_as_item_path(raw: bytes, defaults=None, max_items=None) -> list | None:
    """The fast result, after checking it is None or parse.py's readings, with no rejection."""
    fast = fast_readings(raw, defaults, max_items)
    slow, bad = parse_payload_indexed(raw, defaults, max_items)
    if fast is not None:
        assert bad == []
        assert fast == slow
        assert [type(r) for _, r in fast] == [type(r) for _, r in slow]
        assert [type(r.value) for _, r in fast] == [float] * len(fast)
    assert parse_readings(raw, defaults, max_items) == (slow, bad)
    return fast


def test_clean_bodies_take_the_fast_path() -> None:
    many = [{**OK, "station": f"S{i % 7}", "ts": TS + i, "value": i % 3} for i in range(50)]
    assert len(same_as_item_path(orjson.dumps(many))) == 50
    assert same_as_item_path(orjson.dumps(OK)) == [(None, same_as_item_path(
        orjson.dumps([OK]))[0][1])]
    iso = {**OK, "ts": "2025-06-01T08:00:00+08:00", "unit": "mm", "quality": "good", "seq": 3}
    assert same_as_item_path(orjson.dumps([iso, {**OK, "ts": TS + 0.9}])) is not None
    # the topic's station and metric complete the items
    topic = {"station": "DG001", "metric": "rain_mm"}
    assert same_as_item_path(orjson.dumps([{"ts": TS, "value": 2}, OK]), topic) is not None
    assert same_as_item_path(orjson.dumps([{"station": "X1", "ts": TS, "value": 2}]),
                             {"metric": "rain_mm"}) is not None


BAD_ITEMS = [
    {**OK, "station": "bad station"}, {**OK, "metric": "Rain"}, {**OK, "value": True},
    {**OK, "value": "1"}, {**OK, "value": None}, {**OK, "ts": 1_700_000_000},
    {**OK, "ts": "2025-06-01T08:00:00"}, {**OK, "ts": "yesterday"}, {**OK, "ts": True},
    {**OK, "unit": "cm"}, {**OK, "unit": None}, {**OK, "extra": 1},
    {**OK, "quality": {"nested": [1]}}, {"station": "DG001", "ts": TS, "rain_mm": 1.0},
    {k: v for k, v in OK.items() if k != "ts"}, {k: v for k, v in OK.items() if k != "station"},
    [OK], 7, "text", None, {**OK, "station": "DG001\n"},
]


def test_any_bad_item_leaves_the_body_to_the_item_path() -> None:
    for bad in BAD_ITEMS:
        assert same_as_item_path(orjson.dumps([OK, bad, OK])) is None, bad
    topic = {"station": "DG002", "metric": "rain_mm"}   # the item names another station
    assert same_as_item_path(orjson.dumps([OK]), topic) is None
    assert same_as_item_path(orjson.dumps([{"ts": TS, "value": 1}])) is None  # nothing names it
    for raw in (b"", b"[", b"[]", b"{}", b'[{"ts": 1e999}]',
                b'[{"station": "DG001", "metric": "rain_mm", "ts": 1748764800000000000000, "value": 1}]',
                b'[{"station": "DG001", "metric": "rain_mm", "ts": 1748764800000, "value": 1e999}]',
                b"\xef\xbb\xbf[]", b"NaN",
                b'[{"station": "\\ud800", "metric": "rain_mm", "ts": 1, "value": 1}]'):
        assert same_as_item_path(raw) is None, raw
    assert same_as_item_path(orjson.dumps([OK] * 5), max_items=4) is None


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=8))
fields = {"station": st.sampled_from(["DG001", "S-2", "x y", "", 5]),
          "metric": st.sampled_from(["rain_mm", "water_level_m", "Bad", "rain_mm_fcst"]),
          "ts": st.one_of(st.integers(TS - 10**12, TS + 10**12), st.floats(1e12, 3e12),
                          st.sampled_from(["2025-06-01T08:00:00Z", "2025-06-01", "x"])),
          "value": st.one_of(st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False), st.booleans()),
          "unit": st.sampled_from(["mm", "m", "cm", "MM "]), "quality": scalars, "seq": scalars,
          "other": scalars}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.fixed_dictionaries({}, optional=fields), max_size=6),
       st.sampled_from([None, {"metric": "rain_mm"}, {"station": "DG001", "metric": "rain_mm"}]))
def test_generated_bodies_agree(items, defaults) -> None:
    try:
        raw = orjson.dumps(items)
    except (orjson.JSONEncodeError, TypeError):   # an infinite float, an int over 64 bits
        return
    same_as_item_path(raw, defaults)
