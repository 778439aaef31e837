"""Safety notices (yujing.alerts.notices, notice_desk): selection by tag, town and list,
tracking, reminders with time passed in, message limits, and scope refusals. Pure."""

from __future__ import annotations

import msgspec
import pytest

from yujing.alerts import notices as nt
from yujing.alerts.notice_desk import Desk, NoticeCommand
from yujing.alerts.notice_settings import NoticeSettings
from yujing.alerts.orgs import merge, parse_orgs
from yujing.alerts.records import Attempt, DeliveryResult
from yujing.alerts.roster import parse_roster
from yujing.alerts.templates import SMS_LIMIT
from yujing.console.rights import Rights
from yujing.durations import Duration

T = 1_748_764_800_000   # 2025-06-01 08:00 UTC
MIN = 60_000

ROSTER = """
people:
  - {id: room.a, name: 值班员, contacts: ["json://room.example/hook"]}
teams:
  - id: room
    name: 值班室
    domain: duty_room
    rotation: {start: 2025-05-01, slots: [{A: room.a}]}
"""

ORGS = """
people:
  - {id: a.s, name: 甲厂安全员, contacts: ["json://a-s.example/hook"]}
  - {id: a.b, name: 甲厂副安全员, contacts: ["json://a-b.example/hook"]}
  - {id: b.s, name: 乙厂安全员, contacts: []}
  - {id: b.b, name: 乙厂副安全员, contacts: ["json://b-b.example/hook"]}
  - {id: c.s, name: 丙厂安全员, contacts: ["json://c-s.example/hook"]}
  - {id: d.s, name: 丁厂安全员, contacts: ["json://d-s.example/hook"]}
  - {id: ca.reg, name: 长安监管, contacts: ["json://careg.example/hook"]}
  - {id: hj.reg, name: 厚街监管, contacts: ["json://hjreg.example/hook"]}
towns:
  - {name: 长安镇, regulators: {on_call: [ca.reg]}}
  - {name: 厚街镇, regulators: {on_call: [hj.reg]}}
enterprises:
  - {id: ENT-A, name: 甲厂, town: 长安镇, industry: [粉尘涉爆], duty: {on_call: [a.s, a.b]}}
  - {id: ENT-B, name: 乙厂, town: 厚街镇, industry: [粉尘涉爆, 工贸], duty: {on_call: [b.s, b.b]}}
  - {id: ENT-C, name: 丙厂, town: 长安镇, industry: [危化], duty: {on_call: [c.s]}}
  - {id: ENT-D, name: 丁厂, town: 厚街镇, industry: [工贸], duty: {on_call: [d.s]}}
"""

S = NoticeSettings(remind_after=Duration("30m"), reminders=2)


@pytest.fixture
def orgs():
    return parse_orgs(ORGS)


@pytest.fixture
def roster(orgs):
    return merge(parse_roster(ROSTER), orgs)


def order(**to: list[str]) -> bytes:
    return msgspec.json.encode({"title": "高温粉尘防爆提示", "body": "请检查除尘器温度与清灰",
                                "kind": "防御提示", "to": to})


# -- selection -------------------------------------------------------------------
@pytest.mark.parametrize("to, chosen", [
    ({"tags": ["粉尘涉爆"]}, ["ENT-A", "ENT-B"]),
    ({"tags": ["危化", "工贸"]}, ["ENT-B", "ENT-C", "ENT-D"]),
    ({"towns": ["长安镇"]}, ["ENT-A", "ENT-C"]),
    ({"enterprises": ["ENT-D", "ENT-A"]}, ["ENT-A", "ENT-D"]),
    ({"tags": ["危化"], "towns": ["厚街镇"]}, ["ENT-B", "ENT-C", "ENT-D"]),
])
def test_a_notice_reaches_the_enterprises_its_tags_towns_and_list_name(orgs, to, chosen):
    got, problems = nt.select(orgs, nt.Selector(**to))
    assert problems == []
    assert got == chosen


