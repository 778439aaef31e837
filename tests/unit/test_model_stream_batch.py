"""The engine scores anomaly() for all stations of an envelope in one call
(``StreamScorer.many`` and ``StreamScorer.stations``): the same scores as the scorer's
station-by-station path, every reading scored once, and still the one-pass scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.test_model_detectors import DAY, STEP, daily
from tests.unit.test_model_station import METRICS, series_of, station_frame
from tests.unit.test_model_stream import Models, fitted
from yujing.models import ALL_KINDS, STATION_KINDS
from yujing.models.scoring import score_series
from yujing.models.stream import StreamScorer
from yujing.rules.engine import Engine
from yujing.rules.schema import Rule

PER_METRIC = sorted(set(ALL_KINDS) - set(STATION_KINDS))
NAMES = ["a", "b", "c", "d"]


class OneByOne:
    """The station-by-station path of a StreamScorer (no ``many``, no ``stations``)."""

    def __init__(self) -> None:
        self.inner = StreamScorer()

    def __call__(self, model, ts, values, station):
        return self.inner(model, ts, values, station)

    def station(self, model, series, station):
        return self.inner.station(model, series, station)


def station_series(n: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Four stations' water levels: spikes, missing values, one station starting late."""
    out = {}
    for k, name in enumerate(NAMES):
        ts, v = daily(n, seed=30 + k)
        ts = ts + DAY * 3 * STEP
        v[[250 + 30 * k, 500 + 30 * k]] += 3.0
        if k == 1:
            v[[400, 401, 650]] = np.nan
        if k == 3:
            ts, v = ts[200:], v[200:]
        out[name] = (ts, v)
    return out


