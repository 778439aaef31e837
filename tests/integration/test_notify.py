"""The apprise adapter (yujing.alerts.notify): retries with doubling backoff, fallback to
the person's next contact, per-channel bodies, counters. Real apprise, with an in-process
apprise schema standing in for a channel that fails a given number of times."""

from __future__ import annotations

from apprise.decorators import notify as apprise_notify

from yujing.alerts.notify import Deliverer
from yujing.alerts.records import Contact, Delivery, Rendered
from yujing.alerts.settings import DeliverySettings

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
