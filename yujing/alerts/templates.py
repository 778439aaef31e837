"""Message text for warning events (Chinese by default, English available)."""

from __future__ import annotations

import time

from ..domain import EventKind, Grade, WarningEvent

_KIND_ZH = {EventKind.RAISED: "发布", EventKind.UPGRADED: "升级", EventKind.CLEARED: "解除"}
_KIND_EN = {EventKind.RAISED: "raised", EventKind.UPGRADED: "upgraded", EventKind.CLEARED: "cleared"}


def local_time(ts_ms: int) -> str:
    """Asia/Shanghai wall time (UTC+8, no DST) for the duty officers."""
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts_ms / 1000 + 8 * 3600))


def title(ev: WarningEvent, lang: str = "zh") -> str:
    g = Grade(ev.grade)
    place = ev.station_name or ev.station
    if lang == "en":
        return f"[{g.label.upper()} {g.roman}] {ev.rule_name} {_KIND_EN[ev.kind]} at {place}"
    return f"【{g.zh}预警{_KIND_ZH[ev.kind]}】{ev.town}{place} {ev.rule_name}"


def body(ev: WarningEvent, lang: str = "zh") -> str:
    g = Grade(ev.grade)
    place = f"{ev.town} {ev.station_name or ev.station} ({ev.station})".strip()
    if lang == "en":
        return (f"{ev.rule_name}: {g.label} ({g.roman}) {_KIND_EN[ev.kind]} at {place}, "
                f"{local_time(ev.ts)} (UTC+8). {ev.reason}. Incident {ev.incident}.")
    return (f"{local_time(ev.ts)}，{place}{ev.rule_name}{g.zh}（{g.roman}级）预警{_KIND_ZH[ev.kind]}。"
            f"依据：{ev.reason}。事件编号 {ev.incident}。")
