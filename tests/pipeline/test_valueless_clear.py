"""A clear without a value reaches the book and closes its incident.

The storm's stuck gas detector (quality-stuck-gas, a rule without a clear condition)
clears with no value (NaN in the finding). JSON has no NaN: the event travelled as
``"value": null``, which the book's decoder refused, so the incident never closed. The
value is optional now (None); the in-memory worker hands its records to the book's own
decoder, as the agent does.
"""

from __future__ import annotations

from tests.support.book import book_run
from yujing.alerts.records import State
from yujing.clock import FakeClock
from yujing.domain import EventKind, Grade
from yujing.streams.checkpoint import MemoryTable

from .storm import T0, storm_envelopes
from .worker import Worker

KEY = "quality-stuck-gas@DG-ST-G01"


async def test_the_stuck_gas_clear_travels_and_closes_its_incident():
    envelopes = storm_envelopes()
    w = Worker(MemoryTable(), envelopes, FakeClock(T0))
    await w.start()
    for off in range(len(envelopes)):
        await w.record(envelopes, off)
    mine = [e for e in w.topics.warnings if e.key == KEY]
    assert [(e.kind, e.value) for e in mine] == [
        (EventKind.RAISED, 3.0), (EventKind.CLEARED, None), (EventKind.RAISED, 3.0)]
    _, states = book_run(mine)
    assert sorted(states.values()) == [(State.ACTIVE, Grade.BLUE), (State.CLEARED, Grade.BLUE)]
    _, everything = book_run(w.topics.warnings)
    assert all(everything[k] == v for k, v in states.items())
