"""The book's own texts in the duty officer's words (yujing.alerts.phrases): why a person is
paged now (escalation, reminders, release from a hold) and what the timeline says, in Chinese
with English beside; old records and checkpoints without words still load and read."""

from __future__ import annotations

import re

import msgspec
import pytest

from tests.unit.test_book import MIN, Rig, silence
from yujing.alerts import escalation, incidents
from yujing.alerts.records import Entry, Group, Notice, Report, State, Warning
from yujing.alerts.settings import AlertsSettings
from yujing.alerts.templates import Line, render
from yujing.domain import Grade

T = 1_748_764_800_000
S = 1000
CJK = re.compile(r"[\u4e00-\u9fff]")
# In Chinese words: a role code, a duration code (10m, 1h30m) or an English word of the book.
CODE_ZH = re.compile(r"leader|(?<![A-Za-z])\d+[smhd](?![a-z])|[a-z]{3,}")
# In English words: a bare role code ("to A", "leader" without "the shift").
CODE_EN = re.compile(r"(?<!officer )\b[AB]\b|(?<!shift )leader")

BLUE_HOURLY = AlertsSettings(escalation={"blue": {"first": ["A"], "ack_timeout": "90m",
                                                  "then": [["B", "leader"]], "repeat": "1h"}})

# (case, (settings, grade, [(minute, seconds late)]), [(zh, en) of each notice])
CASES = [
    ("orange: A first, then B, then the leader, then reminders",
     (AlertsSettings(), Grade.ORANGE, [(10, 0), (20, 0), (30, 0), (40, 0)]),
     [("橙色预警：按橙色预警规程先通知A岗",
       "Orange warning: the orange procedure pages officer A first"),
      ("A岗10分钟未确认（发布后已过10分钟），已升级通知B岗",
       "Not acknowledged by officer A in 10 min (10 min since it was raised): escalated to "
       "officer B"),
      ("A岗、B岗10分钟未确认（发布后已过20分钟），已升级通知带班领导",
       "Not acknowledged by officer A and officer B in 10 min (20 min since it was raised): "
       "escalated to the shift leader"),
      ("仍未确认（已过30分钟）：第1次提醒A岗、B岗、带班领导",
       "Still not acknowledged after 30 min: reminder 1 to officer A, officer B and the shift "
       "leader"),
      ("仍未确认（已过40分钟）：第2次提醒A岗、B岗、带班领导", "reminder 2")]),
    ("red pages everybody together",
     (AlertsSettings(), Grade.RED, [(5, 0)]),
     [("红色预警：按红色预警规程同时通知A岗、B岗、带班领导",
       "Red warning: the red procedure pages officer A, officer B and the shift leader together"),
      ("仍未确认（已过5分钟）：第1次提醒A岗、B岗、带班领导", "after 5 min: reminder 1")]),
    ("yellow: a tick that lands late reads in whole minutes",
     (AlertsSettings(), Grade.YELLOW, [(17, 5)]),
     [("黄色预警：按黄色预警规程先通知A岗", "Yellow warning"),
      ("A岗15分钟未确认（发布后已过17分钟），已升级通知B岗",
       "in 15 min (17 min since it was raised): escalated to officer B")]),
    ("hours and minutes in Chinese, two roles at one step",
     (BLUE_HOURLY, Grade.BLUE, [(90, 0), (150, 0)]),
     [("蓝色预警：按蓝色预警规程先通知A岗", "Blue warning"),
      ("A岗1小时30分钟未确认（发布后已过1小时30分钟），已升级通知B岗、带班领导",
       "in 1 h 30 min (1 h 30 min since it was raised): escalated to officer B and the shift "
       "leader"),
      ("仍未确认（已过2小时30分钟）：第1次提醒A岗、B岗、带班领导", "after 2 h 30 min: reminder 1")]),
]


@pytest.mark.parametrize("case, inputs, expected", CASES, ids=[c[0] for c in CASES])
def test_why_a_person_is_paged_now(case, inputs, expected):
    settings, grade, ticks = inputs
    w = Warning(incident="441900-20250601080000-0001", key="rain@g1", rule="rain",
                rule_name="暴雨", hazard="rainstorm", station="g1", state=State.ACTIVE,
                grade=int(grade))
    policy = settings.policy(int(grade))
    notices = [escalation.start(w, policy, "raised", T)]
    for minute, late in ticks:
        n = escalation.due(w, policy, T + minute * MIN + late * S)
        assert n is not None, f"nothing due at minute {minute}"
        notices.append(n)
    assert len(notices) == len(expected)
    for n, (zh, en) in zip(notices, expected):
        assert n.reason_zh == zh
        assert en in n.reason_en, (en, n.reason_en)
        assert not CODE_ZH.search(n.reason_zh), n.reason_zh
        assert not CODE_EN.search(n.reason_en), n.reason_en
        assert n.reason  # the old English sentence stays beside the words


