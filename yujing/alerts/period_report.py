"""Period reports: per town or per enterprise, how warnings went over a span of time. Pure.

The input is the book's incidents as the console reads them (the snapshots on
``yujing.incidents``); a warning counts in the period its raise falls in (a
warning that never got past pending is not counted: nobody was told). Per unit:
warnings by grade (the peak), the median and 90th percentile of the time from
raise to acknowledgement and from raise to clear, the reports missing (a grade of
``alerts.reports.required_for``, open or cleared, and no report-back), and the
people transferred (转移) and withdrawn (撤离). Each report gives the totals so far,
so a warning's latest report counts, not the sum of its reports.

Cleared incidents leave the book after ``alerts.retention`` (7 days by default):
a period older than that reads what is left, and the report says it is incomplete
(``incomplete``: a line on the console page, on stderr of ``yujing report``, and the
``X-Yujing-Incomplete`` header of the CSV download).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TextIO

import msgspec
import numpy as np

from yujing.alerts import reportback
from yujing.alerts.phrases import Text
from yujing.alerts.records import Warning
from yujing.alerts.report_settings import ReportSettings
from yujing.durations import Duration

NONE_ZH, NONE_EN = "（未登记）", "(none)"
# (key, Chinese header, English header) in column order
COLUMNS = (
    ("unit", "单位", "unit"),
    ("warnings", "预警数", "warnings"),
    ("red", "红色", "red"), ("orange", "橙色", "orange"),
    ("yellow", "黄色", "yellow"), ("blue", "蓝色", "blue"),
    ("ack_median_min", "确认用时中位数(分钟)", "ack median (min)"),
    ("ack_p90_min", "确认用时P90(分钟)", "ack p90 (min)"),
    ("clear_median_min", "销警用时中位数(分钟)", "clear median (min)"),
    ("clear_p90_min", "销警用时P90(分钟)", "clear p90 (min)"),
    ("unacked", "未确认", "not acknowledged"),
    ("open", "未解除", "still open"),
    ("reports_missing", "缺回报", "reports missing"),
    ("evacuated", "转移人数", "transferred"),
    ("withdrawn", "撤离人数", "withdrawn"),
)
UNIT_HEADERS = {"town": ("镇街/园区", "town"), "enterprise": ("企业", "enterprise")}
_GRADES = {4: "red", 3: "orange", 2: "yellow", 1: "blue"}


@dataclass
class Row:
    unit: str
    warnings: int = 0
    grades: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_GRADES.values(), 0))
    ack_ms: list[int] = field(default_factory=list)
    clear_ms: list[int] = field(default_factory=list)
    unacked: int = 0
    open: int = 0
    reports_missing: int = 0
    evacuated: int = 0
    withdrawn: int = 0

    def values(self) -> dict[str, object]:
        """The row's cells by column key; times in minutes, empty when none were measured."""
        return {"unit": self.unit, "warnings": self.warnings, **self.grades,
                "ack_median_min": _minutes(self.ack_ms, 50),
                "ack_p90_min": _minutes(self.ack_ms, 90),
                "clear_median_min": _minutes(self.clear_ms, 50),
                "clear_p90_min": _minutes(self.clear_ms, 90), "unacked": self.unacked,
                "open": self.open, "reports_missing": self.reports_missing,
                "evacuated": self.evacuated, "withdrawn": self.withdrawn}


def _minutes(ms: list[int], q: int) -> str:
    if not ms:
        return ""
    return f"{float(np.percentile(np.asarray(ms, dtype=float), q)) / 60_000:.1f}"


def in_period(w: Warning, from_ms: int, to_ms: int) -> bool:
    """Raised (past pending) within [from_ms, to_ms)."""
    return w.raised_ms > 0 and from_ms <= w.raised_ms < to_ms


