"""Every rule pack under rules/ loads, and every YAML rule test next to it passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from yujing.backtest.ruletests import rule_test_files, run_folder
from yujing.rules.loader import load_rules, rule_files

RULES = Path(__file__).resolve().parents[2] / "rules"
RESULTS = run_folder(RULES)


def test_every_pack_has_tests():
    packs = {p.name.removesuffix(".yaml") for p in rule_files(RULES)}
    tested = {p.name.removesuffix(".test.yaml") for p in rule_test_files(RULES)}
    assert packs and packs <= tested, f"packs without tests: {sorted(packs - tested)}"


def test_every_enabled_rule_is_exercised_by_a_test():
    rules = {r.id for r in load_rules(RULES) if r.enabled}
    text = " ".join(p.read_text(encoding="utf-8") for p in rule_test_files(RULES))
    assert [r for r in sorted(rules) if r not in text] == []


@pytest.mark.parametrize("result", RESULTS, ids=[f"{r.file}::{r.name}" for r in RESULTS])
def test_rule_test(result):
    assert result.ok, "\n".join(result.failures)
