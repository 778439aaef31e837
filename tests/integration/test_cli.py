"""The CLI as an operator runs it: config check passes and fails with located errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def yujing(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yujing", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_config_check_passes_on_shipped_config():
    res = yujing("config", "check", "config.yaml")
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout


def test_config_check_names_misspelt_key_and_line(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("kafka:\n  partitions: 2\nmqtt:\n  qos: 1\n  topc: yujing/#\n")
    res = yujing("config", "check", str(bad))
    assert res.returncode == 2
    assert f"{bad}:5: mqtt.topc: unknown key: did you mean 'topic'?" in res.stderr


def test_config_check_missing_file(tmp_path):
    res = yujing("config", "check", str(tmp_path / "nope.yaml"))
    assert res.returncode == 2
    assert "file not found" in res.stderr


def test_rules_check_reports_every_error_with_location(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "rules:\n  - id: r1\n    name: x\n    hazard: rain\n    metric: rain_mm\n"
        "    grades:\n      orange: {agg: summ, window: 3h, value: 50}\n"
        "    clear: {agg: sum, window: 3x, op: '<', value: 10}\n")
    res = yujing("rules", "check", str(tmp_path))
    assert res.returncode == 2
    assert "a.yaml:7: rules[0].grades.orange.agg" in res.stderr
    assert "a.yaml:8: rules[0].clear.window" in res.stderr
    assert "bad duration '3x'" in res.stderr


def test_rules_check_against_the_registry_catches_typos(tmp_path):
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - id: rain-3h\n    name: x\n    hazard: rain\n"
        "    select: {town: 虎门, kind: rain_guage}\n"
        "    grades:\n      orange: \"sum(rain_mm, 3h) >= 50\"\n", encoding="utf-8")
    res = yujing("rules", "check", str(tmp_path), "--registry", str(ROOT / "stations.yaml"))
    assert res.returncode == 2
    assert "r.yaml:5: rules[0].select.kind: rule rain-3h: unknown station kind 'rain_guage': " \
           "did you mean 'rain_gauge'?" in res.stderr
    assert "unknown station town '虎门': did you mean '虎门镇'?" in res.stderr


def test_rules_check_reports_an_expression_error_with_line_and_column(tmp_path):
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - id: r\n    name: x\n    hazard: rain\n    grades:\n"
        "      red: \"summ(rain_mm, 3h) >= 100\"\n", encoding="utf-8")
    res = yujing("rules", "check", str(tmp_path))
    assert res.returncode == 2
    assert "r.yaml:6: rules[0].grades.red: col 1: unknown function 'summ': did you mean sum()?" \
        in res.stderr


def test_rules_test_prints_each_result_and_a_summary(tmp_path):
    import shutil
    shutil.copy(ROOT / "rules" / "rainstorm.yaml", tmp_path)
    (tmp_path / "rainstorm.test.yaml").write_text(
        "tests:\n  - name: good\n    series:\n"
        "      - {station: g, metric: rain_mm, values: \"10x12\"}\n"
        "    expect:\n      - at: 1h\n        active: [{station: g, rule: rainstorm-guangdong, grade: red}]\n"
        "  - name: wrong on purpose\n    series:\n"
        "      - {station: g, metric: rain_mm, values: \"1x12\"}\n"
        "    expect:\n      - at: 1h\n"
        "        active: [{station: g, rule: rainstorm-guangdong, grade: red}]\n",
        encoding="utf-8")
    res = yujing("rules", "test", str(tmp_path))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "PASS  rainstorm.test.yaml: good" in res.stdout
    assert "FAIL  rainstorm.test.yaml: wrong on purpose" in res.stdout
    assert "expected active g/rainstorm-guangdong=red, got nothing" in res.stdout
    assert res.stdout.strip().splitlines()[-1] == "1 passed, 1 failed"
