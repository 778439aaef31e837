"""The notification stages (yujing.alerts.stages) and grouping (yujing.alerts.outbox) as tables.

``test_chain``: one notice about one warning through grade → inhibit →
silence → route, as a group flush runs it. Expected: who gets it with which
roles, and what the warning's timeline says about anything held back.

``test_grouping``: notices of open warnings enqueued and flushed as the book
does (a transition flushes its own group if due; ticks flush the rest). Expected: the messages
handed out, as (second, person, stations in the message).
"""

from __future__ import annotations

import pytest

from yujing.alerts.outbox import Outbox
from yujing.alerts.records import Matcher, Notice, Silence, State, Warning, Weekly
from yujing.alerts.roster import parse_roster
from yujing.alerts.settings import AlertsSettings
from yujing.alerts.stages import Item, chain, grade_stage, inhibit_stage, route_stage, silence_stage
from yujing.alerts.store import Effects, Store, pkey
from yujing.domain import Grade, group_key

T = 1_748_764_800_000   # 2025-06-01 08:00 UTC = 16:00 Asia/Shanghai, a Sunday
S, MIN, H = 1000, 60_000, 3_600_000

ROSTER = """
people:
  - {id: a1, name: 张三, contacts: ["json://a1.example/hook"]}
  - {id: b1, name: 李四, contacts: ["json://b1.example/hook"]}
  - {id: l1, name: 王五, contacts: ["json://l1.example/hook"]}
  - {id: a2, name: 赵六, contacts: ["json://a2.example/hook"]}
  - {id: r1, name: 值班员, contacts: ["json://r1.example/hook"]}
teams:
  - id: flood-hm
    name: 虎门三防
    domain: flood
    regions: [虎门镇]
    rotation: {start: 2025-05-01, handover: "08:30", slots: [{A: a1, B: b1, leader: l1}]}
  - id: flood-ca
    name: 长安三防 (no B, no leader)
    domain: flood
    regions: [长安镇]
    rotation: {start: 2025-05-01, handover: "08:30", slots: [{A: a2}]}
  - id: room
    name: 值班室
    domain: duty_room
    rotation: {start: 2025-05-01, handover: "08:30", slots: [{A: r1, B: r1, leader: l1}]}
"""
THIN_ROOM = ROSTER.replace("slots: [{A: r1, B: r1, leader: l1}]", "slots: [{A: r1}]")
ROSTERS = {"full": parse_roster(ROSTER), "thin room": parse_roster(THIN_ROOM), "none": None}


def warning(station: str = "g1", grade: Grade = Grade.ORANGE, state: State = State.ACTIVE,
            town: str = "虎门镇", hazard: str = "rainstorm", rule: str = "rain",
            notified: tuple[str, ...] = ()) -> Warning:
    return Warning(incident=f"i-{rule}-{station}", key=f"{rule}@{station}", rule=rule,
                   rule_name="暴雨", hazard=hazard, station=station, station_name=f"{station}站",
                   town=town, group=group_key(town, hazard, station), state=state,
                   grade=int(grade), notified=list(notified))


def silence(sid: str, *matchers: str, starts: int = -H, ends: int = H,
            weekly: list[Weekly] | None = None) -> Silence:
    ms = []
    for m in matchers:
        label, value = m.split("=")
        ms.append(Matcher(label, "=", value))
    return Silence(sid, ms, T + starts, T + ends, "b1", "pump maintenance",
                   weekly=weekly or [])


RED_G1 = warning(grade=Grade.RED, rule="rain1h")
RED_ELSEWHERE = warning(station="g2", grade=Grade.RED, rule="rain1h")
RED_CLEARED = warning(grade=Grade.RED, rule="rain1h", state=State.CLEARED)

