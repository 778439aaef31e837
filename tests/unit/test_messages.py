"""Message templates per channel, signed links and matchers (pure parts of delivery)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yujing.alerts.records import Warning, Weekly
from yujing.alerts.signing import TokenError, sign, verify
from yujing.alerts.silences import in_weekly, matches, parse_matcher, parse_weekly
from yujing.alerts.templates import SMS_LIMIT, Line, render, sms

T = 1_748_764_800_000  # Sunday 2025-06-01 16:00 in Shanghai


def warning(i: int = 0, name: str = "虎门镇雨量站", town: str = "虎门镇", grade: int = 4) -> Warning:
    return Warning(incident=f"441900-20250601080000-{i:04d}", key=f"rain@g{i}", rule="rain",
                   rule_name="暴雨", hazard="rainstorm", station=f"DG-{i}", station_name=name,
                   town=town, grade=grade, value=102.5, reason="sum(3h) = 102.5 >= 100 (red)")


@given(name=st.text(min_size=0, max_size=80), town=st.text(max_size=30), n=st.integers(1, 40))
def test_sms_never_exceeds_70_characters(name, town, n):
    lines = [Line("raised", warning(i, name, town), "x") for i in range(n)]
    assert len(sms(lines)) <= SMS_LIMIT


def test_sms_carries_grade_place_and_count():
    text = sms([Line("raised", warning(i), "x") for i in range(3)])
    assert "红色" in text and "虎门镇" in text and "等3站" in text and len(text) <= 70


def test_channels_get_their_own_forms():
    lines = [Line("raised", warning(1), "red policy pages A, B and leader first"),
             Line("raised", warning(2, "长安雨量站"), "red policy pages A, B and leader first")]
    m = render(lines, "张三", ["A"], "http://h/v1/ack/TOKEN", lambda s: f"转移{s}低洼处群众",
               T, "zh")
    assert m.title == "【红色预警发布】虎门镇 2站 暴雨"
    assert m.markdown.startswith("### ") and "[一键确认](http://h/v1/ack/TOKEN)" in m.markdown
    assert "- **红色** 长安雨量站" in m.markdown
    assert "处置方案：转移DG-1低洼处群众" in m.text and "一键确认：http://h/v1/ack/TOKEN" in m.text
    assert "张三（A岗）" in m.text and "通知原因：red policy pages" in m.text
    en = render(lines, "Zhang", ["A"], None, lambda s: "", T, "en")
    assert en.title.startswith("[RED I]") and "Acknowledge in the console" in en.text


def test_cleared_message_has_no_acknowledge_link():
    m = render([Line("cleared", warning(1), "rule clear")], "张三", ["informed"], "http://h/x",
               lambda s: "", T)
    assert "一键确认" not in m.text and "一键确认" not in m.markdown
    assert "解除" in m.title


def test_signed_link_round_trip_and_failures():
    key = b"k" * 32
    tok = sign(key, "ack", "zhang.wei", ["i1", "i2"], T + 1000)
    claim = verify(key, tok, T)
    assert (claim.a, claim.p, claim.i) == ("ack", "zhang.wei", ["i1", "i2"])
    with pytest.raises(TokenError, match="expired"):
        verify(key, tok, T + 1000)
    with pytest.raises(TokenError, match="bad signature"):
        verify(b"other" * 8, tok, T)
    payload, mac = tok.split(".")
    forged = sign(key, "ack", "mallory", ["i1"], T + 1000).split(".")[0] + "." + mac
    with pytest.raises(TokenError, match="bad signature"):
        verify(key, forged, T)
    with pytest.raises(TokenError, match="malformed"):
        verify(key, "garbage", T)


@pytest.mark.parametrize("text, labels, hit", [
    ("town=虎门镇", {"town": "虎门镇"}, True),
    ("town!=虎门镇", {"town": "虎门镇"}, False),
    ("grade=~blue|yellow", {"grade": "yellow"}, True),
    ("grade=~blue|yellow", {"grade": "yellowish"}, False),   # anchored
    ("station!~DG-HM-.*", {"station": "DG-CA-R01"}, True),
])
def test_matchers(text, labels, hit):
    assert matches(parse_matcher(text), labels) is hit


@pytest.mark.parametrize("bad", ["town", "colour=red", "grade=~(", "=x"])
def test_bad_matchers_say_what_to_write(bad):
    with pytest.raises(ValueError, match="matcher|label"):
        parse_matcher(bad)


def test_weekly_windows_including_past_midnight():
    sun = parse_weekly("sun 15:00-17:00")
    assert in_weekly(sun, T) and not in_weekly(sun, T + 2 * 3_600_000)
    night = Weekly([6], "22:00", "06:00")          # Sunday night into Monday morning
    assert in_weekly(night, T + 7 * 3_600_000)     # Sunday 23:00
    assert in_weekly(night, T + 13 * 3_600_000)    # Monday 05:00
    assert not in_weekly(night, T + 15 * 3_600_000)
    with pytest.raises(ValueError, match="sat 02:00-04:00"):
        parse_weekly("saturday morning")
