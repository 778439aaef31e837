"""Where the worker's episode is the name of a warning: the sink, the backtest, messages.

Only the warning book names incidents. Tools without a book (the InfluxDB sink, the
backtest, the worker's rendered messages) show the episode the worker sent, the same
text the book records in the incident's ``sources``, so one warning can be followed
from the worker through the sink to the console.
"""

from __future__ import annotations

import msgspec

from yujing.alerts.book import Book, Store
from yujing.alerts.lifecycle import Lifecycle, RuleMeta
from yujing.alerts.settings import AlertsSettings
from yujing.backtest import stats
from yujing.connectors.influx import warning_line
from yujing.domain import Finding, Grade, Reading
from yujing.envelope import decode, encode_readings
from yujing.pipeline import Pipeline
from yujing.rules.schema import Rule
from yujing.stations import Registry

T = 1_748_764_800_000   # 2025-06-01 08:00:00 UTC
MIN = 60_000
EPISODE = "rain@g1@20250601T080000.000Z"


def events() -> list:
    lc = Lifecycle()
    out = []
    for minute, grade, value in ((0, Grade.ORANGE, 60.0), (10, Grade.RED, 100.0),
                                 (30, Grade.NONE, float("nan"))):
        f = Finding("rain", "g1", T + minute * MIN, grade, grade == Grade.NONE, value, "3h",
                    "why")
        out.append(msgspec.structs.replace(lc.apply(f, RuleMeta("暴雨", "rainstorm"), 0),
                                           town="虎门镇"))
    return out


def test_the_sink_tags_a_warning_point_with_its_episode():
    raw = [msgspec.json.encode(ev) for ev in events()]
    lines = [warning_line(msgspec.json.decode(r), Registry([])) for r in raw]
    assert all(f",incident={EPISODE}," in line for line in lines)
    assert "value=0.0" in lines[-1]         # no value (null): written as before, 0.0


def test_the_book_records_the_episode_the_sink_shows():
    book = Book(AlertsSettings(grouping={"wait": "0s", "interval": "0s"}), Store())
    for ev in events():
        book.on_event(0, ev, ev.ts)
    [w] = book.store.incidents.values()
    assert w.sources == [EPISODE] and w.source_id == EPISODE
    assert w.incident.startswith("441900-20250601080000-")


def test_a_backtest_counts_one_incident_per_episode():
    frame = stats.events_frame(events())
    assert list(frame["incident"]) == [EPISODE] * 3
    assert frame["value"].isna().tolist() == [False, False, True]
    inc = stats.incidents(stats.periods(frame, T + 60 * MIN), frame)
    assert inc[["incident", "peak", "open"]].values.tolist() == [[EPISODE, 4, False]]


def test_a_rule_message_names_the_episode_as_its_incident():
    """The worker renders messages before the book names the incident."""
    r = Rule.model_validate({"id": "rain", "name": "暴雨", "hazard": "rainstorm",
                             "grades": {"orange": "last(rain_mm) >= 50"},
                             "message": {"en": "{incident}: {value} mm"}})
    p = Pipeline([r], Registry([]))
    [ev] = p.handle(decode(encode_readings([Reading("g1", "rain_mm", T, 60.0)])), 0).events
    assert ev.messages == {"en": f"{EPISODE}: 60 mm"}
