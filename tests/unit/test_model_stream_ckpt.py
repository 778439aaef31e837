"""The anomaly models' streaming state in the engine's checkpoint leaves the readings to the
engine's own retained window (models/stream_ckpt.py): restored, the scorer resumes as one
pass; a window that no longer holds the covered readings rebuilds the station, exactly; a
checkpoint of the previous layout (whole rings) still restores."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from tests.unit.test_model_stream import Models, fitted
from tests.unit.test_model_stream_batch import envelopes_for
from yujing.models import ALL_KINDS, STATION_KINDS
from yujing.models.stream import StreamScorer
from yujing.models.stream_ckpt import TAIL, digest
from yujing.rules.engine import Engine
from yujing.rules.schema import Rule

KINDS = sorted(ALL_KINDS)  # per-metric models (one ring) and station models (one per metric)
CUT = 15  # envelopes before the checkpoint (after the late reading of envelopes_for)
RULE = Rule.model_validate({"id": "an", "name": "an", "hazard": "test",
                            "grades": {"yellow": "anomaly(model=m) >= 0.3"},
                            "clear": "anomaly(model=m) < 0.2"})


def engine(model, lateness_ms: int = 3_600_000) -> Engine:
    return Engine([RULE], lateness_ms, models=Models({"m": model}), scorer=StreamScorer())


def run(eng: Engine, envs) -> list:
    got = []
    for env in envs:
        findings, late = eng.process(*env)
        assert not late
        got += [(f.ts, f.station, f.grade, f.clear, f.value) for f in findings]
    return got


def same(a: list, b: list) -> None:
    assert [f[:4] for f in a] == [f[:4] for f in b] and a
    np.testing.assert_allclose([f[4] for f in a], [f[4] for f in b], rtol=1e-12)


@pytest.fixture(scope="module", params=KINDS)
def case(request):
    model = fitted(request.param)
    model.meta["sha256"] = "1" * 64  # as a model loaded from the registry
    envs = envelopes_for(request.param)
    whole = engine(model)
    found = run(whole, envs[:CUT])
    before = whole.interpreter.scorer.rebuilt
    found += run(whole, envs[CUT:])
    first = engine(model)
    run(first, envs[:CUT])
    # a station model also rebuilds where a row's readings came in two envelopes: the
    # resumed scorer must rebuild where the one-pass one did, no more
    rebuilt = whole.interpreter.scorer.rebuilt - before
    return model, envs, found, (whole.interpreter.scorer.scored, rebuilt), first


def run_before(model, envs) -> list:
    return run(engine(model), envs[:CUT])


def resumed(model, envs, snap) -> tuple[list, StreamScorer]:
    """The findings after ``CUT`` of an engine restored from ``snap`` (through msgpack, as
    the worker's checkpoint goes), and its scorer."""
    again = engine(model)
    again.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(snap)))
    return run(again, envs[CUT:]), again.interpreter.scorer


def entries(snap) -> dict:
    (saved,) = (v for k, v in snap["anomaly"].items() if k != "groups")
    return saved


def test_the_checkpoint_holds_no_readings_and_resumes_as_one_pass(case):
    model, envs, whole, (scored, rebuilt), first = case
    snap = first.snapshot()
    saved = entries(snap)
    assert saved and all("rings" in e and not {"ts", "v", "seen"} & e.keys()
                         for e in saved.values())
    if model.kind not in STATION_KINDS:  # nor the newest readings a per-metric state keeps
        assert all(e["tail"] == min(model.history, e["rings"]["water_level_m"]["n"])
                   and not set(TAIL) & e["state"].keys() for e in saved.values())
    got, stream = resumed(model, envs, snap)
    same(run_before(model, envs) + got, whole)
    assert stream.rebuilt == rebuilt
    assert first.interpreter.scorer.scored + stream.scored == scored  # nothing scored twice


def test_restored_entries_not_yet_asked_for_go_into_the_next_checkpoint(case):
    model, envs, whole, (scored, rebuilt), first = case
    again = engine(model)
    again.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(first.snapshot())))
    got, stream = resumed(model, envs, again.snapshot())  # restarted before any envelope
    same(run_before(model, envs) + got, whole)
    assert stream.rebuilt == rebuilt
    assert first.interpreter.scorer.scored + stream.scored == scored


def test_a_window_that_does_not_hold_the_covered_readings_rebuilds_exactly(case):
    model, envs, whole, (scored, rebuilt), first = case
    snap = msgspec.msgpack.decode(msgspec.msgpack.encode(first.snapshot()))
    saved = entries(snap)
    one, two = sorted(saved)[:2]
    for c in saved[one]["rings"].values():
        c["digest"] = bytes(16)  # another reading where the ring had one
    for c in saved[two]["rings"].values():
        c["n"] -= 1  # the window lost a covered reading
    got, stream = resumed(model, envs, snap)
    same(run_before(model, envs) + got, whole)
    assert stream.rebuilt >= 2 and stream.rebuilt >= rebuilt
    assert first.interpreter.scorer.scored + stream.scored > scored  # their windows again
    if not rebuilt:  # a per-metric model: the two stations, once each
        assert stream.rebuilt == 2


def test_a_checkpoint_of_the_previous_layout_still_restores(case):
    model, envs, whole, (scored, rebuilt), first = case
    snap = first.snapshot()
    snap["anomaly"] = first.interpreter.scorer.snapshot()  # whole rings, as before
    assert all({"ts", "v", "seen"} <= e.keys() for e in entries(snap).values())
    got, stream = resumed(model, envs, snap)
    same(run_before(model, envs) + got, whole)
    assert stream.rebuilt == rebuilt
    assert first.interpreter.scorer.scored + stream.scored == scored


@pytest.mark.parametrize("kind", ["spike", "ensemble", "pca"])  # windows kept by time
def test_the_stored_entry_does_not_grow_with_the_window(kind):
    """A window 24 h long instead of 1 h: the entries' bytes, scores and row times aside,
    stay the same (the previous layout grew 16 bytes a reading: its time and value)."""
    model, envs = fitted(kind), envelopes_for(kind)
    model.meta["sha256"] = "1" * 64
    sizes, lengths = [], []
    for lateness in (3_600_000, 24 * 3_600_000):
        eng = engine(model, lateness)
        run(eng, envs[:CUT])
        lengths.append(sum(v.ts.size for v in eng.series.values()))
        rest = [{k: v for k, v in e.items() if k not in ("scores", "row_ts")}
                for e in entries(eng.snapshot()).values()]
        sizes.append(len(msgspec.msgpack.encode(rest)))
        assert all(e["scores"]["data"] for e in entries(eng.snapshot()).values())
    assert lengths[1] > lengths[0] + 100
    assert abs(sizes[1] - sizes[0]) <= 8 * len(rest)


def test_the_digest_names_readings_bit_for_bit():
    t = np.array([1, 2, 3], np.int64)
    assert digest(t, np.array([0.0, np.nan, 1.0])) == digest(t.copy(), np.array([0.0, np.nan, 1.0]))
    assert digest(t, np.array([0.0, 1.0, 2.0])) != digest(t, np.array([-0.0, 1.0, 2.0]))
    assert digest(t, np.array([0.0, 1.0, 2.0])) != digest(t, np.array([0.0, 1.0, 2.5]))
    assert digest(t, np.array([0.0, 1.0, 2.0])) != digest(t + 1, np.array([0.0, 1.0, 2.0]))
