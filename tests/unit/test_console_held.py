"""What the console shows a duty officer about held warnings and refused actions is
Chinese first (issue 15 leftovers).

The "⏸ 暂停通知" tooltip used to be the book's English sentence ("silenced by …"); it now
comes in the reader's language from the timeline entry the hold wrote. A refused action's
reason (on the disabled buttons and in the 403 the console and `yujing duty` print) leads
with Chinese.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from yujing.alerts.records import Warning
from yujing.alerts.roster import load_roster
from yujing.alerts.silences import Matcher, Silence
from yujing.alerts.stages import mute, silence_hold
from yujing.console.i18n import held_why
from yujing.console.rights import Rights

ROOT = Path(__file__).resolve().parents[2]
T = 1_748_764_800_000
HAN = re.compile(r"[\u4e00-\u9fff]")


def warning() -> Warning:
    return Warning(incident="i-rain-g1", key="rain@g1", rule="rain", rule_name="暴雨",
                   hazard="rainstorm", station="g1", station_name="g1站", town="虎门镇")


def test_a_silenced_warnings_tooltip_reads_in_the_readers_language():
    w = warning()
    s = Silence("s1", [Matcher("station", "=", "g1")], T - 1, T + 3_600_000, "b1", "泵站检修")
    assert mute(w, silence_hold(s), T)
    assert w.muted.startswith("silenced by ")          # the book's sentence, unchanged
    assert held_why(w, "zh") == "暂停通知：静默 s1 生效中（b1设置：泵站检修）"
    assert held_why(w, "en") == "Notifications held: silence s1 is on (set by b1: 泵站检修)"


def test_the_newest_hold_is_the_one_shown_and_a_record_before_words_shows_its_sentence():
    w = warning()
    first = Silence("s1", [Matcher("station", "=", "g1")], T - 1, T + 1, "b1", "一")
    second = Silence("s2", [Matcher("station", "=", "g1")], T - 1, T + 9, "b2", "二")
    mute(w, silence_hold(first), T)
    mute(w, silence_hold(second), T + 1)
    assert "s2" in held_why(w, "zh") and "s1" not in held_why(w, "zh")
    old = warning()
    old.muted = "silenced by silence s9 [station=g1] by b1: pump maintenance"
    assert held_why(old, "zh") == old.muted
    assert held_why(warning(), "zh") == ""


@pytest.fixture(scope="module")
def roster():
    return load_roster(ROOT / "roster.yaml")


@pytest.mark.parametrize("verdict, words", [
    (lambda r: r.may_act("zhao.min", "rainstorm", "虎门镇"), "不在责任组"),  # 森防 officer
    (lambda r: r.may_act("nobody", "rainstorm", "虎门镇"), "请联系该组值班员"),
    (lambda r: r.acts_on_all("zhang.wei"), "既不是值班台管理员"),
])
def test_a_refusal_reads_chinese_first_then_english(roster, verdict, words):
    v = verdict(Rights(roster))
    assert not v.ok
    zh, en = v.why.split(" / ", 1)
    assert words in zh and not re.search(r"[A-Za-z]{3,}", zh.split(" ", 1)[1])
    assert "console admin" in en
