"""The readings CSV of replay and backtest: rows sorted by event time, bad rows named with
their file and line."""

from __future__ import annotations

import pytest

from yujing.readings_csv import BacktestInputError, read_readings


def test_backtest_names_a_row_with_too_many_fields(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("ts,station,metric,value\n"
                   "2025-06-01T00:00:00+08:00,S1,rain_mm,1\n"
                   "2025-06-01T00:10:00+08:00,S1,rain_mm,1,5\n", encoding="utf-8")
    with pytest.raises(BacktestInputError, match=r"bad\.csv:3: 5 fields where the header has 4"):
        read_readings(csv)


def test_backtest_rejects_a_file_without_the_columns(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("time,station,value\n2025-06-01T00:00:00+08:00,S1,1\n", encoding="utf-8")
    with pytest.raises(BacktestInputError, match=r"bad\.csv:1: header .* lacks ts, metric"):
        read_readings(csv)


def test_read_readings_sorts_by_event_time_across_offsets(tmp_path):
    csv = tmp_path / "r.csv"
    csv.write_text("ts,station,metric,value\n"
                   "2025-06-01T08:10:00+08:00,B,rain_mm,2\n"
                   "2025-06-01T00:00:00Z,A,rain_mm,1\n"  # = 08:00+08:00, earlier
                   "2025-06-01T08:10:00+08:00,A,water_level_m,3.5\n", encoding="utf-8")
    data = read_readings(csv)
    assert [data.stations[i] for i in data.si] == ["A", "B", "A"]
    assert [data.metrics[i] for i in data.mi] == ["rain_mm", "rain_mm", "water_level_m"]
    assert data.ts.tolist() == [1748736000000, 1748736600000, 1748736600000]
    assert data.val.tolist() == [1.0, 2.0, 3.5]