@pytest.mark.parametrize("to, said", [
    ({"tags": ["粉尘"]}, "no enterprise has the industry tag '粉尘'"),
    ({"towns": ["虎门镇"]}, "unknown town '虎门镇'"),
    ({"enterprises": ["ENT-X"]}, "unknown enterprise 'ENT-X'"),
    ({}, "reaches no enterprise"),
])
def test_a_selection_that_names_nothing_known_is_refused_with_the_reason(orgs, to, said):
    with pytest.raises(nt.NoticeError, match=said):
        nt.parse_order(order(**to), orgs, S)


def test_a_bad_body_gets_every_reason_at_once(orgs):
    raw = msgspec.json.encode({"title": "", "body": "x" * 5000, "kind": "闲聊",
                               "severity": "loud", "link": "ftp://x", "to": {"tags": ["危化"]}})
    with pytest.raises(nt.NoticeError) as err:
        nt.parse_order(raw, orgs, S)
    text = str(err.value)
    for part in ("title is empty", "body has 5000 characters", "unknown kind",
                 "unknown severity", "not a web link"):
        assert part in text
    with pytest.raises(nt.NoticeError, match="one JSON object"):
        nt.parse_order(b"{\"title\": ", orgs, S)
    with pytest.raises(nt.NoticeError, match="bad notice"):
        nt.parse_order(b'{"title": "t", "body": "b", "to": {}, "extra": 1}', orgs, S)
    with pytest.raises(nt.NoticeError, match="no enterprises registry"):
        nt.parse_order(order(tags=["危化"]), None, S)


def test_the_resolved_list_is_stored_with_the_notice(orgs):
    o, chosen = nt.parse_order(order(tags=["粉尘涉爆"]), orgs, S)
    n = nt.new_notice("N1", o, chosen, orgs, "room.a", T)
    assert [(t.enterprise, t.name, t.town) for t in n.targets] == [
        ("ENT-A", "甲厂", "长安镇"), ("ENT-B", "乙厂", "厚街镇")]
    assert n.to.tags == ["粉尘涉爆"] and n.by == "room.a" and n.at == T


# -- tracking and reminders ----------------------------------------------------------
def three(orgs) -> nt.Notice:
    o, chosen = nt.parse_order(order(enterprises=["ENT-A", "ENT-B", "ENT-C"]), orgs, S)
    return nt.new_notice("N1", o, chosen, orgs, "room.a", T)


def test_acknowledgements_are_tracked_once_per_kind_and_command(orgs):
    n = three(orgs)
    assert nt.acknowledge(n, "ENT-A", "a.s", "received", T + MIN, "c1")
    assert not nt.acknowledge(n, "ENT-A", "a.s", "received", T + MIN, "c1")   # replayed
    assert not nt.acknowledge(n, "ENT-A", "a.b", "received", T + 2 * MIN, "c2")  # same kind
    assert nt.acknowledge(n, "ENT-A", "a.b", "done", T + 3 * MIN, "c3")
    assert not nt.acknowledge(n, "ENT-X", "x", "received", T, "c4")
    t = n.target("ENT-A")
    assert [(a.kind, a.by, a.at) for a in t.acks] == [("received", "a.s", T + MIN),
                                                       ("done", "a.b", T + 3 * MIN)]
    tally = nt.tally(n, T + 3 * MIN, S)
    assert (tally.acked, tally.total) == (1, 3) and tally.words() == "已确认 1/3"
    assert [x.enterprise for x in tally.missing] == ["ENT-B", "ENT-C"]


def test_ack_words_in_chinese_and_english_are_the_same_kind():
    assert nt.ack_kind("已收到") == nt.ack_kind("received") == "received"
    assert nt.ack_kind("已落实") == "done"
    with pytest.raises(nt.NoticeError, match="unknown acknowledgement"):
        nt.ack_kind("ok")


