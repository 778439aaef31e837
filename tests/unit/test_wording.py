"""Reasons in the duty officer's words: the glossary, the renderer over every rule of the
default packs, the branch a compound condition names, and the SMS bound."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from yujing.alerts.records import Warning
from yujing.alerts.templates import SMS_LIMIT, SMS_LIMIT_EN, SMS_LIMITS, Line, message_title, sms
from yujing.backtest import ruletests
from yujing.domain import Grade, Reading, WarningEvent
from yujing.envelope import decode, encode_readings
from yujing.pipeline import Pipeline
from yujing.rules import expr as ex
from yujing.rules import facts
from yujing.rules.compiled import compile_rule
from yujing.rules.glossary import glossary
from yujing.rules.loader import load_rules
from yujing.rules.schema import Rule
from yujing.rules.tree import Num, unparse
from yujing.rules.wording import describe
from yujing.stations import load_registry

ROOT = Path(__file__).resolve().parents[2]
PACKS = ROOT / "rules"
MIN = 60_000
T0 = 1_750_000_000_000 - 1_750_000_000_000 % 3_600_000
KINDS = ("pending", "raised", "upgraded", "downgraded", "cleared", "ended")
# An expression in Chinese text: an operator, a call, a station field or a snake_case id.
EXPRESSION = re.compile(r">=|<=|==|!=|[<>]|[A-Za-z_]+\(|station\.|[a-z]+_[a-z_]+")


def pack_rules() -> list[Rule]:
    return load_rules(PACKS)


@pytest.fixture(scope="module")
def pack_events() -> list[WarningEvent]:
    """Every event of the packs' own rule tests (rules/*.test.yaml), through the Pipeline."""
    seen: list[WarningEvent] = []

    class Recording(Pipeline):
        def _events(self, findings, now_ms):
            events = super()._events(findings, now_ms)
            seen.extend(events)
            return events

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ruletests, "Pipeline", Recording)
        results = ruletests.run_folder(PACKS)
    assert all(r.ok for r in results), [r.failures for r in results if not r.ok]
    return seen


def assert_words(zh: str, en: str, metrics: set[str]) -> None:
    """Chinese with no expression in it, English with no Chinese, neither naming a metric id."""
    assert zh and re.search(r"[\u4e00-\u9fff]", zh), zh
    assert not EXPRESSION.search(zh), f"expression in Chinese reason: {zh}"
    assert en and not re.search(r"[\u4e00-\u9fff]", en), en
    for m in metrics:
        assert m not in zh, (m, zh)
        assert "_" not in m or m not in en, (m, en)
    assert not re.search(r">=|<=|==|!=|station\.|[a-z]+_[a-z_]+|[a-z_]+\(", en), en


def test_glossary_covers_every_metric_and_station_field_the_packs_read():
    g = glossary()
    compiled = [compile_rule(r) for r in pack_rules()]
    metrics = set().union(*(c.metrics for c in compiled))
    fields = set().union(*(c.station_fields for c in compiled))
    assert metrics - set(g.metrics) == set()
    assert fields - set(g.fields) == set()
    for name in ("rain_mm", "water_level_m", "wind_gust_ms", "dust_dp_pa", "gas_lel_pct"):
        assert g.metrics[name].unit_zh, name
    assert (g.metrics["rain_mm"].zh, g.metrics["rain_mm"].unit_zh) == ("雨量", "毫米")
    assert g.metrics["wind_gust_ms"].kind == "beaufort"


def test_every_check_of_every_pack_rule_renders_in_both_languages():
    """Every grade and clear condition of every rule (disabled ones too), at a point where
    each comparison holds, in every event kind: Chinese with no expression, and English."""
    count = 0
    for rule in pack_rules():
        c = compile_rule(rule)
        checks = [(g, chk) for g, chk in c.grades] + ([(Grade.NONE, c.clear)] if c.clear else [])
        for grade, check in checks:
            terms = facts.terms(check.expr.tree, lambda n: True, lambda n: 1.5)
            assert terms, f"{rule.id}: no comparison found in {check.expr.text}"
            for kind in KINDS:
                w = describe(kind, grade or Grade.BLUE, terms, check.hold_ms)
                assert_words(w.zh, w.en, c.metrics)
                assert_words(w.measure_zh, w.measure_en, c.metrics)
                count += 1
    assert count > 100


