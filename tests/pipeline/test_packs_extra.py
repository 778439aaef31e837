"""The default rule packs (rules/) against the example registry (stations.yaml).

test_rule_packs.py runs the YAML rule tests; this checks what they cannot: that the
registry states every station field the packs read, that every feed is watched by a
hazard rule and by a data-quality rule, that every rule cites a source with a confidence,
and that each rule's own pack tests would notice if the rule disappeared.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from yujing.backtest.ruletests import RuleTestFile, rule_test_files, run_case
from yujing.rules.compiled import compile_rule
from yujing.rules.loader import check_references, load_rules, load_rules_located
from yujing.stations import load_registry
from yujing.yamlsrc import load_yaml, validate

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
REGISTRY = load_registry(ROOT / "stations.yaml")
ALL = load_rules(RULES)
ENABLED = [r for r in ALL if r.enabled]

# What each kind of station reports (DESIGN.md metric names, as the packs use them).
KIND_METRICS = {
    "rain_gauge": {"rain_mm"},
    "river_gauge": {"water_level_m"},
    "reservoir": {"water_level_m"},
    "waterlogging": {"waterlogging_depth_m"},
    "weather": {"wind_speed_ms", "wind_gust_ms", "temperature_c", "humidity_pct", "rain_mm"},
    "camera": {"smoke", "fire", "heartbeat"},
    "dust_collector": {"dust_inlet_temp_c", "dust_dp_pa", "spark", "vent_burst",
                       "airlock_fault", "o2_pct"},
    "gas_detector": {"gas_lel_pct", "gas_lelm", "o2_pct", "h2s_mgm3", "co_mgm3", "nh3_mgm3",
                     "cl2_mgm3", "so2_mgm3", "benzene_mgm3", "toxic_mgm3"},
}
# Cameras' only data-quality check is silence (no-data): a confidence outside 0..1 is
# rejected by the gateway, and a sudden detection is the hazard, not a data fault.
NO_QUALITY_RULE = {"camera"}
RAIN_GAUGES = ["DG-HM-R01", "DG-CA-R01", "DG-HJ-R01", "DG-DL-R01", "DG-SL-R01", "DG-QX-R01",
               "DG-TX-R01", "DG-FG-R01", "DG-CP-R01", "DG-ZMT-R01", "DG-SJ-R01", "DG-MY-R01"]


def _watches(rule, kind: str) -> bool:
    c = compile_rule(rule)
    stations = [s for s in REGISTRY.stations.values() if s.kind == kind]
    return bool(c.metrics & KIND_METRICS[kind]) and any(c.eligible(s.id, s) for s in stations)


def test_the_demo_rain_gauges_are_unchanged_and_every_station_has_an_expected_interval():
    for sid in RAIN_GAUGES:
        st = REGISTRY.get(sid)
        assert st is not None and st.kind == "rain_gauge" and st.expected_interval == "5m"
    assert [s.id for s in REGISTRY.stations.values() if not s.expected_interval] == []


def test_every_kind_in_the_registry_is_known_here():
    assert {s.kind for s in REGISTRY.stations.values()} == set(KIND_METRICS)


@pytest.mark.parametrize("kind", sorted(KIND_METRICS))
def test_every_feed_has_a_hazard_rule_and_a_quality_rule(kind):
    assert any(_watches(r, kind) for r in ENABLED if r.category == "hazard"), kind
    if kind not in NO_QUALITY_RULE:
        assert any(_watches(r, kind) for r in ENABLED if r.category == "quality"), kind


def test_the_registry_states_every_station_field_the_packs_read():
    problems = check_references(load_rules_located(RULES), REGISTRY)
    assert [p.message for p in problems] == []


def test_every_rule_cites_a_source_with_a_confidence():
    confidence = re.compile(r"\((?:[^()]*[\s,;])?(H|M|L)(?:[\s,;][^()]*)?\)")
    assert [r.id for r in ALL if not confidence.search(r.source)] == []


def test_quality_rules_are_data_quality_and_hazard_rules_are_not():
    for r in ALL:
        if r.category == "quality":
            assert r.hazard == "data_quality" and r.id.startswith("quality-"), r.id
        else:
            assert r.hazard != "data_quality" and not r.id.startswith("quality-"), r.id


def _pack_tests() -> dict[str, tuple[Path, RuleTestFile]]:
    out = {}
    for p in rule_test_files(RULES):
        out[p.name.removesuffix(".test.yaml")] = (p, validate(RuleTestFile, load_yaml(p)))
    return out


PACK_TESTS = _pack_tests()


def _pack_of_rules() -> dict[str, list[str]]:
    """pack (rule file stem) -> the ids of the rules it defines."""
    out: dict[str, list[str]] = {}
    for rule, origin in load_rules_located(RULES):
        out.setdefault(Path(origin.file).name.removesuffix(".yaml"), []).append(rule.id)
    return out


PACKS = _pack_of_rules()


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_each_enabled_rule_is_pinned_by_its_own_packs_tests(pack):
    """Without the rule, some test of its own pack fails: the tests look at it, not just name it."""
    path, spec = PACK_TESTS[pack]
    registry = load_registry(path.parent / spec.registry) if spec.registry else None
    enabled = {r.id for r in ENABLED}
    for rid in PACKS[pack]:
        if rid not in enabled:
            continue
        assert rid in path.read_text(encoding="utf-8"), f"{rid} is not in {path.name}"
        without = [r for r in ALL if r.id != rid]
        failed = [c.name for c in spec.tests if not run_case(c, without, registry, path.name).ok]
        assert failed, f"{path.name}: every test still passes without rule {rid}"
