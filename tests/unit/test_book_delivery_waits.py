"""The book's deliveries go out after their incidents' snapshots are in Kafka (issue 17,
task 2), at the book's Faust edge (streams/alerting.py ``Alerting._effects``).

The console learns incidents from ``yujing.incidents``: a message sent before its
snapshot was stored could be acknowledged from its link at once and answer 404. The
delivery task waits for the snapshot's send (at most STORE_WAIT_S, then sends anyway);
the book agent does not wait. The topic and the channels here are recording doubles; the
effects are the book's own for a real red warning.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from yujing.alerts.book import Book, Store
from yujing.alerts.notify import Counters
from yujing.alerts.records import DeliveryResult
from yujing.alerts.settings import AlertsSettings
from yujing.domain import EventKind, Grade, WarningEvent
from yujing.streams import alerting
from yujing.streams.alerting import Alerting

T = 1_748_764_800_000


class Topic:
    """Records sends; each send's future is resolved by the test (the broker's ack)."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, asyncio.Future]] = []

    async def send(self, key: bytes | None = None, value: bytes | None = None,
                   partition: int | None = None) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.sent.append((key, fut))
        return fut


class Channels:
    def __init__(self) -> None:
        self.delivered: list[str] = []

    async def deliver(self, d) -> DeliveryResult:
        self.delivered.append(d.id)
        return DeliveryResult(d.id, True, "json://x.example/hook", [], T)


def edge() -> Alerting:
    a = Alerting.__new__(Alerting)     # the edge without a broker: only what _effects uses
    a.incidents, a.commands, a.deliverer = Topic(), Topic(), Channels()
    a.counters, a.tasks = Counters(), set()
    return a


def red_warning_effects():
    book = Book(AlertsSettings(grouping={"wait": "0s", "interval": "0s"}), Store(),
                fallback_urls=lambda g: ["json://x.example/hook"])
    ev = WarningEvent(kind=EventKind.RAISED, key="rain@g9", episode="rain@g9@x", opened_ts=T,
                      rule="rain", rule_name="暴雨", hazard="rainstorm", station="g9",
                      grade=Grade.RED, previous=Grade.NONE, ts=T, value=120.0, window="1h",
                      reason="x", town="虎门镇")
    fx = book.on_event(0, ev, T)
    assert fx.dispatch and fx.changed      # a red warning is notified at once
    return fx


async def until(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_the_message_waits_for_its_snapshot_but_the_agent_does_not():
    a, fx = edge(), red_warning_effects()
    await asyncio.wait_for(a._effects(0, fx), 1.0)       # returns with the ack outstanding
    (iid,) = fx.changed
    [(key, ack)] = a.incidents.sent
    assert key == iid.encode() and not ack.done() and a.tasks
    for _ in range(50):                                  # the task runs up to its wait
        await asyncio.sleep(0)
    assert a.deliverer.delivered == []                   # not before the snapshot is stored
    ack.set_result(None)
    await until(lambda: a.deliverer.delivered == [d.id for d in fx.dispatch])
    await until(lambda: len(a.commands.sent) == len(fx.dispatch))   # the result goes back


async def test_a_broker_that_does_not_answer_delays_the_message_only_so_long(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    monkeypatch.setattr(alerting, "STORE_WAIT_S", 0.2)
    a, fx = edge(), red_warning_effects()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="yujing.alerting"):
        await a._effects(0, fx)
        await until(lambda: a.deliverer.delivered == [d.id for d in fx.dispatch])
    assert time.monotonic() - started >= 0.2
    assert not a.incidents.sent[0][1].done()
    assert "1 of 1 incident snapshots not stored (1 unanswered" in caplog.text
