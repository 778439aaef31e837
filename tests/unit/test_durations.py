"""Durations as analysts write them (yujing.durations)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yujing.durations import format_duration, parse_duration_ms


@pytest.mark.parametrize("text, ms", [
    ("250ms", 250),
    ("90s", 90_000),
    ("10m", 600_000),
    ("1h", 3_600_000),
    ("3h", 10_800_000),
    ("12h", 43_200_000),
    ("1d", 86_400_000),
    ("1w", 604_800_000),
    ("1h30m", 5_400_000),
    ("1h 30m", 5_400_000),
    (" 2m ", 120_000),
    ("1.5h", 5_400_000),
    ("0s", 0),
    ("1d2h3m4s5ms", 86_400_000 + 7_200_000 + 180_000 + 4_000 + 5),
])
def test_parse(text, ms):
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text, ms", [("2.01s", 2010), ("4.35s", 4350), ("0.29s", 290),
                                      ("1.1m", 66_000), ("8.03s", 8030)])
def test_decimal_durations_are_not_truncated(text, ms):
    # 2.01 * 1000 is 2009.9999999999998 in binary floating point
    assert parse_duration_ms(text) == ms


@given(st.integers(0, 999), st.integers(0, 999))
def test_decimal_seconds_property(whole, thousandths):
    assert parse_duration_ms(f"{whole}.{thousandths:03d}s") == whole * 1000 + thousandths


@pytest.mark.parametrize("text", ["", "10", "h", "10x", "1h30", "-5m", "1H", "10min", "1 h x",
                                  "m10", "1.h", "ten minutes"])
def test_bad_duration_names_the_accepted_forms(text):
    with pytest.raises(ValueError) as exc:
        parse_duration_ms(text)
    assert f"bad duration {text!r}" in str(exc.value)
    assert "10m, 3h, 1d or 1h30m" in str(exc.value)


@pytest.mark.parametrize("number", [10, 2.5])
def test_a_bare_number_asks_for_a_unit(number):
    with pytest.raises(ValueError, match="write a duration with a unit, e.g."):
        parse_duration_ms(number)


def test_a_boolean_is_not_a_duration():
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration_ms(True)


@pytest.mark.parametrize("ms, text", [
    (0, "0ms"), (1, "1ms"), (1500, "1500ms"), (90_000, "90s"), (600_000, "10m"),
    (3_600_000, "1h"), (5_400_000, "90m"), (10_800_000, "3h"), (86_400_000, "1d"),
    (604_800_000, "7d"),
])
def test_format(ms, text):
    assert format_duration(ms) == text


@given(st.integers(0, 10 ** 12))
def test_format_then_parse_round_trips(ms):
    assert parse_duration_ms(format_duration(ms)) == ms
