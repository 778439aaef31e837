"""What README "Deploying" ships: the systemd units under deploy/systemd pass
`systemd-analyze verify`, every command line in them is one the CLI accepts, and the example
configs pass `yujing config check` beside the repo's rule packs and registry."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.kafka import in_ci

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
INSTALLED = "/opt/yujing/bin/yujing"     # where README "Deploying" installs the venv
YUJING = str(Path(sys.executable).with_name("yujing"))
SECRETS = {"MQTT_PASSWORD": "pw", "NOTIFY_DUTY_ROOM": "json://127.0.0.1:9/duty",
           "YUJING_LINK_SECRET": "s" * 32, "INFLUX_TOKEN": "t"}


def commands(unit: Path) -> list[list[str]]:
    """The argv of every ExecStart*/ExecStop* line of a unit."""
    out = []
    for line in unit.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.startswith(("ExecStart", "ExecStop")) and value:
            out.append(shlex.split(value.lstrip("-@+!")))
    return out


def test_every_unit_runs_the_installed_yujing():
    assert {u.name for u in UNITS} >= {"yujing.service", "yujing-gateway.service",
                                        "yujing-worker.service", "yujing-sink.service",
                                        "yujing-watchdog.service"}
    for unit in UNITS:
        argvs = commands(unit)
        assert argvs, f"{unit.name}: no ExecStart"
        assert all(a[0] == INSTALLED for a in argvs), f"{unit.name}: {argvs}"


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_command_lines_are_accepted_by_the_cli(unit):
    """`--help` after the real arguments: click rejects an unknown command or option (exit 2)
    before it prints the help, so a renamed flag in the CLI fails here."""
    for argv in commands(unit):
        res = subprocess.run([YUJING, *argv[1:], "--help"], capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 0, f"{unit.name}: {shlex.join(argv)}: {res.stderr[-800:]}"


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_passes_systemd_analyze_verify(unit, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if in_ci():
            pytest.fail("CI runs on Debian with systemd-analyze; it is missing", pytrace=False)
        pytest.skip("systemd-analyze is not installed here")
    # verify checks that ExecStart's program exists: point it at this venv's yujing
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(INSTALLED, YUJING))
    res = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                         timeout=60)
    # verify also reports unrelated units of the host it runs on; only ours must be clean
    ours = [line for line in (res.stdout + res.stderr).splitlines() if unit.name in line]
    assert res.returncode == 0 and not ours, res.stdout + res.stderr


def test_systemd_analyze_verify_would_catch_a_broken_unit(tmp_path):
    """The check above can fail: a unit with a relative ExecStart is refused."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    bad = tmp_path / "broken.service"
    bad.write_text("[Service]\nExecStart=yujing run\nRestart=sometimes\n")
    res = subprocess.run([analyze, "verify", str(bad)], capture_output=True, text=True,
                         timeout=60)
    assert "broken.service" in res.stdout + res.stderr, res.stdout + res.stderr


@pytest.mark.parametrize("name", ["config.server.yaml", "config.cluster.yaml"])
def test_example_config_passes_check(name, tmp_path):
    """Copied to /etc/yujing the way README "Deploying" says: rules and registry beside it."""
    shutil.copy(ROOT / "deploy" / name, tmp_path / "config.yaml")
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    for f in ("stations.yaml", "roster.yaml", "roster-shifts.csv"):
        shutil.copy(ROOT / f, tmp_path / f)
    (tmp_path / "tokens.yaml").write_text("{}\n")
    res = subprocess.run([YUJING, "config", "check", str(tmp_path / "config.yaml")],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, **SECRETS})
    assert res.returncode == 0, res.stdout + res.stderr
    assert ": ok (" in res.stdout
