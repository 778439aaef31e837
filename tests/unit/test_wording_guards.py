"""Compound conditions of the dust-filter and data-quality rules read short: a guard that only
says the data is there or the machine runs is a short clause or left out, the comparison that
decided is named, and a range check reads as one measurement with both bounds."""

from __future__ import annotations

import pytest

from tests.unit.test_wording import pack_events, pack_rules  # noqa: F401  (a fixture)
from yujing.domain import Grade, Term
from yujing.rules import expr as ex
from yujing.rules import facts
from yujing.rules.compiled import compile_rule
from yujing.rules.glossary import glossary
from yujing.rules.tree import Num, unparse
from yujing.rules.wording import describe

GUARDED = ("dust-", "quality-")
ZH_MAX, EN_MAX = 70, 200      # characters of one reason, pending's 「持续10分钟后发布」 included

# (rule, event kind) -> what the sentence must name (zh, en); what it must not (zh)
DECIDES = {
    ("dust-filter-dp", "raised"): ("偏离基准值", "off its baseline by", "且"),
    ("dust-filter-dp", "pending"): ("偏离基准值", "off its baseline by", "且"),
    ("dust-filter-dp", "cleared"): ("偏离基准值", "off its baseline by", "且"),
    ("dust-spark", "cleared"): ("未再探测到火花", "No spark", "读数"),
    ("dust-vent-burst", "cleared"): ("未再发生泄爆片破裂", "No vent panel burst", "读数"),
    ("dust-airlock-fault", "cleared"): ("未再发生锁气卸灰故障", "No airlock fault", "读数"),
    ("quality-flatline-river", "raised"): ("水位读数没有任何变化", "unchanged over 2 h", "新的"),
    ("quality-flatline-reservoir", "raised"): ("水位读数没有任何变化", "unchanged over 1 d", "新的"),
    ("quality-flatline-air-temp", "raised"): ("气温读数没有任何变化", "unchanged over 3 h", "新的"),
    ("quality-flatline-dust-temp", "raised"): ("入口温度读数没有任何变化", "unchanged over 4 h", "新的"),
    ("quality-stuck-gas", "raised"): ("可燃气体浓度读数没有任何变化", "unchanged over 2 h", "新的"),
    ("quality-stuck-waterlogging", "raised"): ("积水深度读数没有任何变化", "unchanged", "新的"),
    ("quality-range-water-level", "cleared"): ("≥测站合理水位下限8米，≤测站合理水位上限18米",
                                               "≥ the lowest plausible level 8 m, ≤ the highest",
                                               "且"),
    ("quality-range-air-temp", "cleared"): ("（≥-5℃，≤45℃）", "(≥ -5 °C, ≤ 45 °C)", "且"),
    ("quality-range-oxygen", "cleared"): ("（≥1%，≤30%）", "(≥ 1 % vol, ≤ 30 % vol)", "且"),
}


def test_guarded_rules_read_short_and_name_what_decided(pack_events):  # noqa: F811
    seen = set()
    for ev in pack_events:
        if not ev.rule.startswith(GUARDED):
            continue
        assert len(ev.reason_zh) <= ZH_MAX, ev.reason_zh
        assert len(ev.reason_en) <= EN_MAX, ev.reason_en
        assert "新的" not in ev.reason_zh and "new " not in ev.reason_en  # freshness: left out
        want = DECIDES.get((ev.rule, ev.kind.value))
        if want is not None:
            zh, en, absent = want
            assert zh in ev.reason_zh, (ev.rule, ev.reason_zh)
            assert en in ev.reason_en, (ev.rule, ev.reason_en)
            assert absent not in ev.reason_zh, (ev.rule, ev.reason_zh)
            seen.add((ev.rule, ev.kind.value))
    assert seen == set(DECIDES), set(DECIDES) - seen


def test_the_idle_guard_is_a_short_clause_after_the_deviation(pack_events):  # noqa: F811
    ev = next(e for e in pack_events if e.rule == "dust-filter-dp" and e.kind.value == "raised")
    assert ev.reason_zh == ("过去10分钟平均除尘器压差偏离基准值230帕（＞基准值1100帕的20%，即220帕），"
                            "设备运行中，达到黄色标准")
    assert ev.reason_en.endswith("i.e. 220 Pa), the unit running: reaching the yellow threshold")
    assert ev.measure_zh == "10分钟平均除尘器压差偏离基准值230帕"


def test_a_flatline_names_the_unchanged_readings_and_counts_them(pack_events):  # noqa: F811
    ev = next(e for e in pack_events
              if e.rule == "quality-flatline-river" and e.kind.value == "raised")
    assert ev.reason_zh.startswith("过去2小时水位读数没有任何变化，期间共")
    assert ev.reason_zh.endswith("条读数，达到蓝色标准")


def test_a_condition_of_guards_alone_still_reads_them():
    """Guards are left out only beside a comparison that says what happened."""
    tree = ex.parse_condition("count(rain_mm, 1h) >= 1").tree
    terms = facts.terms(tree, lambda n: True, lambda n: n.value if isinstance(n, Num) else 6.0)
    w = describe("raised", Grade.BLUE, terms)
    assert w.zh.startswith("过去1小时雨量读数6条") and "达到蓝色标准" in w.zh


@pytest.mark.parametrize("prefix", GUARDED)
def test_every_check_of_the_guarded_rules_stays_within_the_bound(prefix):
    """Every grade and clear check of those rules, every branch held, values three digits
    wide (a collector's 1100 Pa baseline reads 1100): within the bound, and the metric of the
    comparison that decided is named."""
    for rule in pack_rules():
        if not rule.id.startswith(prefix):
            continue
        c = compile_rule(rule)
        checks = [(g, chk) for g, chk in c.grades] + ([(Grade.NONE, c.clear)] if c.clear else [])
        for grade, check in checks:
            terms = facts.terms(check.expr.tree, lambda n: True,
                                lambda n: n.value if isinstance(n, Num) else 123.4)
            for kind in (("pending",) if check.hold_ms else ()) + ("raised", "cleared"):
                w = describe(kind, grade or Grade.BLUE, terms, check.hold_ms)
                assert len(w.zh) <= ZH_MAX, (rule.id, w.zh)
                assert len(w.en) <= EN_MAX, (rule.id, w.en)
                deciding = [t for t in terms if t.fn != "fresh" and not t.fn.endswith("count")]
                if deciding:
                    assert _named(deciding[0], w.zh), (rule.id, unparse(check.expr.tree), w.zh)


def _named(t: Term, zh: str) -> bool:
    return glossary().metrics[t.metric].zh in zh if t.metric else True
