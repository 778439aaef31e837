"""Period reports (issue 14): per town or enterprise, warnings by grade, times to acknowledge
and clear (median, p90), reports missing, people moved; CSV with Chinese or English headers.
Pure: the warnings and the period are given."""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import msgspec
import pytest
import typer

from yujing.alerts import period_report as pr
from yujing.alerts.records import Report, State, Warning
from yujing.alerts.report_settings import ReportSettings
from yujing.cli.report import parse_local
from yujing.durations import Duration

T0 = 1_764_547_200_000          # 2025-12-01 00:00 UTC
MIN = 60_000
DAY = 86_400_000
S = ReportSettings()
STATIONS = {"s1": SimpleNamespace(town="虎门镇", enterprise="E1"),
            "s2": SimpleNamespace(town="长安镇", enterprise=""),
            "s3": SimpleNamespace(town="虎门镇", enterprise="E2")}


def w(iid: str, station: str, grade: int, raised: int, acked: int = 0, cleared: int = 0,
      reports: tuple[Report, ...] = (), town: str = "") -> Warning:
    state = State.CLEARED if cleared else (State.ACKNOWLEDGED if acked else State.ACTIVE)
    return Warning(incident=iid, key=f"r@{station}", rule="r", rule_name="r", hazard="river",
                   station=station, town=town, state=state, grade=grade, peak=grade,
                   raised_ms=raised, acked_ms=acked, cleared_ms=cleared, reports=list(reports),
                   updated_ms=raised)


def rep(evacuated: int, withdrawn: int = 0) -> Report:
    return Report("x", 1, "a1", "done", "m", evacuated=evacuated, withdrawn=withdrawn)


WARNINGS = [
    # 虎门镇: four warnings in the period
    w("a", "s1", 3, T0 + 60 * MIN, acked=T0 + 62 * MIN, cleared=T0 + 120 * MIN,
      reports=(rep(10, 2), rep(30, 5))),                                   # latest: 30 and 5
    w("b", "s1", 4, T0 + 70 * MIN, acked=T0 + 80 * MIN, cleared=T0 + 100 * MIN),  # missing
    w("c", "s3", 1, T0 + 90 * MIN, acked=T0 + 94 * MIN),                   # open, acked
    w("d", "s3", 2, T0 + 95 * MIN),                                        # open, not acked
    # 长安镇: one, its town on the warning itself
    w("e", "s2", 3, T0 + 3 * 60 * MIN, town="长安镇"),                      # open orange: missing
    # outside the period, or never past pending: not counted
    w("f", "s1", 4, T0 - MIN),
    w("g", "s1", 4, T0 + DAY),
    Warning(incident="h", key="r@s1", rule="r", rule_name="r", hazard="river", station="s1",
            state=State.PENDING, grade=3),
]


def rows(by: str) -> dict[str, dict]:
    unit = pr.unit_of(by, STATIONS.get)
    return {r.unit: r.values() for r in pr.aggregate(WARNINGS, unit, T0, T0 + DAY, S)}


def test_rows_per_town_with_times_missing_reports_and_people():
    got = rows("town")
    assert list(got) == ["虎门镇", "长安镇", "合计"]
    hm = got["虎门镇"]
    assert (hm["warnings"], hm["red"], hm["orange"], hm["yellow"], hm["blue"]) == (4, 1, 1, 1, 1)
    # acknowledged after 2, 10 and 4 minutes: median 4.0, p90 (linear) 8.8
    assert (hm["ack_median_min"], hm["ack_p90_min"]) == ("4.0", "8.8")
    # cleared after 60 and 30 minutes
    assert (hm["clear_median_min"], hm["clear_p90_min"]) == ("45.0", "57.0")
    assert (hm["unacked"], hm["open"], hm["reports_missing"]) == (1, 2, 1)
    assert (hm["evacuated"], hm["withdrawn"]) == (30, 5)
    ca = got["长安镇"]
    assert (ca["warnings"], ca["orange"], ca["ack_median_min"], ca["reports_missing"]) == (1, 1, "", 1)
    total = got["合计"]
    assert (total["warnings"], total["reports_missing"], total["evacuated"]) == (5, 2, 30)


def test_rows_per_enterprise_put_the_unregistered_last():
    got = rows("enterprise")
    assert list(got) == ["E1", "E2", pr.NONE_ZH, "合计"]
    assert (got["E1"]["warnings"], got["E2"]["warnings"], got[pr.NONE_ZH]["warnings"]) == (2, 2, 1)


def test_csv_headers_in_chinese_or_english():
    unit = pr.unit_of("town", STATIONS.get)
    data = pr.aggregate(WARNINGS, unit, T0, T0 + DAY, S)
    for lang, first, ack in (("zh", "镇街/园区", "确认用时中位数(分钟)"), ("en", "town", "ack median (min)")):
        buf = io.StringIO()
        pr.write_csv(data, "town", lang, buf)
        table = list(csv.reader(io.StringIO(buf.getvalue())))
        assert table[0][0] == first and ack in table[0] and len(table[0]) == len(pr.COLUMNS)
        assert table[1][:2] == ["虎门镇", "4"]
        assert table[-1][0] == ("合计" if lang == "zh" else "total")


def test_the_newest_snapshot_of_each_incident_and_tombstones():
    a1, a2 = w("a", "s1", 3, T0), w("a", "s1", 4, T0)
    a2.updated_ms = T0 + 1
    b = w("b", "s2", 1, T0)
    enc = msgspec.json.encode
    got = pr.incidents_of([(b"a", enc(a1)), (b"b", enc(b)), (b"a", enc(a2)), (b"b", None),
                           (b"silence:x", b"{}"), (b"c", b"not json")])
    assert list(got) == ["a"] and got["a"].grade == 4


def test_the_cli_reads_local_dates_and_an_end_date_is_included():
    zone = ZoneInfo("Asia/Shanghai")
    day = parse_local("2025-12-01", zone, "--from")
    assert day == T0 - 8 * 3_600_000                       # midnight in Dongguan
    assert parse_local("2025-12-01", zone, "--to", end=True) == day + DAY
    assert parse_local("2025-12-01 08:00", zone, "--to", end=True) == T0
    assert parse_local("2025-12-01T00:00:00+00:00", zone, "--from") == T0
    with pytest.raises(typer.Exit):
        parse_local("1 Dec", zone, "--from")


def test_a_period_older_than_the_retention_is_said_to_be_incomplete():
    seven = Duration("7d")
    now = T0 + 30 * DAY
    assert pr.incomplete(now - 7 * DAY, now, seven) is None            # just within
    why = pr.incomplete(now - 7 * DAY - 1, now, seven)
    assert why.zh.startswith("统计不完整") and "alerts.retention 7d" in why.zh
    assert why.en.startswith("incomplete") and "7d" in why.en
