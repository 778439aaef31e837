"""Series kept in append-only buffers, windows read on the slice a chunk's points need
(yujing.rules.buffer, yujing.rules.reach, SeriesStore.flat): the same findings and the
same retained readings as one chunk holding everything."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.columns import columns
from yujing.domain import Reading
from yujing.rules.buffer import Buffer
from yujing.rules.engine import Engine
from yujing.rules.expr import parse_condition
from yujing.rules.reach import WHOLE, of_trees
from yujing.rules.schema import Rule

MIN = 60_000
H = 3_600_000
T0 = 1_750_000_000_000 - 1_750_000_000_000 % H


def rule(rid: str, grades: dict[str, str], clear: str) -> Rule:
    return Rule.model_validate({"id": rid, "name": rid, "hazard": "test", "grades": grades,
                                "clear": {"when": clear}})


# Every node that reads a series, each on its own metric (so each has its own reach, not
# the longest of all): the slices must cover them all.
RULES = [
    rule("spike", {"blue": "jump(jm) > 5"}, "not (jump(jm) > 5)"),
    rule("dry", {"yellow": "days_since(dd, 9, 3d) >= 1"}, "days_since(dd, 9, 3d) < 1"),
    rule("swing", {"orange": "spread(sw, 3h) > 6", "red": "max(sw, 90m) > 13"},
         "spread(sw, 3h) < 2 and min(sw, 30m) < 4"),
    rule("moves", {"blue": "delta(mv, 2h) > 4 or rate(mv, 1h) > 6",
                   "yellow": "first(mv, 6h) > 10 and sum(mv, 4h) > 40"},
         "last(mv) < 3"),
    rule("trend", {"orange": "eta(tr, 14, 2h) <= 1h"}, "not (eta(tr, 14, 2h) <= 1h)"),
]
METRICS = ["jm", "dd", "sw", "mv", "tr"]


@st.composite
def streams(draw, late: bool = False):
    """Readings of up to 3 stations over up to days; ``late`` lets some arrive out of order
    (within the hour of lateness) and repeat a timestamp with a new value."""
    readings = []
    for k in range(draw(st.integers(1, 3))):
        steps = draw(st.lists(st.sampled_from([1, 5, 20, 60, 300, 1500]), min_size=2, max_size=50))
        vals = draw(st.lists(st.integers(0, 15), min_size=len(steps), max_size=len(steps)))
        which = draw(st.lists(st.sampled_from(METRICS), min_size=len(steps), max_size=len(steps)))
        t = T0
        for dt, x, m in zip(steps, vals, which):
            t += dt * MIN
            readings.append(Reading(f"s{k}", m, t, float(x)))
    readings.sort(key=lambda r: r.ts)
    if late:
        for i in draw(st.lists(st.integers(0, len(readings) - 1), max_size=8)):
            r = readings[i]
            back = draw(st.sampled_from([0, 1, 10, 59]))
            readings.insert(min(len(readings), i + 3),
                            Reading(r.station, r.metric, r.ts - back * MIN, r.value + 1))
    cuts = draw(st.lists(st.integers(1, max(1, len(readings) - 1)), max_size=15))
    return readings, cuts


def split_run(readings: list[Reading], cuts: list[int]) -> tuple[Engine, list, list]:
    engine = Engine(RULES)
    found, late = [], []
    bounds = [0] + sorted({c for c in cuts if 0 < c < len(readings)}) + [len(readings)]
    for a, b in zip(bounds, bounds[1:]):
        f, lt = engine.process(*columns(readings[a:b]))
        found += f
        late += [i + a for i in lt]
    return engine, found, late


def retained(engine: Engine) -> dict:
    return {k: (s.ts.tolist(), s.v.tolist()) for k, s in engine.series.items()}


@settings(max_examples=120, deadline=None)
@given(streams())
def test_one_reading_per_envelope_finds_what_one_chunk_finds(stream):
    readings, _ = stream
    whole = Engine(RULES)
    single, late1 = whole.process(*columns(readings))
    engine, split, late2 = split_run(readings, list(range(1, len(readings))))
    assert late1 == late2 == []
    # repr: a finding's value may be NaN (no reading in the window), which is not == itself
    assert [repr(f) for f in sorted(split, key=lambda f: (f.ts, f.rule, f.station))] == \
        [repr(f) for f in single]
    assert retained(engine) == retained(whole)


@settings(max_examples=120, deadline=None)
@given(streams(late=True))
def test_out_of_order_and_repeated_readings_are_retained_as_one_chunk_retains_them(stream):
    readings, cuts = stream
    whole = Engine(RULES)
    _, late1 = whole.process(*columns(readings))
    engine, _, late2 = split_run(readings, cuts)
    assert late1 == late2
    assert retained(engine) == retained(whole)
    for ts, _ in retained(engine).values():
        assert ts == sorted(set(ts))


# --- the buffer alone ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(0, 400), min_size=1, max_size=30),
                          st.integers(0, 400), st.integers(0, 5)), min_size=1, max_size=30))
def test_buffer_keeps_what_a_sorted_dict_keeps(batches):
    """Each batch: timestamps (any order, repeats) added with a value telling them apart,
    then a trim to a floor keeping some newest readings; against a plain dict."""
    buf, model = Buffer(), {}
    for n, (stamps, floor, keep) in enumerate(batches):
        ts = np.asarray(sorted(set(stamps)), np.int64)
        v = ts * 0.0 + n
        buf.add(ts, v)
        model.update({int(t): float(n) for t in ts})
        buf.trim(floor, keep)
        order = sorted(model)
        cut = sum(t <= floor for t in order)
        if keep:
            cut = min(cut, len(order) - keep)
        for t in order[:min(max(cut, 0), len(order) - 1)]:
            del model[t]
        got_ts, got_v = buf.views()
        assert got_ts.tolist() == sorted(model)
        assert got_v.tolist() == [model[t] for t in sorted(model)]


def test_appending_in_order_reuses_the_buffer_and_trimming_moves_an_offset():
    buf = Buffer()
    for i in range(1000):
        buf.add(np.array([i], np.int64), np.array([float(i)]))
        buf.trim(i - 100, 0)
    assert len(buf) == 100 and buf.views()[0][0] == 900
    assert buf.ts.size <= 4 * 100  # the dead part was reclaimed, not grown without end


def test_a_settled_buffer_holds_a_quarter_more_than_its_readings_and_shrinks_with_them():
    buf = Buffer()
    sizes = []
    for i in range(10_000):  # a day of minutes keeping 1,500, then 3 h more keeping 100
        buf.add(np.array([i], np.int64), np.array([float(i)]))
        buf.trim(i - (1500 if i < 9_000 else 100), 0)
        sizes.append(buf.ts.size)
        assert buf.views()[0].tolist() == list(range(max(0, i - (1499 if i < 9_000 else 99)), i + 1))
    settled = max(sizes[3000:9000])
    assert 1500 < settled <= 1500 * 5 // 4 + 1  # was 2 to 4 x: double when over half full
    assert buf.ts.size <= 100 * 5 // 4 + 16  # the buffer shrank with the series
    assert buf.v.size == buf.ts.size


# --- reach -----------------------------------------------------------------------------------


def test_reach_is_the_longest_window_and_whole_for_model_metrics():
    trees = [parse_condition(text).tree for text in (
        "max(a, 3h) > 1 and sum(a, 1h) > 2", "jump(b) > 1", "last(c) > 1",
        "days_since(e, 0.1) > 3", "eta(f, 5, 2h) <= 1h")]
    reach = of_trees(trees, {"m"})
    assert reach["a"].ms == 3 * H
    assert reach["b"].ms == 0 and reach["b"].readings >= 2
    assert reach["c"].ms == 0 and reach["c"].readings >= 1
    assert reach["e"].ms == 0      # days_since reads the retained series, not the layout
    assert reach["f"].ms == 2 * H
    assert reach["m"].ms == WHOLE


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 30 * 24 * 60),
                          st.sampled_from([0.0, 0.05, 0.1, 2.0])), min_size=1, max_size=60),
       st.lists(st.tuples(st.integers(-1, 2), st.integers(-60, 32 * 24 * 60)), min_size=1,
                max_size=20),
       st.sampled_from([3, 10]))
def test_days_since_from_the_store_equals_it_on_the_whole_layout(rows, points, days):
    """SeriesStore.days_since (the engine's) against windows.days_since on a layout of every
    retained reading (the former path): the same days, caps and NaNs at any point."""
    from yujing.rules import windows as wn
    engine = Engine([rule("dry", {"yellow": f"days_since(dd, 0.1, {days}d) >= 1"},
                          f"days_since(dd, 0.1, {days}d) < 1")], lateness_ms=40 * 24 * H)
    readings = [Reading(f"s{k}", "dd", T0 + m * MIN, v) for k, m, v in rows]
    engine.process(*columns(readings))
    store = engine.store
    ids = {f"s{k}": int(store.lookup(np.array([store.station_index[f"s{k}"]]), "dd")[0])
           for k in {k for k, _, _ in rows}}
    sid = np.array([ids.get(f"s{k}", -1) if k >= 0 else -1 for k, _ in points], np.int64)
    t = np.array([T0 + m * MIN for _, m in points], np.int64)
    order = np.argsort(sid, kind="stable")
    live = sorted(s for s in ids.values())
    ts = [store._buf[s].views()[0] for s in live]
    vs = [store._buf[s].views()[1] for s in live]
    flat = wn.Flat(np.repeat(np.array(live, np.int64), [a.size for a in ts]),
                   np.concatenate(ts), np.concatenate(vs))
    want = wn.days_since(flat, sid[order], t[order], 0.1, days * 24 * H)
    got = store.days_since(sid[order], t[order], 0.1, days * 24 * H)
    np.testing.assert_array_equal(got, want)