def incomplete(from_ms: int, now_ms: int, retention: Duration) -> Text | None:
    """Why a period that starts before the book's retention cannot be whole, in both
    languages, or None. Cleared warnings leave the book ``alerts.retention`` after clearing,
    so such a report would undercount without a word: the duty leader must be told."""
    if from_ms >= now_ms - retention.ms:
        return None
    return Text(f"统计不完整：本报表起始时间早于预警保留期（alerts.retention {retention}），"
                "此前已解除的预警已不再保存",
                f"incomplete: the period starts more than {retention} ago (alerts.retention); "
                "warnings cleared before then are no longer kept")


def aggregate(warnings: Iterable[Warning], unit_of: Callable[[Warning], str], from_ms: int,
              to_ms: int, s: ReportSettings) -> list[Row]:
    """One row per unit (sorted by name, the unregistered last), then a total row named
    ``合计``; ``unit_of`` gives a warning's town or enterprise ("" when it has none)."""
    rows: dict[str, Row] = {}
    total = Row("合计")
    for w in warnings:
        if not in_period(w, from_ms, to_ms):
            continue
        unit = unit_of(w)
        row = rows.setdefault(unit, Row(unit or NONE_ZH))
        for r in (row, total):
            _count(r, w, s)
    ordered = sorted(rows.items(), key=lambda kv: (kv[0] == "", kv[0]))
    return [r for _, r in ordered] + [total]


def _count(r: Row, w: Warning, s: ReportSettings) -> None:
    r.warnings += 1
    r.grades[_GRADES.get(max(w.peak, w.grade), "blue")] += 1
    if w.acked_ms:
        r.ack_ms.append(max(0, w.acked_ms - w.raised_ms))
    else:
        r.unacked += 1
    if w.cleared_ms and not w.open:
        r.clear_ms.append(max(0, w.cleared_ms - w.raised_ms))
    else:
        r.open += 1
    if reportback.report_due(w, s):
        r.reports_missing += 1
    last = reportback.latest(w)
    if last is not None:
        r.evacuated += last.evacuated
        r.withdrawn += last.withdrawn


def headers(by: str, lang: str) -> list[str]:
    unit = UNIT_HEADERS[by][0 if lang == "zh" else 1]
    return [unit] + [zh if lang == "zh" else en for _, zh, en in COLUMNS[1:]]


def write_csv(rows: list[Row], by: str, lang: str, out: TextIO) -> None:
    """The rows as CSV with Chinese (``zh``) or English (``en``) column headers."""
    wr = csv.writer(out)
    wr.writerow(headers(by, lang))
    for row in rows:
        cells = row.values()
        if lang == "en":
            cells["unit"] = {"合计": "total", NONE_ZH: NONE_EN}.get(row.unit, row.unit)
        wr.writerow([cells[k] for k, _, _ in COLUMNS])


def unit_of(by: str, station_of: Callable[[str], object | None]) -> Callable[[Warning], str]:
    """A warning's town (its own, else its station's) or its station's enterprise, from the
    station registry (``town:``, ``enterprise:`` in stations.yaml)."""
    if by not in UNIT_HEADERS:
        raise ValueError(f"unknown --by {by!r}: town or enterprise")

    def unit(w: Warning) -> str:
        st = station_of(w.station)
        if by == "town":
            return w.town or getattr(st, "town", "") or ""
        return getattr(st, "enterprise", "") or ""
    return unit


def incidents_of(records: Iterable[tuple[bytes | None, bytes | None]]) -> dict[str, Warning]:
    """The newest snapshot of each incident from ``yujing.incidents`` records, as the console
    keeps them: a tombstone forgets one, silences and undecodable records are skipped."""
    dec = msgspec.json.Decoder(Warning)
    out: dict[str, Warning] = {}
    for key, value in records:
        key = key or b""
        if key.startswith(b"silence:"):
            continue
        if value is None:
            out.pop(key.decode(errors="replace"), None)
            continue
        try:
            w = dec.decode(value)
        except msgspec.DecodeError:
            continue
        old = out.get(w.incident)
        if old is None or w.updated_ms >= old.updated_ms or len(w.timeline) >= len(old.timeline):
            out[w.incident] = w
    return out