def test_reminders_fall_due_after_the_wait_and_stop_after_the_last(orgs):
    n = three(orgs)
    nt.acknowledge(n, "ENT-A", "a.s", "received", T + MIN)
    assert nt.reminders_due(n, T + 29 * MIN, S) == []
    assert nt.next_due(n, S) == T + 30 * MIN
    due = nt.reminders_due(n, T + 30 * MIN, S)
    assert [t.enterprise for t in due] == ["ENT-B", "ENT-C"]
    for t in due:
        t.reminders, t.reminded_ms = 1, T + 30 * MIN
    assert nt.status(n.target("ENT-B"), n, T + 31 * MIN, S) == "reminded"
    assert nt.reminders_due(n, T + 59 * MIN, S) == []
    for t in nt.reminders_due(n, T + 60 * MIN, S):
        t.reminders, t.reminded_ms = 2, T + 60 * MIN
    assert nt.next_due(n, S) is None                 # reminders spent
    assert nt.status(n.target("ENT-C"), n, T + 80 * MIN, S) == "reminded"
    assert nt.status(n.target("ENT-C"), n, T + 90 * MIN, S) == "unconfirmed"
    assert [t.enterprise for t in nt.tally(n, T + 90 * MIN, S).unconfirmed] == ["ENT-B", "ENT-C"]
    assert nt.status(n.target("ENT-A"), n, T + 90 * MIN, S) == "acked"


# -- the desk: who is told, reminders, results, restart ------------------------------
def desk(roster, run: str = "run1", notices=None, deliveries=None) -> Desk:
    return Desk(S, {} if notices is None else notices, {} if deliveries is None else deliveries,
                roster, lambda p, n, e, now: f"http://x/v1/notice-link/{p}.{n}.{e}", run)


def test_each_enterprise_gets_its_a_or_b_when_a_cannot_be_reached(orgs, roster):
    d = desk(roster)
    fx = d.on_command(NoticeCommand("notice_send", notice=three(orgs)), T)
    people = sorted((x.person, x.incidents[1]) for x in fx.dispatch)
    # ENT-B's A (b.s) has no contacts: B takes it
    assert people == [("a.s", "ENT-A"), ("b.b", "ENT-B"), ("c.s", "ENT-C")]
    msg = next(x for x in fx.dispatch if x.person == "a.s").message
    assert "http://x/v1/notice-link/a.s.N1.ENT-A" in msg.text and "请检查除尘器温度" in msg.text
    assert "http://x/" not in msg.sms and len(msg.sms) <= SMS_LIMIT
    again = d.on_command(NoticeCommand("notice_send", notice=three(orgs)), T + 1)
    assert again.dispatch == []      # a replayed send sends nothing


def test_a_tick_reminds_the_silent_enterprises_a_and_b(orgs, roster):
    d = desk(roster)
    d.on_command(NoticeCommand("notice_send", notice=three(orgs)), T)
    d.on_command(NoticeCommand("notice_ack", id="c1", actor="a.s", notice_id="N1",
                               enterprise="ENT-A", ack="received"), T + MIN)
    d.on_command(NoticeCommand("notice_ack", id="c2", actor="c.s", notice_id="N1",
                               enterprise="ENT-C", ack="done"), T + 2 * MIN)
    assert d.on_command(NoticeCommand("tick"), T + 29 * MIN).dispatch == []
    fx = d.on_command(NoticeCommand("tick"), T + 30 * MIN)
    assert sorted(x.person for x in fx.dispatch) == ["b.b", "b.s"]
    assert all("第1次提醒" in x.message.title for x in fx.dispatch)
    n = fx.changed["N1"]
    assert n.target("ENT-B").reminders == 1
    assert nt.tally(n, T + 30 * MIN, S).words() == "已确认 2/3"