def windows(series: dict, keep: int, step: int, rng: np.random.Generator):
    """Per envelope: station → its retained window (the newest ``keep`` readings up to the
    envelope's end). Some stations sit out an envelope; at one envelope a late reading
    is merged into station b's window and at another station c's older value changes."""
    n = max(t.size for t, _ in series.values())
    t_all = np.sort(np.unique(np.concatenate([t for t, _ in series.values()])))
    for e, end in enumerate(range(step, n + 1, step)):
        t_end = t_all[min(end, t_all.size) - 1]
        env = {}
        for name, (t, v) in series.items():
            if e % 5 == 2 and name == "a":
                continue
            upto = int(np.searchsorted(t, t_end, side="right"))
            a = max(upto - keep - int(rng.integers(0, 3)), 0)
            wt, wv = t[a:upto].copy(), v[a:upto].copy()
            if wt.size < 2:
                continue
            if name == "b" and e == 7:  # a late reading between two old ones
                i = wt.size // 4
                wt = np.insert(wt, i, wt[i - 1] + 1)
                wv = np.insert(wv, i, wv[i - 1])
            if name == "c" and e == 9:
                wv[wv.size // 3] += 0.5
            env[name] = (wt, wv)
        yield env


@pytest.mark.parametrize("kind", PER_METRIC)
def test_many_equals_the_station_by_station_path_and_one_pass(kind):
    model = fitted(kind)
    series = station_series(DAY * 4)
    together, each = StreamScorer(), StreamScorer()
    keep = model.history + 50  # windows overlap by history + 13 readings
    got = {}
    for env in windows(series, keep, 37, np.random.default_rng(1)):
        names = sorted(env)
        lens = [env[n][0].size for n in names]
        bounds = np.concatenate(([0], np.cumsum(lens)))
        ts = np.concatenate([env[n][0] for n in names])
        v = np.concatenate([env[n][1] for n in names])
        out = together.many(model, names, ts, v, bounds)
        for k, name in enumerate(names):
            want = each(model, env[name][0], env[name][1], name)
            np.testing.assert_allclose(out[bounds[k]:bounds[k + 1]], want, rtol=1e-9, atol=1e-15)
            got.setdefault(name, {}).update(zip(env[name][0].tolist(), want.tolist()))
    assert together.scored == each.scored and together.rebuilt == each.rebuilt >= 2
    assert together.scored < 1.5 * sum(t.size for t, _ in series.values())
    # station d never rebuilt: its streamed scores are the one-pass scores
    t, v = series["d"]
    one = score_series(model, t, v, "d")
    scored = np.array([got["d"][x] for x in t.tolist() if x in got["d"]])
    np.testing.assert_allclose(scored, one[np.isin(t, list(got["d"]))], rtol=1e-9, atol=1e-15)


def station_windows(frame: pd.DataFrame, names: list[str], keep_rows: int, step: int):
    """Per envelope: station → metric → its retained readings; one station's older value
    changes once (a rebuild), another misses a metric for a while."""
    per = {name: series_of(frame, name) for name in names}
    ends = np.unique(frame["ts"].to_numpy(np.int64))
    for e, cut in enumerate(range(step, ends.size + 1, step)):
        t_end = ends[cut - 1]
        env = {}
        for name in names:
            out = {}
            for m, (t, v) in per[name].items():
                if name == names[1] and m == list(METRICS)[2] and 4 <= e < 7:
                    continue
                upto = int(np.searchsorted(t, t_end, side="right"))
                a = max(upto - keep_rows, 0)
                wt, wv = t[a:upto], v[a:upto].copy()
                if name == names[0] and e == 5:
                    wv[wv.size // 8] += 1.0  # within the previous window
                out[m] = (wt, wv)
            env[name] = out
        yield env


@pytest.mark.parametrize("kind", sorted(STATION_KINDS))
def test_stations_equals_the_station_by_station_path_and_one_pass(kind):
    model = fitted(kind)
    names = ["dc-1", "dc-2", "dc-3"]
    frame = station_frame(600, seed=21, stations=tuple(names))
    together, each = StreamScorer(), StreamScorer()
    keep = int(getattr(model, "lags", 0)) + 60
    for env in station_windows(frame, names, keep, 45):
        segs = [env[n].get(m, (np.empty(0, np.int64), np.empty(0))) for n in names
                for m in model.metrics]
        bounds = np.concatenate(([0], np.cumsum([t.size for t, _ in segs])))
        ts = np.concatenate([t for t, _ in segs])
        v = np.concatenate([x for _, x in segs])
        rk, rt, sc = together.stations(model, names, ts, v, bounds)
        for k, name in enumerate(names):
            want_t, want = each.station(model, env[name], name)
            assert np.array_equal(rt[rk == k], want_t)
            np.testing.assert_allclose(sc[rk == k], want, rtol=1e-9, atol=1e-15)
    assert together.scored == each.scored and together.rebuilt == each.rebuilt >= 1
    row_ts, one = model.score_station(series_of(frame, names[2]), model.new_state(names[2]))
    last = rt[rk == 2]
    np.testing.assert_allclose(sc[rk == 2], one[np.isin(row_ts, last)], rtol=1e-9, atol=1e-15)


def envelopes_for(kind: str):
    """Mixed envelopes (arrival order) with one reading held back to the next envelope."""
    if kind in STATION_KINDS:
        frame = station_frame(500, seed=23, stations=("dc-1", "dc-2", "dc-3"))
        frame = frame.rename(columns={"value": "v"})
    else:
        parts = []
        for k, (t, v) in enumerate(station_series(DAY * 3).values()):
            parts.append(pd.DataFrame({"ts": t, "station": NAMES[k], "metric": "water_level_m",
                                       "v": v}))
        frame = pd.concat(parts)
    frame = frame.sort_values(["ts", "station", "metric"], kind="stable")
    names, metrics = sorted(frame["station"].unique()), sorted(frame["metric"].unique())
    si = frame["station"].map({n: i for i, n in enumerate(names)}).to_numpy()
    mi = frame["metric"].map({m: i for i, m in enumerate(metrics)}).to_numpy()
    ts, v = frame["ts"].to_numpy(np.int64), frame["v"].to_numpy()
    out, held = [], None
    for e, a in enumerate(range(0, ts.size, 80)):
        s, m, t, x = si[a:a + 80], mi[a:a + 80], ts[a:a + 80], v[a:a + 80]
        if held is not None:
            s, m, t, x = (np.r_[h, y] for h, y in zip(held, (s, m, t, x)))
            held = None
        if e == 12:
            held = tuple(y[-5:-4] for y in (s, m, t, x))
            s, m, t, x = (np.r_[y[:-5], y[-4:]] for y in (s, m, t, x))
        out.append((names, s, metrics, m, t, x))
    return out


@pytest.mark.parametrize("kind", sorted(ALL_KINDS))
def test_the_engine_gives_the_findings_and_values_of_the_station_by_station_path(kind):
    model = fitted(kind)
    rule = Rule.model_validate({"id": "an", "name": "an", "hazard": "test",
                                "grades": {"yellow": "anomaly(model=m) >= 0.3"},
                                "clear": "anomaly(model=m) < 0.2"})
    together, each = StreamScorer(), OneByOne()
    found = []
    for scorer in (together, each):
        engine = Engine([rule], models=Models({"m": model}), scorer=scorer)
        got = []
        for env in envelopes_for(kind):
            findings, late = engine.process(*env)
            assert not late
            got += [(f.ts, f.station, f.grade, f.clear, f.value) for f in findings]
        found.append(got)
    assert [f[:4] for f in found[0]] == [f[:4] for f in found[1]]
    assert len(found[0]) >= 4 and any(f[3] for f in found[0])
    np.testing.assert_allclose([f[4] for f in found[0]], [f[4] for f in found[1]], rtol=1e-9)
    assert together.scored == each.inner.scored and together.rebuilt == each.inner.rebuilt >= 1


class Calls(StreamScorer):
    """Counts the engine's batched calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def many(self, *args):
        self.calls += 1
        return super().many(*args)


def test_a_grade_and_its_clear_asking_the_same_model_score_once_per_envelope():
    model = fitted("spike")
    rule = Rule.model_validate({"id": "an", "name": "an", "hazard": "test",
                                "grades": {"yellow": "anomaly(model=m) >= 0.3"},
                                "clear": "anomaly(model=m) < 0.2"})
    scorer = Calls()
    engine = Engine([rule], models=Models({"m": model}), scorer=scorer)
    envs = envelopes_for("spike")
    found = []
    for env in envs:
        found += engine.process(*env)[0]
    assert scorer.calls == len(envs) and found
