"""Batch envelopes (yujing.envelope): round trip and rejection of bad records."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yujing.domain import Forecast, Reading
from yujing.envelope import (
    VERSION,
    Envelope,
    EnvelopeBuilder,
    concat,
    count,
    decode,
    encode_readings,
)

TS = 1_748_764_800_000
READINGS = [
    Reading("DG001", "rain_mm", TS, 0.1),
    Reading("DG002", "rain_mm", TS + 1, 2.5),
    Reading("DG001", "water_level_m", TS + 2, -1.25),
    Reading("DG001", "rain_mm", TS + 3, 0.0),
]


def raw_envelope(n_si=4, n_mi=4, n_ts=8, n_val=8, stations=("a",), metrics=("m",), v=VERSION,
                 si_value=0) -> bytes:
    """An envelope with the given column sizes in bytes (one reading is 4, 4, 8, 8)."""
    si = np.full(n_si // 4, si_value, "<u4").tobytes() + bytes(n_si % 4)
    return msgspec.msgpack.encode(Envelope(v, 0, 0, list(stations), list(metrics), si,
                                           bytes(n_mi), bytes(n_ts), bytes(n_val)))


def test_round_trip():
    payload = encode_readings(READINGS, partition=3, recv_ms=TS + 50)
    cols = decode(payload)
    assert (cols.partition, cols.recv_ms, len(cols)) == (3, TS + 50, 4)
    assert [cols.reading(i) for i in range(len(cols))] == READINGS
    assert cols.stations == ["DG001", "DG002"]  # dictionary-encoded, each name once
    assert cols.metrics == ["rain_mm", "water_level_m"]
    assert cols.si.tolist() == [0, 1, 0, 0]
    assert cols.mi.tolist() == [0, 0, 1, 0]
    assert cols.ts.dtype == np.int64 and cols.val.dtype == np.float64
    assert count(payload) == 4


def test_builder_keeps_the_first_receive_time_and_clears():
    b = EnvelopeBuilder(partition=1)
    b.add(READINGS[0], recv_ms=100)
    b.add(READINGS[1], recv_ms=200)
    assert len(b) == 2
    cols = decode(b.build())
    assert cols.recv_ms == 100 and cols.partition == 1
    b.clear()
    assert len(b) == 0
    b.add(READINGS[2], recv_ms=300)
    cols = decode(b.build())
    assert [cols.reading(0)] == [READINGS[2]] and cols.recv_ms == 300
    assert cols.stations == ["DG001"] and cols.metrics == ["water_level_m"]


def test_empty_envelope_round_trips():
    cols = decode(encode_readings([]))
    assert len(cols) == 0 and cols.stations == [] and cols.ts.size == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.builds(
    Reading,
    station=st.sampled_from(["A", "B", "DG-01", "c.d"]),
    metric=st.sampled_from(["rain_mm", "wind_speed_ms"]),
    ts=st.integers(-(2 ** 63), 2 ** 63 - 1),
    value=st.floats(allow_nan=False, width=64),
), max_size=50), st.integers(0, 1023), st.integers(0, 2 ** 62))
def test_round_trip_property(readings, partition, recv_ms):
    cols = decode(encode_readings(readings, partition, recv_ms))
    assert [cols.reading(i) for i in range(len(cols))] == readings
    assert cols.partition == partition
    assert cols.recv_ms == (recv_ms if readings else 0)


@pytest.mark.parametrize("garbage", [b"", b"\x00", b"hello", b"\x93\x01\x02\x03",
                                     msgspec.msgpack.encode({"v": 1}), b"\xc1"])
def test_garbage_raises_value_error_with_a_reason(garbage):
    with pytest.raises(ValueError, match="not a yujing envelope: "):
        decode(garbage)


def test_wrong_types_inside_an_envelope_are_rejected():
    bad = msgspec.msgpack.encode([1, 0, 0, "not-a-list", [], b"", b"", b"", b""])
    with pytest.raises(ValueError, match="not a yujing envelope"):
        decode(bad)


def test_unsupported_version():
    # version 2 is the envelope with forecasts (test_forecast_envelope.py)
    with pytest.raises(ValueError,
                       match=r"envelope version 3 is not supported \(this worker reads 1 and 2\)"):
        decode(raw_envelope(v=3))


@pytest.mark.parametrize("lengths", [
    dict(n_si=8),  # two station indices for one reading
    dict(n_mi=0),
    dict(n_val=16),
    dict(n_ts=16),
    dict(n_ts=12, n_val=12),  # not a whole number of int64s
    dict(n_si=6, n_mi=6, n_ts=12, n_val=12),
])
def test_columns_length_mismatch(lengths):
    with pytest.raises(ValueError, match="envelope columns differ in length"):
        decode(raw_envelope(**lengths))


def test_index_out_of_range():
    with pytest.raises(ValueError, match="envelope index out of range"):
        decode(raw_envelope(si_value=1))  # one station name, index 1


def test_count_of_garbage_is_a_value_error():
    with pytest.raises(ValueError):
        count(b"garbage")


def _readings(cols) -> list[Reading]:
    return [cols.reading(i) for i in range(len(cols))]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from(["DG001", "DG002", "DG003"]),
                                   st.sampled_from(["rain_mm", "water_level_m"]),
                                   st.integers(0, 10_000),
                                   st.floats(-5, 500, allow_nan=False)), max_size=6),
                min_size=1, max_size=5))
def test_concatenated_envelopes_are_their_readings_in_arrival_order(parts):

    envs = [decode(encode_readings([Reading(s, m, TS + t, v) for s, m, t, v in p], recv_ms=i + 1))
            for i, p in enumerate(parts)]
    merged = concat(envs)
    assert _readings(merged) == [r for c in envs for r in _readings(c)]
    assert len(set(merged.stations)) == len(merged.stations)   # names stay unique
    assert len(set(merged.metrics)) == len(merged.metrics)
    assert merged.recv_ms == envs[0].recv_ms and merged.issued is None


def test_a_forecast_envelope_is_not_concatenated():


    fc = decode(encode_readings([Forecast("DG001", "rain_mm_fcst", TS, 3.0, TS - 1)]))
    with pytest.raises(ValueError, match="forecast"):
        concat([decode(encode_readings(READINGS)), fc])
