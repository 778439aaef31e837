"""The pure parts of the gateway's flood caps and hostile-input handling (issue 12, 2 and 3)."""

from __future__ import annotations

import orjson

from yujing.connectors.admission import RateLimit, summary
from yujing.connectors.events import deeper_than, parse_events
from yujing.connectors.kafka import render_raw
from yujing.connectors.parse import Rejected, load_items, parse_payload_indexed

TS = 1_748_764_800_000


def nested(depth: int) -> list:
    x: list = []
    for _ in range(depth):
        x = [x]
    return x


def test_a_dead_letter_of_an_item_orjson_cannot_write_is_bounded_text():
    text = render_raw(nested(400), 1024)
    assert text.startswith("[[[") and "..." in text and len(text) < 100
    assert render_raw({"a": 1}, 1024) == '{"a":1}'
    assert len(render_raw(list(range(100_000)), 64)) == 64


def test_depth_is_measured_without_recursion():
    assert not deeper_than({"a": 1}, 1)
    assert deeper_than({"a": {"b": 1}}, 1)
    deep: dict = {}
    for _ in range(5000):
        deep = {"a": deep}
    assert deeper_than(deep, 8)


def test_an_event_detail_nested_too_deeply_is_rejected_not_raised():
    body = (b'{"type":"smoke","camera":"DG-FF-C01","ts":%d,"confidence":0.9,"detail":' % TS
            + b'{"a":' * 300 + b"1" + b"}" * 300 + b"}")
    ok, bad = parse_events(body)
    assert ok == [] and "nested at most 8 levels" in bad[0].reason


def test_too_many_items_refuse_the_body_before_any_item_is_checked():
    items, is_list, refused = load_items(b"[" + b"0," * 99 + b"0]", max_items=50)
    assert items == [] and refused is not None and refused.code == "too_many"
    assert "100 in one request or message, the limit is 50" in refused.reason
    ok, bad = parse_payload_indexed(b"[0,0]", None, max_items=2)
    assert ok == [] and len(bad) == 2 and {b.code for b in bad} == {"invalid"}


def test_rate_limit_counts_items_and_tells_how_long_to_wait():
    rate = RateLimit("100/minute")
    assert rate.take("gw-a", 80) is None
    wait = rate.take("gw-a", 30)
    assert wait is not None and 1 <= wait <= 60
    assert rate.take("gw-b", 100) is None        # each token has its own allowance
    assert rate.wait_s("gw-b") is not None and rate.wait_s("gw-a") is None
    assert RateLimit(None).take("x", 10**9) is None


def test_summary_counts_codes():
    rs = [Rejected(i, "r", None, "invalid") for i in range(3)] + [Rejected(9, "r", None, "json")]
    assert summary(rs).startswith("4 more item(s) of this request rejected (invalid ×3, json ×1)")


def test_payload_roundtrip_unchanged_for_valid_lists():
    body = orjson.dumps([{"station": "DG-HM-R01", "metric": "rain_mm", "ts": TS, "value": 1}])
    ok, bad = parse_payload_indexed(body, None, max_items=10)
    assert [i for i, _ in ok] == [0] and bad == []
