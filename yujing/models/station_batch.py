"""Station models over a worker's envelope: every station's rows formed and scored at once.

``StationDetector.score_station`` forms one station's rows with a few numpy calls per
metric; over an envelope of fifty stations that Python cost was the whole cost. Here the
rows of all stations are formed together (the same rule: a row at every distinct
timestamp of a station's new readings, each metric carrying its newest reading at or
before it when at most ``max_age`` old, the state's last reading included), scaled,
turned into features on one array in which each station's block starts with its
``lags`` previous rows, and scored per parameter key. The numbers are those of
``score_station`` per station (``tests/unit/test_model_stream.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from yujing.models.station import NO_READING, StationDetector, StationState


def ready(model: StationDetector, state: StationState) -> bool:
    """A state the batch path continues: its look-back rows are all there."""
    return state.rows.shape[0] == model.lags and (model.lags == 0 or state.row_ts.size > 0)


def score_stations(model: StationDetector, states: list[StationState], k: np.ndarray,
                   j: np.ndarray, ts: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, ...]:
    """Rows of the new readings (station ``k`` into ``states``, metric ``j`` into
    ``model.metrics``), sorted by station, metric and time: (row station, row ts,
    scores). Every state is advanced as ``score_station`` would."""
    n_st, m = len(states), len(model.metrics)
    after = np.array([s.row_ts[-1] if s.row_ts.size else NO_READING for s in states], np.int64)
    keep = np.isfinite(v) & (ts > after[k])
    k, j, ts, v = k[keep], j[keep], ts[keep], v[keep]
    if ts.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    lo = int(ts.min()) - 1
    span = int(ts.max()) - lo + 1
    rk, rt = _unique_pairs(k, ts, span, lo)
    row_key = rk * span + (rt - lo)
    params = [model.params[s.key] for s in states]
    max_age = np.array([int(p["max_age"]) for p in params], np.int64)
    last_ts = np.stack([s.last_ts for s in states])
    last_v = np.stack([s.last_v for s in states])
    x = np.full((rk.size, m), np.nan)
    for metric in range(m):
        sel = j == metric
        # the state's last reading of the metric, at the start of its station's block
        had = last_ts[:, metric] != NO_READING
        sk = np.concatenate((np.flatnonzero(had), k[sel]))
        st = np.concatenate((last_ts[had, metric], ts[sel]))
        sv = np.concatenate((last_v[had, metric], v[sel]))
        order = np.lexsort((np.maximum(st, lo), sk))  # pseudo readings are the oldest
        sk, st, sv = sk[order], st[order], sv[order]
        key = sk * span + (np.maximum(st, lo) - lo)
        i = np.searchsorted(key, row_key, side="right") - 1
        ic = np.clip(i, 0, None)
        have = (i >= 0) & (sk[ic] == rk) if sk.size else np.zeros(rk.size, bool)
        x[:, metric] = np.where(have & (rt - st[ic] <= max_age[rk]), sv[ic], np.nan)
        if sk.size:  # each station's newest reading of the metric
            last = np.flatnonzero(np.r_[sk[1:] != sk[:-1], True])
            last_ts[sk[last], metric], last_v[sk[last], metric] = st[last], sv[last]
    center = np.stack([p["center"] for p in params])
    scale = np.stack([p["scale"] for p in params])
    z = (x - center[rk]) / scale[rk]
    scores = _score_blocks(model, states, params, rk, z)
    counts = np.bincount(rk, minlength=n_st)
    ends = np.cumsum(counts)
    for s, (state, c, e) in enumerate(zip(states, counts.tolist(), ends.tolist())):
        state.last_ts, state.last_v = last_ts[s].copy(), last_v[s].copy()
        if c == 0:
            continue
        if model.lags:
            state.rows = np.concatenate((state.rows, z[e - c:e]))[-model.lags:]
            state.row_ts = np.concatenate((state.row_ts, rt[e - c:e]))[-model.lags:]
        else:
            state.row_ts = rt[e - 1:e].copy()
    return rk, rt, scores


def _unique_pairs(k: np.ndarray, ts: np.ndarray, span: int, lo: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    key = np.unique(k.astype(np.int64) * span + (ts - lo))
    return key // span, key % span + lo


def _score_blocks(model: StationDetector, states: list[StationState],
                  params: list[dict[str, Any]], rk: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Features on one array where each station's new rows follow its ``lags`` previous
    rows, then scores per parameter key."""
    lags = model.lags
    fast = getattr(model, "score_new_rows", None)
    if fast is not None:  # a detector's own envelope path (residual.py)
        return fast(states, params, rk, z)
    if lags:
        counts = np.bincount(rk, minlength=len(states))
        blocks = []
        for s, c in enumerate(counts.tolist()):
            if c:
                blocks.append(states[s].rows)
                blocks.append(z[np.searchsorted(rk, s):np.searchsorted(rk, s) + c])
        full = np.concatenate(blocks)
        starts = np.cumsum(counts + lags * (counts > 0)) - counts
        mask = np.zeros(full.shape[0], bool)
        mask[ranges(starts[counts > 0], counts[counts > 0])] = True
        f = model._features(full, 0)[mask]
    else:
        f = model._features(z, 0)
    ok = np.isfinite(f).all(axis=1)
    out = np.zeros(rk.size)
    keys = np.array([s.key for s in states], dtype=object)[rk]
    for key in dict.fromkeys(keys[ok].tolist()):
        sel = ok & (keys == key)
        out[sel] = model._score_rows(f[sel], params[int(rk[np.argmax(sel)])])
    return out


def ranges(first: np.ndarray, n: np.ndarray) -> np.ndarray:
    """first[k] ... first[k] + n[k] - 1 for every k, concatenated."""
    return np.repeat(first - np.cumsum(n) + n, n) + np.arange(int(n.sum()))
