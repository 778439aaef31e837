"""The warning book (yujing.alerts.book): lifecycle, grouping, inhibition, silences,
escalation timing and delivery bookkeeping, all with a fake clock and dict tables."""

from __future__ import annotations

import msgspec
import pytest

from yujing.alerts.book import Book, Store
from yujing.alerts.lifecycle import Lifecycle, RuleMeta
from yujing.alerts.records import (
    Attempt,
    Command,
    DeliveryResult,
    Report,
    Silence,
    State,
    Weekly,
)
from yujing.alerts.roster import parse_roster
from yujing.alerts.settings import AlertsSettings
from yujing.alerts.silences import parse_matcher
from yujing.clock import FakeClock
from yujing.domain import EventKind, Finding, Grade

T = 1_748_764_800_000   # 2025-06-01 08:00 UTC = 16:00 Asia/Shanghai
S, MIN = 1000, 60_000
RAIN = RuleMeta("暴雨", "rainstorm")

ROSTER = """
people:
  - {id: a1, name: 张三, contacts: ["json://a1.example/hook"]}
  - {id: b1, name: 李四, contacts: ["json://b1.example/hook"]}
  - {id: l1, name: 王五, contacts: ["json://l1.example/hook"]}
  - {id: r1, name: 值班员, contacts: ["json://r1.example/hook"]}
teams:
  - id: flood-hm
    name: 虎门三防
    domain: flood
    regions: [虎门镇]
    rotation: {start: 2025-05-01, handover: "08:30", slots: [{A: a1, B: b1, leader: l1}]}
  - id: room
    name: 值班室
    domain: duty_room
    rotation: {start: 2025-05-01, handover: "08:30", slots: [{A: r1, B: r1, leader: l1}]}
"""


class Rig:
    """A book with its evaluator-side lifecycle, a fake clock and the roster above."""

    def __init__(self, roster: bool = True, **settings) -> None:
        settings.setdefault("grouping", {"wait": "0s", "interval": "0s"})
        self.s = AlertsSettings(**settings)
        self.store = Store()
        self.clock = FakeClock(T)
        self.book = Book(self.s, self.store, parse_roster(ROSTER) if roster else None,
                         fallback_urls=lambda g: ["json://fallback.example/x"],
                         plan_of=lambda st: f"plan for {st}",
                         link_for=lambda p, i, now: f"http://x/ack/{p}/{','.join(i)}")
        self.lc = Lifecycle()
        self.sent = []

    def find(self, grade: Grade = Grade.NONE, station: str = "g1", clear: bool = False,
             rule: str = "rain", town: str = "虎门镇", pending: bool = False):
        f = Finding(rule, station, self.clock.t, grade, clear, 60.0, "3h",
                    f"sum(3h) = 60 ({grade.label if grade else 'clear'})", pending)
        ev = self.lc.apply(f, RAIN, self.clock.t)
        assert ev is not None, "the finding changed nothing"
        ev = msgspec.structs.replace(ev, town=town, station_name=f"{station}站")
        return self.apply(self.book.on_event(0, ev, self.clock.t))

    def apply(self, fx):
        self.sent += fx.dispatch
        return fx

    def tick(self, advance_ms: int = 0):
        self.clock.advance(advance_ms)
        return self.apply(self.book.on_tick(0, self.clock.t))

    def deliver_all(self, ok: bool = True) -> None:
        for d in list(self.sent):
            res = DeliveryResult(d.id, ok, d.contacts[0].url.split("/hook")[0] if ok else "",
                                 [] if ok else [Attempt("json://x", False, "HTTP 500", self.clock.t)],
                                 self.clock.t)
            self.book.on_result(0, res, self.clock.t)
        self.sent.clear()

    def cmd(self, cmd: str, incident: str = "", actor: str = "a1", text: str = "", **kw):
        return self.apply(self.book.on_command(0, Command(cmd, id=f"{cmd}-{self.clock.t}-{actor}",
                                                         actor=actor, incident=incident,
                                                         text=text, **kw), self.clock.t))

    def only(self):
        assert len(self.store.incidents) >= 1
        return next(iter(self.store.incidents.values()))

    def who(self) -> list[tuple[str, tuple[str, ...]]]:
        return sorted((d.person, tuple(d.kinds)) for d in self.sent)


# -- lifecycle in the book ----------------------------------------------------