def test_an_upgrade_names_the_new_grade():
    w = Warning(incident="i", key="k", rule="r", rule_name="暴雨", hazard="rainstorm",
                station="g1", state=State.ACTIVE, grade=int(Grade.RED))
    n = escalation.start(w, AlertsSettings().policy(4), "upgraded", T)
    assert n.reason_zh == "升级为红色预警：按红色预警规程同时通知A岗、B岗、带班领导"
    assert n.reason_en.startswith("Upgraded to red: the red procedure pages officer A")


def words_of(entry: Entry) -> tuple[str, str]:
    assert entry.reason_zh and CJK.search(entry.reason_zh), entry
    # English: English words (a person's name or an officer's note may be Chinese)
    assert re.search(r"[A-Za-z]{3,}", entry.reason_en) and entry.reason_en != entry.reason_zh, entry
    return entry.reason_zh, entry.reason_en


def test_officers_commands_read_in_words():
    """(command, expected Chinese, a piece of the English) as a table over one incident."""
    w = Warning(incident="i", key="k", rule="r", rule_name="暴雨", hazard="rainstorm",
                station="g1", state=State.ACTIVE, grade=int(Grade.ORANGE))
    table = [
        (lambda: incidents.acknowledge(w, "b1", "收到", T), "b1已确认：收到；停止升级通知",
         "Acknowledged by b1: 收到; escalation stopped"),
        (lambda: incidents.acknowledge(w, "a1", "", T + 1), "a1的确认无需执行：已由b1确认",
         "already acknowledged by b1"),
        (lambda: incidents.manual_clear(w, "b1", "雨停，积水已退", T + 2), "b1销警：雨停，积水已退",
         "Cleared by b1: 雨停，积水已退"),
        (lambda: incidents.manual_clear(w, "a1", "", T + 3), "a1的销警无需执行：已由b1解除",
         "Clear by a1 not needed: already cleared by b1"),
        (lambda: incidents.acknowledge(w, "a1", "迟到", T + 4), "a1的确认无需执行：已解除；备注：迟到",
         "already cleared; note: 迟到"),
    ]
    for command, zh, en in table:
        command()
        got_zh, got_en = words_of(w.timeline[-1])
        assert got_zh == zh
        assert en in got_en
        assert w.timeline[-1].reason  # the English sentence of before stays
    p = Warning(incident="p", key="k", rule="r", rule_name="暴雨", hazard="rainstorm",
                station="g1", state=State.PENDING, grade=1)
    incidents.manual_clear(p, "a1", "", T)
    assert words_of(p.timeline[-1]) == ("a1销警：未填写原因", "Cleared by a1: no reason given")


def test_every_entry_the_book_writes_has_words():
    """A day of one warning through the book: pending, raise, escalate, upgrade past an ack,
    deliveries, notes, a manual clear and what follows it: every entry the book writes itself
    (not an officer's note) reads in both languages."""
    r = Rig()
    r.find(Grade.YELLOW, pending=True)
    r.find(Grade.YELLOW)
    r.deliver_all()
    r.tick(15 * MIN)                                  # escalated to B
    r.deliver_all()
    iid = r.only().incident
    r.cmd("ack", iid, "b1", "收到")
    r.cmd("ack", iid, "a1")                           # not needed
    r.clock.advance(MIN)
    r.find(Grade.ORANGE)                              # a new acknowledgement is needed
    r.deliver_all()
    r.cmd("clear", iid, "a1", "雨停")                  # refused: orange needs a report first
    r.clock.advance(MIN)
    r.cmd("report", iid, "b1", report=Report("rep-1", 0, "b1", "done", "抽排积水", evacuated=3))
    r.cmd("clear", iid, "b1", "雨停")
    r.cmd("clear", iid, "a1")                         # not needed
    r.find(Grade.YELLOW)                              # the rule falls back: not re-raised
    r.find(Grade.RED)                                 # a rise: reopened as a new incident
    r.deliver_all()
    seen = set()
    for w in r.store.incidents.values():
        for e in w.timeline:
            if e.kind == "note" and e.actor not in ("rule", "system"):
                continue
            zh, en = words_of(e)
            seen.add(e.kind)
            assert not re.search(r"leader|\b\d+m\b", zh), zh
    assert {"pending", "raised", "escalated", "acknowledged", "upgraded", "cleared",
            "note", "notified", "refused", "report"} <= seen, seen
    old = next(w for w in r.store.incidents.values() if w.reopened_as)
    assert any(e.reason_zh == f"销警后升至红色：另开新事件 {old.reopened_as}" for e in old.timeline)
    upgraded = next(e for e in old.timeline if e.kind == "upgraded")
    assert upgraded.reason_zh.startswith("黄色升至橙色；b1的确认针对黄色预警，需重新确认：")
    assert any(e.reason_zh.startswith("销警（橙色）后规则仍为黄色：等级升高或规则解除前不再发布。")
               for e in old.timeline)


