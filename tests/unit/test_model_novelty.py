"""The contextual-novelty detector (yujing/models/novelty.py): its parts by example, and
the properties NAB relies on (a new pattern scores, a repeated one does not; only a
bounded past is read)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.series import STEP, T0, fit_one
from yujing.models import make_detector
from yujing.models.novelty import novel_flags, surprise, symbols, with_direction


def fit(v: np.ndarray, **hyper):
    return fit_one("novelty", v, **hyper)


def score(det, v: np.ndarray, t0: int = 0) -> np.ndarray:
    ts = T0 + (t0 + np.arange(v.size, dtype=np.int64)) * STEP
    return det.score(ts, v, det.new_state("s"))


def test_symbols_put_the_training_range_in_the_middle_third():
    q = symbols(np.array([0.0, 0.99, 1.0, 3.99, 100.0, -100.0]), lo=0.0, step=1.0, levels=4)
    assert q.tolist() == [4, 4, 5, 7, 11, 0]


def test_direction_is_part_of_the_symbol():
    v = np.array([1.0, 2.0, 2.0, 1.0])
    assert with_direction(np.zeros(4, np.int64), v).tolist() == [1, 2, 1, 0]


def test_novel_flags_by_example():
    q = np.array([0, 1, 0, 1, 0, 2])
    f = novel_flags(q, orders=2, memory=10, base=3)
    # order 1: 0 and 1 are new the first time, 2 is new at the end
    assert f[0].tolist() == [True, True, False, False, False, True]
    # order 2: (0,1) at 1, (1,0) at 2 are new, then repeat; (0,2) is new; row 0 has no context
    assert f[1].tolist() == [True, True, True, False, False, True]


def test_a_context_older_than_the_memory_is_new_again():
    q = np.array([5, 0, 0, 0, 5])
    assert novel_flags(q, 1, memory=4, base=6)[0, 4] == np.False_
    assert novel_flags(q, 1, memory=3, base=6)[0, 4] == np.True_


def test_novelty_where_it_is_rare_costs_more_bits():
    novel = np.zeros((2, 101), dtype=bool)
    novel[1, :100] = True  # order 2 is always new: no surprise; order 1 never was
    novel[:, 100] = True
    bits = surprise(novel, 100, rate=100)
    p1, p2 = 0.5 / 101, 100.5 / 101
    assert bits[0] == pytest.approx(-np.log2(p1) - np.log2(p2))
    assert -np.log2(p1) > 7 > -np.log2(p2)


def test_a_new_rhythm_inside_the_usual_range_scores_above_the_repeated_one():
    period = np.tile(np.array([0.0, 1.0, 2.0, 3.0, 2.0, 1.0]), 200)  # within the range
    det = fit(period[:600])
    odd = np.concatenate((period, np.tile([0.0, 3.0], 30)))  # same values, new order
    s = score(det, odd)
    assert s[1200:1230].max() > 0.5
    assert s[700:1200].max() < 0.05


def test_a_value_beyond_the_training_range_scores():
    rng = np.random.default_rng(1)
    v = rng.normal(0, 1, 1500)
    det = fit(v[:500])
    v[1200] = 50.0
    s = score(det, v)
    assert s[1200] > np.percentile(s[600:1200], 99.5)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(1, 899), max_size=12))
def test_streaming_in_any_chunks_equals_one_pass(seed, cuts):
    rng = np.random.default_rng(seed)
    v = np.round(rng.normal(0, 1, 900).cumsum(), 1)  # ties and repeats on purpose
    det = fit(v[:300], memory=150, rate=80, orders=4)  # history 234 < 900
    whole = score(det, v)
    state = det.new_state("s")
    ts = T0 + np.arange(v.size, dtype=np.int64) * STEP
    cut = sorted(set(cuts))
    parts = [det.score(t, x, state) for t, x in zip(np.split(ts, cut), np.split(v, cut))]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_only_the_bounded_past_is_read():
    rng = np.random.default_rng(2)
    v = rng.normal(0, 1, 1200)
    det = fit(v[:300], memory=100, rate=50, orders=3)
    h = det.history
    assert h == 100 + 50 + 3
    other = v.copy()
    other[: 1000 - h] = rng.normal(5, 3, 1000 - h)  # everything before the history differs
    a, b = score(det, v), score(det, other)  # whole series, no state in between
    np.testing.assert_array_equal(a[1000:], b[1000:])
    assert (a[1000 - h - 20:1000 - h] != b[1000 - h - 20:1000 - h]).any()


def test_bad_hyper_parameters_are_refused():
    with pytest.raises(ValueError, match=">= 1"):
        make_detector("novelty", levels=0)
    with pytest.raises(ValueError, match="64-bit"):
        make_detector("novelty", levels=50, orders=12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(1, 400), min_size=1, max_size=6),
       direction=st.booleans())
def test_streaming_contexts_give_the_batch_numbers(seed, cuts, direction):
    """The kept contexts (``Contexts``) score new readings exactly as the batch functions
    score the tail and the new readings together, chunk by chunk, and a state that lost
    its cache (a copy, a restore) rebuilds it from the tail to the same numbers."""
    rng = np.random.default_rng(seed)
    train = np.round(rng.normal(0, 1, 600).cumsum(), 1)
    det = fit(train, memory=150, rate=60, orders=4, levels=3, direction=direction)
    params = det.params[det.new_state("s").key]
    v = np.round(rng.normal(0, 1, 1200).cumsum(), 1)
    v[300:340] = v[299]                                    # a plateau: contexts repeat
    ts = T0 + np.arange(v.size, dtype=np.int64) * STEP
    state, got, at = det.new_state("s"), [], 0
    for n, cut in enumerate(cuts + [v.size]):
        end = min(at + cut, v.size)
        if n == 2:
            state = state.copy()                           # no cache: rebuilt from the tail
        if end > at:
            got.append(det.score(ts[at:end], v[at:end], state))
        at = end
        if at == v.size:
            break
    streamed = np.concatenate(got)
    h = det.history
    for i in range(0, v.size, 97):                         # the batch path, window by window
        lo = max(0, i - h)
        want = det._score(ts[lo:i + 1], v[lo:i + 1], i - lo, params)
        assert streamed[i] == want[0], (i, streamed[i], want[0])