def test_every_transition_is_on_the_timeline_with_a_reason():
    r = Rig()
    r.find(Grade.YELLOW, pending=True)
    w = r.only()
    assert w.state == State.PENDING and r.sent == []          # pending: nobody is told
    r.clock.advance(10 * MIN)
    r.find(Grade.YELLOW)
    assert r.only().state == State.ACTIVE and r.who() == [("a1", ("raised",))]
    r.deliver_all()
    r.clock.advance(MIN)
    r.find(Grade.RED)
    r.clock.advance(MIN)
    r.find(Grade.ORANGE)
    r.cmd("ack", r.only().incident, "b1", "on my way")
    r.cmd("note", r.only().incident, "b1", "pump team dispatched")
    r.clock.advance(MIN)
    r.find(clear=True)
    w = r.only()
    kinds = [e.kind for e in w.timeline if e.kind not in ("notified",)]
    assert kinds == ["pending", "raised", "upgraded", "downgraded", "acknowledged", "note",
                     "cleared"]
    assert all(e.reason for e in w.timeline)
    assert (w.state, w.acked_by, w.ack_note, w.cleared_by) == (State.CLEARED, "b1", "on my way",
                                                               "rule")
    assert w.peak == Grade.RED
    assert [c.msg_type for c in w.cap] == ["Alert", "Update", "Update", "Cancel"]


def test_an_upgrade_after_an_acknowledgement_needs_a_new_one():
    r = Rig()
    r.find(Grade.YELLOW)
    r.deliver_all()
    r.cmd("ack", r.only().incident, "a1")
    assert r.only().state == State.ACKNOWLEDGED
    r.find(Grade.RED)
    w = r.only()
    assert w.state == State.ACTIVE and w.esc is not None
    assert "a new one is needed" in w.timeline[-1].reason
    assert {p for p, _ in r.who()} == {"a1", "b1", "l1"}      # red pages A, B and leader at once


def test_manual_clear_then_same_grade_stays_cleared_and_higher_grade_reopens():
    r = Rig()
    r.find(Grade.ORANGE)
    r.deliver_all()
    first = r.only().incident
    r.cmd("report", first, "a1", report=Report("rep-1", 0, "a1", "done", "leaves removed"))
    r.cmd("clear", first, "a1", "sensor blocked by leaves")
    w = r.store.incidents[f"0:{first}"]
    assert (w.state, w.cleared_by, w.manual_grade) == (State.CLEARED, "a1", Grade.ORANGE)
    assert "销警" in w.timeline[-1].reason and "sensor blocked" in w.timeline[-1].reason
    assert r.who() == [("a1", ("cleared",))]                  # those told hear it is over
    r.sent.clear()
    r.clock.advance(MIN)
    r.find(Grade.YELLOW)                                       # lower: recorded, not re-raised
    assert len(r.store.incidents) == 1 and r.sent == []
    assert "not re-raised" in r.store.incidents[f"0:{first}"].timeline[-1].reason
    r.clock.advance(MIN)
    r.find(Grade.RED)                                          # worse than at the clear: new incident
    assert len(r.store.incidents) == 2
    new = next(w for k, w in r.store.incidents.items() if w.incident != first)
    assert new.state == State.ACTIVE and new.grade == Grade.RED
    assert f"reopened as {new.incident}" in r.store.incidents[f"0:{first}"].timeline[-1].reason


def test_a_raise_after_a_rule_clear_is_a_new_incident():
    r = Rig()
    r.find(Grade.BLUE)
    r.clock.advance(MIN)
    r.find(clear=True)
    r.clock.advance(MIN)
    r.find(Grade.BLUE)
    states = sorted(w.state.value for w in r.store.incidents.values())
    assert states == ["active", "cleared"]


def test_replayed_events_and_commands_change_nothing():
    r = Rig()
    f = Finding("rain", "g1", T, Grade.ORANGE, False, 60.0, "3h", "x")
    ev = msgspec.structs.replace(r.lc.apply(f, RAIN, T), town="虎门镇")
    r.apply(r.book.on_event(0, ev, T))
    clear = msgspec.structs.replace(r.lc.apply(Finding("rain", "g1", T + MIN, Grade.NONE, True,
                                                       1.0, "3h", "y"), RAIN, T), town="虎门镇")
    r.book.on_event(0, clear, T + MIN)
    before = msgspec.json.encode(r.only())
    # Kafka re-delivers both after a restart: no second incident, no second message
    assert r.book.on_event(0, ev, T + 2 * MIN).dispatch == []
    assert r.book.on_event(0, clear, T + 2 * MIN).dispatch == []
    assert len(r.store.incidents) == 1 and msgspec.json.encode(r.only()) == before
    w = r.only()
    ack = Command("note", id="n-1", actor="a1", incident=w.incident, text="hello")
    r.book.on_command(0, ack, T)
    r.book.on_command(0, ack, T)
    assert [e.reason for e in r.only().timeline].count("hello") == 1


