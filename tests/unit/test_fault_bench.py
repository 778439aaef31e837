"""The fault-set and NAB-fold benches' own logic (bench/faults.py, bench/models_eval.py,
bench/nab_folds.py) on small made-up series: the real data stays out of the tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench import faults, models_eval, nab_folds
from yujing.models import nab
from yujing.models.evaluate import Series

HOUR = faults.HOUR_MS
T0 = 1_600_000_000_000 // HOUR * HOUR


def weather(hours: int, stations=("S1", "S2"), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(hours, dtype=np.int64) * HOUR
    parts = []
    for st in stations:
        for m in faults.METRICS:
            v = np.cumsum(rng.normal(0, 1, hours)) + 10
            parts.append(pd.DataFrame({"ts": ts, "station": st, "metric": m, "value": v}))
    return pd.concat(parts, ignore_index=True)


def test_injected_offsets_are_recorded_only_inside_their_windows_in_units_u():
    clean = weather(3000)
    out, labels = faults.inject(clean, per_kind=2, seed=3)
    # a decouple needs two weeks of its sensor before it: one without is left out
    assert 20 <= len(labels) <= 2 * 2 * len(faults.KINDS) and set(labels["fault"]) == set(faults.KINDS)
    inside = np.zeros(len(out), dtype=bool)
    for w in labels.itertuples(index=False):
        inside |= ((out["station"] == w.station) & (out["metric"] == w.metric)
                   & (out["ts"] >= w.start) & (out["ts"] <= w.end)).to_numpy()
    moved = out["value"].to_numpy() != clean["value"].to_numpy()
    assert not (moved & ~inside).any() and (out["offset_u"].to_numpy()[~inside] == 0).all()
    for w in labels[labels["fault"] == "step"].itertuples(index=False):
        sel = ((out["station"] == w.station) & (out["metric"] == w.metric)
               & (out["ts"] >= w.start) & (out["ts"] <= w.end))
        assert np.allclose(np.abs(out.loc[sel, "offset_u"]), 2.0)  # a step is ± 2 u
    for w in labels[labels["fault"] == "stuck"].itertuples(index=False):
        sel = ((out["station"] == w.station) & (out["metric"] == w.metric)
               & (out["ts"] >= w.start) & (out["ts"] <= w.end))
        assert out.loc[sel, "value"].nunique() == 1


def rows_of(alarms: list[int], station: str = "S1") -> pd.DataFrame:
    ts = T0 + np.arange(len(alarms), dtype=np.int64) * HOUR
    return pd.DataFrame({"ts": ts, "station": station, "metric": "+".join(faults.METRICS),
                         "score": np.array(alarms, float), "alarm": np.array(alarms, bool)})


def test_per_kind_counts_delay_rows_and_visible_rows():
    #             0  1  2  3  4  5  6  7  8  9
    rows = rows_of([0, 0, 0, 1, 1, 0, 0, 0, 1, 0])
    labels = pd.DataFrame({"start": [T0 + HOUR, T0 + 6 * HOUR], "end": [T0 + 4 * HOUR, T0 + 7 * HOUR],
                           "station": "S1", "metric": "TEMP", "fault": ["step", "stuck"]})
    offsets = np.array([0, 0.5, 2, 2, 0.5, 0, 0.2, 0.2, 0, 0])  # row 1 and 4 not visible
    visible = pd.Series(offsets, index=pd.MultiIndex.from_arrays([rows["station"], rows["ts"]]))
    out = models_eval.per_kind(rows, labels, visible)
    found, delay, rec, rec_vis = out["step"]
    assert (found, delay, rec, rec_vis) == (1.0, 2.0, 0.5, 0.5)  # rows 1-4: alarms at 3, 4
    assert out["stuck"][0] == 0.0 and np.isnan(out["stuck"][1])
    ev = models_eval.events(rows, labels)
    # two alarm runs: rows 3-4 (in the step) and row 8 (outside every fault)
    assert (ev["runs"], ev["false_runs"], ev["precision"], ev["recall"]) == (2, 1, 0.5, 0.5)
    assert ev["f1"] == 0.5 and ev["ttd"] == 2.0  # the step starts at row 1, first alarm row 3


def test_an_alarm_run_that_only_touches_a_fault_is_true_and_stations_split_runs():
    #             0  1  2  3  4  5
    rows = pd.concat([rows_of([0, 1, 1, 1, 0, 1]), rows_of([1, 1, 0, 0, 0, 1], "S2")],
                     ignore_index=True)
    labels = pd.DataFrame({"start": [T0 + 3 * HOUR], "end": [T0 + 5 * HOUR], "station": "S1",
                           "metric": "TEMP", "fault": ["drift"]})
    ev = models_eval.events(rows, labels)
    # S1: rows 1-3 touch the drift at row 3, row 5 lies in it: two true runs. S2: two
    # false runs; S1's row 5 and S2's rows 0-1 are not one run
    assert (ev["runs"], ev["false_runs"], ev["recall"], ev["ttd"]) == (4, 2, 1.0, 0.0)
    assert ev["precision"] == 0.5 and ev["f1"] == 2 / 3


def test_f1_at_test_far_reads_the_normal_rows_quantile():
    rows = rows_of([0] * 10)
    rows["score"] = np.arange(10) / 10
    pos = np.zeros(10, dtype=bool)
    pos[[8, 9]] = True
    assert models_eval.f1_at_test_far(rows, pos, 0.01) == 1.0  # 0.8, 0.9 above every normal
    pos[:] = False
    pos[[0, 1]] = True
    assert models_eval.f1_at_test_far(rows, pos, 0.01) == 0.0


def series(name: str, n: int = 400, window: tuple[int, int] | None = (300, 320)) -> Series:
    ts = T0 + np.arange(n, dtype=np.int64) * HOUR
    return Series(name, ts, np.zeros(n), [window] if window else [])


def test_folds_alternate_within_each_category_and_cover_every_file():
    corpus = [series(f"{cat}/f{i}.csv") for cat in ("artificial", "realTraffic") for i in range(5)]
    a, b = nab_folds.folds(list(reversed(corpus)))
    assert a == ["artificial/f0.csv", "artificial/f2.csv", "artificial/f4.csv",
                 "realTraffic/f0.csv", "realTraffic/f2.csv", "realTraffic/f4.csv"]
    assert sorted(a + b) == sorted(s.name for s in corpus) and not set(a) & set(b)


def test_a_held_out_fold_at_the_choosing_threshold_matches_nab_at_its_own_best():
    rng = np.random.default_rng(1)
    corpus = [series(f"c/f{i}.csv") for i in range(4)]
    scores = {s.name: rng.uniform(0, 0.6, 400) for s in corpus}
    for s in corpus:
        scores[s.name][305] = 0.95  # an early detection in every window
    windows = {s.name: s.windows for s in corpus}
    sweeps = nab_folds.sweeps_of(scores, windows, list(scores))
    threshold, best = nab_folds.best_on(sweeps)
    at, found, total, _ = nab_folds.score_at(sweeps, threshold)
    assert at == best and found == total == 4
    ref = nab.evaluate(scores, windows, {"standard": nab.PROFILES["standard"]})["standard"]
    assert abs(ref.normalised - best) < 1e-9 and ref.threshold == threshold
    lower, *_ = nab_folds.score_at(sweeps, 0.0)  # every row detected: far worse
    assert lower < best


def test_neighbour_spread_measures_how_far_a_site_strays_from_the_others():
    df = weather(500, stations=("A", "B", "C"))
    same = df[df["station"] == "A"]
    copies = [same.assign(station=s, value=same["value"] + k) for k, s in ((0.0, "A"), (5.0, "B"),
                                                                          (-5.0, "C"))]
    tied = faults.neighbour_spread(pd.concat(copies, ignore_index=True))
    assert all(p < 1e-9 for _, p in tied.values())  # a constant offset is no deviation
    loose = faults.neighbour_spread(df)  # three independent random walks
    assert all(p > 1.0 for _, p in loose.values())


def test_the_inner_split_reads_only_the_choosing_fold_and_each_half_chooses_for_the_other():
    rng = np.random.default_rng(2)
    corpus = [series(f"{cat}/f{i}.csv") for cat in ("a", "b") for i in range(4)]
    scores = {s.name: rng.uniform(0, 0.6, 400) for s in corpus}
    windows = {s.name: s.windows for s in corpus}
    sw = {s.name: s for s in nab_folds.sweeps_of(scores, windows, list(scores))}
    fold, held = nab_folds.halves(list(sw))
    one, two = nab_folds.halves(fold)
    assert one == ["a/f0.csv", "b/f0.csv"] and two == ["a/f2.csv", "b/f2.csv"]
    only = {f: sw[f] for f in fold}  # a held-out file read would raise KeyError
    want = np.mean([nab_folds.score_at([sw[f] for f in test],
                                       nab_folds.best_on([sw[f] for f in train])[0])[0]
                    for train, test in ((one, two), (two, one))])
    assert nab_folds.inner_score(only, fold) == want


def test_rank_keys_put_the_best_first_by_each_rule():
    a = ("a", {"A": (0.5, 60.0)}, {"A": 50.0}, {})
    b = ("b", {"A": (0.5, 55.0)}, {"A": 52.0}, {})
    assert sorted([a, b], key=lambda r: nab_folds.rank_key(r, "inner", "A"))[0] is b
    assert sorted([a, b], key=lambda r: nab_folds.rank_key(r, "argmax", "A"))[0] is a


def test_detectable_rows_follow_the_stated_rule():
    clean = weather(3000)
    train, test = clean[clean["ts"] < T0 + 1000 * HOUR], clean[clean["ts"] >= T0 + 1000 * HOUR]
    runs = faults.max_runs(train)
    assert all(n == 1 for n in runs.values())  # a random walk never repeats a reading
    out, labels = faults.inject(test.reset_index(drop=True), per_kind=2, seed=5, runs=runs)
    vis = out["visible"].to_numpy(bool)
    assert not (vis & (out["offset_u"].to_numpy() == 0) & ~out.index.isin(
        _rows(out, labels[labels["fault"].isin(["noisy", "stuck"])]))).any()
    for w in labels.itertuples(index=False):
        rows = _rows(out, pd.DataFrame([w]))
        seen, off = vis[rows], np.abs(out["offset_u"].to_numpy()[rows])
        if w.fault == "noisy":
            assert seen.all()
        elif w.fault == "stuck":
            # clean runs never exceed 1: from the fault's second reading on, every row counts
            assert seen[1:].all()
        else:
            assert (seen == (off >= faults.VISIBLE_U)).all()
    # without training runs, a stuck value counts only by size
    bare, _ = faults.inject(test.reset_index(drop=True), per_kind=2, seed=5)
    stuck = _rows(bare, labels[labels["fault"] == "stuck"])
    assert (bare["visible"].to_numpy()[stuck] == (np.abs(bare["offset_u"].to_numpy()[stuck]) >= 1)).all()


def _rows(out: pd.DataFrame, labels: pd.DataFrame) -> np.ndarray:
    sel = np.zeros(len(out), dtype=bool)
    for w in labels.itertuples(index=False):
        sel |= ((out["station"] == w.station) & (out["metric"] == w.metric)
                & (out["ts"] >= w.start) & (out["ts"] <= w.end)).to_numpy()
    return np.flatnonzero(sel)


def test_detectable_f1_leaves_undetectable_fault_rows_out():
    #             0  1  2  3  4  5  6  7
    rows = rows_of([0, 1, 1, 0, 0, 1, 0, 0])
    pos = np.array([0, 1, 1, 1, 1, 0, 0, 0], bool)
    det = pd.Series([0, 1, 1, 0, 0, 0, 0, 0], index=pd.MultiIndex.from_arrays([rows["station"], rows["ts"]]),
                    dtype=bool)
    f1, p, r = models_eval.detectable_f1(rows, pos, det)
    # detectable: rows 1, 2 (both alarmed); rows 3, 4 are faulty but left out; row 5 false
    assert (p, r) == (2 / 3, 1.0) and abs(f1 - 0.8) < 1e-12


def test_bag_maps_each_setting_to_its_own_threshold_and_combines_row_by_row():
    s = np.array([0.0, 0.1, 0.2, 0.6, 1.0])
    assert np.allclose(nab_folds.to_own_threshold(s, 0.2), [0, 0.25, 0.5, 0.75, 1.0])
    assert (nab_folds.to_own_threshold(s, nab.NEVER) < 0.5).all()  # never alarms stays so
    windows = {"c/f.csv": [(300, 320)]}
    prof = nab.PROFILES["standard"]
    rng = np.random.default_rng(2)
    ranked = []
    for t in (0.2, 0.5, 0.8):
        sw = {"c/f.csv": nab.sweep("c/f.csv", rng.uniform(0, 1, 400), windows["c/f.csv"], prof)}
        ranked.append(("setting", {"A": (t, 0.0)}, {"A": 0.0}, sw))
    one = nab_folds.bagged(ranked, 1, "mean", "A")["c/f.csv"]
    assert ((one.scores >= 0.5) == (ranked[0][3]["c/f.csv"].scores >= 0.2)).all()
    mapped = np.stack([nab_folds.to_own_threshold(r[3]["c/f.csv"].scores, r[1]["A"][0])
                       for r in ranked])
    for how, fn in (("mean", np.mean), ("median", np.median)):
        got = nab_folds.bagged(ranked, 3, how, "A")["c/f.csv"]
        assert np.allclose(got.scores, fn(mapped, axis=0))
        assert (got.worth == one.worth).all() and (got.window == one.window).all()
