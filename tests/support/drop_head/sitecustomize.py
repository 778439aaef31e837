"""A fault for tests/integration/test_commit_stall_live.py, loaded by the children of
`yujing run` when this folder is on their PYTHONPATH.

With ``$YUJING_TEST_DROP_HEAD`` set to ``topic:partition``, the first two records Faust
takes from aiokafka for that partition after the worker starts never reach an agent, and
Faust does not note the hole as a gap either: the state a worker was seen in after a kill
under load (yujing/streams/commit_stall.py). Faust's commit for that partition then waits
for the lost records forever, unless the commit watch reads them again.
"""

from __future__ import annotations

import os

_SPEC = os.environ.get("YUJING_TEST_DROP_HEAD")

if _SPEC:
    from faust.transport import consumer as _consumer

    _topic, _, _partition = _SPEC.rpartition(":")
    _original = _consumer.Consumer._wait_next_records
    _left = [2]

    async def _wait_next_records(self, timeout):  # type: ignore[no-untyped-def]
        records, active = await _original(self, timeout)
        if records and _left[0]:
            for tp, recs in list(records.items()):
                if tp.topic == _topic and tp.partition == int(_partition) and recs:
                    cut = min(_left[0], len(recs))
                    _left[0] -= cut
                    records[tp] = recs[cut:]
                    print(f"test fault: dropped {cut} record(s) of {_SPEC} at offset "
                          f"{recs[0].offset}", flush=True)
        return records, active

    _add_gap = _consumer.Consumer._add_gap

    async def _no_gap_for_the_lost(self, tp, offset_from, offset_to):  # type: ignore[no-untyped-def]
        if tp.topic == _topic and tp.partition == int(_partition) and _hidden[0]:
            _hidden[0] -= 1   # the hole the drop made: Faust does not learn of it
            return
        await _add_gap(self, tp, offset_from, offset_to)

    _hidden = [1]
    _consumer.Consumer._wait_next_records = _wait_next_records
    _consumer.Consumer._add_gap = _no_gap_for_the_lost