def test_unknown_incident_command_names_the_fix():
    r = Rig()
    fx = r.cmd("ack", "441900-20250101000000-0001")
    assert "unknown incident" in fx.errors[0]


# -- escalation ---------------------------------------------------------------

def test_orange_escalates_a_then_b_then_leader_then_reminders():
    r = Rig()
    r.find(Grade.ORANGE)
    assert r.who() == [("a1", ("raised",))]
    r.deliver_all()
    assert r.tick(10 * MIN - 1).dispatch == []                 # not a millisecond early
    r.tick(1)
    assert r.who() == [("b1", ("escalated",))]
    # why now, in the duty officer's words; the English sentence stays on the timeline
    assert "通知原因：A岗10分钟未确认（发布后已过10分钟），已升级通知B岗。" in r.sent[0].message.text
    assert "no acknowledgement in 10m" in r.only().timeline[-1].reason
    r.deliver_all()
    r.tick(10 * MIN)
    assert r.who() == [("l1", ("escalated",))]
    r.deliver_all()
    r.tick(10 * MIN)
    assert r.who() == [("a1", ("reminder",)), ("b1", ("reminder",)), ("l1", ("reminder",))]
    assert "通知原因：仍未确认（已过30分钟）：第1次提醒A岗、B岗、带班领导。" in r.sent[0].message.text
    w = r.only()
    assert [e.kind for e in w.timeline].count("escalated") == 2
    assert set(w.notified) == {"a1", "b1", "l1"}


def test_red_pages_a_b_and_leader_at_once_and_ack_stops_everything():
    r = Rig()
    r.find(Grade.RED)
    assert r.who() == [("a1", ("raised",)), ("b1", ("raised",)), ("l1", ("raised",))]
    r.deliver_all()
    r.clock.advance(4 * MIN)
    r.cmd("ack", r.only().incident, "b1")
    for _ in range(5):
        r.tick(5 * MIN)
    assert r.sent == []
    assert r.store.due == {}


def test_escalation_timeouts_come_from_config():
    r = Rig(escalation={"orange": {"first": ["A"], "ack_timeout": "3s", "then": [["B"]],
                                   "repeat": "0s"}})
    r.find(Grade.ORANGE)
    r.deliver_all()
    r.tick(3 * S)
    assert r.who() == [("b1", ("escalated",))]
    r.deliver_all()
    r.tick(60 * MIN)
    assert r.sent == []                                        # repeat 0s: no reminders


def test_downtime_resumes_one_step_at_a_time():
    r = Rig()
    r.find(Grade.ORANGE)
    r.deliver_all()
    r.tick(45 * MIN)                                           # the worker was down for 45 minutes
    assert r.who() == [("b1", ("escalated",))]
    r.deliver_all()
    r.tick(1 * MIN)
    assert r.sent == []                                        # the leader waits their own timeout


def test_a_dead_runs_tick_taken_late_does_not_escalate_past_an_ack_behind_it():
    """The worker died before committing; its last tick and the acknowledgement accepted
    while no worker ran are taken by the next worker 45 minutes later, in log order."""
    r = Rig()
    r.find(Grade.ORANGE)
    w = r.only()
    r.deliver_all()
    sent = r.clock.t + 2 * S
    r.clock.advance(45 * MIN)
    r.apply(r.book.on_command(0, Command("tick", actor="dead-run", at=sent), r.clock.t))
    assert r.sent == []                                        # as of then, A still had time
    r.cmd("ack", w.incident, "a1", "停机期间确认")
    r.apply(r.book.on_command(0, Command("tick", actor="", at=r.clock.t), r.clock.t))
    assert r.sent == [] and r.only().state == State.ACKNOWLEDGED
    # without a sending time (an older worker's tick) it acts now: B is paged
    r2 = Rig()
    r2.find(Grade.ORANGE)
    r2.deliver_all()
    r2.clock.advance(45 * MIN)
    r2.apply(r2.book.on_command(0, Command("tick", actor="dead-run"), r2.clock.t))
    assert r2.who() == [("b1", ("escalated",))]

