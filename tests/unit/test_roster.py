"""Duty roster resolution (yujing.alerts.roster): midnight, handovers, overrides, swaps,
holidays, CSV shift tables, checks and located errors."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from yujing.alerts.channels import channel_kind
from yujing.alerts.roster import load_roster, parse_roster
from yujing.yamlsrc import SourceError

ROOT = Path(__file__).resolve().parents[2]
SH = ZoneInfo("Asia/Shanghai")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=SH).timestamp() * 1000)


@pytest.fixture(scope="module")
def roster():
    return load_roster(ROOT / "roster.yaml")


def who(roster, team: str, at: str) -> tuple:
    d = roster.duty(team, ms(at))
    return d.A, d.B, d.leader


@pytest.mark.parametrize("at, expected", [
    ("2025-06-06 08:29", ("li.na", "wang.fang", "zhou.tao")),      # slot 2, before handover
    ("2025-06-03 08:30", ("wang.fang", "zhang.wei", "wu.hua")),    # slot 3 from the handover
    ("2025-06-03 23:59", ("wang.fang", "zhang.wei", "wu.hua")),
    ("2025-06-04 00:00", ("wang.fang", "zhang.wei", "wu.hua")),    # across midnight: same shift
    ("2025-06-04 08:29", ("wang.fang", "zhang.wei", "wu.hua")),
    ("2025-06-04 08:30", ("zhang.wei", "li.na", "zhou.tao")),      # rotation wraps to slot 1
])
def test_rotation_across_midnight_and_handovers(roster, at, expected):
    assert who(roster, "flood-south", at) == expected


def test_holiday_uses_the_holiday_rotation_with_12h_shifts(roster):
    assert who(roster, "flood-south", "2025-06-01 10:00") == ("zhang.wei", "li.na", "wu.hua")
    assert who(roster, "flood-south", "2025-06-01 21:00") == ("wang.fang", "li.na", "wu.hua")
    assert "holiday rotation" in roster.duty("flood-south", ms("2025-06-01 21:00")).why[0]


def test_override_replaces_only_the_roles_it_names(roster):
    d = roster.duty("flood-south", ms("2025-06-10 12:00"))
    assert (d.A, d.B) == ("liu.yang", "li.na")       # slot 1's A (zhang.wei) is ill
    assert "override (张伟病假)" in d.why
    assert who(roster, "flood-south", "2025-06-11 08:30")[0] != "liu.yang"  # override ended


def test_swap_exchanges_two_people_inside_its_window(roster):
    before = who(roster, "flood-city", "2025-06-19 12:00")
    during = who(roster, "flood-city", "2025-06-21 12:00")
    assert set(before[:2]) == {"liu.yang", "chen.jie"}
    normal = who(roster, "flood-city", "2025-06-23 12:00")   # same slot parity as the 21st
    assert during[:2] == (normal[1], normal[0])


def test_csv_shift_table_wins_over_the_rotation(roster):
    assert who(roster, "forest", "2025-06-15 12:00") == ("huang.lei", "zhao.min", "zhou.tao")
    assert who(roster, "forest", "2025-06-16 12:00") == ("zhao.min", "huang.lei", "wu.hua")


def test_team_leader_fills_a_slot_without_one(roster):
    assert who(roster, "duty-room", "2025-06-05 10:00")[2] == "zhou.tao"


def test_team_for_prefers_the_region_then_all_regions_then_the_duty_room(roster):
    assert roster.team_for("rainstorm", "虎门镇")[0] == "flood-south"
    assert roster.team_for("rainstorm", "清溪镇")[0] == "flood-city"
    assert roster.team_for("gas", "麻涌镇")[0] == "chemical"
    assert roster.team_for("meteor", "麻涌镇")[0] == "duty-room"


def test_shipped_roster_checks_clean(roster):
    assert roster.check(ms("2025-06-01 00:00")) == []


BROKEN = """
people:
  - {id: a, name: A, contacts: ["json://x/y"]}
  - {id: b, name: B}
teams:
  - id: t
    name: T
    domain: flood
    shifts:
      - {start: "2025-06-01 08:30", end: "2025-06-02 08:30", A: a, B: ghost}
      - {start: "2025-06-02 20:30", end: "2025-06-03 08:30", A: a}
"""


def test_check_finds_gaps_unknown_people_and_unreachable_people():
    r = parse_roster(BROKEN)
    problems = r.check(ms("2025-06-01 08:30"), 2 * 86_400_000)
    text = "\n".join(problems)
    assert "unknown person 'ghost'" in text
    assert "person b (B) has no contacts" in text
    assert "no A and B from 2025-06-02 08:30 to 2025-06-02 20:30 (12h)" in text
    assert "no B from 2025-06-02 20:30 to 2025-06-03 08:30" in text
    assert "no duty room" in text


def test_errors_name_the_line_key_and_fix():
    with pytest.raises(SourceError) as exc:
        parse_roster("teams:\n  - id: t\n    name: T\n    domain: floods\n", "r.yaml")
    msg = str(exc.value)
    assert "r.yaml:4" in msg and "unknown domain 'floods'" in msg and "flood (三防)" in msg
    with pytest.raises(SourceError) as exc:
        parse_roster("people:\n  - {id: a, name: A, contacts: [13800000000]}\n", "r.yaml")
    assert "not an apprise URL" in str(exc.value)


def test_a_csv_alone_is_refused_with_the_fix(tmp_path):
    f = tmp_path / "shifts.csv"
    f.write_text("team,start,end,A,B,leader\n")
    with pytest.raises(SourceError, match="shift_tables"):
        load_roster(f)


def test_bad_csv_rows_are_located(tmp_path):
    (tmp_path / "s.csv").write_text("team,start,end,A\nt,2025-06-01 08:30,yesterday,a\n")
    (tmp_path / "r.yaml").write_text("teams: [{id: t, name: T, domain: flood}]\n"
                                     "shift_tables: [s.csv]\n")
    with pytest.raises(SourceError) as exc:
        load_roster(tmp_path / "r.yaml")
    assert "s.csv:2" in str(exc.value)


@pytest.mark.parametrize("url, kind", [("mailto://u:p@smtp.x", "email"),
                                       ("dingtalk://tok/", "markdown"),
                                       ("wecombot://key", "markdown"),
                                       ("twilio://a:b@c/d", "sms"),
                                       ("json://127.0.0.1:9/x", "text")])
def test_channel_kind_from_the_scheme(url, kind):
    assert channel_kind(url) == kind
