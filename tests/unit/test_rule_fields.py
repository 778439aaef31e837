"""Station field names in rules are checked at load (issue 15 leftovers).

A misspelt field (``station.warning_levl_m``, ``has: [projecton]``,
``default(station.x, 5)``) used to pass every check: the rule then never fired,
or fell back to its default for ever. Against a registry it is refused with the
file, line, key and a did-you-mean; a known field that no station carries is a
warning (the rule is dormant here); without a registry an unknown name is a
warning, since only the registry can tell a typo from a site's own threshold.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from yujing.cli.app import app
from yujing.rules.loader import check_references, field_warnings, load_rules_located
from yujing.stations import Registry, Station
from yujing.yamlsrc import SourceError

runner = CliRunner()

GAUGE = Station(id="G1", name="一号水位站", kind="river_gauge", town="虎门镇",
                thresholds={"warning_level_m": 6.5, "projection": 1, "level_10y_m": 7.2})
POINT = Station(id="W1", name="积水点", kind="waterlogging", town="虎门镇")
REGISTRY = Registry([GAUGE, POINT], "stations.yaml")


def pack(tmp_path: Path, body: str) -> Path:
    """A rules folder with one file: a river rule whose grades/select are ``body``."""
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "river.yaml").write_text(
        "rules:\n"
        "  - id: river-level\n"
        "    name: 河道水位\n"
        "    hazard: flood\n" + body, encoding="utf-8")
    return folder


def line_of(folder: Path, needle: str) -> int:
    lines = (folder / "river.yaml").read_text(encoding="utf-8").splitlines()
    return next(i for i, x in enumerate(lines, 1) if needle in x)


@pytest.mark.parametrize("body, needle, key, fix", [
    ("    select: {kind: river_gauge}\n"
     "    grades:\n"
     "      yellow: last(water_level_m) >= station.warning_levl_m\n",
     "warning_levl_m", "rules[0].grades.yellow", "did you mean 'warning_level_m'?"),
    ("    select:\n"
     "      kind: river_gauge\n"
     "      has: [projecton]\n"
     "    grades:\n"
     "      yellow: eta(water_level_m, station.warning_level_m, 1h) <= 2h\n",
     "projecton", "rules[0].select.has", "did you mean 'projection'?"),
    ("    select: {kind: river_gauge}\n"
     "    grades:\n"
     "      yellow:\n"
     "        when: last(water_level_m) >= default(station.warning_levle_m, 6)\n"
     "        for: 10m\n",
     "warning_levle_m", "rules[0].grades.yellow.when", "did you mean 'warning_level_m'?"),
    ("    select: {kind: river_gauge}\n"
     "    grades:\n"
     "      yellow: last(water_level_m) >= station.warning_level_m\n"
     "    clear: last(water_level_m) < station.warning_level_m - station.hystersis_m\n",
     "hystersis_m", "rules[0].clear", "put it in the thresholds"),
])
def test_a_misspelt_field_is_refused_against_the_registry(tmp_path, body, needle, key, fix):
    folder = pack(tmp_path, body)
    located = load_rules_located(folder)
    problems = check_references(located, REGISTRY)
    assert len(problems) == 1, problems
    [p] = problems
    assert (p.file, p.line, p.key) == (str(folder / "river.yaml"), line_of(folder, needle), key)
    assert needle in p.message and fix in p.message
    assert "river-level" in p.message


def test_the_cli_refuses_it_with_file_line_key_and_fix(tmp_path):
    folder = pack(tmp_path, "    select: {kind: river_gauge, has: [projecton]}\n"
                            "    grades: {yellow: 'last(water_level_m) >= 1'}\n")
    reg = tmp_path / "stations.yaml"
    reg.write_text("stations:\n  - {id: G1, name: 一号, kind: river_gauge,"
                   " thresholds: {projection: 1}}\n", encoding="utf-8")
    r = runner.invoke(app, ["rules", "check", str(folder), "--registry", str(reg)])
    assert r.exit_code == 2, r.output
    assert f"river.yaml:{line_of(folder, 'projecton')}: rules[0].select.has:" in r.output
    assert "did you mean 'projection'?" in r.output


def test_a_sites_own_field_that_a_station_carries_is_accepted(tmp_path):
    folder = pack(tmp_path, "    select: {kind: river_gauge}\n"
                            "    grades: {red: 'last(water_level_m) >= station.level_10y_m'}\n")
    located = load_rules_located(folder)
    assert check_references(located, REGISTRY) == []
    assert field_warnings(located, REGISTRY) == []
    # without the registry nothing can tell it from a typo: a warning, not a refusal
    [w] = field_warnings(located)
    assert w.key == "rules[0].grades.red" and "level_10y_m" in w.message
    assert "--registry" in w.message


def test_without_a_registry_a_typo_is_a_warning_with_a_did_you_mean(tmp_path):
    folder = pack(tmp_path, "    select: {kind: river_gauge}\n"
                            "    grades: {yellow: 'last(water_level_m) >= station.warning_levl_m'}\n")
    located = load_rules_located(folder)   # loads: the name may be a site's own
    [w] = field_warnings(located)
    assert w.line == line_of(folder, "warning_levl_m")
    assert "did you mean 'warning_level_m'?" in w.message


def test_a_known_field_no_station_carries_is_a_warning_not_a_refusal(tmp_path):
    folder = pack(tmp_path, "    select: {kind: waterlogging, has: [projection]}\n"
                            "    grades: {yellow: 'last(waterlogging_depth_m) >= station.depth_yellow_m'}\n")
    located = load_rules_located(folder)
    registry = Registry([POINT])
    assert check_references(located, registry) == []
    warned = field_warnings(located, registry)
    assert [(w.key, w.line) for w in warned] == [
        ("rules[0].select.has", line_of(folder, "has:")),
        ("rules[0].grades.yellow", line_of(folder, "depth_yellow_m"))]
    assert "the rule watches no station here" in warned[0].message
    assert "thresholds.projection" in warned[0].message
    assert "default() always stands in, or the condition never holds" in warned[1].message


def test_a_field_missing_at_the_stations_a_rule_watches_is_said_once_as_an_error(tmp_path):
    folder = pack(tmp_path, "    select: {kind: waterlogging}\n"
                            "    grades: {yellow: 'last(waterlogging_depth_m) >= station.depth_yellow_m'}\n")
    located = load_rules_located(folder)
    [p] = check_references(located, Registry([POINT]))
    assert "station.depth_yellow_m is missing at W1" in p.message
    assert field_warnings(located, Registry([POINT])) == []


def test_the_cli_prints_warnings_and_passes(tmp_path):
    folder = pack(tmp_path, "    select: {kind: river_gauge, has: [projection]}\n"
                            "    grades: {yellow: 'last(water_level_m) >= 1'}\n")
    reg = tmp_path / "stations.yaml"
    reg.write_text("stations:\n  - {id: G1, name: 一号, kind: river_gauge}\n", encoding="utf-8")
    r = runner.invoke(app, ["rules", "check", str(folder), "--registry", str(reg)])
    assert r.exit_code == 0, r.output
    assert "warning: " in r.output and "no station of the registry carries 'projection'" in r.output


def test_count_stations_by_an_unknown_attribute_is_refused_at_load(tmp_path):
    folder = pack(tmp_path, "    grades:\n"
                            "      orange: count_stations(max(water_level_m, 1h) >= 5, 1h, twon) >= 2\n")
    with pytest.raises(SourceError) as err:
        load_rules_located(folder)
    [p] = err.value.problems
    assert p.key == "rules[0].grades" and "'twon'" in p.message and "did you mean 'town'?" in p.message


def test_the_shipped_packs_name_only_known_fields():
    root = Path(__file__).resolve().parents[2]
    assert [str(w) for w in field_warnings(load_rules_located(root / "rules"))] == []
