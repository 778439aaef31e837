"""bench/scale_parts.py's own logic: the rebalance gap from a partition's evaluation times,
and what it reads from a worker's log (heartbeats, restored partitions)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))  # the bench scripts import their siblings by name

import scale_parts  # noqa: E402

sys.path.remove(str(BENCH))  # no bench script shadows a module of another test

EVALS = [0.0, 0.1, 0.2, 5.2, 5.3, 5.4]


def test_a_pause_counts_for_the_window_it_ends_in_with_its_start():
    assert scale_parts.longest_gap(EVALS, 0.25, 10.0) == pytest.approx((5.0, 0.2))  # began before
    assert scale_parts.longest_gap(EVALS, 5.25, 10.0)[0] == pytest.approx(0.1)  # next window: steady


def test_a_window_with_no_evaluation_is_an_open_gap_up_to_its_end():
    assert scale_parts.longest_gap(EVALS, 6.0, 9.0) == pytest.approx((3.6, 5.4))


def test_heartbeats_and_restores_are_read_from_the_worker_log(tmp_path):
    log = tmp_path / "w1.log"
    log.write_text(
        "[2026-12-02 16:19:14,468] [21720] [INFO] partition 6: restored checkpoint 9 (offset "
        "1102, 6338 bytes stored, 253748 raw) in 0.030s; re-processed 219 envelopes\n"
        "[2026-12-02 16:19:15,000] [21720] [INFO] partition 2: no checkpoint, starting empty\n"
        "[2026-12-02 16:19:16,781] [21720] [INFO] worker: 311992 readings, 11984 late, 0 active "
        "warnings (partitions 0,2,6)\n", encoding="utf-8")
    (beat,) = scale_parts.beats(log)
    assert beat.readings == 311992 and beat.partitions == {0, 2, 6}
    got = scale_parts.restores(log)
    assert [p for _, p in got] == [6, 2]
    assert got[1][0] - got[0][0] == pytest.approx(0.532)
    assert scale_parts.beats(tmp_path / "absent.log") == []
