"""A fault for tests/integration/test_commit_stall_live.py, loaded by the children of
`yujing run` when this folder is on their PYTHONPATH.

With ``$YUJING_TEST_DROP_HEAD`` set to ``topic:partition`` (or ``topic:*``: each partition),
the first ``$YUJING_TEST_DROP_COUNT`` records (default 2) Faust takes from aiokafka for that
partition after the worker starts never reach an agent: a record Faust took and dropped
(yujing/streams/offsets.py). By default Faust does not note the hole as a gap either (the
state a worker was seen in after a kill under load, yujing/streams/commit_stall.py);
with ``$YUJING_TEST_DROP_NOTED`` set it notes it as it would a compacted topic's gap.
With ``$YUJING_TEST_DROP_MATCH`` only records whose value holds that text are dropped
(the first ones that do), wherever they are in the partition.
"""

from __future__ import annotations

import os

_SPEC = os.environ.get("YUJING_TEST_DROP_HEAD")

if _SPEC:
    from faust.transport import consumer as _consumer

    _topic, _, _partition = _SPEC.rpartition(":")
    _count = int(os.environ.get("YUJING_TEST_DROP_COUNT", "2"))
    _noted = bool(os.environ.get("YUJING_TEST_DROP_NOTED"))
    _match = os.environ.get("YUJING_TEST_DROP_MATCH", "").encode() or None
    _left: dict[int, int] = {}      # partition → records still to drop
    _hidden: set[int] = set()       # partitions whose next noted gap is the drop's own

    def _chosen(tp) -> bool:  # type: ignore[no-untyped-def]
        return tp.topic == _topic and _partition in ("*", str(tp.partition))

    _original = _consumer.Consumer._wait_next_records

    async def _wait_next_records(self, timeout):  # type: ignore[no-untyped-def]
        records, active = await _original(self, timeout)
        for tp, recs in list((records or {}).items()):
            if not (_chosen(tp) and recs and _left.setdefault(tp.partition, _count)):
                continue
            lost = [r for r in recs if _match is None or _match in (r.value or b"")]
            lost = lost[:_left[tp.partition]]
            if not lost:
                continue
            _left[tp.partition] -= len(lost)
            records[tp] = [r for r in recs if r not in lost]
            if not _noted:
                _hidden.add(tp.partition)
            print(f"test fault: dropped {len(lost)} record(s) of {tp.topic}[{tp.partition}] "
                  f"at offset {lost[0].offset}", flush=True)
        return records, active

    _add_gap = _consumer.Consumer._add_gap

    async def _no_gap_for_the_lost(self, tp, offset_from, offset_to):  # type: ignore[no-untyped-def]
        if _chosen(tp) and tp.partition in _hidden:
            _hidden.discard(tp.partition)   # the hole the drop made: Faust does not learn of it
            return
        await _add_gap(self, tp, offset_from, offset_to)

    _consumer.Consumer._wait_next_records = _wait_next_records
    _consumer.Consumer._add_gap = _no_gap_for_the_lost
