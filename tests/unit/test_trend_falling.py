"""eta(..., falling): time to reach a *low* threshold along the trend (issue 15 leftovers).

Held against the rising eta on the mirrored series (the definition), at its edges,
through the grammar and the skipped-fit bound, and in words; the example rule of
docs/rules.md is loaded from that page and run, so the page cannot drift from the code.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from yujing.domain import Grade, Reading
from yujing.envelope import decode, encode_readings
from yujing.pipeline import Pipeline
from yujing.rules import expr as ex
from yujing.rules import facts
from yujing.rules import trend as tr
from yujing.rules import windows as wn
from yujing.rules.schema import RuleFile
from yujing.rules.tree import Num, unparse
from yujing.rules.wording import describe
from yujing.stations import Registry, Station

ROOT = Path(__file__).resolve().parents[2]
MIN = 60_000
T0 = wn.EPOCH + 10 * 86_400_000


def flat_of(series: list[tuple[np.ndarray, np.ndarray]]) -> wn.Flat:
    sid = np.concatenate([np.full(ts.size, i) for i, (ts, _) in enumerate(series)])
    return wn.layout(sid, np.concatenate([s[0] for s in series]),
                     np.concatenate([s[1] for s in series]))


def test_falling_eta_is_hours_down_to_the_level_zero_under_it_infinite_when_rising():
    ts = T0 + np.arange(13) * 5 * MIN
    falling = 3.6 - 0.05 * np.arange(13)         # -0.6 m/h, 3.0 m at the hour
    flat = flat_of([(ts, falling), (ts, np.full(13, 3.0)), (ts, falling[::-1]), (ts[:1], falling[:1])])
    t = np.full(4, ts[-1])
    f = tr.fit(flat, np.arange(4), t, 3_600_000 + 1)
    hours = tr.eta(f, np.full(4, 1.8), falling=True)
    assert hours[0] == pytest.approx(2.0)
    assert hours[1] == np.inf and hours[2] == np.inf   # flat, rising
    assert np.isnan(hours[3])                          # one reading: no trend
    assert tr.eta(f, np.full(4, 3.0), falling=True)[0] == 0.0
    assert tr.eta(f, np.full(4, 3.2), falling=True)[0] == 0.0   # already under
    assert tr.eta(f, np.full(4, 1.8))[0] == 0.0        # rising eta: 3.0 is over 1.8
    assert np.isnan(tr.eta(f, np.full(4, np.nan), falling=True)[0])


@pytest.mark.parametrize("seed", range(4))
def test_falling_is_the_rising_eta_of_the_mirrored_series_and_skipping_changes_nothing(seed):
    rng = np.random.default_rng(seed)
    series = []
    for _ in range(30):
        n = int(rng.integers(1, 80))
        ts = T0 + np.sort(rng.choice(24 * 60, n, replace=False)) * MIN
        v = np.cumsum(rng.normal(rng.normal(0, 0.05), rng.uniform(0.001, 0.3), n))
        v[rng.random(n) < 0.05] += rng.normal(0, 3)
        series.append((ts, v))
    flat, mirror = flat_of(series), flat_of([(ts, -v) for ts, v in series])
    sid = np.repeat(np.arange(30), 40)
    t = T0 + rng.integers(0, 25 * 60, sid.size) * MIN
    thr = rng.normal(-1.0, 2.0, sid.size)
    down = tr.eta(tr.fit(flat, sid, t, tr.HOUR_MS), thr, falling=True)
    up = tr.eta(tr.fit(mirror, sid, t, tr.HOUR_MS), -thr)
    assert np.array_equal(np.isnan(down), np.isnan(up))
    assert np.allclose(down[~np.isnan(down)], up[~np.isnan(up)], rtol=1e-9, equal_nan=False)
    assert np.isfinite(down).any() and (down == np.inf).any()
    for limit_ms in (30 * MIN, 3 * tr.HOUR_MS):
        part = tr.fit(flat, sid, t, tr.HOUR_MS, (thr, limit_ms), falling=True)
        skipped = tr.eta(part, thr, falling=True)
        h = limit_ms / tr.HOUR_MS
        with np.errstate(invalid="ignore"):
            for op in (np.less_equal, np.less, np.greater, np.greater_equal):
                assert (op(down, h) == op(skipped, h)).all()
        assert part.beyond.any() and not part.beyond.all()


def test_the_direction_parses_reads_back_and_a_wrong_one_says_what_to_write():
    e = ex.parse_condition("eta(water_level_m, station.dead_level_m, 6h, falling) <= 24h")
    assert unparse(e.tree) == "eta(water_level_m, station.dead_level_m, 6h, falling) <= 1d"
    assert e.station_fields == {"dead_level_m"} and e.horizon_ms == 6 * 3_600_000
    rising = ex.parse_condition("eta(water_level_m, 5, 1h, rising) <= 2h")
    assert unparse(rising.tree) == "eta(water_level_m, 5, 1h) <= 2h"
    with pytest.raises(ex.ExprError, match="eta\\(\\) looks rising or falling, not 'down'"):
        ex.parse_condition("eta(water_level_m, 5, 1h, down) <= 2h")


def words(text: str, values: dict[str, float], grade: Grade = Grade.BLUE):
    tree = ex.parse_condition(text).tree
    terms = facts.terms(tree, lambda n: True,
                        lambda n: n.value if isinstance(n, Num) else values[unparse(n)])
    return describe("raised", grade, terms), terms


def test_falling_eta_reads_as_expected_to_fall_to_the_level():
    key = "eta(water_level_m, station.dead_level_m, 6h, falling)"
    w, terms = words(f"{key} <= 24h", {key: 20.0, "1d": 24.0, "station.dead_level_m": 12.0})
    assert terms[0].fn == "falling:eta"
    assert w.zh == "按近6小时趋势，预计20小时内降至死水位12米，达到蓝色标准（预计到达时间≤24小时）"
    assert "expected to fall to the dead level 12 m within 20 h" in w.en
    assert w.measure_zh == "预计20小时降至死水位12米"
    w, _ = words(f"{key} <= 24h", {key: 0.0, "1d": 24.0, "station.dead_level_m": 12.0})
    assert w.zh.startswith("水位已降至死水位12米")


def doc_example(rule_id: str) -> dict:
    """The YAML block of docs/rules.md that holds ``- id: rule_id``."""
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        if f"- id: {rule_id}\n" in block:
            return yaml.safe_load("rules:\n" + block)
    raise AssertionError(f"docs/rules.md has no example rule {rule_id}")


def test_the_documented_drawdown_rule_warns_and_clears_in_words():
    [rule] = RuleFile.model_validate(doc_example("reservoir-drawdown-trend")).rules
    registry = Registry([Station(id="R1", name="水库", kind="reservoir",
                                 thresholds={"dead_level_m": 12.0})])
    # -0.1 m/h from 14.5 m: with its 4th reading (1.5 h, 14.35 m) 23.5 h from 12 m; from
    # 10.5 h it stays at 13.5 m and the falling trend fades out of the 6 h window
    down = [Reading("R1", "water_level_m", T0 + i * 30 * MIN, 14.5 - 0.05 * i) for i in range(21)]
    level = [Reading("R1", "water_level_m", T0 + (21 + i) * 30 * MIN, 13.5) for i in range(20)]
    events = Pipeline([rule], registry).handle(decode(encode_readings(down + level)), 0).events
    kinds = [(e.kind.value, e.ts) for e in events]
    raised = [e for e in events if e.kind.value == "raised"]
    assert [(e.ts, e.grade) for e in raised] == [(T0 + 90 * MIN, Grade.BLUE)]
    assert raised[0].reason_zh.startswith("按近6小时趋势，预计23.5小时内降至死水位12米")
    cleared = [ts for k, ts in kinds if k == "cleared"]
    assert cleared and cleared[0] > T0 + 20 * 30 * MIN, kinds