def test_pack_rule_tests_give_every_enabled_rule_a_reason_in_words(pack_events):
    rules = {r.id: r for r in pack_rules() if r.enabled}
    raised = {ev.rule for ev in pack_events if ev.kind.value == "raised"}
    assert set(rules) - raised == set(), "a pack rule that its tests never raise"
    for ev in pack_events:
        metrics = compile_rule(rules[ev.rule]).metrics if ev.rule in rules else set()
        assert_words(ev.reason_zh, ev.reason_en, metrics)
        assert ev.terms or ev.rule == "nodata"
        assert ev.reason and ev.reason != ev.reason_zh  # the expression stays, for analysts
        if ev.kind.value in ("raised", "upgraded") and ev.rule != "nodata":
            assert f"达到{Grade(ev.grade).zh}标准" in ev.reason_zh, ev.reason_zh
            assert f"{Grade(ev.grade).label} threshold" in ev.reason_en, ev.reason_en


def run_pack(readings: list[Reading], rule_ids: set[str]) -> list[WarningEvent]:
    rules = [r for r in pack_rules() if r.id in rule_ids]
    p = Pipeline(rules, load_registry(ROOT / "stations.yaml"))
    return p.handle(decode(encode_readings(readings)), 0).events


def test_rainstorm_reads_as_the_duty_officer_says_it():
    rain = [Reading("DG-HM-R01", "rain_mm", T0 + i * 10 * MIN, 8.75) for i in range(6)]
    ev = [e for e in run_pack(rain, {"rainstorm-guangdong"}) if e.kind.value == "raised"][0]
    assert ev.reason_zh == "过去3小时累计雨量52.5毫米，达到橙色标准（≥50毫米）"
    assert ev.reason_en == "3 h rain total 52.5 mm, reaching the orange threshold (≥ 50 mm)"
    assert ev.measure_zh == "3小时雨量52.5毫米"
    assert ev.reason.startswith("raised orange: sum(rain_mm, 3h) = 52.5")


def test_compound_condition_names_the_branch_that_held():
    # a gust of force 9 with a mean wind of force 5: yellow by the gust branch
    wind = [Reading("DG-HM-W01", "wind_speed_ms", T0, 9.0),
            Reading("DG-HM-W01", "wind_gust_ms", T0, 22.0)]
    ev = [e for e in run_pack(wind, {"wind-guangdong"}) if e.kind.value == "raised"][0]
    assert ev.grade == Grade.YELLOW
    assert ev.reason_zh == "过去10分钟最大阵风22.0米每秒（9级），达到黄色标准（阵风≥9级）"
    assert "平均风速" not in ev.reason_zh and "mean wind" not in ev.reason_en
    # the same shape where only the second branch holds names only that branch
    tree = ex.parse_condition("last(water_level_m) >= station.warning_level_m "
                              "or last(water_level_m) >= station.level_5y_m").tree
    values = {id(tree.left.left): 6.9, id(tree.left.right): 7.0, id(tree.right.right): 6.8}
    terms = facts.terms(tree, lambda n: n is not tree.left, lambda n: values.get(id(n), 6.9))
    w = describe("raised", Grade.YELLOW, terms)
    assert w.zh == "水位6.90米，超5年一遇水位0.10米，达到黄色标准（≥5年一遇水位6.8米）"
    assert "警戒水位" not in w.zh and "warning level" not in w.en


def test_station_threshold_reads_as_over_the_warning_level():
    level = [Reading("DG-SL-H01", "water_level_m", T0, 6.73)]
    ev = [e for e in run_pack(level, {"river-level"}) if e.kind.value == "raised"][0]
    assert ev.grade == Grade.YELLOW  # 6.73 is over the warning level 6.5, under the 5-year 6.8
    assert ev.reason_zh == "水位6.73米，超警戒水位0.23米，达到黄色标准（≥警戒水位6.5米）"
    assert "0.23 m over the warning level" in ev.reason_en


