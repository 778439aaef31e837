"""The configured time zone reaches every text a person reads (issue 10: "the time zone
from config everywhere"): notification heads, silence reminders and rule messages."""

from __future__ import annotations

from yujing.alerts.records import Warning
from yujing.alerts.templates import Line, render
from yujing.domain import EventKind, Finding, Grade
from yujing.pipeline import Pipeline
from yujing.rules.schema import Rule

T = 1_748_736_000_000  # 2025-06-01 00:00 UTC


def line() -> Line:
    w = Warning(incident="441900-20250601000000-0001", key="r@s", rule="r", rule_name="暴雨",
                hazard="rainstorm", station="s", station_name="站", town="虎门镇",
                grade=Grade.ORANGE, reason="3h rain 52.5 mm", value=52.5, raised_ms=T)
    return Line("raised", w, "orange policy pages A first")


def test_message_head_in_the_configured_zone():
    zh = render([line()], "张三", ["A"], None, lambda s: "", T, "zh", "Asia/Shanghai")
    assert "2025-06-01 08:00 起" in zh.text
    en = render([line()], "Zhang", ["A"], None, lambda s: "", T, "en", "Europe/Berlin")
    assert "as of 2025-06-01 02:00 (Europe/Berlin)" in en.text  # CEST, UTC+2
    utc = render([line()], "Zhang", ["A"], None, lambda s: "", T, "en", "UTC")
    assert "as of 2025-06-01 00:00 (UTC)" in utc.text


def test_rule_message_time_follows_the_pipeline_zone():
    rule = Rule.model_validate({
        "id": "r", "name": "rain", "hazard": "rainstorm", "metric": "rain_mm",
        "grades": {"orange": {"agg": "sum", "window": "1h", "op": ">=", "value": 10}},
        "message": {"en": "at {time}"}})
    f = Finding("r", "s", T, Grade.ORANGE, False, 12.0, "1h", "sum 12")
    for zone, want in (("Asia/Shanghai", "at 2025-06-01 08:00"), ("UTC", "at 2025-06-01 00:00")):
        p = Pipeline([rule], tz=zone)
        ev = p._describe(p.lifecycle.apply(f, p.meta["r"], T))
        assert ev.kind == EventKind.RAISED and ev.messages["en"] == want
