"""Every YAML example of docs/rules.md is checked against the code (issue 15 leftovers).

An analyst copies the page's examples; one that the loader refuses (or that says
something the packs do not) teaches the wrong thing. Each block is validated by the
model that would read it: whole rules are loaded and compiled, a rule shown in part
must match the pack rule of that id, fragments (``grades:``, ``select:``,
``message:``) are compiled inside a rule, a rule test file and the ``cap:`` section by
their own models. A block of a shape this test does not know fails it.

The "Forecast readings" section is another part of issue 15 with its own checks; its
blocks are left to them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from yujing.alerts.cap_settings import CapSettings
from yujing.backtest.ruletests import RuleTestFile
from yujing.rules.compiled import compile_rule
from yujing.rules.loader import load_rules
from yujing.rules.schema import Rule, RuleFile, Select

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "rules.md"
PACKS = {r.id: r for r in load_rules(ROOT / "rules")}
OTHERS = ("Forecast",)   # headings whose examples are checked elsewhere


def blocks() -> list[tuple[int, object]]:
    """(line, parsed YAML) of each ```yaml block outside the sections of OTHERS."""
    text = PAGE.read_text(encoding="utf-8")
    out, skip = [], False
    for m in re.finditer(r"^(#{2,3}) ([^\n]*)$|^```yaml\n(.*?)^```", text, re.S | re.M):
        if m.group(1):
            if m.group(1) == "##" or not skip:
                skip = any(o in m.group(2) for o in OTHERS)
            continue
        if not skip:
            out.append((text[:m.start()].count("\n") + 2, yaml.safe_load(m.group(3))))
    return out


def sample(**fields: object) -> Rule:
    """A rule around a fragment of the page (a name and hazard it does not show)."""
    return Rule.model_validate({"id": "doc-example", "name": "示例", "hazard": "flood",
                                "grades": {"yellow": "last(water_level_m) >= 1"}, **fields})


def same(a: object, b: object) -> bool:
    """Equal, reading condition texts with their folded whitespace."""
    norm = lambda v: re.sub(r"\s+", " ", v).strip() if isinstance(v, str) else v  # noqa: E731
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() <= b.keys() and all(same(a[k], b[k]) for k in a)
    return norm(a) == norm(b)


def check_rule(doc: dict) -> None:
    if doc["id"] in PACKS:
        pack = PACKS[doc["id"]].model_dump(mode="json", by_alias=True, exclude_none=True)
        for key, value in doc.items():
            shown = value if key != "select" else Select.model_validate(value).model_dump(
                exclude_none=True)
            assert same(shown, pack.get(key)), f"{doc['id']}.{key}: {value!r} != {pack.get(key)!r}"
    compile_rule(Rule.model_validate({"name": "示例", "hazard": "flood", **doc}))


def check(block: object) -> None:
    if isinstance(block, list):
        for doc in block:
            check_rule(doc)
    elif isinstance(block, dict) and "rules" in block:
        RuleFile.model_validate(block)
        for doc in block["rules"]:
            check_rule(doc)
    elif isinstance(block, dict) and "cap" in block:
        CapSettings.model_validate(block["cap"])
    elif isinstance(block, dict) and "tests" in block:
        RuleTestFile.model_validate(block)
    elif isinstance(block, dict) and block.keys() == {"select"}:
        Select.model_validate(block["select"])
    elif isinstance(block, dict) and block.keys() <= {"grades", "clear", "for", "message"}:
        compile_rule(sample(**block))
    else:
        raise AssertionError(f"a block of a shape this test does not check: {block!r}")


EXAMPLES = blocks()


def test_the_page_has_its_examples():
    shown = {d["id"] for _, b in EXAMPLES if isinstance(b, list) for d in b}
    assert {"river-level-trend", "reservoir-drawdown-trend"} <= shown
    assert any(isinstance(b, dict) and "cap" in b for _, b in EXAMPLES)


@pytest.mark.parametrize("line, block", EXAMPLES, ids=[f"line{n}" for n, _ in EXAMPLES])
def test_each_example_is_what_the_code_accepts(line, block):
    check(block)


def test_a_pack_rule_shown_otherwise_than_the_pack_is_caught():
    wrong = {"id": "river-level-trend", "grades": {"yellow": "eta(water_level_m, 6, 1h) <= 2h"}}
    with pytest.raises(AssertionError, match="river-level-trend.grades"):
        check([wrong])