def test_both_sides_of_an_and_are_named_and_a_not_turns_round():
    tree = ex.parse_condition("max(dust_inlet_temp_c, 10m) > 70 and not (max(spark, 10m) < 1)").tree
    values = {"max(dust_inlet_temp_c, 10m)": 72.0, "max(spark, 10m)": 1.0}
    terms = facts.terms(tree, lambda n: True,
                        lambda n: n.value if isinstance(n, Num) else values[unparse(n)])
    assert [(t.metric, t.op) for t in terms] == [("dust_inlet_temp_c", ">"), ("spark", ">=")]
    w = describe("raised", Grade.RED, terms)
    assert w.zh == "过去10分钟最高除尘器入口温度72.0℃（＞70℃），且过去10分钟内探测到火花，达到红色标准"


def sms_warning(ev: WarningEvent, name: str, i: int = 0, station: str = "") -> Warning:
    return Warning(incident=f"441900-20250601080000-{i:04d}", key=ev.key, rule=ev.rule,
                   rule_name="一个很长很长的规则名称" * 3, hazard=ev.hazard,
                   station=station or ev.station, station_name=name, town="虎门镇",
                   grade=max(1, int(ev.grade)), value=ev.value or 0.0, reason=ev.reason,
                   reason_zh=ev.reason_zh, reason_en=ev.reason_en, measure_zh=ev.measure_zh,
                   measure_en=ev.measure_en)


LONG = "东莞市虎门镇威远岛海防炮台遗址旁自动雨量监测站（备用）"


@pytest.mark.parametrize("name", ["虎门镇雨量站", LONG * 2, "X" * 90, "Humen rain gauge " * 12])
def test_sms_keeps_station_window_value_unit_and_grade_within_one_segment(pack_events, name):
    """One SMS segment: 70 characters of Chinese (UCS-2), 160 of English (GSM-7)."""
    assert (SMS_LIMITS["zh"], SMS_LIMITS["en"]) == (SMS_LIMIT, SMS_LIMIT_EN) == (70, 160)
    for ev in pack_events:
        if ev.kind.value == "pending":
            continue
        for lang, measure in (("zh", ev.measure_zh), ("en", ev.measure_en)):
            w = sms_warning(ev, name)
            text = sms([Line(ev.kind.value, w, "x")], lang)
            assert len(text) <= SMS_LIMITS[lang], text
            assert measure in text, (measure, text)           # value, unit and window whole
            grade = Grade(w.grade)
            assert (grade.zh if lang == "zh" else grade.label) in text, text
            assert name[:2] in text, text                     # the name, cut if it must be
            group = sms([Line(ev.kind.value, w, "x"),
                         Line("raised", sms_warning(ev, "长安", 1, "OTHER"), "x")], lang)
            assert len(group) <= SMS_LIMITS[lang] and measure in group, group


def test_sms_reads_like_the_issue_asks():
    rain = [Reading("DG-HM-R01", "rain_mm", T0, 103.5)]
    ev = [e for e in run_pack(rain, {"rainstorm-guangdong"}) if e.kind.value == "raised"][0]
    text = sms([Line("raised", sms_warning(ev, "虎门镇雨量站"), "x")])
    assert text.startswith("虎门镇雨量站3小时雨量103.5毫米，红色预警发布")


def test_group_messages_count_stations_not_lines(pack_events):
    ev = next(e for e in pack_events if e.kind.value == "raised")
    a = sms_warning(ev, "虎门镇雨量站", 1, "DG-HM-R01")
    b = sms_warning(ev, "虎门镇雨量站", 2, "DG-HM-R01")   # the same station, a second warning
    c = sms_warning(ev, "长安镇雨量站", 3, "DG-CA-R01")
    one = [Line("raised", a, "x"), Line("raised", b, "x")]
    assert "2站" not in message_title(one) and "虎门镇雨量站" in message_title(one)
    assert "2站" not in sms(one) and "2 stations" not in message_title(one, "en")
    two = one + [Line("raised", c, "x")]
    assert "2站" in message_title(two) and "3站" not in message_title(two)
    assert "等2站" in sms(two) and "2 stations" in message_title(two, "en")


