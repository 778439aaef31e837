"""The apprise adapter (yujing.alerts.notify): retries with doubling backoff, fallback to
the person's next contact, per-channel bodies, counters. Real apprise, with an in-process
apprise schema standing in for a channel that fails a given number of times."""

from __future__ import annotations

from apprise.decorators import notify as apprise_notify

from yujing.alerts import escalation
from yujing.alerts.notify import Deliverer
from yujing.alerts.records import Contact, Delivery, Rendered, State, Warning
from yujing.alerts.settings import AlertsSettings, DeliverySettings
from yujing.alerts.templates import SMS_LIMITS, Line, render

CALLS: list[tuple[str, str, str]] = []
FAIL_LEFT: dict[str, int] = {}


@apprise_notify(on="flaky", name="flaky test channel")
def _flaky(body: str, title: str, notify_type: str, meta: dict, *args, **kwargs) -> bool:
    host = meta.get("host", "")
    CALLS.append((host, title, body))
    if FAIL_LEFT.get(host, 0) > 0:
        FAIL_LEFT[host] -= 1
        return False
    return True


def delivery(*contacts: Contact) -> Delivery:
    return Delivery(id="d1", group="g", partition=0, person="a1", person_name="张三", roles=["A"],
                    contacts=list(contacts), incidents=["i1"], kinds=["raised"],
                    message=Rendered(title="T", sms="短信", markdown="### md", text="full text"),
                    run="r", created_ms=0)


def make(retries: int = 3):
    sleeps: list[float] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)

    d = Deliverer(DeliverySettings(retries=retries, backoff="1s", backoff_max="3s"),
                  lambda: 42, sleep=sleep)
    return d, sleeps


async def test_retries_with_doubling_backoff_then_success():
    CALLS.clear()
    FAIL_LEFT.clear()
    FAIL_LEFT["one"] = 2
    d, sleeps = make(retries=4)
    res = await d.deliver(delivery(Contact("flaky://one", "text")))
    assert res.ok and res.channel == "flaky://one"
    assert [a.ok for a in res.attempts] == [False, False]
    assert sleeps == [1.0, 2.0]
    assert d.counters.snapshot() == {"text:failed": 2, "text:retried": 2, "text:sent": 1}


async def test_falls_back_to_the_next_contact_with_its_own_form():
    CALLS.clear()
    FAIL_LEFT.clear()
    FAIL_LEFT["dead"] = 99
    d, sleeps = make(retries=2)
    res = await d.deliver(delivery(Contact("flaky://dead", "sms"), Contact("flaky://ok", "markdown"),
                                   Contact("flaky://never", "text")))
    assert res.ok and res.channel == "flaky://ok"
    assert [(h, b) for h, _, b in CALLS] == [("dead", "短信"), ("dead", "短信"), ("ok", "### md")]
    assert len(res.attempts) == 2 and all(a.channel == "flaky://dead" for a in res.attempts)
    assert d.counters.total("fell_back") == 1


async def test_every_contact_failing_is_reported_not_raised():
    FAIL_LEFT.clear()
    FAIL_LEFT["x"] = 99
    d, _ = make(retries=1)
    res = await d.deliver(delivery(Contact("flaky://x", "text"), Contact("nosuchscheme://y", "text")))
    assert not res.ok
    # a URL apprise cannot parse shows only its scheme: a misspelt scheme may carry a token
    assert [a.channel for a in res.attempts] == ["flaky://x", "nosuchscheme://…"]
    assert "unusable URL" in res.attempts[1].error
    res = await d.deliver(delivery())
    assert not res.ok and res.attempts[0].error == "no contacts"


async def test_a_reminder_reaches_each_channel_in_the_reader_s_words():
    """A real message (an orange warning, reminded after 30 minutes) through apprise: the SMS
    within one segment of its language with the value, unit and window; the text saying why
    now in words, Chinese or English, never a role code or the old English sentence."""
    t0 = 1_748_764_800_000
    w = Warning(incident="441900-20250601080000-0001", key="k", rule="rainstorm-guangdong",
                rule_name="暴雨", hazard="rainstorm", station="DG-HM-R01",
                station_name="虎门镇雨量站", town="虎门镇", state=State.ACTIVE, grade=3,
                reason="raised orange: sum(rain_mm, 3h) = 52.5 (orange: sum(rain_mm, 3h) >= 50)",
                reason_zh="过去3小时累计雨量52.5毫米，达到橙色标准（≥50毫米）",
                reason_en="3 h rain total 52.5 mm, reaching the orange threshold (≥ 50 mm)",
                measure_zh="3小时雨量52.5毫米", measure_en="3 h rain 52.5 mm")
    policy = AlertsSettings().policy(3)
    escalation.start(w, policy, "raised", t0)
    notice = None
    for minute in (10, 20, 30):
        notice = escalation.due(w, policy, t0 + minute * 60_000)
    assert notice is not None and notice.kind == "reminder"
    line = Line(notice.kind, w, notice.reason, notice.reason_zh, notice.reason_en)
    for lang, why, measure in (
            ("zh", "通知原因：仍未确认（已过30分钟）：第1次提醒A岗、B岗、带班领导。", "3小时雨量52.5毫米"),
            ("en", "Why now: Still not acknowledged after 30 min: reminder 1 to officer A, "
                   "officer B and the shift leader.", "3 h rain 52.5 mm")):
        CALLS.clear()
        FAIL_LEFT.clear()
        msg = render([line], "张三", ["A"], None, lambda st: "", t0 + 30 * 60_000, lang)
        d, _ = make()
        d1 = Delivery(id="d1", group="g", partition=0, person="a1", person_name="张三",
                      roles=["A"], contacts=[Contact("flaky://sms", "sms")], incidents=[w.incident],
                      kinds=["reminder"], message=msg, run="r", created_ms=0)
        d2 = Delivery(**{**{f: getattr(d1, f) for f in d1.__struct_fields__},
                         "contacts": [Contact("flaky://text", "text")]})
        assert (await d.deliver(d1)).ok and (await d.deliver(d2)).ok
        (_, _, sms_body), (_, _, text_body) = CALLS
        assert len(sms_body) <= SMS_LIMITS[lang] and measure in sms_body, sms_body
        assert why in text_body, text_body
        assert "still unacknowledged" not in text_body and "to A, B and leader" not in text_body
