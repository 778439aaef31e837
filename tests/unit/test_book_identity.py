"""Incident identity in the warning book (yujing.alerts.identity): one place names incidents.

The worker sends episodes (warning key + the event time the episode opened); the book
finds the incident of each event and mints the ids, idempotently: whatever it lost of its
alias and open tables at a kill, a re-consumed event lands on the incident it made before.
The table below runs small scripts through a book and states the incidents it ends with
and how many notices went out (raises, upgrades: nobody confirmed a delivery, so clears
have nobody to tell). The ids are those the book minted before the change
(commit 9533f5c) wherever it was right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import pytest

from yujing.alerts.book import Book, Store
from yujing.alerts.incident_ids import incident_id
from yujing.alerts.lifecycle import Lifecycle, RuleMeta
from yujing.alerts.records import Command, Report, State
from yujing.alerts.settings import AlertsSettings
from yujing.domain import Finding, Grade, WarningEvent, episode_ref

T = 1_748_764_800_000   # 2025-06-01 08:00:00 UTC
MIN = 60_000
RAIN = RuleMeta("暴雨", "rainstorm")


class Rig:
    """A book of ``partitions`` partitions (every event in ``p``) and a worker's lifecycle."""

    def __init__(self, partitions: int = 1, p: int = 0, **settings) -> None:
        settings.setdefault("grouping", {"wait": "0s", "interval": "0s"})
        self.store = Store()
        self.book = Book(AlertsSettings(**settings), self.store, partitions=partitions,
                         fallback_urls=lambda g: ["json://x.example/hook"])
        self.p = p
        self.lc = Lifecycle()
        self.events: list[WarningEvent] = []
        self.notices = 0

    def send(self, ev: WarningEvent, now: int) -> None:
        fx = self.book.on_event(self.p, ev, now)
        self.notices += sum(len(d.kinds) for d in fx.dispatch)

    def find(self, station: str, grade: Grade | None, minute: int) -> WarningEvent:
        """The finding at ``minute`` through the lifecycle to the book (grade None: clear)."""
        ts = T + minute * MIN
        f = Finding("rain", station, ts, grade or Grade.NONE, grade is None, 60.0, "3h",
                    f"sum(3h) = 60 ({grade.label if grade else 'clear'})")
        ev = self.lc.apply(f, RAIN, ts)
        assert ev is not None, f"{station} at {minute}: the finding changed nothing"
        ev = msgspec.structs.replace(ev, town="虎门镇")
        self.events.append(ev)
        self.send(ev, ts)
        return ev

    def run(self, step: tuple) -> None:
        op, *args = step
        if op == "find":
            self.find(*args)
        elif op == "again":                  # Kafka re-delivers event i
            ev = self.events[args[0]]
            self.send(ev, ev.ts + 1)
        elif op == "old-worker":             # event i as a worker of before sent it
            i, proposed = args
            ev = msgspec.structs.replace(self.events[i], episode=proposed, opened_ts=0)
            self.send(ev, ev.ts + 1)
        elif op == "lose":                   # a kill lost this table's newest records
            getattr(self.store, args[0]).clear()
        elif op == "manual-clear":
            iid = self.store.open[f"{self.p}:rain@{args[0]}"]
            # an orange or red warning is cleared by hand after its report-back (回报)
            self.book.on_command(self.p, Command("report", id=f"r-{iid}", actor="a1", incident=iid,
                                                 report=Report(f"r-{iid}", 0, "a1", "done",
                                                               "checked on site")), T)
            self.book.on_command(self.p, Command("clear", id=f"c-{iid}", actor="a1",
                                                 incident=iid, text="by hand"), T)
        elif op == "restart":                # a worker that found no checkpoint
            self.lc = Lifecycle()
            self.lc.forward_first_clear = True
        else:
            raise AssertionError(op)

    def incidents(self) -> dict[str, str]:
        return {w.incident: f"{w.key} {w.state.value} {Grade(w.grade).label}"
                for w in self.store.incidents.values()}


@dataclass
class Case:
    name: str
    script: list[tuple]
    incidents: dict[str, str]
    notices: int
    partitions: int = 1
    p: int = 0
    extra: dict = field(default_factory=dict)