def test_the_book_keeps_words_beside_the_expression_and_old_records_still_load(pack_events):
    import msgspec

    from yujing.alerts.incidents import new_warning, on_event

    ev = next(e for e in pack_events if e.kind.value == "raised" and e.rule != "nodata")
    w = new_warning(ev, "441900-1", 0, 1)
    on_event(w, ev, 2)
    assert (w.reason, w.reason_zh, w.reason_en) == (ev.reason, ev.reason_zh, ev.reason_en)
    assert w.measure_zh == ev.measure_zh and w.measure_en == ev.measure_en
    entry = w.timeline[-1]
    assert (entry.reason, entry.reason_zh) == (ev.reason, ev.reason_zh)
    old = msgspec.json.encode({"incident": "i", "key": "k", "rule": "r", "rule_name": "n",
                               "hazard": "h", "station": "s", "reason": "x = 1 (red: x >= 1)",
                               "timeline": [{"at": 1, "kind": "raised", "reason": "x"}]})
    back = msgspec.json.decode(old, type=Warning)
    assert (back.reason, back.reason_zh, back.timeline[0].reason_zh) == ("x = 1 (red: x >= 1)", "", "")


def test_the_demo_prints_reasons_in_words(pack_events):
    from zoneinfo import ZoneInfo

    from rich.console import Console

    from yujing.sim.demo import DemoState, _summary, event_line

    ev = next(e for e in pack_events if e.rule == "rainstorm-guangdong" and e.kind.value == "raised")
    line = event_line(ev, ZoneInfo("Asia/Shanghai")).plain
    assert ev.reason_zh in line and "sum(" not in line
    state = DemoState(ZoneInfo("Asia/Shanghai"))
    state.events = [ev]
    console = Console(record=True, width=300)
    _summary(state, console)
    assert ev.reason_zh in console.export_text()


def test_a_rule_template_reason_placeholder_gives_the_words_in_its_language():
    rule = Rule.model_validate({
        "id": "rain-words", "name": "暴雨", "hazard": "rainstorm",
        "grades": {"orange": "sum(rain_mm, 3h) >= 50"},
        "message": {"zh": "{station_name}：{reason}", "en": "{station_name}: {reason}"}})
    p = Pipeline([rule], load_registry(ROOT / "stations.yaml"))
    [ev] = p.handle(decode(encode_readings([Reading("DG-HM-R01", "rain_mm", T0, 52.5)])), 0).events
    assert ev.messages["zh"] == "虎门镇雨量站：过去3小时累计雨量52.5毫米，达到橙色标准（≥50毫米）"
    assert ev.messages["en"] == ("虎门镇雨量站: 3 h rain total 52.5 mm, reaching the orange threshold "
                                 "(≥ 50 mm)")


def test_an_english_sms_has_room_for_the_glossary_s_full_names(pack_events):
    """160 GSM-7 characters: the English names are whole words again ("dust collector inlet
    temperature", "filter differential pressure"), with the station, value, unit and grade."""
    g = glossary()
    assert g.metrics["dust_inlet_temp_c"].en == "dust collector inlet temperature"
    assert g.metrics["dust_dp_pa"].en == "filter differential pressure"
    for rule, words in (("dust-filter-dp", "filter differential pressure"),
                        ("dust-inlet-temp", "dust collector inlet temperature")):
        ev = next(e for e in pack_events if e.rule == rule and e.kind.value == "raised")
        text = sms([Line("raised", sms_warning(ev, "Chang'an Dust Collector 2"), "x")], "en")
        assert words in text and ev.measure_en in text, text
        assert text.startswith("Chang'an Dust Collector 2: ") and "warning raised" in text, text
        assert SMS_LIMIT < len(text) <= SMS_LIMIT_EN, (len(text), text)


def test_the_default_packs_carry_no_message_templates():
    """The reasons in words say what a template said (and the window and threshold it left
    out); a template in a default pack would only repeat them on the event."""
    assert [r.id for r in pack_rules() if r.message] == []
