"""``shift_tables:`` that is not a list of file names (null, a number) is a located
SourceError from the roster's own checks, and a shift table that is not UTF-8 is one too:
found by the hypothesis run over roster files (test_file_decoders_fuzz.py), where
``load_roster`` iterated the value before validating it (TypeError)."""

from __future__ import annotations

import pytest

from yujing.alerts.roster import load_roster
from yujing.yamlsrc import SourceError

PEOPLE = "timezone: Asia/Shanghai\npeople:\n  - {id: a, name: A, contacts: []}\nteams: []\n"


@pytest.mark.parametrize("value", ["null", "7", "true"])
def test_shift_tables_not_a_list_is_a_located_error(tmp_path, value):
    path = tmp_path / "roster.yaml"
    path.write_text(PEOPLE + f"shift_tables: {value}\n", encoding="utf-8")
    with pytest.raises(SourceError) as exc:
        load_roster(path)
    assert any(p.key.startswith("shift_tables") and p.line == 5 for p in exc.value.problems), \
        exc.value.problems


def test_a_shift_table_that_is_not_utf8_is_a_located_error(tmp_path):
    (tmp_path / "shifts.csv").write_bytes(b"team,start,end,A\nflood,\xff\n")
    path = tmp_path / "roster.yaml"
    path.write_text(PEOPLE + "shift_tables: [shifts.csv]\n", encoding="utf-8")
    with pytest.raises(SourceError) as exc:
        load_roster(path)
    assert "UTF-8" in str(exc.value) and "shifts.csv" in str(exc.value)
