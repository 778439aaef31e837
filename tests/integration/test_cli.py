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