def test_held_and_released_read_in_words_and_the_message_says_why_now():
    r = Rig()
    r.find(Grade.RED, rule="rain3h")
    r.deliver_all()
    r.find(Grade.YELLOW, rule="rain1h")
    low = next(w for w in r.store.incidents.values() if w.rule == "rain1h")
    held = low.timeline[-1]
    assert held.kind == "inhibited"
    assert held.reason_zh.startswith("暂停通知：红色预警 ") and "g1站暴雨" in held.reason_zh
    assert held.reason_en.startswith("Notifications held: the red warning ")
    r.clock.advance(MIN)
    r.find(clear=True, rule="rain3h")
    r.deliver_all()
    r.tick(1)
    low = r.store.incidents[f"0:{low.incident}"]
    unmuted = next(e for e in low.timeline if e.kind == "unmuted")
    assert unmuted.reason_zh.startswith("恢复通知（此前红色预警 ") and unmuted.reason_zh.endswith("现在通知")
    [d] = r.sent
    assert ("通知原因：暂停通知已解除，现在通知。黄色预警：按黄色预警规程先通知A岗。"
            in d.message.text), d.message.text
    assert "no longer held" not in d.message.text and "policy pages" not in d.message.text


def test_a_silence_reads_in_words():
    r = Rig()
    r.cmd("silence_add", silence=silence(ends_ms=T + 30 * MIN, reason="雨量站检修"))
    r.find(Grade.ORANGE)
    w = r.only()
    assert w.timeline[-1].kind == "silenced"
    assert w.timeline[-1].reason_zh == "暂停通知：静默 s1 生效中（a1设置：雨量站检修）"
    assert w.muted.startswith("silenced by silence s1")   # the key the book compares stays


def test_below_the_minimum_grade_reads_in_words():
    r = Rig(min_grade="orange")
    r.find(Grade.YELLOW)
    e = r.only().timeline[-1]
    assert e.kind == "held"
    assert e.reason_zh == "黄色预警发布未通知：低于最低通知等级（橙色）"
    assert e.reason_en == "Yellow raise not notified: below the lowest grade notified (orange)"


def test_english_messages_say_why_now_in_english_words():
    w = Warning(incident="i", key="k", rule="r", rule_name="Rainstorm", hazard="rainstorm",
                station="g1", town="Humen", state=State.ACTIVE, grade=3, reason="x")
    n = escalation.start(w, AlertsSettings().policy(3), "raised", T)
    line = Line(n.kind, w, n.reason, n.reason_zh, n.reason_en)
    m = render([line], "Zhang San", ["A", "leader"], None, lambda s: "", T, "en")
    assert "Why now: Orange warning: the orange procedure pages officer A first." in m.text
    assert "Zhang San (officer A, the shift leader)" in m.text
    zh = render([line], "张三", ["A", "leader"], None, lambda s: "", T, "zh")
    assert "张三（A岗、带班领导）" in zh.text and "通知原因：橙色预警：按橙色预警规程先通知A岗。" in zh.text


def test_old_notices_and_entries_without_words_still_load_and_read():
    """A checkpoint of before words: a group's outbox notice and a timeline entry with only
    the English sentence decode, and a message made from them gives that sentence."""
    old_group = msgspec.json.encode({"key": "虎门镇|rainstorm", "town": "虎门镇",
                                     "hazard": "rainstorm", "outbox": [
                                         {"incident": "i", "kind": "escalated", "grade": 3,
                                          "reason": "no acknowledgement in 10m: escalated to B",
                                          "at": 1, "roles": ["B"]}]})
    g = msgspec.json.decode(old_group, type=Group)
    n = g.outbox[0]
    assert (n.reason_zh, n.reason_en) == ("", "")
    w = Warning(incident="i", key="k", rule="r", rule_name="暴雨", hazard="rainstorm",
                station="g1", town="虎门镇", state=State.ACTIVE, grade=3, reason="x")
    m = render([Line(n.kind, w, n.reason, n.reason_zh, n.reason_en)], "李四", ["B"], None,
               lambda s: "", T)
    assert "通知原因：no acknowledgement in 10m: escalated to B。" in m.text
    back = msgspec.json.decode(msgspec.json.encode(Notice("i", "raised", 3, "r", 1,
                                                          reason_zh="字", reason_en="w")),
                               type=Notice)
    assert (back.reason_zh, back.reason_en) == ("字", "w")


def test_deliveries_read_in_words():
    r = Rig()
    r.find(Grade.ORANGE)
    r.deliver_all(ok=False)                           # every contact of A failed
    r.tick(10 * MIN)                                  # B is paged
    r.deliver_all()
    w = r.only()
    failed = [e for e in w.timeline if e.kind == "failed"]
    assert failed[0].reason_zh == "张三（A岗）经 json://x 发送失败：HTTP 500"
    assert failed[-1].reason_zh == "张三（A岗）的1个联系方式均未送达：升级通知继续"
    assert failed[-1].reason_en.startswith("张三 (officer A) could not be reached on any of 1")
    notified = next(e for e in w.timeline if e.kind == "notified")
    assert notified.reason_zh == "已通知李四（B岗），渠道 json://b1.example：未确认·升级呼叫"
    assert notified.reason_en == "李四 (officer B) notified via json://b1.example: escalation"
