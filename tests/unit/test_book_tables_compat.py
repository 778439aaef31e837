"""Book tables and worker checkpoints written before the book owned incident identity.

``tests/data/book-tables-9533f5c.json`` was written by the code of commit 9533f5c (the
worker proposed incident ids, the book aliased them): partition 1 of a book of two
partitions holding rain@g1 (orange), rain@g2 (yellow) and rain@g3 (blue, cleared by hand,
reopened red), with ``tables`` the book's tables, ``lifecycle`` the worker's snapshot of
that moment, ``sent`` the events the book had applied and ``later`` the events that old
worker sent next (g1 red, g2 clear, g3 clear). Upgrading either side must keep every
incident: events of an old worker (a proposed id, no episode time) and of a new worker
restored from the old checkpoint land on the incidents the old book opened.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from yujing.alerts.book import Book, Store
from yujing.alerts.lifecycle import Lifecycle, RuleMeta
from yujing.alerts.records import Delivery, Group, Silence, State, Warning
from yujing.alerts.settings import AlertsSettings
from yujing.domain import Finding, Grade, WarningEvent

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "book-tables-9533f5c.json"
DOC = json.loads(FIXTURE.read_text(encoding="utf-8"))
T, MIN, DAY = DOC["T"], 60_000, 86_400_000
RAIN = RuleMeta("暴雨", "rainstorm")
G1, G2 = "441900-20250601080000-7067", "441900-20250601080000-6703"
G3_OLD, G3 = "441900-20250601080000-1891", "441900-20250601080200-1891"
TYPES = {"incidents": Warning, "groups": Group, "deliveries": Delivery, "silences": Silence}


def old_book(**settings) -> Book:
    tables = {name: {k: msgspec.json.decode(v, type=TYPES[name]) if name in TYPES else v
                     for k, v in rows.items()}
              for name, rows in DOC["tables"].items()}
    settings.setdefault("grouping", {"wait": "0s", "interval": "0s"})
    return Book(AlertsSettings(**settings), Store(**tables), partitions=2,
                fallback_urls=lambda g: ["json://x.example/hook"])


def events(name: str) -> list[WarningEvent]:
    return [msgspec.json.decode(raw, type=WarningEvent) for raw in DOC[name]]


def state(book: Book) -> dict[str, str]:
    return {w.incident: f"{w.key} {w.state.value} {Grade(w.grade).label}"
            for w in book.store.incidents.values()}


BEFORE = {G1: "rain@g1 active orange", G2: "rain@g2 active yellow",
          G3_OLD: "rain@g3 cleared blue", G3: "rain@g3 active red"}
AFTER = {G1: "rain@g1 active red", G2: "rain@g2 cleared yellow",
         G3_OLD: "rain@g3 cleared blue", G3: "rain@g3 cleared red"}


def test_the_fixture_is_what_the_old_book_made():
    book = old_book()
    assert state(book) == BEFORE
    assert [e.opened_ts for e in events("later")] == [0, 0, 0]      # no episode time then
    assert [e.episode for e in events("later")] == [G1, G2, G3_OLD]  # the proposed ids


def test_events_of_an_old_worker_land_on_the_incidents_of_the_old_book():
    book = old_book()
    for ev in events("sent"):                   # re-consumed after the upgrade: no change
        assert book.on_event(1, ev, ev.ts + 1).changed == {}
    for ev in events("later"):
        book.on_event(1, ev, ev.ts)
    assert state(book) == AFTER


def test_a_new_worker_restored_from_the_old_checkpoint_goes_on_with_the_same_incidents():
    lc = Lifecycle()
    lc.restore(DOC["lifecycle"])
    assert {k: a.since_ts for k, a in lc.active.items()} == {
        "rain@g1": T, "rain@g2": T, "rain@g3": T}
    book = old_book()
    sent = []
    for station, grade, minute in (("g1", Grade.RED, 10), ("g2", None, 20), ("g3", None, 30)):
        ts = T + minute * MIN
        f = Finding("rain", station, ts, grade or Grade.NONE, grade is None, 60.0, "3h",
                    f"sum(3h) = 60 ({grade.label if grade else 'clear'})")
        ev = msgspec.structs.replace(lc.apply(f, RAIN, ts), town="虎门镇")
        assert ev.opened_ts == T
        sent += book.on_event(1, ev, ts).dispatch
    assert state(book) == AFTER
    assert [d.kinds for d in sent] == [["upgraded"]]
    # the checkpoint this worker writes still restores in the old build (same columns)
    snap = lc.snapshot()
    assert [len(row) for row in snap["active"]] == [6] and snap["issued"] == []


def test_old_and_new_aliases_are_collected_with_their_incidents():
    book = old_book(retention="1h")
    for ev in events("later")[:1]:
        book.on_event(1, ev, ev.ts)                  # an old worker's event
    lc = Lifecycle()
    lc.restore(DOC["lifecycle"])
    for station, minute in (("g1", 40), ("g2", 41), ("g3", 42)):   # a new worker's clears
        ts = T + minute * MIN
        f = Finding("rain", station, ts, Grade.NONE, True, 1.0, "3h", "sum(3h) = 1 (clear)")
        book.on_event(1, msgspec.structs.replace(lc.apply(f, RAIN, ts), town="虎门镇"), ts)
    assert {w.state for w in book.store.incidents.values()} == {State.CLEARED}
    assert len(book.store.alias) == 6          # three of the old book, three episodes
    book.on_tick(1, T + 8 * DAY)               # past the retention of every one
    assert book.store.incidents == {} and book.store.alias == {} and book.store.open == {}
