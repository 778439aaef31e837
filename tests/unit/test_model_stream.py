"""The worker's anomaly path streams: each reading is scored once, the scores are the
one-pass scores, and the streaming state survives a checkpoint (models/stream.py)."""

from __future__ import annotations

import msgspec
import numpy as np
import pandas as pd
import pytest

from tests.unit.test_model_detectors import DAY, STEP, daily, train_frame
from tests.unit.test_model_station import METRICS, series_of, station_frame
from tests.unit.test_model_station import STEP as ROW_STEP
from tests.unit.test_model_station import T0 as ROW_T0
from yujing.models import ALL_KINDS, STATION_KINDS, make_detector
from yujing.models.scoring import StationScorer, score_series
from yujing.models.stream import StreamScorer, decode_entry, encode_entry
from yujing.rules.engine import Engine
from yujing.rules.interpret import score_with_model
from yujing.rules.schema import Rule

SMALL = {"iforest": {"n_estimators": 20}, "ensemble": {"record": 50,
                                                        "members": {"iforest": {"n_estimators": 20}}}}


class Models:
    def __init__(self, models: dict) -> None:
        self.models = models

    def get(self, name: str):
        return self.models.get(name)


def fitted(kind: str):
    if kind in STATION_KINDS:
        return make_detector(kind, seed=3).fit(station_frame(1500, seed=1))
    frames = [train_frame(DAY * 3, station=s) for s in ("a", "b", "c")]
    return make_detector(kind, seed=3, **SMALL.get(kind, {})).fit(pd.concat(frames))


@pytest.fixture(scope="module")
def spike():
    return fitted("spike")


def rule(kind_name: str = "m") -> Rule:
    return Rule.model_validate({"id": "an", "name": "an", "hazard": "test",
                                "grades": {"yellow": f"anomaly(model={kind_name}) >= 0.9"},
                                "clear": f"anomaly(model={kind_name}) < 0.5"})


def envelopes(n: int = 900, size: int = 60, late: bool = False):
    """Three stations' water levels with spikes, mixed in envelopes (arrival order)."""
    names = ["a", "b", "c"]
    parts = []
    for k in range(len(names)):
        ts, v = daily(n, seed=20 + k)
        v[[300 + 40 * k, 600 + 40 * k]] += 3.0
        parts.append(pd.DataFrame({"ts": ts + DAY * 3 * STEP, "si": k, "v": v}))
    frame = pd.concat(parts).sort_values(["ts", "si"], kind="stable")
    si, ts, v = frame["si"].to_numpy(), frame["ts"].to_numpy(np.int64), frame["v"].to_numpy()
    out, held = [], None
    for a in range(0, ts.size, size):
        s, t, x = si[a:a + size], ts[a:a + size], v[a:a + size]
        if held is not None:  # the held reading arrives late, after newer ones
            s, t, x = np.r_[held[0], s], np.r_[held[1], t], np.r_[held[2], x]
            held = None
        if late and a // size == 20:  # hold back one reading to the next envelope
            held = (s[-4:-3], t[-4:-3], x[-4:-3])
            s, t, x = np.r_[s[:-4], s[-3:]], np.r_[t[:-4], t[-3:]], np.r_[x[:-4], x[-3:]]
        out.append((names, s, ["water_level_m"], np.zeros(s.size, int), t, x))
    return out


def run(engine: Engine, envs) -> list:
    found = []
    for env in envs:
        got, late = engine.process(*env)
        assert not late
        found += [(f.ts, f.station, f.grade, f.clear) for f in got]
    return found


class Counting:
    """The old rescoring scorer, counting the readings it scores."""

    def __init__(self) -> None:
        self.scored = 0

    def __call__(self, model, ts, values, station):
        self.scored += ts.size
        return score_with_model(model, ts, values, station)


def test_the_worker_path_scores_each_reading_once_with_the_same_findings(spike):
    envs = envelopes()
    stream, counting = StreamScorer(), Counting()
    streamed = run(Engine([rule()], models=Models({"m": spike}), scorer=stream), envs)
    rescored = run(Engine([rule()], models=Models({"m": spike}), scorer=counting), envs)
    assert streamed == rescored and any(not c for *_, c in streamed)
    readings = sum(e[4].size for e in envs)
    assert stream.scored == readings and stream.rebuilt == 0
    assert counting.scored > 5 * readings  # the retained window rescored at every envelope


def test_a_late_reading_rebuilds_its_station_and_keeps_the_findings(spike):
    envs = envelopes(late=True)
    stream = StreamScorer()
    streamed = run(Engine([rule()], models=Models({"m": spike}), scorer=stream), envs)
    assert streamed == run(Engine([rule()], models=Models({"m": spike})), envs)
    assert stream.rebuilt >= 1


