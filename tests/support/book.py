"""The warning book run in memory over a list of events: what it notifies and the incidents
it ends with. Pipeline and unit tests compare a replayed or restored run with a reference."""

from __future__ import annotations

from yujing.alerts.book import Book, Store
from yujing.alerts.settings import AlertsSettings


def book_run(events: list) -> tuple[list, dict]:
    """What the warning book notifies, and the incidents it ends with, for these events."""
    book = Book(AlertsSettings(grouping={"wait": "0s", "interval": "0s"}), Store(),
                fallback_urls=lambda g: ["json://x.example/hook"])
    sent = []
    for ev in events:
        fx = book.on_event(0, ev, ev.ts)
        sent += [(d.incidents, d.kinds) for d in fx.dispatch]
        fx = book.on_tick(0, ev.ts)
        sent += [(d.incidents, d.kinds) for d in fx.dispatch]
    return sent, {k: (w.state, w.grade) for k, w in book.store.incidents.items()}
