"""Matcher regular expressions run on a linear-time engine (issue 12, finding 7).

``rule=~(.*.*)*X`` took 24 s against a 16-character label on Python's backtracking
engine, and doubles with each character more: one silence froze the worker. Matchers now
compile with RE2, which matches in time linear in the label, and refuses what only a
backtracking engine can do (back-references, look-around) when the matcher is parsed.
The checks are on results: each call below returns, with the answer the pattern means.
"""

from __future__ import annotations

import pytest

from yujing.alerts.records import Notice, Silence, State, Warning
from yujing.alerts.settings import AlertsSettings
from yujing.alerts.silences import matches, parse_matcher
from yujing.alerts.stages import Item, inhibited_by, silence_stage

EVIL = "rule=~(.*.*)*X"


@pytest.mark.parametrize("n", [16, 64, 4096])
def test_the_pathological_pattern_returns_with_the_right_answer(n):
    m = parse_matcher(EVIL)
    assert matches(m, {"rule": "a" * n}) is False            # no X at the end: no match
    assert matches(m, {"rule": "a" * n + "X"}) is True
    assert matches(parse_matcher("rule!~(.*.*)*X"), {"rule": "a" * n}) is True


@pytest.mark.parametrize("text, why", [
    (r"rule=~(a)\1", "invalid escape sequence"),          # a back-reference
    ("rule=~(?=rain)rain.*", "invalid perl operator"),     # look-ahead
    ("rule=~(?<!x)rain", "invalid perl operator"),         # look-behind
    ("rule=~(", "missing )"),
])
def test_what_only_a_backtracking_engine_does_is_refused_when_parsed(text, why):
    with pytest.raises(ValueError) as e:
        parse_matcher(text)
    assert "RE2" in str(e.value) and repr(text) in str(e.value) and why in str(e.value)


def test_a_very_long_pattern_is_refused():
    with pytest.raises(ValueError, match="at most"):
        parse_matcher("rule=~" + "a" * 5000)


@pytest.mark.parametrize("pattern, label, hit", [
    ("blue|yellow", "yellow", True),
    ("blue|yellow", "yellowish", False),                      # anchored, as in Alertmanager
    ("虎门.*", "虎门镇", True),                                 # labels are Chinese text
    ("..镇", "虎门镇", True),                                   # one dot is one character
    ("DG-HM-R0[0-9]", "DG-HM-R01", True),
    ("DG-HM-R0[0-9]", "DG-HM-R01\n", False),
    ("(?i)RAIN.*", "rainstorm", True),
])
def test_the_semantics_of_ordinary_patterns_hold(pattern, label, hit):
    assert matches(parse_matcher(f"town=~{pattern}"), {"town": label}) is hit


def warning(rule: str, grade: int = 2, incident: str = "i-1") -> Warning:
    return Warning(incident=incident, key=f"{rule}@g1", rule=rule, rule_name="r",
                   hazard="rainstorm", station="g1", town="虎门镇", state=State.ACTIVE,
                   grade=grade)


def test_a_silence_with_the_pattern_holds_the_worker_for_no_time():
    w = warning("a" * 40)
    s = Silence(id="s1", matchers=[parse_matcher(EVIL)], starts_ms=0, ends_ms=10**13,
                created_by="x", reason="r")
    stage = silence_stage(lambda: [s])
    items = [Item(Notice(w.incident, "raised", 2, "r", 1), w)]
    assert stage(items, 1000) == items                         # not silenced: goes on
    w2 = warning("a" * 40 + "X", incident="i-2")
    items = [Item(Notice(w2.incident, "raised", 2, "r", 1), w2)]
    assert stage(items, 1000) == [] and w2.muted.startswith("silenced by silence s1")


def test_inhibit_rules_from_config_use_the_same_engine():
    with pytest.raises(ValueError, match="RE2"):
        AlertsSettings(inhibit=[{"source": [r"rule=~(r)\1"], "target": ["grade!=red"]}])
    s = AlertsSettings(inhibit=[{"source": ["grade=red"], "target": [EVIL]}])
    target = warning("a" * 40)
    red = warning("a" * 40, grade=4, incident="i-red")
    assert inhibited_by(target, s.inhibit, [red]) == ""
    target_x = warning("a" * 40 + "X")
    assert inhibited_by(target_x, s.inhibit, [red]).startswith("inhibited by")