G1 = "441900-20250601080000-8533"      # rain@g1 at 08:00:00 in a book of one partition
G1_P1 = "441900-20250601080000-7067"    # ... in partition 1 of 2
S14, S23 = "441900-20250601080000-3016", "441900-20250601080000-3017"  # crc32 collide
CASES = [
    Case("same event twice",
         [("find", "g1", Grade.ORANGE, 0), ("again", 0)],
         {G1: "rain@g1 active orange"}, 1),
    Case("alias lost",
         [("find", "g1", Grade.ORANGE, 0), ("lose", "alias"), ("again", 0),
          ("find", "g1", Grade.RED, 10)],
         {G1: "rain@g1 active red"}, 2),
    Case("alias and open record lost, incident kept",
         [("find", "g1", Grade.ORANGE, 0), ("lose", "alias"), ("lose", "open"), ("again", 0)],
         {G1: "rain@g1 active orange"}, 1),
    Case("records lost after a rule clear: the replay is no new incident",
         [("find", "g1", Grade.ORANGE, 0), ("find", "g1", Grade.RED, 3),
          ("find", "g1", None, 5), ("lose", "alias"), ("again", 0), ("again", 1),
          ("again", 2)],
         {G1: "rain@g1 cleared red"}, 2),
    Case("a raise after a rule clear is a new incident",
         [("find", "g1", Grade.ORANGE, 0), ("find", "g1", None, 5),
          ("find", "g1", Grade.BLUE, 7)],
         {G1: "rain@g1 cleared orange",
          "441900-20250601080700-8533": "rain@g1 active blue"}, 2),
    Case("old worker: events with only a proposed id land on their incident",
         [("find", "g1", Grade.ORANGE, 0), ("find", "g1", Grade.RED, 3),
          ("old-worker", 1, "441900-20250601080000-8533"),
          ("old-worker", 0, "441900-20250601080000-8533")],
         {G1: "rain@g1 active red"}, 2),
    Case("old worker: two keys proposing one id each keep their incident",
         [("find", "s14", Grade.ORANGE, 0), ("find", "s23", Grade.ORANGE, 0),
          ("lose", "alias"),
          ("old-worker", 0, "441900-20250601080000-3016"),
          ("old-worker", 1, "441900-20250601080000-3016"),
          ("find", "s23", Grade.RED, 5),
          ("old-worker", 2, "441900-20250601080000-3016")],
         {S14: "rain@s14 active orange", S23: "rain@s23 active red"}, 3),
    Case("reopen after a manual clear, re-consumed after records were lost",
         [("find", "g1", Grade.YELLOW, 0), ("manual-clear", "g1"),
          ("find", "g1", Grade.RED, 2), ("lose", "alias"), ("lose", "open"), ("again", 1),
          ("again", 0), ("find", "g1", None, 30)],
         {G1: "rain@g1 cleared yellow",
          "441900-20250601080200-8533": "rain@g1 cleared red"}, 2,
         extra={"reopen_notes": 1}),
    Case("two keys, one second, one hash: an incident each, again after a replay",
         [("find", "s14", Grade.ORANGE, 0), ("find", "s23", Grade.ORANGE, 0),
          ("lose", "alias"), ("lose", "open"), ("again", 1), ("again", 0)],
         {S14: "rain@s14 active orange", S23: "rain@s23 active orange"}, 2),
    Case("a worker restarted without checkpoint goes on with the open incident",
         [("find", "g1", Grade.ORANGE, 0), ("restart",), ("find", "g1", Grade.RED, 10),
          ("find", "g1", None, 20)],
         {G1: "rain@g1 cleared red"}, 2),
    Case("partition 1 of 2 mints in its residue class",
         [("find", "g1", Grade.ORANGE, 0), ("lose", "open"), ("lose", "alias"), ("again", 0)],
         {G1_P1: "rain@g1 active orange"}, 1, partitions=2, p=1),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_identity_table(case: Case):
    rig = Rig(case.partitions, case.p)
    for step in case.script:
        rig.run(step)
    assert rig.incidents() == case.incidents
    assert rig.notices == case.notices
    for w in rig.store.incidents.values():
        assert int(w.incident.rsplit("-", 1)[1]) % case.partitions == case.p
    if "reopen_notes" in case.extra:
        old = rig.store.incidents[f"0:{G1}"]
        notes = [e for e in old.timeline if "reopened as" in e.reason]
        assert len(notes) == case.extra["reopen_notes"]


def test_the_ids_are_the_ones_the_book_minted_before():
    assert G1 == incident_id("441900", "rain@g1", T)
    assert G1_P1 == incident_id("441900", "rain@g1", T, shard=1, shards=2)
    assert (S14, S23) == (incident_id("441900", "rain@s14", T),
                          incident_id("441900", "rain@s23", T, {S14}.__contains__))


def test_the_region_code_is_the_configured_one():
    rig = Rig(region_code="440100")
    rig.find("g1", Grade.BLUE, 0)
    assert list(rig.incidents()) == ["440100-20250601080000-8533"]
    assert AlertsSettings().region_code == "441900"     # Dongguan unless configured


def test_the_episode_is_remembered_with_the_incident_and_shown_on_it():
    rig = Rig()
    ev = rig.find("g1", Grade.ORANGE, 0)
    w = rig.store.incidents[f"0:{G1}"]
    assert ev.episode == episode_ref("rain@g1", T) == "rain@g1@20250601T080000.000Z"
    assert (w.source_id, w.sources) == (ev.episode, [ev.episode])
    assert rig.store.alias == {f"0:src:{ev.episode}": G1}


def test_every_alias_goes_when_the_incident_is_collected():
    """A restart without checkpoint and a reopen each add an alias; all are collected."""
    rig = Rig(retention="1h")
    rig.find("g1", Grade.YELLOW, 0)
    rig.run(("restart",))
    rig.find("g1", Grade.ORANGE, 1)             # a new episode for the same incident
    rig.run(("manual-clear", "g1"))
    rig.find("g1", Grade.RED, 2)                # reopens
    rig.find("g1", None, 3)
    assert len(rig.store.alias) == 2 and len(rig.store.incidents) == 2
    assert sorted(len(w.sources) for w in rig.store.incidents.values()) == [1, 2]
    rig.book.on_tick(0, T + 3 * MIN + 61 * MIN)
    assert rig.store.incidents == {} and rig.store.alias == {} and rig.store.open == {}


def test_a_clear_without_a_value_keeps_the_last_value_and_closes():
    """JSON has no NaN: a rule without a clear condition sends value null (None)."""
    rig = Rig()
    rig.find("g1", Grade.ORANGE, 0)
    f = Finding("rain", "g1", T + 5 * MIN, Grade.NONE, True, float("nan"), "", "n/a (clear)")
    ev = rig.lc.apply(f, RAIN, T + 5 * MIN)
    assert ev is not None and ev.value is None
    wire = msgspec.json.decode(msgspec.json.encode(ev), type=WarningEvent)
    assert wire == ev
    rig.send(msgspec.structs.replace(wire, town="虎门镇"), T + 5 * MIN)
    w = rig.store.incidents[f"0:{G1}"]
    assert (w.state, w.value) == (State.CLEARED, 60.0)
