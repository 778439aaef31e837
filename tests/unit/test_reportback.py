"""Report-back (回报, issue 14): the report's checks, the refused clear of an orange or red
warning without one, the report on the timeline and in CAP, and what a rule's own clear
leaves (待回报). Pure: the book runs with a fake clock (tests/unit/test_book.py's Rig)."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_book import Rig
from yujing.alerts import reportback
from yujing.alerts.cap import render_cap
from yujing.alerts.records import Command, Report, State, Warning
from yujing.alerts.report_settings import ReportSettings
from yujing.alerts.reportback import ReportError, clear_refusal, parse_report, report_due
from yujing.domain import Grade

S = ReportSettings()
GOOD = {"status": "done", "measures": "关闭闸门，疏散下游住户", "evacuated": 23, "withdrawn": 4,
        "stopped": True, "photos": ["https://img.example/1.jpg", "http://10.0.0.5/p.png"],
        "text": "水位回落"}


def body(**kw) -> bytes:
    return json.dumps({**GOOD, **kw}, ensure_ascii=False).encode()


def test_a_good_report_decodes_to_what_was_sent():
    r = parse_report(body(), S, 2000)
    assert (r.status, r.measures, r.evacuated, r.withdrawn, r.stopped, r.photos, r.text) == (
        "done", GOOD["measures"], 23, 4, True, GOOD["photos"], "水位回落")
    assert parse_report(body(status="需支援"), S, 2000).status == "support"
    assert parse_report(b'{"status": "handling", "text": "en route"}', S, 2000).stopped is None


@pytest.mark.parametrize(("kw", "why"), [
    ({"photos": ["javascript:alert(1)"]}, "http"),
    ({"photos": ["data:image/png;base64,AAAA"]}, "http"),
    ({"photos": ["ftp://x.example/a.jpg"]}, "http"),
    ({"photos": ["https://"]}, "http"),
    ({"photos": ["https://x.example/a b.jpg"]}, "http"),
    ({"photos": ["https://x.example/" + "a" * 1000]}, "http"),
    ({"photos": ["https://x.example/a.jpg"] * 11}, "photos_max"),
    ({"status": "fine"}, "处置中/已处置/需支援"),
    ({"status": ""}, "status"),
    ({"measures": "", "text": ""}, "措施"),
    ({"evacuated": -1}, "evacuated"),
    ({"withdrawn": 10**7}, "withdrawn"),
    ({"evacuated": "23"}, "bad report"),
    ({"stopped": "yes"}, "bad report"),
    ({"photo": ["https://x.example"]}, "bad report"),
    ({"measures": "x\x1b[2J"}, "control character"),
    ({"measures": "x" * 2001}, "2000"),
])
def test_a_bad_report_is_refused_with_the_reason(kw, why):
    with pytest.raises(ReportError, match=why):
        parse_report(body(**kw), S, 2000)


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b"null", b"\xff", b"[" * 5000 + b"]" * 5000])
def test_a_body_that_is_no_object_is_refused(raw):
    with pytest.raises(ReportError, match="JSON|bad report"):
        parse_report(raw, S, 2000)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.one_of(st.binary(max_size=200), st.dictionaries(
    st.sampled_from(list(GOOD) + ["x"]),
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.lists(st.text(max_size=30), max_size=3), max_size=7).map(lambda d: json.dumps(d).encode())))
def test_any_body_is_a_checked_report_or_a_refusal(raw):
    try:
        r = parse_report(raw, S, 2000)
    except ReportError as exc:
        assert str(exc)
        return
    assert r.status in reportback.STATUS and (r.measures or r.text)
    assert all(u.lower().startswith(("http://", "https://")) for u in r.photos)


def warning(grade: int, state: State = State.ACTIVE, peak: int = 0, reports=()) -> Warning:
    return Warning(incident="i1", key="k", rule="r", rule_name="河道水位", hazard="river",
                   station="s1", state=state, grade=grade, peak=max(grade, peak),
                   reports=list(reports))


def test_clear_refusal_by_grade_peak_and_config():
    why = clear_refusal(warning(Grade.ORANGE), S)
    assert why is not None and why.zh == "橙色及以上预警销警前须先提交处置回报"
    assert clear_refusal(warning(Grade.RED), S).zh == "橙色及以上预警销警前须先提交处置回报"
    assert clear_refusal(warning(Grade.YELLOW), S) is None
    assert clear_refusal(warning(Grade.YELLOW, peak=Grade.RED), S) is not None   # was red
    done = Report("r1", 1, "a1", "done", "ok")
    assert clear_refusal(warning(Grade.RED, reports=[done]), S) is None
    assert clear_refusal(warning(Grade.RED, State.CLEARED), S) is None           # nothing to do
    assert clear_refusal(warning(Grade.ORANGE), ReportSettings(required_for=["red"])) is None
    assert clear_refusal(warning(Grade.RED), ReportSettings(required_for=["red"])).zh == \
        "红色预警销警前须先提交处置回报"
    assert clear_refusal(warning(Grade.RED), ReportSettings(required_for=[])) is None


def test_settings_reject_unknown_grades_and_keys():
    with pytest.raises(ValueError, match="required_for"):
        ReportSettings(required_for=["purple"])
    with pytest.raises(ValueError, match="required"):
        ReportSettings.model_validate({"required": ["red"]})


def report(rid: str = "rep-1", by: str = "a1", **kw) -> Report:
    return Report(rid, 0, by, kw.pop("status", "handling"), kw.pop("measures", "关闭闸门"), **kw)


def test_orange_clear_is_refused_until_a_report_then_goes_ahead():
    r = Rig()
    r.find(Grade.ORANGE)
    r.deliver_all()
    iid = r.only().incident
    fx = r.book.on_command(0, Command(
        "clear", id="c1", actor="a1", incident=iid, text="水退了"), r.clock.t)
    w = r.only()
    assert w.state == State.ACTIVE
    assert w.timeline[-1].kind == "refused"
    assert w.timeline[-1].reason_zh == "a1 销警未执行：橙色及以上预警销警前须先提交处置回报"
    assert any("refused" in e for e in fx.errors)
    caps = len(w.cap)
    r.clock.advance(60_000)
    r.cmd("report", iid, "a1", report=report(evacuated=23, stopped=True,
                                             photos=["https://img.example/1.jpg"]))
    w = r.only()
    assert [x.evacuated for x in w.reports] == [23] and w.reports[0].at == r.clock.t
    assert w.timeline[-1].kind == "report"
    assert w.timeline[-1].reason_zh == ("回报（处置中）；措施：关闭闸门；转移23人，撤离0人；已停产；"
                                        "照片1张")
    assert len(w.cap) == caps + 1 and w.cap[-1].msg_type == "Update"
    xml = render_cap(w).decode()
    assert "<note>回报（处置中）；措施：关闭闸门；转移23人" in xml
    assert "<instruction>处置回报：处置中；措施：关闭闸门</instruction>" in xml
    r.clock.advance(60_000)
    r.cmd("clear", iid, "a1", "水退了")
    assert r.only().state == State.CLEARED and r.only().cleared_by == "a1"


def test_a_report_is_applied_once_and_survives_the_store_encoding():
    r = Rig()
    r.find(Grade.RED)
    iid = r.only().incident
    for _ in range(2):   # Kafka re-delivers the command
        r.book.on_command(0, Command(
            "report", id="rep-9", actor="b1", incident=iid, report=report("rep-9", "b1")),
            r.clock.t)
    w = r.only()
    assert len(w.reports) == 1 and sum(e.kind == "report" for e in w.timeline) == 1
    again = msgspec.json.decode(msgspec.json.encode(w), type=Warning)
    assert again.reports == w.reports
    old = msgspec.json.decode(msgspec.json.encode(w).replace(b',"reports":', b',"x_reports":'),
                              type=Warning)
    assert old.reports == []   # a record of before reports decodes, without them


def test_a_rule_clear_closes_an_orange_warning_that_stays_report_due():
    r = Rig()
    r.find(Grade.ORANGE)
    iid = r.only().incident
    assert report_due(r.only(), S)
    r.clock.advance(60_000)
    r.find(clear=True)           # the rule's clear condition holds
    w = r.only()
    assert w.state == State.CLEARED and w.cleared_by == "rule" and report_due(w, S)
    r.cmd("report", iid, "a1", report=report(status="done"))
    assert not report_due(r.only(), S)
    assert r.only().cap[-1].msg_type == "Cancel"   # no Update after the Cancel
    r2 = Rig()
    r2.find(Grade.YELLOW)
    assert not report_due(r2.only(), S)
