"""Forecasts in a readings CSV (optional ``issued`` column) replayed by the backtest."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from yujing.backtest.replay import replay
from yujing.domain import Forecast
from yujing.pipeline import Pipeline
from yujing.readings_csv import BacktestInputError, read_readings
from yujing.rules.loader import load_rules
from yujing.stations import load_registry

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 6, 1, tzinfo=timezone(timedelta(hours=8)))


def write(path: Path) -> Path:
    """Dry gauge for 4 h; issue 1 at 1h (52 mm within 5 h), a lower issue 2 at 2h."""
    rows = ["ts,station,metric,value,issued"]
    rows += [f"{(T0 + timedelta(minutes=5 * k)).isoformat()},DG-HM-R01,rain_mm,0,"
             for k in range(48)]
    for issued, first, values in ((1, 2, [10, 20, 15, 5, 2, 0]), (2, 3, [2, 3, 1, 0, 0, 0])):
        rows += [f"{(T0 + timedelta(hours=first + k)).isoformat()},DG-HM-R01,rain_mm_fcst,{v},"
                 f"{(T0 + timedelta(hours=issued)).isoformat()}" for k, v in enumerate(values)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_forecast_rows_are_read_with_their_issue_time_in_arrival_order(tmp_path):
    data = read_readings(write(tmp_path / "fc.csv"))
    assert len(data) == 60 and data.issued is not None
    first = next(i for i in range(len(data)) if data.issued[i])
    cols = next(data.chunks(len(data)))
    f = cols.reading(first)
    assert isinstance(f, Forecast) and f.issued == int((T0 + timedelta(hours=1)).timestamp() * 1000)
    arrival = [int(data.issued[i]) or int(data.ts[i]) for i in range(len(data))]
    assert arrival == sorted(arrival)


def test_a_readings_csv_without_the_column_has_no_forecasts(tmp_path):
    csv = tmp_path / "plain.csv"
    csv.write_text("ts,station,metric,value\n2025-06-01T00:00:00+08:00,S,rain_mm,1\n")
    assert read_readings(csv).issued is None


def test_a_bad_issue_time_is_refused(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("ts,station,metric,value,issued\n"
                   "2025-06-01T01:00:00+08:00,S,rain_mm_fcst,1,yesterday\n")
    with pytest.raises(BacktestInputError):
        read_readings(csv)


@pytest.mark.parametrize("chunk", [7, 1000])
def test_the_backtest_raises_on_issue_1_and_clears_on_issue_2_whatever_the_chunks(tmp_path, chunk):
    data = read_readings(write(tmp_path / "fc.csv"))
    rules = [r for r in load_rules(ROOT / "rules") if r.id == "rainstorm-guangdong-forecast"]
    registry = load_registry(ROOT / "stations.yaml")
    registry.stations["DG-HM-R01"].thresholds["qpf"] = 1.0   # the gauge receives a QPF
    p = Pipeline(rules, registry)
    (out,) = replay([p], data, chunk)
    hours = [(e.kind.value, e.grade.label, (e.ts - int(T0.timestamp() * 1000)) / 3_600_000)
             for e in out.events if e.rule == "rainstorm-guangdong-forecast"]
    assert hours == [("raised", "yellow", 1.0), ("cleared", "yellow", 2.0)]