def test_a_role_nobody_holds_falls_back_to_the_duty_room():
    r = Rig()
    r.find(Grade.ORANGE, town="清溪镇", station="q1")         # no flood team for 清溪镇
    assert r.who() == [("r1", ("raised",))]


# -- grouping -----------------------------------------------------------------

def test_a_storm_over_30_gauges_is_one_message_per_person():
    r = Rig(grouping={"wait": "10s", "interval": "1m"})
    for i in range(30):
        r.find(Grade.ORANGE, station=f"g{i:02d}")
        r.clock.advance(200)
    assert r.sent == []                                        # group wait
    r.tick(10 * S)
    assert r.who() == [("a1", ("raised",) * 30)]
    assert len(r.sent[0].incidents) == 30
    assert "30站" in r.sent[0].message.title
    assert r.sent[0].message.text.count("事件编号") == 30
    assert r.sent[0].message.text.count("处置方案：plan for g") == 30


def test_grouping_off_sends_one_message_per_warning():
    r = Rig(grouping={"enabled": False})
    for i in range(5):
        r.find(Grade.ORANGE, station=f"g{i}")
    assert len(r.sent) == 5 and all(len(d.incidents) == 1 for d in r.sent)


def test_group_interval_holds_later_notices_and_sends_them_together():
    r = Rig(grouping={"wait": "0s", "interval": "1m"})
    r.find(Grade.ORANGE, station="g1")
    assert len(r.sent) == 1
    r.deliver_all()
    r.clock.advance(10 * S)
    r.find(Grade.ORANGE, station="g2")
    r.clock.advance(10 * S)
    r.find(Grade.ORANGE, station="g3")
    assert r.sent == []
    r.tick(40 * S)
    assert r.who() == [("a1", ("raised", "raised"))]


def test_groups_split_by_region_and_hazard_and_by_max_per_message():
    r = Rig(grouping={"wait": "0s", "interval": "0s", "max_per_message": 2})
    r2 = Rig(grouping={"wait": "5s", "interval": "0s", "max_per_message": 2})
    for i in range(5):
        r2.find(Grade.ORANGE, station=f"g{i}")
    r2.find(Grade.ORANGE, station="c1", town="长安镇")
    r2.tick(5 * S)
    sizes = sorted(len(d.incidents) for d in r2.sent)
    assert sizes == [1, 1, 2, 2]                               # 虎门 5 → 2+2+1; 长安 1
    assert r.sent == []


# -- inhibition and silences ----------------------------------------------------

def test_red_at_a_station_inhibits_a_lower_grade_of_the_same_hazard():
    r = Rig()
    r.find(Grade.RED, rule="rain3h")
    r.deliver_all()
    r.find(Grade.YELLOW, rule="rain1h")
    assert r.sent == []
    low = next(w for w in r.store.incidents.values() if w.rule == "rain1h")
    assert low.muted.startswith("inhibited by red") and low.timeline[-1].kind == "inhibited"
    r.find(Grade.YELLOW, rule="rain1h", station="g2")          # another station: not inhibited
    assert r.who() == [("a1", ("raised",))]
    r.sent.clear()
    r.clock.advance(MIN)
    r.find(clear=True, rule="rain3h")                          # the red clears ...
    r.deliver_all()
    r.tick(1)                                                  # ... so the yellow is told now
    assert r.who() == [("a1", ("unmuted",))]
    low = r.store.incidents[f"0:{low.incident}"]
    assert low.muted == "" and "no longer held" in low.timeline[-2].reason + low.timeline[-1].reason


def test_inhibition_rules_are_configurable():
    r = Rig(inhibit=[{"source": ["grade=~orange|red"], "target": ["grade=blue"],
                      "equal": ["town"]}])
    r.find(Grade.ORANGE, station="g1", rule="a")
    r.deliver_all()
    r.find(Grade.BLUE, station="g2", rule="b")                 # same town: inhibited
    assert r.sent == []
    r.find(Grade.YELLOW, station="g3", rule="c")               # yellow is not a target
    assert len(r.sent) == 1