# (case, inputs, (recipients as (person, roles), timeline entries as (kind, part of reason)))
CASES = [
    # -- routing -----------------------------------------------------------------------------
    ("raise to A of the region's team", {"roles": ["A"]},
     ([("a1", ("A",))], [])),
    ("red: A, B and leader of the team", {"grade": Grade.RED, "roles": ["A", "B", "leader"]},
     ([("a1", ("A",)), ("b1", ("B",)), ("l1", ("leader",))], [])),
    ("a town without a team of its domain goes to the duty room", {"town": "大朗镇", "roles": ["A"]},
     ([("r1", ("A",))], [])),
    ("a hazard of no team's domain goes to the duty room", {"hazard": "gas", "roles": ["A"]},
     ([("r1", ("A",))], [])),
    ("one person holding two roles gets one message naming both",
     {"town": "大朗镇", "roles": ["A", "B"]},
     ([("r1", ("A", "B"))], [])),
    ("people told before are informed of a downgrade",
     {"kind": "downgraded", "roles": [], "people": ["a1", "b1"]},
     ([("a1", ("informed",)), ("b1", ("informed",))], [])),
    ("a role holder told before is paged once, as the role",
     {"kind": "escalated", "roles": ["B"], "people": ["a1", "b1"]},
     ([("a1", ("informed",)), ("b1", ("B",))], [])),
    ("informed people who left the roster are skipped", {"kind": "cleared", "roles": [],
                                                         "people": ["gone"]},
     ([], [])),
    ("no roster: every notify URL of the grade", {"roster": "none", "roles": ["A"]},
     ([("notify-0", ("A",)), ("notify-1", ("A",))], [])),
    ("no roster: a clear goes to the cleared URLs", {"roster": "none", "kind": "cleared",
                                                      "roles": []},
     ([("notify-0", ())], [])),

    # -- roles missing from the roster -------------------------------------------------------
    ("a role the team lacks falls back to the duty room's",
     {"town": "长安镇", "roles": ["A", "B", "leader"]},
     ([("a2", ("A",)), ("l1", ("leader",)), ("r1", ("B",))], [])),
    ("a role nobody holds, not even the duty room: the timeline says so",
     {"roster": "thin room", "town": "长安镇", "roles": ["A", "B"]},
     ([("a2", ("A",))],
      [("held", "nobody to page as B: team flood-ca has no B on duty")]),),
    ("nobody at all to page: held, nothing sent",
     {"roster": "thin room", "town": "长安镇", "roles": ["B"]},
     ([], [("held", "nobody to page as B")])),

    # -- grade stage -------------------------------------------------------------------------
    ("below the minimum grade: held with the reason",
     {"grade": Grade.BLUE, "min_grade": "yellow", "roles": ["A"]},
     ([], [("held", "raised blue not notified: below the minimum grade yellow")])),
    ("a clear below the minimum grade still goes out",
     {"grade": Grade.BLUE, "min_grade": "yellow", "kind": "cleared", "roles": [],
      "people": ["a1"], "state": State.CLEARED},
     ([("a1", ("informed",))], [])),
    ("an escalation of a warning acknowledged meanwhile is dropped",
     {"kind": "escalated", "roles": ["B"], "state": State.ACKNOWLEDGED},
     ([], [("held", "escalated dropped: acknowledged before it went out")])),
    ("a raise cleared before its group was sent is dropped",
     {"state": State.CLEARED, "roles": ["A"]},
     ([], [("held", "raised dropped: cleared before the group was sent")])),
    ("downgrades are not told when notify_downgrades is off",
     {"kind": "downgraded", "roles": [], "people": ["a1"], "notify_downgrades": False},
     ([], [])),

    # -- inhibition --------------------------------------------------------------------------
    ("a red warning at the station inhibits a lower grade of the same hazard",
     {"roles": ["A"], "peers": [RED_G1]},
     ([], [("inhibited", "inhibited by red i-rain1h-g1 (暴雨 at g1站)")])),
    ("a red warning at another station inhibits nothing here",
     {"roles": ["A"], "peers": [RED_ELSEWHERE]},
     ([("a1", ("A",))], [])),
    ("a cleared red warning inhibits nothing", {"roles": ["A"], "peers": [RED_CLEARED]},
     ([("a1", ("A",))], [])),
    ("a red warning is not inhibited by another red one",
     {"grade": Grade.RED, "rule": "rain3h", "roles": ["A"], "peers": [RED_G1]},
     ([("a1", ("A",))], [])),
    ("inhibited and never told: its clear is not sent either",
     {"kind": "cleared", "roles": [], "state": State.ACTIVE, "peers": [RED_G1]},
     ([], [])),
    ("inhibited but told before: its downgrade still reaches them",
     {"kind": "downgraded", "roles": [], "people": ["a1"], "notified": ("a1",),
      "peers": [RED_G1]},
     ([("a1", ("informed",))], [])),
    ("no inhibit rules configured", {"roles": ["A"], "peers": [RED_G1], "inhibit": []},
     ([("a1", ("A",))], [])),

    # -- silences ----------------------------------------------------------------------------
    ("a matching silence holds a raise",
     {"roles": ["A"], "silences": [silence("s1", "station=g1")]},
     ([], [("silenced", "silenced by silence s1 [station=g1] by b1: pump maintenance")])),
    ("a silence of another station does not match",
     {"roles": ["A"], "silences": [silence("s1", "station=g9")]},
     ([("a1", ("A",))], [])),
    ("every matcher must match", {"roles": ["A"],
                                  "silences": [silence("s1", "station=g1", "grade=red")]},
     ([("a1", ("A",))], [])),
    ("an expired silence holds nothing",
     {"roles": ["A"], "silences": [silence("s1", "station=g1", starts=-2 * H, ends=-H)]},
     ([("a1", ("A",))], [])),
    ("a silence not started yet holds nothing",
     {"roles": ["A"], "silences": [silence("s1", "station=g1", starts=H, ends=2 * H)]},
     ([("a1", ("A",))], [])),
    ("a weekly silence outside its window holds nothing",
     {"roles": ["A"], "silences": [silence("s1", "station=g1", ends=30 * 24 * H,
                                           weekly=[Weekly([5], "02:00", "04:00")])]},
     ([("a1", ("A",))], [])),
    ("a weekly silence inside its window holds",
     {"roles": ["A"], "silences": [silence("s1", "town=虎门镇", ends=30 * 24 * H,
                                           weekly=[Weekly([6], "15:00", "17:00")])]},
     ([], [("silenced", "silenced by silence s1 [town=虎门镇] weekly sun 15:00-17:00")])),
    ("silenced and told before: the clear still reaches them",
     {"kind": "cleared", "roles": [], "people": ["a1"], "notified": ("a1",),
      "state": State.CLEARED, "silences": [silence("s1", "station=g1")]},
     ([("a1", ("informed",))], [])),
]


