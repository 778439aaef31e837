"""eta() and project(): the vectorised Theil–Sen trend held against scipy's, their edge
values, the grammar's checks (located at load), and the reason in words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import theilslopes

from yujing.domain import Grade, Reading
from yujing.envelope import decode, encode_readings
from yujing.pipeline import Pipeline
from yujing.rules import expr as ex
from yujing.rules import facts
from yujing.rules import trend as tr
from yujing.rules import windows as wn
from yujing.rules.loader import load_rules
from yujing.rules.tree import Num, unparse
from yujing.rules.wording import describe
from yujing.stations import Registry, load_registry
from yujing.yamlsrc import SourceError

ROOT = Path(__file__).resolve().parents[2]
MIN = 60_000
T0 = wn.EPOCH + 10 * 86_400_000


def flat_of(series: list[tuple[np.ndarray, np.ndarray]]) -> wn.Flat:
    sid = np.concatenate([np.full(ts.size, i) for i, (ts, _) in enumerate(series)])
    return wn.layout(sid, np.concatenate([s[0] for s in series]),
                     np.concatenate([s[1] for s in series]))


def test_slope_and_level_agree_with_scipy_theilslopes_for_many_series_at_once():
    rng = np.random.default_rng(3)
    series = []
    for n in (2, 3, 5, 9, tr.MAX_READINGS):  # windows used whole
        ts = T0 + np.sort(rng.choice(60, n, replace=False)) * MIN
        v = rng.normal(0, 1, n) + rng.uniform(-2, 2) * (ts - T0) / tr.HOUR_MS
        v[rng.integers(n)] += 10.0 if n > 4 else 0.0  # one wild reading
        series.append((ts, v))
    flat = flat_of(series)
    t = np.full(len(series), T0 + 60 * MIN)
    f = tr.fit(flat, np.arange(len(series)), t, 61 * MIN)
    slope, level, newest = f.slope, f.level, f.newest
    for i, (ts, v) in enumerate(series):
        x = (ts - t[i]) / tr.HOUR_MS
        want = theilslopes(v, x)
        assert slope[i] == pytest.approx(want.slope, rel=1e-9, abs=1e-12)
        assert level[i] == pytest.approx(np.median(v - want.slope * x), rel=1e-9, abs=1e-12)
        assert newest[i] == v[-1]


def test_a_long_window_is_thinned_to_evenly_spaced_readings_first_and_newest_included():
    ts = T0 + np.arange(60) * MIN
    v = np.random.default_rng(8).normal(0, 1, 60)
    flat = flat_of([(ts, v)])
    t = np.asarray([ts[-1]])
    slope = tr.fit(flat, np.asarray([0]), t, 3_600_000).slope
    keep = np.rint(np.arange(tr.MAX_READINGS) / (tr.MAX_READINGS - 1) * 59).astype(int)
    assert keep[0] == 0 and keep[-1] == 59
    want = theilslopes(v[keep], (ts[keep] - t[0]) / tr.HOUR_MS)
    assert slope[0] == pytest.approx(want.slope)


def test_eta_is_hours_to_the_threshold_zero_when_over_infinite_when_flat_or_falling():
    ts = T0 + np.arange(13) * 5 * MIN
    rising = 3.0 + 0.05 * np.arange(13)          # 0.6 m/h, 3.6 m at the hour
    flat = flat_of([(ts, rising), (ts, np.full(13, 3.0)), (ts, rising[::-1]), (ts[:1], rising[:1])])
    t = np.full(4, ts[-1])
    f = tr.fit(flat, np.arange(4), t, 3_600_000 + 1)
    hours = tr.eta(f, np.full(4, 4.8))
    assert hours[0] == pytest.approx(2.0)
    assert hours[1] == np.inf and hours[2] == np.inf
    assert np.isnan(hours[3])                     # one reading: no trend
    assert tr.eta(f, np.full(4, 3.6))[0] == 0.0
    assert np.isnan(tr.eta(f, np.full(4, np.nan))[0])  # no threshold
    assert tr.project(f, 30 * MIN)[0] == pytest.approx(3.9)


@pytest.mark.parametrize("seed", range(6))
def test_skipping_points_that_cannot_reach_in_time_never_changes_a_comparison(seed):
    rng = np.random.default_rng(seed)
    series = []
    for _ in range(40):  # random walks, trends and spikes, irregular times, 1-90 readings
        n = int(rng.integers(1, 90))
        ts = T0 + np.sort(rng.choice(24 * 60, n, replace=False)) * MIN
        v = np.cumsum(rng.normal(rng.normal(0, 0.05), rng.uniform(0.001, 0.3), n))
        v[rng.random(n) < 0.05] += rng.normal(0, 3)
        series.append((ts, v))
    flat = flat_of(series)
    sid = np.repeat(np.arange(40), 50)
    t = T0 + rng.integers(0, 25 * 60, sid.size) * MIN
    thr = rng.normal(1.0, 2.0, sid.size)
    thr[rng.random(sid.size) < 0.05] = np.nan
    for limit_ms in (15 * MIN, 2 * tr.HOUR_MS, 6 * tr.HOUR_MS):
        full = tr.eta(tr.fit(flat, sid, t, tr.HOUR_MS), thr)
        part = tr.fit(flat, sid, t, tr.HOUR_MS, (thr, limit_ms))
        skipped = tr.eta(part, thr)
        h = limit_ms / tr.HOUR_MS
        with np.errstate(invalid="ignore"):
            for op in (np.less_equal, np.less, np.greater, np.greater_equal):
                assert (op(full, h) == op(skipped, h)).all()
        assert (np.isnan(full) == np.isnan(skipped)).all()
        assert part.beyond.any() and not part.beyond.all()


def test_eta_and_project_parse_and_read_back():
    e = ex.parse_condition("eta(water_level_m, station.warning_level_m - 0.2, 1h) <= 1h30m")
    assert unparse(e.tree) == "eta(water_level_m, station.warning_level_m - 0.2, 1h) <= 90m"
    assert e.horizon_ms == 3_600_000 and e.metrics == {"water_level_m"}
    assert e.station_fields == {"warning_level_m"}
    e = ex.parse_condition("project(waterlogging_depth_m, 30m, 45m) >= 0.25")
    assert unparse(e.tree) == "project(waterlogging_depth_m, 30m, 45m) >= 0.25"
    assert e.horizon_ms == 30 * MIN  # the window is kept, not the look-ahead
    assert ex.parse_condition("2h > eta(x, 3, 30m)").is_condition


@pytest.mark.parametrize("text, message", [
    ("eta(x, 3, 1h) <= 2", "compare eta(x, 3, 1h) with a duration"),
    ("eta(x, 3, 1h) + 1 <= 2h", "compare eta(x, 3, 1h) with a duration"),
    ("sum(x, 1h) >= 2h", "a duration (2h) only goes inside a window function"),
    ("eta(x, last(y), 1h) <= 2h", "threshold of eta() is a number or a station field, not 'last(y)'"),
    ("eta(x, 3) <= 2h", "expected ','"),
    ("project(x, 1h) >= 3", "expected ','"),
    ("project(x, 1h, 0) >= 3", "expected a window"),
    ("etaa(x, 3, 1h) <= 2h", "did you mean eta"),
])
def test_bad_trend_calls_say_what_to_write(text, message):
    with pytest.raises(ex.ExprError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ex.parse_condition(text)


def test_a_bad_eta_in_a_rule_file_is_refused_at_load_with_file_line_and_key(tmp_path):
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - id: x\n    name: x\n    hazard: flood\n    grades:\n"
        "      yellow: \"eta(water_level_m, station.warning_level_m, 1h) <= 2\"\n", "utf-8")
    with pytest.raises(SourceError) as exc:
        load_rules(tmp_path)
    assert f"{tmp_path / 'r.yaml'}:6: rules[0].grades.yellow:" in str(exc.value)
    assert "<= 2h" in str(exc.value)


def words(text: str, values: dict[str, float]):
    tree = ex.parse_condition(text).tree
    terms = facts.terms(tree, lambda n: True,
                        lambda n: n.value if isinstance(n, Num) else values[unparse(n)])
    return describe("raised", Grade.YELLOW, terms)


def test_eta_reads_as_expected_to_reach_the_warning_level_within():
    w = words("eta(water_level_m, station.warning_level_m, 1h) <= 2h",
              {"eta(water_level_m, station.warning_level_m, 1h)": 1.5, "2h": 2.0,
               "station.warning_level_m": 6.5})
    assert w.zh == "按近1小时趋势，预计1.5小时内达到警戒水位6.5米，达到黄色标准（预计到达时间≤2小时）"
    assert w.en.startswith("On the 1 h trend water level expected to reach the warning level 6.5 m "
                           "within 1.5 h")
    assert w.measure_zh == "预计1.5小时达警戒水位6.5米"
    w = words("eta(water_level_m, 6.5, 1h) <= 2h",
              {"eta(water_level_m, 6.5, 1h)": 0.25, "2h": 2.0})
    assert w.zh.startswith("按近1小时趋势，预计15分钟内达到6.5米，")
    tree = ex.parse_condition("not (eta(water_level_m, station.warning_level_m, 1h) <= 2h)").tree
    values = {"eta(water_level_m, station.warning_level_m, 1h)": np.inf, "2h": 2.0,
              "station.warning_level_m": 6.5}
    terms = facts.terms(tree, lambda n: False, lambda n: values[unparse(n)])
    w = describe("cleared", Grade.YELLOW, terms, 30 * MIN)
    assert w.zh == ("按近1小时趋势，水位预计2小时内不会达到警戒水位6.5米，"
                    "达到解除条件（预计到达时间＞2小时），已持续30分钟")


def test_project_reads_as_the_depth_expected_after_the_horizon():
    w = words("project(waterlogging_depth_m, 30m, 30m) >= station.depth_yellow_m",
              {"project(waterlogging_depth_m, 30m, 30m)": 0.31, "station.depth_yellow_m": 0.25})
    assert w.zh == ("按近30分钟趋势，预计30分钟后积水深度0.31米，超黄色积水深度标准0.06米，"
                    "达到黄色标准（≥黄色积水深度标准0.25米）")


def test_the_river_pack_raises_a_projected_crossing_with_its_reason_in_words():
    shilong = load_registry(ROOT / "stations.yaml").get("DG-SL-H01")
    registry = Registry([shilong.model_copy(update={  # Shilong, opted in
        "thresholds": {**shilong.thresholds, "projection": 1.0}})])
    rule = next(r for r in load_rules(ROOT / "rules") if r.id == "river-level-trend")
    # 0.72 m/h from 4.5 m: 6.5 m is under 3 h away from the start, but the rule wants 12
    # readings in its 2 h window: the 12th, 5.16 m at 55m, is 1.86 h short of it
    readings = [Reading("DG-SL-H01", "water_level_m", T0 + i * 5 * MIN, 4.5 + 0.06 * i)
                for i in range(14)]
    events = Pipeline([rule], registry).handle(decode(encode_readings(readings)), 0).events
    raised = [e for e in events if e.kind.value == "raised"]
    assert [e.ts for e in raised] == [T0 + 55 * MIN]
    assert raised[0].reason_zh.startswith("按近2小时趋势，预计1.9小时内达到警戒水位6.5米")
    assert "期间共12条读数" in raised[0].reason_zh
    assert raised[0].terms[0].fn == "eta" and raised[0].terms[0].raw == 6.5


def test_a_station_that_has_not_opted_in_costs_no_trend_fit(monkeypatch):
    """The packs' projection rules select ``has: [projection]``: a station without that
    registry setting is not watched by them at all."""
    calls = []
    real = tr.fit
    monkeypatch.setattr(tr, "fit", lambda *a, **k: calls.append(1) or real(*a, **k))
    rule = next(r for r in load_rules(ROOT / "rules") if r.id == "river-level-trend")
    readings = [Reading("DG-SL-H01", "water_level_m", T0 + i * 5 * MIN, 4.5 + 0.3 * i)
                for i in range(13)]
    registry = load_registry(ROOT / "stations.yaml")  # Shilong has no projection setting
    events = Pipeline([rule], registry).handle(decode(encode_readings(readings)), 0).events
    assert events == [] and calls == []
    shilong = registry.get("DG-SL-H01")
    opted = Registry([shilong.model_copy(update={
        "thresholds": {**shilong.thresholds, "projection": 1.0}})])
    events = Pipeline([rule], opted).handle(decode(encode_readings(readings)), 0).events
    assert [e.kind.value for e in events] == ["raised"] and calls