def test_a_notice_past_retention_is_forgotten_and_reminds_nobody(orgs, roster):
    notices = {}
    d = desk(roster, notices=notices)
    d.on_command(NoticeCommand("notice_send", notice=three(orgs)), T)
    keep = d.s.retention.ms
    fx = d.on_command(NoticeCommand("tick"), T + keep - 1)
    assert fx.removed == [] and len(notices) == 1
    fx = d.on_command(NoticeCommand("tick"), T + keep)
    assert fx.removed == ["N1"] and notices == {} and fx.dispatch == []
    fx = d.on_command(NoticeCommand("notice_ack", id="late", actor="a.s", notice_id="N1",
                                    enterprise="ENT-A", ack="received"), T + keep + 1)
    assert fx.errors and fx.changed == {}          # an ack of a forgotten notice is refused

def test_a_dead_runs_tick_taken_late_reminds_only_what_was_due_when_it_was_sent(orgs, roster):
    """A worker killed before committing leaves its ticks to the next one; ENT-B's
    acknowledgement, accepted while no worker ran, comes after them in the log."""
    d = desk(roster, "run2")
    d.on_command(NoticeCommand("notice_send", notice=three(orgs)), T)
    late = T + 40 * MIN                                    # the next worker takes them now
    assert d.on_command(NoticeCommand("tick", actor="run1", at=T + 20 * MIN), late).dispatch == []
    d.on_command(NoticeCommand("notice_ack", id="b1", actor="b.s", notice_id="N1",
                               enterprise="ENT-B", ack="received"), late)
    fx = d.on_command(NoticeCommand("tick", actor="run2", at=late), late)
    assert {x.incidents[1] for x in fx.dispatch} == {"ENT-A", "ENT-C"}   # not ENT-B
    # a tick stamped in the future acts on the present, not ahead of it
    assert d.on_command(NoticeCommand("tick", actor="run2", at=late + 90 * MIN),
                        late + MIN).dispatch == []

def test_results_mark_delivery_and_a_restart_resends_what_was_in_flight(orgs, roster):
    notices, deliveries = {}, {}
    d = desk(roster, "run1", notices, deliveries)
    fx = d.on_command(NoticeCommand("notice_send", notice=three(orgs)), T)
    first = fx.dispatch[0]
    ok = DeliveryResult(first.id, True, "json://a-s.example", [], T + 1000)
    fx = d.on_command(NoticeCommand("notice_result", result=ok), T + 1000)
    assert fx.changed["N1"].target("ENT-A").delivered_ms == T + 1000
    b_id = next(x.id for x in deliveries.values() if x.incidents[1] == "ENT-B")
    failed = DeliveryResult(b_id, False, "", [Attempt("json://b-b.example", False, "HTTP 500",
                                                      T)], T)
    fx = d.on_command(NoticeCommand("notice_result", result=failed), T + 2000)
    assert "HTTP 500" in fx.changed["N1"].target("ENT-B").failed
    assert len(deliveries) == 1       # ENT-C's message is still in flight
    d2 = desk(roster, "run2", notices, deliveries)    # the worker restarted
    assert d2.on_command(NoticeCommand("tick", actor="run1"), T + 3000).dispatch == []
    fx = d2.on_command(NoticeCommand("tick", actor="run2"), T + 3000)
    assert [x.person for x in fx.dispatch] == ["c.s"]
    assert d2.on_command(NoticeCommand("tick", actor="run2"), T + 4000).dispatch == []


# -- scopes ---------------------------------------------------------------------------
def test_who_sees_a_notice_and_who_may_send_and_acknowledge(orgs, roster):
    n = three(orgs)
    rights = Rights(roster)
    scope = {p: rights.scope_of(p) for p in ("room.a", "a.s", "d.s", "ca.reg", "hj.reg")}
    seen = {p: nt.visible_to(n, s.level, s.key) for p, s in scope.items()}
    assert seen == {"room.a": True, "a.s": True, "d.s": False, "ca.reg": True, "hj.reg": True}
    assert scope["room.a"].level == "bureau" and scope["a.s"].level == "enterprise"
    assert scope["ca.reg"].level == "town"
