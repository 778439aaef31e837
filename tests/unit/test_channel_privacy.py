"""Channel URLs on timelines and in logs (issue 12, finding 10): apprise's own privacy
rendering decides what may be shown, so services that carry their token in the host part
(feishu://, lark://, pushplus://, schan://, pbul://, wxpusher://, pover://) leak nothing, and
error texts quoting a URL are scrubbed; the yujing:// log channel writes no working ack link."""

from __future__ import annotations

import logging

import apprise
import pytest

from yujing.alerts.notify import Private

SECRET = "Zq8vKp3mWn5rTy7uXb2c"
URLS = [f"feishu://{SECRET}", f"lark://{SECRET}", f"pushplus://{SECRET}",
        f"schan://{SECRET}", f"pbul://{SECRET}", f"wxpusher://AT_{SECRET}/UID_1234",
        f"pover://u{SECRET}@t{SECRET}", f"dingtalk://{SECRET}/", f"wecombot://{SECRET}",
        f"tgram://123456:{SECRET}/987", f"json://user:{SECRET}@127.0.0.1:9/hook",
        f"mailto://duty:{SECRET}@smtp.example.org:587?to=a@example.org",
        f"json://127.0.0.1:9/hook?token={SECRET}", f"unknownscheme://{SECRET}"]


@pytest.mark.parametrize("url", URLS)
def test_no_secret_in_the_shown_channel(url):
    p = Private(url)
    assert SECRET not in p.shown and p.shown.split("://")[0] == url.split("://")[0]
    assert SECRET not in p.scrub(f"POST {url} failed: 403")
    assert SECRET not in p.scrub(f"bad credentials {' '.join(p.secrets)}")


def test_the_endpoint_stays_recognisable():
    assert Private("json://user:pw1234@10.0.0.5:8080/hook").shown == "json://user:****@10.0.0.5:8080/hook"
    assert Private("mailto://duty:pw1234@smtp.example.org:587").shown.startswith(
        "mailto://duty:****@smtp.example.org:587")


def test_the_log_channel_writes_the_message_without_the_ack_token(caplog):
    token = "eyJ0eXAi.Signed-Token_123"
    with caplog.at_level(logging.WARNING, logger="yujing.notify"):
        ap = apprise.Apprise()
        assert ap.add("yujing://")
        ok = ap.notify(title="红色预警", body=f"确认: https://yj.example/v1/ack/{token} 其余正文")
    assert ok
    assert "其余正文" in caplog.text and "/v1/ack/…" in caplog.text
    assert token not in caplog.text
