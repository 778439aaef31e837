"""The interpreter's reach outside the rules: the time zone of hour()/month(), and the
anomaly scorer the engine is given (yujing.rules never imports the models package)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from yujing.domain import Reading
from yujing.rules import localtime
from yujing.rules.engine import Engine
from yujing.rules.schema import Rule

H = 3_600_000


def utc_ms(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def reference(ts: np.ndarray, zone: str) -> tuple[list[int], list[int]]:
    local = [datetime.fromtimestamp(t / 1000, UTC).astimezone(ZoneInfo(zone))
             for t in ts.tolist()]
    return [d.hour for d in local], [d.month for d in local]


@pytest.mark.parametrize("utc, hour, month", [
    ((2025, 3, 30, 0, 59), 1, 3),    # 01:59 CET
    ((2025, 3, 30, 1, 0), 3, 3),     # 03:00 CEST: the clocks went forward
    ((2025, 10, 26, 0, 59), 2, 10),  # 02:59 CEST
    ((2025, 10, 26, 1, 0), 2, 10),   # 02:00 CET: the same hour again
    ((2025, 1, 31, 23, 30), 0, 2),   # already February in Berlin
    ((2025, 7, 1, 12, 0), 14, 7),
])
def test_hour_and_month_follow_daylight_saving_time(utc, hour, month):
    t = np.asarray([utc_ms(*utc)], np.int64)
    assert localtime.hour(t, "Europe/Berlin").tolist() == [hour]
    assert localtime.month(t, "Europe/Berlin").tolist() == [month]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                                  "America/Sao_Paulo", "Asia/Kolkata", "Asia/Shanghai", "UTC"])
def test_vectorised_local_time_agrees_with_zoneinfo(zone):
    rng = np.random.default_rng(5)
    ts = np.concatenate([rng.integers(utc_ms(2000, 1, 1), utc_ms(2099, 12, 31), 3000),
                         rng.integers(utc_ms(2024, 1, 1), utc_ms(2026, 1, 1), 3000),
                         [utc_ms(2101, 7, 1), utc_ms(2150, 1, 1, 5)]]).astype(np.int64)
    hours, months = reference(ts, zone)
    assert localtime.hour(ts, zone).tolist() == hours
    assert localtime.month(ts, zone).tolist() == months


def test_the_default_zone_is_utc_plus_8_as_before():
    ts = np.arange(utc_ms(2024, 12, 31), utc_ms(2025, 1, 2), 7 * 60_000 + 13, dtype=np.int64)
    assert localtime.DEFAULT_ZONE == "Asia/Shanghai"
    assert localtime.offsets_s(ts, "Asia/Shanghai") == 8 * 3600  # the fixed-offset path
    assert localtime.hour(ts).tolist() == ((ts // 1000 + 8 * 3600) // 3600 % 24).tolist()
    local = (ts + 8 * H).astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
    assert localtime.month(ts).tolist() == (local % 12 + 1).tolist()


def night_rule() -> Rule:
    return Rule.model_validate({"id": "night", "name": "n", "hazard": "test",
                                "grades": {"blue": "last(x) > 0 and hour() == 3"},
                                "clear": "hour() != 3"})


def fired(engine: Engine, readings: list[Reading]) -> list[tuple[int, str]]:
    stations = sorted({r.station for r in readings})
    found, _ = engine.process(stations, np.asarray([stations.index(r.station) for r in readings],
                                                   np.uint32),
                              ["x"], np.zeros(len(readings), np.uint32),
                              np.asarray([r.ts for r in readings], np.int64),
                              np.asarray([r.value for r in readings], np.float64))
    return [(f.ts, "clear" if f.clear else f.grade.label) for f in found]


def test_the_engine_reads_hour_in_its_time_zone():
    spring = utc_ms(2025, 3, 30, 1, 30)  # 03:30 in Berlin (after the switch), 09:30 in Shanghai
    readings = [Reading("s", "x", spring - H, 1.0), Reading("s", "x", spring, 1.0)]
    assert fired(Engine([night_rule()], tz="Europe/Berlin"), readings) == [
        (spring - H, "clear"), (spring, "blue")]  # 01:30 CET, then 03:30 CEST: 02:xx never was
    assert fired(Engine([night_rule()]), readings) == [(spring - H, "clear")]
    shanghai_3am = utc_ms(2025, 3, 29, 19, 10)
    assert fired(Engine([night_rule()]), [Reading("s", "x", shanghai_3am, 1.0)]) == [
        (shanghai_3am, "blue")]


def test_an_unknown_time_zone_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Berlinn': use an IANA name"):
        Engine([night_rule()], tz="Europe/Berlinn")


# --- the anomaly scorer ---------------------------------------------------------------------


class Jumpy:
    """A detector by the contract: score = how far a reading is from the one before."""

    metric = "level_m"
    history = 1

    def new_state(self, station: str) -> str:
        return station

    def score(self, ts: np.ndarray, v: np.ndarray, state: str) -> np.ndarray:
        return np.clip(np.abs(np.diff(v, prepend=v[:1])), 0, 1)


class Models(dict):
    def get(self, name):
        return super().get(name)


def anomaly_rule() -> Rule:
    return Rule.model_validate({"id": "a", "name": "a", "hazard": "test",
                                "grades": {"yellow": "anomaly(model=jumpy) >= 0.9"},
                                "clear": "anomaly(model=jumpy) < 0.5"})


def level_readings() -> list[Reading]:
    t0 = utc_ms(2025, 6, 1)
    values = [1.0, 1.1, 1.1, 2.5, 2.5, 2.6, 1.0]
    return [Reading(s, "level_m", t0 + i * 60_000, v + k)
            for i, v in enumerate(values) for k, s in enumerate(("p", "q"))]


def run_levels(engine: Engine) -> list:
    rs = level_readings()
    found, _ = engine.process(["p", "q"], np.asarray([0 if r.station == "p" else 1 for r in rs],
                                                     np.uint32),
                              ["level_m"], np.zeros(len(rs), np.uint32),
                              np.asarray([r.ts for r in rs], np.int64),
                              np.asarray([r.value for r in rs], np.float64))
    return found


def test_the_engine_scores_with_the_scorer_it_is_given():
    calls = []

    def scorer(model, ts, values, station):
        calls.append((station, ts.size))
        return np.where(values > 2.0, 1.0, 0.0)

    found = run_levels(Engine([anomaly_rule()], models=Models(jumpy=Jumpy()), scorer=scorer))
    assert set(calls) == {("p", 7), ("q", 7)}  # each station's series scored whole
    assert [(f.station, f.grade.label) for f in found if not f.clear] == [("q", "yellow"),
                                                                          ("p", "yellow")]


def test_without_a_scorer_the_detector_scores_itself_as_models_scoring_does():
    from yujing.models.scoring import score_series

    plain = run_levels(Engine([anomaly_rule()], models=Models(jumpy=Jumpy())))
    given = run_levels(Engine([anomaly_rule()], models=Models(jumpy=Jumpy()),
                              scorer=score_series))
    assert plain == given
    assert any(not f.clear for f in plain)
