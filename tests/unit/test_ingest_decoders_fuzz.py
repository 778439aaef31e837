"""Property tests of the ingest decoders on hostile input: JSON readings, records and lists
(``parse.py``), InfluxDB line protocol (``lineproto.py``) and events (``events.py``).

Whatever the bytes, a decoder returns readings and rejections; it never raises. Every
rejection has a reason a device's developer can read; every reading it returns is one the
pipeline can take (whole-matched ids, a finite value, an integer time); and the reply's
accounting holds: no item is both kept and refused, none is lost. Input: random bytes, JSON
of any shape (deep nesting included), and near-valid items with one field broken.
"""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yujing.connectors.events import parse_events
from yujing.connectors.lineproto import parse_lines_indexed
from yujing.connectors.parse import METRIC, STATION, Rejected, parse_payload_indexed
from yujing.domain import Reading

EXAMPLES = 200
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NOW = 1_748_736_000_000

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
json_docs = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                         | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=25)
keys = st.sampled_from(["station", "metric", "ts", "value", "quality", "seq", "unit", "rain_mm",
                        "type", "camera", "confidence", "bbox", "image_url", "detail", "id"])
odd = (scalars | st.just("DG-HM-R01\n") | st.just("2025-06-01T08:00:00+08:00")
       | st.just(1e308) | st.just(-0.0) | st.just("NaN") | st.just([[[]]]) | st.just({"a": {}})
       | st.just("x" * 5000) | st.just("\u0000") | st.just("ts\ud800".encode("utf-8", "surrogatepass")
                                                            .decode("utf-8", "replace")))
good_reading = {"station": "DG-HM-R01", "metric": "rain_mm", "ts": NOW, "value": 1.5}
good_event = {"type": "smoke", "camera": "CAM-QX-03", "ts": NOW, "confidence": 0.9,
              "bbox": [0.1, 0.1, 0.2, 0.2], "image_url": "https://cams.example/f.jpg"}


@st.composite
def near(draw, base: dict) -> dict:
    """A valid item with a few fields replaced, removed or added."""
    item = dict(base)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(keys)
        if draw(st.booleans()) and key in item:
            del item[key]
        else:
            item[key] = draw(odd)
    return item


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


def _json(value) -> bytes:
    """As a device might send it: big integers, NaN and lone surrogates included."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


json_bodies = st.one_of(
    st.binary(max_size=300),
    json_docs.map(_json),
    st.lists(st.one_of(near(good_reading), json_docs), max_size=8).map(_json),
    near(good_reading).map(_json),
    st.integers(1, 3000).map(deep),
    st.integers(1, 3000).map(lambda n: b'{"station":' * n + b"1" + b"}" * n),
    st.integers(1, 1200).map(lambda n: _json([good_reading, {"station": 0}])
                             .replace(b"0}]", b"[" * n + b"]" * n + b"}]")),
)


def _sound(ok: list, bad: list[Rejected], is_events: bool = False) -> None:
    """What every decoder promises of its result."""
    for r in bad:
        assert isinstance(r, Rejected) and isinstance(r.reason, str) and r.reason.strip(), r
        assert isinstance(r.code, str) and r.code
        assert r.index is None or isinstance(r.index, int)
    for row in ok:
        reading = row[1]
        assert isinstance(reading, Reading)
        assert STATION.fullmatch(reading.station), reading
        assert METRIC.fullmatch(reading.metric), reading
        assert isinstance(reading.ts, int)
        assert isinstance(reading.value, float | int) and math.isfinite(reading.value), reading
        if is_events:
            assert isinstance(row[2], dict)
            assert len(_json(row[2])) < 64 * 1024     # the event detail stays small


@FUZZ
@given(raw=json_bodies, bound=st.none() | st.just({"station": "DG-HM-R01"}),
       cap=st.none() | st.integers(1, 10))
def test_json_readings_decode_or_refuse_with_reasons(raw, bound, cap):
    ok, bad = parse_payload_indexed(raw, bound, cap)
    _sound(ok, bad)
    if bound is not None:
        assert all(r.station == "DG-HM-R01" for _, r in ok), "the topic's station binds"
    if cap is not None and any(r.code == "too_many" for r in bad):
        assert ok == [] and len(bad) == 1


@FUZZ
@given(raw=st.lists(near(good_reading), min_size=1, max_size=10))
def test_every_item_of_a_list_is_kept_or_refused_by_its_index(raw):
    ok, bad = parse_payload_indexed(_json(raw))
    _sound(ok, bad)
    seen = {i for i, _ in ok} | {r.index for r in bad}
    # a record yields one reading per metric, so an index may be both kept and refused
    # (one metric good, another bad); but no item disappears without a word
    assert seen == set(range(len(raw)))


lines = st.one_of(
    st.text(max_size=120),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.builds(lambda m, tags, fields, ts: f"{m}{tags} {fields}{ts}",
              st.sampled_from(["rain_gauge", "m", "", "a\\ b", "x,y"]),
              st.lists(st.sampled_from([",station=DG-HM-R01", ",station=DG-HM-R01\\n",
                                        ",metric=rain_mm", ",station=", ",=", ",a=b=c",
                                        ",station=" + "D" * 100]), max_size=3).map("".join),
              st.lists(st.sampled_from(["rain_mm=4.5", "value=1i", "v=\"s\"", "x=t",
                                        "rain_mm=1e400", "rain_mm=-inf", "rain_mm=nan",
                                        "a=", "=1", "b=1u", "c=\"unterminated"]),
                       min_size=0, max_size=4).map(",".join),
              st.sampled_from(["", " 1748736000000", " -1", " 99999999999999999999999",
                               " 1.5", " x", " 1748736000000000000"])),
)


@FUZZ
@given(body=st.lists(lines, max_size=6).map("\n".join), raw=st.binary(max_size=100),
       precision=st.sampled_from(["ns", "us", "ms", "s", "h", "", "NS"]),
       use_raw=st.booleans())
def test_line_protocol_decodes_or_refuses_with_reasons(body, raw, precision, use_raw):
    data = raw if use_raw else body.encode("utf-8", "surrogatepass")
    ok, bad = parse_lines_indexed(data, precision, NOW)
    _sound(ok, bad)
    n_lines = data.count(b"\n") + 1
    assert all(i is None or 1 <= i <= n_lines for i, _ in ok)


event_bodies = st.one_of(
    json_bodies,
    near(good_event).map(_json),
    st.lists(st.one_of(near(good_event), near({"type": "vent_burst", "station": "ENT17-DUST-2",
                                               "ts": NOW, "detail": {"line": "2"}})),
             max_size=6).map(_json),
    st.integers(1, 2000).map(lambda n: _json({**good_event, "detail": {}})
                             .replace(b'"detail":{}', b'"detail":' + b"[" * n + b"]" * n)),
)


@FUZZ
@given(raw=event_bodies, cap=st.none() | st.integers(1, 10))
def test_events_decode_or_refuse_with_reasons(raw, cap):
    ok, bad = parse_events(raw, cap)
    _sound(ok, bad, is_events=True)