def silence(**kw) -> Silence:
    base = dict(id="s1", matchers=[parse_matcher("town=虎门镇")], starts_ms=T, ends_ms=T + 60 * MIN,
                created_by="a1", reason="gauge maintenance")
    base.update(kw)
    return Silence(**base)


def test_a_silence_holds_notifications_and_they_go_out_when_it_ends():
    r = Rig()
    r.cmd("silence_add", silence=silence(ends_ms=T + 30 * MIN))
    r.find(Grade.ORANGE)
    assert r.sent == []
    w = r.only()
    assert w.muted.startswith("silenced by silence s1") and "gauge maintenance" in w.muted
    r.find(Grade.ORANGE, station="c1", town="长安镇")          # does not match: duty room
    assert r.who() == [("r1", ("raised",))]
    r.sent.clear()
    r.tick(29 * MIN)
    assert [d for d in r.sent if d.group.startswith("虎门镇")] == []
    r.sent.clear()
    r.tick(1 * MIN)
    assert r.who() == [("a1", ("unmuted",))]


def test_expiring_a_silence_is_audited_and_releases_warnings():
    r = Rig()
    r.cmd("silence_add", silence=silence())
    r.find(Grade.ORANGE)
    r.clock.advance(MIN)
    r.cmd("silence_expire", actor="b1", text="maintenance done", silence_id="s1")
    s = r.store.silences["0:s1"]
    assert [(a.actor, a.action) for a in s.audit] == [("a1", "created"), ("b1", "expired")]
    assert s.audit[1].reason == "maintenance done"
    r.tick(1)
    assert r.who() == [("a1", ("unmuted",))]


def test_weekly_silence_only_inside_its_window():
    # T is a Sunday 16:00 in Shanghai
    r = Rig()
    r.cmd("silence_add", silence=silence(ends_ms=T + 30 * 86_400_000,
                                         weekly=[Weekly([6], "15:00", "17:00")]))
    r.find(Grade.ORANGE)
    assert r.sent == []
    r.clock.advance(2 * 3600 * S)                              # 18:00: outside the window
    r.find(Grade.ORANGE, station="g2")
    assert len(r.sent) == 1


def test_silence_reminder_goes_to_its_creator_once():
    r = Rig(silence_reminder="10m")
    r.cmd("silence_add", silence=silence())
    assert r.tick(45 * MIN).reminders == []
    fx = r.tick(6 * MIN)
    assert fx.reminders and fx.reminders[0][0] == "a1" and "ends at" in fx.reminders[0][1]
    zh = fx.reminders[0][1].splitlines()[0]     # Chinese first: the SMS cut keeps it
    assert zh.startswith("您设置的静默 s1") and "结束" in zh and "延长" in zh
    assert r.tick(1 * MIN).reminders == []
    assert r.store.silences["0:s1"].audit[-1].action == "reminded"


# -- delivery bookkeeping ----------------------------------------------------------

def test_results_land_on_the_timeline_with_channel_and_outcome():
    r = Rig()
    r.find(Grade.ORANGE)
    d = r.sent[0]
    assert f"0:{d.id}" in r.store.deliveries                    # in flight until its result
    res = DeliveryResult(d.id, True, "json://a1.example",
                         [Attempt("sms://gw", False, "HTTP 503", T)], T + S)
    r.book.on_result(0, res, T + S)
    assert f"0:{d.id}" not in r.store.deliveries
    w = r.only()
    failed, notified = w.timeline[-2], w.timeline[-1]
    assert (failed.kind, failed.channel, failed.ok) == ("failed", "sms://gw", False)
    assert "HTTP 503" in failed.reason
    assert (notified.kind, notified.channel, notified.ok, notified.actor) == (
        "notified", "json://a1.example", True, "a1")
    assert "after 1 failed attempt" in notified.reason
    assert r.book.on_result(0, res, T + 2 * S).changed == {}    # duplicate result: ignored


def test_a_restarted_worker_resends_only_what_was_in_flight():
    r = Rig()
    r.find(Grade.ORANGE, station="g1")
    r.find(Grade.ORANGE, station="c1", town="长安镇")
    done, flying = r.sent
    r.book.on_result(0, DeliveryResult(done.id, True, "json://x", [], T), T)
    r.sent.clear()
    restarted = Book(r.s, r.store, r.book.roster, run_id="run-2")
    fx = restarted.on_tick(0, T + S)
    assert [d.id for d in fx.dispatch] == [flying.id]
    assert fx.dispatch[0].redispatched == 1
    assert restarted.on_tick(0, T + 2 * S).dispatch == []       # now owned by this run


