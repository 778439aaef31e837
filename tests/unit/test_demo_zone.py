"""The demo's times and table headers are in the configured time zone (``timezone:``)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from rich.console import Console

from yujing.alerts.templates import local_time as message_time
from yujing.domain import EventKind, Grade, WarningEvent
from yujing.sim.demo import DemoState, _summary, local_time

T = 1_748_736_000_000   # 2025-06-01 00:00 UTC, 08:00 in Shanghai


def event(kind: EventKind, ts: int) -> WarningEvent:
    return WarningEvent(kind, "rain@DG-HM-R01", "441900-1", "rain", "暴雨", "rainstorm",
                        "DG-HM-R01", Grade.RED, Grade.NONE, ts, 102.5, "3h", "sum >= 100",
                        town="虎门镇")


def test_shanghai_times_are_those_of_the_messages():
    sh = ZoneInfo("Asia/Shanghai")
    for ts in (T, T + 13 * 3_600_000 + 59_999, 1_000_000_000_000):
        assert local_time(ts, sh) == message_time(ts)
    assert local_time(T, ZoneInfo("UTC")) == "2025-06-01 00:00"


def test_the_summary_names_the_zone_it_shows():
    for zone, raised in (("Asia/Shanghai", "2025-06-01 08:00"), ("UTC", "2025-06-01 00:00")):
        state = DemoState(ZoneInfo(zone))
        state.events = [event(EventKind.RAISED, T), event(EventKind.CLEARED, T + 3_600_000)]
        console = Console(record=True, width=250)
        _summary(state, console)
        text = console.export_text()
        assert f"raised ({zone})" in text and f"cleared ({zone})" in text
        assert raised in text and "UTC+8" not in text
