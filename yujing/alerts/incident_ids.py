"""Incident ids, GB/T 35965.1 style: region code, event date-time (UTC), a sequence.

Only the warning book mints them (:mod:`yujing.alerts.identity`), from the
warning key and the incident's first event time, so replaying the same events
gives the same ids.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable

DONGGUAN = "441900"
_SEQ_SPACE = 10_000


def incident_id(region_code: str, key: str, ts_ms: int,
                taken: Callable[[str], bool] = lambda i: False,
                shard: int = 0, shards: int = 1) -> str:
    """GB/T 35965.1-style id: region code, event date-time (UTC), a 4-digit sequence.

    The sequence starts from a hash of the warning key, so replaying the same
    readings gives the same id; ``taken`` probes past ids already issued in
    that second (two keys whose hashes collide get different ids). With
    ``shards`` > 1 the sequence is kept congruent to ``shard`` modulo
    ``shards``: each partition of the book mints from its own residue class, so
    workers owning different partitions can never issue the same id without
    talking to each other. Past 10,000 incidents in one second of one shard
    the sequence grows a fifth digit rather than failing.
    """
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(ts_ms // 1000))
    prefix = f"{region_code}-{stamp}-"
    shards = max(1, shards)
    slots = max(1, _SEQ_SPACE // shards)
    first = zlib.crc32(key.encode()) % _SEQ_SPACE % slots
    for i in range(slots):
        seq = ((first + i) % slots) * shards + shard
        iid = f"{prefix}{seq:04d}"
        if not taken(iid):
            return iid
    seq = slots * shards + shard
    while taken(iid := f"{prefix}{seq:04d}"):
        seq += shards
    return iid