def test_no_roster_sends_to_the_notify_urls():
    r = Rig(roster=False)
    r.find(Grade.ORANGE)
    assert [c.url for c in r.sent[0].contacts] == ["json://fallback.example/x"]


@pytest.mark.parametrize("kind", [EventKind.UPGRADED, EventKind.DOWNGRADED])
def test_an_event_for_an_unknown_key_opens_an_incident(kind):
    """The book lost its state (or started mid-incident): the warning is still raised."""
    r = Rig()
    from yujing.domain import WarningEvent
    ev = WarningEvent(kind=kind, key="rain@g9", episode="441900-20250601080000-0001",
                      rule="rain", rule_name="暴雨", hazard="rainstorm", station="g9",
                      grade=Grade.ORANGE, previous=Grade.RED, ts=T, value=1.0, window="3h",
                      reason="x", town="虎门镇")
    r.apply(r.book.on_event(0, ev, T))
    assert r.only().state == State.ACTIVE and len(r.sent) == 1


def test_a_reconsumed_tick_of_the_dead_run_does_not_resend():
    """After a restart Kafka may hand back the dead run's ticks before the results that
    followed them; only the new run's own ticks (which come after every old result) resend."""
    r = Rig()
    r.find(Grade.ORANGE)
    flying = r.sent[0]
    restarted = Book(r.s, r.store, r.book.roster, run_id="run-2")
    old_tick = Command("tick", actor="run")
    assert restarted.on_command(0, old_tick, T + S).dispatch == []
    own_tick = Command("tick", actor="run-2")
    assert [d.id for d in restarted.on_command(0, own_tick, T + S).dispatch] == [flying.id]


def test_a_clear_after_a_restart_closes_the_warning_raised_before_it():
    r = Rig()
    r.find(Grade.ORANGE)
    r.deliver_all()
    r.lc = Lifecycle()                    # the evaluator restarted with empty state
    r.lc.forward_first_clear = True
    r.clock.advance(MIN)
    r.find(clear=True)
    w = r.only()
    assert w.state == State.CLEARED and w.cleared_by == "rule"
    assert r.who() == [("a1", ("cleared",))]
    r2 = Rig()
    r2.lc.forward_first_clear = True
    r2.find(clear=True)                    # nothing open: ignored, nothing stored
    assert r2.store.incidents == {} and r2.sent == []


def test_escalations_and_red_skip_the_group_interval_but_routine_updates_wait():
    r = Rig(grouping={"wait": "2s", "interval": "5m"},
            escalation={"orange": {"first": ["A"], "ack_timeout": "1m", "then": [["B"]]}})
    r.find(Grade.ORANGE, station="g1")
    r.tick(2 * S)
    assert r.who() == [("a1", ("raised",))]
    r.deliver_all()
    r.clock.advance(10 * S)
    r.find(Grade.YELLOW, station="g2")           # routine: would wait for the 5 m interval
    r.tick(40 * S)
    assert r.sent == []
    r.tick(10 * S)                               # 1 m after g1 was paged: escalation is due
    r.tick(2 * S)                                # ... and goes out after the 2 s group wait,
    assert r.who() == [("a1", ("raised",)), ("b1", ("escalated",))]  # taking g2 along
    r.deliver_all()
    r.clock.advance(10 * S)
    r.find(Grade.RED, station="g3")              # red: no interval either
    r.tick(2 * S)
    assert sorted(p for p, _ in r.who()) == ["a1", "b1", "l1"]


def test_cleared_incidents_are_forgotten_after_the_retention_period():
    r = Rig(retention="1h")
    r.find(Grade.ORANGE)
    iid = r.only().incident
    r.clock.advance(MIN)
    r.find(clear=True)
    assert r.tick(59 * MIN).removed == []
    fx = r.tick(1 * MIN)
    assert fx.removed == [iid]
    assert r.store.incidents == {} and r.store.open == {} and r.store.alias == {}
    assert r.store.due == {}
    r.clock.advance(MIN)
    r.find(Grade.ORANGE)                        # a later raise is a fresh incident
    assert r.only().state == State.ACTIVE
