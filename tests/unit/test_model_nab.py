"""The NAB scorer on tiny labelled series we construct, and against a plain port of its loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from yujing.models import nab


def plain_threshold_scores(files, profile):
    """NAB's calcSweepScore + calcScoreByThreshold written as the loop it is, for comparison."""
    rows = []
    max_tp = 2 / (1 + math.exp(-5)) - 1

    def ss(x):
        return -1.0 if x > 3.0 else 2 / (1 + math.exp(5 * x)) - 1

    for name, scores, windows in files:
        n = len(scores)
        prob = min(math.floor(0.15 * n), 0.15 * 5000)
        cur = None
        prev_right = prev_width = None
        wl = list(windows)
        for i, s in enumerate(scores):
            if wl and i == wl[0][0]:
                a, b = wl.pop(0)
                cur = (f"{name}|{a}", b, b - a + 1.0)
            if cur is not None:
                w = ss(-(cur[1] - i + 1) / cur[2]) * profile.tp / max_tp
            elif prev_right is None:
                w = -1.0 * profile.fp
            else:
                w = ss(abs(prev_right - i) / (prev_width - 1)) * profile.fp
            rows.append((s, w, "probationary" if i < prob else (cur[0] if cur else None)))
            if cur is not None and i == cur[1]:
                prev_right, prev_width, cur = i, cur[2], None
    scorable = sorted([r for r in rows if r[2] != "probationary"], key=lambda r: r[0],
                      reverse=True)
    parts = {"fp": 0.0}
    for r in scorable:
        if r[2] is not None:
            parts[r[2]] = -profile.fn
    out, thr = [], 1.1
    for s, w, win in scorable:
        if s != thr:
            out.append((thr, sum(parts.values())))
            thr = s
        if win is None:
            parts["fp"] += w
        else:
            parts[win] = max(parts[win], w)
    out.append((thr, sum(parts.values())))
    return out


def labelled(n=400, windows=((200, 239),)):
    return np.zeros(n), [tuple(w) for w in windows]


@pytest.mark.parametrize("profile", sorted(nab.PROFILES))
def test_perfect_detector_scores_100_and_null_scores_0(profile):
    files = {}
    wins = {}
    for k, w in enumerate([((100, 139),), ((200, 219), (300, 339)), ()]):
        s, ws = labelled(400, w)
        for a, _ in ws:
            s[a] = 1.0  # detected at the very first row of each window, nowhere else
        files[f"f{k}.csv"] = s
        wins[f"f{k}.csv"] = ws
    res = nab.evaluate(files, wins, {profile: nab.PROFILES[profile]})[profile]
    assert res.normalised == pytest.approx(100.0)
    null = nab.evaluate({k: np.full(400, 0.5) for k in files}, wins,
                        {profile: nab.PROFILES[profile]})[profile]
    assert null.normalised == pytest.approx(0.0)
    assert null.null == pytest.approx(-nab.PROFILES[profile].fn * 3)


def test_late_detection_is_worth_less_and_false_alarms_cost():
    s, ws = labelled()
    early, late = s.copy(), s.copy()
    early[200] = 1.0
    late[235] = 1.0
    prof = nab.PROFILES["standard"]
    e = nab.evaluate({"a": early}, {"a": ws}, {"standard": prof})["standard"]
    lt = nab.evaluate({"a": late}, {"a": ws}, {"standard": prof})["standard"]
    assert e.raw == pytest.approx(1.0)
    assert 0 < lt.raw < e.raw
    noisy = early.copy()
    noisy[[100, 150]] = 1.0  # two false alarms before the window: -A_fp each
    n = nab.evaluate({"a": noisy}, {"a": ws}, {"standard": prof})["standard"]
    assert n.raw == pytest.approx(1.0 - 2 * 0.11)
    f = n.files[0]
    assert (f.found, f.false_alarms, f.windows) == (1, 2, 1)
    assert f.precision == pytest.approx(1 / 3) and f.recall == 1.0


def test_false_alarm_right_after_a_window_costs_less_than_a_far_one():
    prof = nab.PROFILES["standard"]
    sw = nab.sweep("a", np.zeros(400), [(200, 239)], prof)
    worth = dict(zip(sw.rows.tolist(), sw.worth.tolist()))
    assert 0 > worth[241] > worth[300] > worth[399] == pytest.approx(-0.11)
    assert worth[150] == pytest.approx(-0.11)  # before any window: the full cost


def test_probationary_rows_are_not_scored():
    s = np.zeros(400)
    s[10] = 1.0  # a "false alarm" inside the first 15 %
    s[200] = 1.0
    res = nab.evaluate({"a": s}, {"a": [(200, 239)]}, {"standard": nab.PROFILES["standard"]})
    assert res["standard"].raw == pytest.approx(1.0)
    assert nab.probation_length(400) == 60 and nab.probation_length(100_000) == 750


def test_one_threshold_for_the_whole_corpus_matches_the_plain_loop():
    rng = np.random.default_rng(0)
    files = []
    for k in range(4):
        n = int(rng.integers(300, 600))
        s = np.round(rng.random(n), 2)  # ties on purpose
        a = int(rng.integers(100, n - 100))
        windows = [(a, a + int(rng.integers(5, 60)))]
        if k == 2:
            windows = []
        files.append((f"f{k}", s, windows))
    for pname, prof in nab.PROFILES.items():
        want = plain_threshold_scores(files, prof)
        sweeps = [nab.sweep(n, s, w, prof) for n, s, w in files]
        got = nab.curve(sweeps, prof.fn)
        assert np.allclose(got.thresholds, [t for t, _ in want])
        assert np.allclose(got.totals, [v for _, v in want])
        best = max(want, key=lambda r: r[1])  # first max = highest threshold, as NAB
        assert got.best() == pytest.approx(best)
        res = nab.evaluate({n: s for n, s, _ in files}, {n: w for n, _, w in files},
                           {pname: prof})[pname]
        assert sum(f.score for f in res.files) == pytest.approx(res.raw)


def test_window_indices_from_timestamps():
    ts = np.arange(0, 100, 10)
    assert nab.window_indices(ts, [(20, 50), (75, 78), (85, 200)]) == [(2, 5), (9, 9)]


def test_scaled_sigmoid_matches_the_published_points():
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert nab.scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert nab.scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(3.5) == -1.0
