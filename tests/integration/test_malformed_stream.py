"""Issue 12, "Proving it": a mixed stream of malformed messages among valid readings, over
MQTT (Mosquitto) and the three HTTP endpoints, through a real ``yujing gateway`` and
``yujing worker`` on Tansu. The slim version of bench/malformed.py (same stream builder and
counters, 5,000 malformed items and 500 valid readings): every count must match exactly."""

from __future__ import annotations

import time

from bench.malformed import Stack, run_once
from bench.malformed_mix import Limits, build


async def test_malformed_stream_counts_exactly(tmp_path):
    stack = Stack(tmp_path, Limits(), partitions=2)
    mix = build(5_000, 500, 40, seed=7, now=int(time.time() * 1000))
    # the stream holds what it claims: every family of kinds, over every channel
    assert mix.malformed >= 5_000 and mix.valid >= 500 and len(mix.hot) == 40
    assert {s.channel for s in mix.sends} == {"mqtt", "readings", "write", "events"}
    assert {"json", "invalid", "unit", "range", "future", "too_old", "forbidden",
            "topic_mismatch", "too_many", "too_large"} <= set(mix.codes)
    assert mix.letters < mix.malformed, "some request must pass the per-request letter cap"
    try:
        stack.start()
        r = await run_once(stack, mix, conc=4, timeout=40)
    finally:
        stack.stop()
    assert r.failures() == [], r.failures()
    # the same, spelled out
    assert r.dead == [] and r.http_500 == 0 and not r.replies.wrong
    assert r.seen.valid == r.accepted == r.evaluated == mix.valid
    assert r.seen.other_readings == 0
    assert r.seen.codes == mix.codes and r.seen.letters == mix.letters
    assert r.seen.no_reason == 0
    assert r.warning_problems == []
    assert max(r.probe_s) < 20, r.probe_s
