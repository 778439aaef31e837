"""Evaluating a chunk leaves no reference cycles behind. A cycle keeps the chunk's merged
readings and every intermediate array alive until the cyclic collector's next full pass;
the recursive evaluation closure that did this let a worker's dead arrays pile up by
hundreds of MB between passes (bench/heap.py shows the memory in use)."""

from __future__ import annotations

import gc
from collections import Counter

from tests.pipeline.storm import T0, pipeline, storm_envelopes
from yujing.envelope import decode


def test_a_storm_through_every_pack_leaves_no_cyclic_garbage() -> None:
    p = pipeline()
    envelopes = storm_envelopes(minutes=3)
    for e in envelopes[:5]:           # warm up: caches and first-seen stations
        p.handle(decode(e), T0)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        events = 0
        for e in envelopes[5:]:
            out = p.handle(decode(e), T0)
            events += len(out.events)
            p.check_nodata(T0 + 6 * 3_600_000, clock="event")
        gc.collect()
        garbage = Counter(type(o).__qualname__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert events > 0                 # the storm did raise and clear warnings
    assert not garbage, garbage.most_common(10)
