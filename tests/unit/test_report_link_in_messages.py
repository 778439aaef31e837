"""The report-back link (回报链接) in warning messages: a warning whose grade needs a report
(alerts.reports.required_for) carries its signed report link in the text, e-mail and
markdown variants — the clear message too, so a warning a rule cleared while 待回报 still
has a way in — never in the SMS (70 characters), and no more once a report is in. Pure."""

from __future__ import annotations

from tests.unit.test_book import ROSTER, Rig
from yujing.alerts.book import Book
from yujing.alerts.records import Report
from yujing.alerts.roster import parse_roster
from yujing.alerts.templates import SMS_LIMIT
from yujing.domain import Grade

MIN = 60_000


class ReportRig(Rig):
    def __init__(self, **settings) -> None:
        super().__init__(**settings)
        self.book = Book(self.s, self.store, parse_roster(ROSTER),
                         fallback_urls=lambda g: ["json://fallback.example/x"],
                         plan_of=lambda st: "", link_for=lambda p, i, now: f"http://x/ack/{p}",
                         report_link_for=lambda p, i, now: f"http://x/v1/report/{p}/{i[0]}")


def test_an_orange_warning_and_its_rule_clear_carry_the_report_link_but_not_in_the_sms():
    r = ReportRig()
    r.find(Grade.ORANGE)
    w = r.only()
    link = f"http://x/v1/report/a1/{w.incident}"
    [d] = [d for d in r.sent if d.person == "a1"]
    assert f"填写处置回报：{link}" in d.message.text
    assert f"({link})" in d.message.markdown
    assert "http" not in d.message.sms and len(d.message.sms) <= SMS_LIMIT
    r.deliver_all()
    r.clock.advance(5 * MIN)
    r.find(clear=True)                               # the rule clears it: 待回报
    cleared = [d for d in r.sent if d.person == "a1" and "cleared" in d.kinds]
    assert cleared and f"填写处置回报：{link}" in cleared[0].message.text


def test_a_grade_without_a_report_due_or_a_reported_warning_carries_none():
    r = ReportRig()
    r.find(Grade.YELLOW)
    assert r.sent and all("/v1/report/" not in d.message.text for d in r.sent)
    r = ReportRig()
    r.find(Grade.RED)
    w = r.only()
    r.deliver_all()
    r.cmd("report", w.incident, "a1", report=Report("rep-1", 0, "a1", "done", "已撤离"))
    r.clock.advance(5 * MIN)
    r.find(clear=True)
    assert r.sent and all("/v1/report/" not in d.message.text for d in r.sent)


def test_required_for_decides_which_grades_get_the_link():
    r = ReportRig(reports={"required_for": ["yellow", "orange", "red"]})
    r.find(Grade.YELLOW)
    assert any("/v1/report/" in d.message.text for d in r.sent)
