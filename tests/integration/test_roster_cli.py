"""`yujing roster show|check` on the shipped example roster and on a broken one."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from yujing.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_roster_show_names_a_b_and_leader_at_a_time():
    out = runner.invoke(app, ["roster", "show", str(ROOT / "roster.yaml"), "--at",
                              "2025-06-10 12:00", "--team", "flood-south"])
    assert out.exit_code == 0, out.output
    assert "A 刘洋 (liu.yang) · B 李娜 (li.na) · leader 周涛 (zhou.tao)" in out.output
    assert "override (张伟病假)" in out.output


def test_roster_show_unknown_team_lists_the_known_ones():
    out = runner.invoke(app, ["roster", "show", str(ROOT / "roster.yaml"), "--team", "flud"])
    assert out.exit_code == 2 and "unknown team 'flud'" in out.output and "flood-south" in out.output


def test_roster_check_passes_on_the_example_and_fails_on_gaps(tmp_path):
    ok = runner.invoke(app, ["roster", "check", str(ROOT / "roster.yaml"), "--start",
                             "2025-06-01 00:00"])
    assert ok.exit_code == 0, ok.output
    bad = tmp_path / "r.yaml"
    bad.write_text("people: [{id: a, name: A, contacts: ['json://x/y']}]\n"
                   "teams:\n- {id: room, name: R, domain: duty_room,\n"
                   "   shifts: [{start: '2025-06-01 08:30', end: '2025-06-01 20:30', A: a, B: zz}]}\n")
    out = runner.invoke(app, ["roster", "check", str(bad), "--start", "2025-06-01 08:30",
                              "--days", "1"])
    assert out.exit_code == 1
    assert "unknown person 'zz'" in out.output
    assert "team room: no A and B from 2025-06-01 20:30 to 2025-06-02 08:30" in out.output
