"""bench/latency_meter.py's arithmetic (latency_rate.py's probes): hops between a probe's
marks, and the percentiles."""

from __future__ import annotations

import math

from bench import latency_meter as lm


def test_a_hop_is_the_time_between_two_marks_of_each_probe_that_has_both():
    p = lm.Probes()
    p.mark("LPa1-0", "post", 1000.0)
    p.mark("LPa1-0", "in_kafka", 1012.0)
    p.mark("LPa1-1", "post", 2000.0)
    p.mark("LPa1-1", "in_kafka", 2030.0)
    p.mark("LPa1-2", "post", 3000.0)  # never reached Kafka: no hop, not a zero
    assert p.hop_ms("post", "in_kafka", ["LPa1-0", "LPa1-1", "LPa1-2"]) == [12.0, 30.0]
    assert p.hop_ms("post", "in_kafka", ["LPa1-1"]) == [30.0]


def test_the_first_mark_of_a_name_is_kept():
    p = lm.Probes()
    p.mark("LPa1-0", "warned", 5.0)
    p.mark("LPa1-0", "warned", 9.0)  # a second red event of the same station
    assert p.marks["LPa1-0"]["warned"] == 5.0


def test_every_hop_starts_where_the_one_before_it_ends():
    chain = [h for h in lm.HOPS if h[0] != "watcher_readings"]
    assert [h[1] for h in chain[1:]] == [h[2] for h in chain[:-1]]
    assert chain[0][1] == "post" and chain[-1][2] == "warned"


def test_nearest_rank_percentiles():
    xs = [float(i) for i in range(1, 101)]
    assert lm.pct(xs, 0.5) == 50.0
    assert lm.pct(xs, 0.99) == 99.0
    assert lm.pct(xs, 0.07) == 7.0  # 0.07 * 100 is a hair over 7 in floats
    assert lm.pct([7.0], 0.99) == 7.0
    assert math.isnan(lm.pct([], 0.5))