def run_chain(inputs: dict) -> tuple[list, list]:
    i = dict(inputs)
    w = warning(grade=i.get("grade", Grade.ORANGE), state=i.get("state", State.ACTIVE),
                town=i.get("town", "虎门镇"), hazard=i.get("hazard", "rainstorm"),
                rule=i.get("rule", "rain"), notified=i.get("notified", ()))
    settings = AlertsSettings(min_grade=i.get("min_grade", "blue"),
                              **({"inhibit": i["inhibit"]} if "inhibit" in i else {}))
    notice = Notice(w.incident, i.get("kind", "raised"), w.grade, "why", T,
                    roles=i.get("roles", []), people=i.get("people", []))
    peers = [w] + i.get("peers", [])
    fallback = {-1: ["json://cleared.example/x"]}
    stage = chain(grade_stage(int(Grade.parse(settings.min_grade)),
                              i.get("notify_downgrades", True)),
                  inhibit_stage(settings.inhibit, lambda _: peers),
                  silence_stage(lambda: i.get("silences", [])),
                  route_stage(ROSTERS[i.get("roster", "full")],
                              lambda g: fallback.get(g, ["json://x.example/1",
                                                         "json://x.example/2"])))
    out = stage([Item(notice, w)], T)
    sent = sorted((r.id, tuple(r.roles)) for it in out for r in it.recipients)
    return sent, [(e.kind, e.reason) for e in w.timeline]


@pytest.mark.parametrize("case, inputs, expected", CASES, ids=[c[0] for c in CASES])
def test_chain(case, inputs, expected):
    sent, timeline = run_chain(inputs)
    want_sent, want_log = expected
    assert sent == want_sent
    assert [k for k, _ in timeline] == [k for k, _ in want_log]
    for (_, reason), (_, part) in zip(timeline, want_log):
        assert part in reason


# -- grouping ---------------------------------------------------------------------------------

def notice(t_s: float, station: str, town: str = "虎门镇", hazard: str = "rainstorm",
           kind: str = "raised", grade: Grade = Grade.ORANGE) -> tuple:
    return ("notice", t_s, station, town, hazard, kind, grade)