def test_the_engine_checkpoint_carries_the_streaming_state(spike):
    spike.meta["sha256"] = "0" * 64  # as a model loaded from the registry
    envs = envelopes()
    whole = run(Engine([rule()], models=Models({"m": spike}), scorer=StreamScorer()), envs)
    first = Engine([rule()], models=Models({"m": spike}), scorer=StreamScorer())
    before = run(first, envs[:25])
    raw = msgspec.msgpack.encode(first.snapshot())
    for keep in (True, False):  # False: a checkpoint from before issue 16
        snap = msgspec.msgpack.decode(raw)
        if not keep:
            snap.pop("anomaly")
        stream = StreamScorer()
        second = Engine([rule()], models=Models({"m": spike}), scorer=stream)
        second.restore(snap)
        assert before + run(second, envs[25:]) == whole
        after = sum(e[4].size for e in envs[25:])
        if keep:  # resumed from the state: only the new readings were scored
            assert stream.scored == after and stream.rebuilt == 0
        else:  # rebuilt from the retained readings once per station
            assert stream.scored > after


@pytest.mark.parametrize("kind", sorted(ALL_KINDS))
def test_streamed_state_survives_encode_decode_and_equals_one_pass(kind):
    model = fitted(kind)
    if kind in STATION_KINDS:
        probe = station_frame(500, seed=9, stations=("dc-1",))
        series = series_of(probe, "dc-1")
        want_ts, want = model.score_station(series, model.new_state("dc-1"))
        stream, got = StreamScorer(), None
        for cut in range(100, 501, 50):
            end = ROW_T0 + cut * ROW_STEP
            part = {m: (t[t < end], v[t < end])
                    for m, (t, v) in series.items()}
            if cut == 300:
                entry = stream.entries[next(iter(stream.entries))]["dc-1"]
                raw = msgspec.msgpack.encode(encode_entry(entry))
                back = decode_entry(msgspec.msgpack.decode(raw), model.new_state("dc-1"))
                stream.entries[next(iter(stream.entries))]["dc-1"] = back
            got = stream.station(model, part, "dc-1")
        np.testing.assert_allclose(got[1], want[-got[1].size:], atol=1e-12)
        assert np.array_equal(got[0], want_ts[-got[0].size:])
        assert stream.scored == want.size and stream.rebuilt == 0
        return
    ts, v = daily(DAY * 5, seed=8)
    ts = ts + DAY * 3 * STEP
    v[700] += 2.0
    want = score_series(model, ts, v, "a")
    stream = StreamScorer()
    keep = model.history + 200
    for end in range(300, ts.size + 1, 37):
        a = max(end - keep, 0)
        if end == 300 + 37 * 20:
            entry = stream.entries[next(iter(stream.entries))]["a"]
            raw = msgspec.msgpack.encode(encode_entry(entry))
            back = decode_entry(msgspec.msgpack.decode(raw), model.new_state("a"))
            stream.entries[next(iter(stream.entries))]["a"] = back
        got = stream(model, ts[a:end], v[a:end], "a")
        np.testing.assert_allclose(got[-37:], want[end - min(37, got.size):end], atol=1e-9)
    assert stream.rebuilt == 0 and stream.scored <= ts.size


@pytest.mark.parametrize("kind", sorted(STATION_KINDS))
def test_station_scorer_on_mixed_envelopes_equals_one_pass(kind):
    model = fitted(kind)
    probe = station_frame(400, seed=12, stations=("dc-1", "dc-2")).sort_values(
        ["ts", "station", "metric"], kind="stable")
    names, metrics = ["dc-1", "dc-2"], list(METRICS) + ["other"]
    si = probe["station"].map({n: i for i, n in enumerate(names)}).to_numpy()
    mi = probe["metric"].map({m: i for i, m in enumerate(metrics)}).to_numpy()
    ts, v = probe["ts"].to_numpy(np.int64), probe["value"].to_numpy()
    scorer = StationScorer(model)
    out = np.concatenate([scorer.score_envelope(names, si[a:a + 150], metrics, mi[a:a + 150],
                                                ts[a:a + 150], v[a:a + 150])
                          for a in range(0, ts.size, 150)])
    for k, name in enumerate(names):
        row_ts, want = model.score_station(series_of(probe, name), model.new_state(name))
        sel = si == k
        got = out[sel]
        i = np.searchsorted(row_ts, ts[sel])
        np.testing.assert_allclose(got, want[i], atol=1e-12)
