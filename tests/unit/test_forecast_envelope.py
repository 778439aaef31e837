"""Forecasts in batch envelopes: version 2 carries issue times, version 1 stays as it was."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from yujing.domain import Forecast, Reading
from yujing.envelope import FORECAST_VERSION, VERSION, Envelope, ForecastEnvelope, decode, encode_readings

T = 1_748_764_800_000
H = 3_600_000


def test_an_envelope_without_forecasts_is_version_1_byte_for_byte():
    readings = [Reading("DG001", "rain_mm", T, 1.5), Reading("DG002", "rain_mm", T + 1, 0.0)]
    payload = encode_readings(readings, partition=2, recv_ms=T)
    old = msgspec.msgpack.encode(Envelope(
        VERSION, 2, T, ["DG001", "DG002"], ["rain_mm"], np.array([0, 1], "<u4").tobytes(),
        np.array([0, 0], "<u4").tobytes(), np.array([T, T + 1], "<i8").tobytes(),
        np.array([1.5, 0.0], "<f8").tobytes()))
    assert payload == old
    assert decode(payload).issued is None


def test_forecasts_and_readings_share_an_envelope_and_come_back_apart():
    mixed = [Reading("DG001", "rain_mm", T, 1.5),
             Forecast("DG001", "rain_mm_fcst", T + H, 12.0, T),
             Reading("DG001", "rain_mm", T + 300_000, 0.5),
             Forecast("DG001", "rain_mm_fcst", T + 2 * H, 3.0, T)]
    cols = decode(encode_readings(mixed))
    assert msgspec.msgpack.decode(encode_readings(mixed))[0] == FORECAST_VERSION
    assert [cols.reading(i) for i in range(len(cols))] == mixed
    obs, fc = cols.split()
    assert [obs.reading(i) for i in range(len(obs))] == [mixed[0], mixed[2]]
    assert obs.issued is None
    assert [fc.reading(i) for i in range(len(fc))] == [mixed[1], mixed[3]]
    assert fc.issued.tolist() == [T, T]


def test_a_forecast_first_in_the_envelope_still_marks_later_readings_as_observations():
    mixed = [Forecast("S", "rain_mm_fcst", T + H, 2.0, T), Reading("S", "rain_mm", T, 1.0)]
    obs, fc = decode(encode_readings(mixed)).split()
    assert obs.ts.tolist() == [T] and fc.ts.tolist() == [T + H]


def test_version_2_without_its_issue_column_is_refused():
    bad = msgspec.msgpack.encode(Envelope(FORECAST_VERSION, 0, 0, ["a"], ["m"], bytes(4), bytes(4),
                                          bytes(8), bytes(8)))
    with pytest.raises(ValueError, match="issue-time column"):
        decode(bad)


def test_version_1_with_an_issue_column_is_refused():
    bad = msgspec.msgpack.encode(ForecastEnvelope(VERSION, 0, 0, ["a"], ["m"], bytes(4), bytes(4),
                                                  bytes(8), bytes(8), bytes(8)))
    with pytest.raises(ValueError, match="issue-time column"):
        decode(bad)