def tick(t_s: float) -> tuple:
    return ("tick", t_s)


STORM = [notice(0, "g1"), notice(1, "g2"), notice(2, "g3")]

# (case, (grouping settings, script), messages as (second, person, stations))
GROUPING = [
    ("a storm within the group wait is one message", ({"wait": "5s"}, STORM + [tick(4), tick(5)]),
     [(5, "notify-0", ("g1", "g2", "g3"))]),
    ("grouping off: one message per notice at once", ({"enabled": False}, STORM + [tick(5)]),
     [(0, "notify-0", ("g1",)), (1, "notify-0", ("g2",)), (2, "notify-0", ("g3",))]),
    ("different towns are different groups",
     ({"wait": "5s"}, [notice(0, "g1"), notice(1, "c1", town="长安镇"), tick(5), tick(6)]),
     [(5, "notify-0", ("g1",)), (6, "notify-0", ("c1",))]),
    ("different hazards of one town are different groups",
     ({"wait": "5s"}, [notice(0, "g1"), notice(0, "g1", hazard="wind"), tick(5)]),
     [(5, "notify-0", ("g1",)), (5, "notify-0", ("g1",))]),
    ("max_per_message splits a big group",
     ({"wait": "5s", "max_per_message": 2},
      [notice(0, f"g{i}") for i in range(1, 6)] + [tick(5)]),
     [(5, "notify-0", ("g1", "g2")), (5, "notify-0", ("g3", "g4")), (5, "notify-0", ("g5",))]),
    ("after a flush, routine updates wait for the group interval",
     ({"wait": "5s", "interval": "30s"},
      STORM[:1] + [tick(5), notice(10, "g1", kind="downgraded"), tick(15), tick(34), tick(35)]),
     [(5, "notify-0", ("g1",)), (35, "notify-0", ("g1",))]),
    ("a new red notice skips the group wait and interval (issue 17)",
     ({"wait": "5s", "interval": "30s"},
      STORM[:1] + [tick(5), notice(10, "g2", grade=Grade.RED), tick(14), tick(15)]),
     [(5, "notify-0", ("g1",)), (10, "notify-0", ("g2",))]),
    ("an escalation only waits the group wait",
     ({"wait": "5s", "interval": "30s"},
      STORM[:1] + [tick(5), notice(10, "g1", kind="escalated"), tick(15)]),
     [(5, "notify-0", ("g1",)), (15, "notify-0", ("g1",))]),
    ("an urgent notice brings the whole waiting outbox forward",
     ({"wait": "5s", "interval": "30s"},
      STORM[:1] + [tick(5), notice(10, "g2", kind="downgraded"),
                   notice(12, "g3", grade=Grade.RED), tick(15), tick(35)]),
     [(5, "notify-0", ("g1",)), (12, "notify-0", ("g2", "g3"))]),
]


def run_grouping(grouping: dict, script: list[tuple]) -> list[tuple]:
    s = AlertsSettings(grouping=grouping, inhibit=[])
    store = Store()
    box = Outbox(s, store, None, lambda g: ["json://x.example/1"], lambda st: "",
                 lambda p, i, now: None, "run", "zh")
    sent = []
    for step in script:
        now = T + int(step[1] * S)
        fx = Effects()
        if step[0] == "notice":
            _, _, station, town, hazard, kind, grade = step
            w = warning(station=station, town=town, hazard=hazard, grade=grade,
                        rule=f"r-{hazard}", notified=("notify-0",))
            w = store.incidents.get(pkey(0, w.incident)) or w
            store.incidents[pkey(0, w.incident)] = w
            box.enqueue(0, w, Notice(w.incident, kind, int(grade), "why", now, roles=["A"],
                                     people=list(w.notified)), now)
            box.membership(0, w)   # open: a member, so the group (and its last flush) stays
            box.flush_due(0, now, fx, only="#" + w.group)
        else:
            box.flush_due(0, now, fx)
        sent += [((now - T) // S, d.person,
                  tuple(store.incidents[pkey(0, i)].station for i in d.incidents))
                 for d in fx.dispatch]
    return sent


@pytest.mark.parametrize("case, inputs, expected", GROUPING, ids=[c[0] for c in GROUPING])
def test_grouping(case, inputs, expected):
    assert run_grouping(*inputs) == expected
