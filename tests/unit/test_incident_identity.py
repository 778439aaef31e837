"""Who names an incident: the book alone, from the episodes the worker sends.

Before issue 10 the worker's Lifecycle minted a proposed id per warning episode (in
the residue class of the book partition that would own it) and the book kept it unless
it collided, remembering the proposal in its alias table. These tests pinned that
behaviour down before identity moved to the book; they now show the move keeps every
id the book issued, and that the collision below (a lost warning then) is gone. The
idempotency table is in test_book_identity.py.
"""

from __future__ import annotations

import zlib

import msgspec

from yujing.alerts.book import Book, Store
from yujing.alerts.incident_ids import DONGGUAN, incident_id
from yujing.alerts.lifecycle import Lifecycle, RuleMeta
from yujing.alerts.records import Command, State
from yujing.alerts.settings import AlertsSettings
from yujing.domain import Finding, Grade

T = 1_748_764_800_000   # 2025-06-01 08:00:00 UTC
MIN = 60_000
RAIN = RuleMeta("暴雨", "rainstorm")
SETTINGS = AlertsSettings(grouping={"wait": "0s", "interval": "0s"})


def finding(station: str, grade: Grade = Grade.NONE, ts: int = T, clear: bool = False,
            pending: bool = False) -> Finding:
    return Finding("rain", station, ts, grade, clear, 60.0, "3h", "sum(3h) = 60", pending)


def feed(book: Book, lc: Lifecycle, f: Finding, p: int = 0):
    ev = lc.apply(f, RAIN, f.ts)
    assert ev is not None
    book.on_event(p, msgspec.structs.replace(ev, town="虎门镇"), f.ts)
    return ev


def incidents(book: Book) -> dict[str, tuple[str, str]]:
    return {w.incident: (w.key, w.state.value) for w in book.store.incidents.values()}


def test_the_book_mints_the_id_the_worker_used_to_propose():
    book, lc = Book(SETTINGS, Store()), Lifecycle()
    ev = feed(book, lc, finding("g1", Grade.ORANGE))
    iid = incident_id(DONGGUAN, "rain@g1", T)
    assert incidents(book) == {iid: ("rain@g1", "active")}
    assert book.store.alias[f"0:src:{ev.episode}"] == iid


def test_ids_stay_in_the_residue_class_of_their_book_partition():
    book = Book(SETTINGS, Store(), partitions=4)
    feed(book, Lifecycle(), finding("g1", Grade.ORANGE), p=3)
    iid = incident_id(DONGGUAN, "rain@g1", T, shard=3, shards=4)
    assert int(iid.rsplit("-", 1)[1]) % 4 == 3
    assert list(incidents(book)) == [iid]


def test_a_reopen_after_a_manual_clear_is_a_new_id_and_the_episode_points_to_it():
    book, lc = Book(SETTINGS, Store()), Lifecycle()
    ev = feed(book, lc, finding("g1", Grade.YELLOW))
    first = incident_id(DONGGUAN, "rain@g1", T)
    book.on_command(0, Command("clear", id="c1", actor="a1", incident=first), T + MIN)
    up = feed(book, lc, finding("g1", Grade.RED, ts=T + 2 * MIN))
    assert up.episode == ev.episode                        # the worker's episode goes on
    new = book.store.alias[f"0:src:{ev.episode}"]
    assert new != first
    assert incidents(book) == {first: ("rain@g1", "cleared"), new: ("rain@g1", "active")}


def test_a_worker_restarted_without_checkpoint_starts_an_episode_and_the_book_keeps_its_incident():
    book = Book(SETTINGS, Store())
    ev = feed(book, Lifecycle(), finding("g1", Grade.ORANGE))
    iid = incident_id(DONGGUAN, "rain@g1", T)
    fresh = Lifecycle()
    fresh.forward_first_clear = True
    again = feed(book, fresh, finding("g1", Grade.RED, ts=T + 10 * MIN))
    assert again.episode != ev.episode
    assert book.store.alias[f"0:src:{again.episode}"] == iid
    assert incidents(book) == {iid: ("rain@g1", "active")}
    assert book.store.incidents[f"0:{iid}"].grade == Grade.RED


def _colliding_stations(slots: int) -> tuple[str, str]:
    seen: dict[int, str] = {}
    for i in range(100_000):
        station = f"S{i}"
        r = zlib.crc32(f"rain@{station}".encode()) % 10_000 % slots
        if r in seen:
            return seen[r], station
        seen[r] = station
    raise AssertionError("no collision found")


def test_two_pipelines_proposing_the_same_id_each_get_an_incident():
    """Stations of different readings partitions (two pipelines, each minting alone before),
    whose groups land in the same book partition, raise in the same second with warning
    keys whose hashes collide in the partition's sequence space. Gauges report on aligned
    5-minute marks, so raises in the same second are the rule in a storm. Before the book
    owned identity both pipelines proposed the same id and the second warning was lost."""
    s1, s2 = _colliding_stations(10_000 // 2)
    proposed = {incident_id(DONGGUAN, f"rain@{s}", T, shard=0, shards=2) for s in (s1, s2)}
    assert len(proposed) == 1                               # the collision itself
    book = Book(SETTINGS, Store(), partitions=2)
    evs = [feed(book, Lifecycle(), finding(s, Grade.ORANGE)) for s in (s1, s2)]
    assert evs[0].episode != evs[1].episode
    keys = sorted(key for key, state in incidents(book).values() if state == State.ACTIVE.value)
    assert keys == sorted([f"rain@{s1}", f"rain@{s2}"])
    assert proposed < set(incidents(book))                  # the first keeps that id
