"""The commented ``cap:`` example in config.yaml is a working config (issue 15 leftovers).

An operator turns official signals on by uncommenting the example; if the example
drifted from :mod:`yujing.alerts.cap_settings` they would meet a refusal instead. So
the test uncomments it exactly as a person would (drop the leading ``# ``) and runs
``yujing config check`` on the result.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from yujing.cli.app import app
from yujing.config import load_config
from yujing.durations import Duration
from yujing.stations import load_registry

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def uncommented_cap(text: str) -> str:
    """config.yaml with its ``# cap:`` block (up to the next blank line) uncommented."""
    lines = text.splitlines()
    start = lines.index("# cap:")
    end = lines.index("", start)
    assert end - start > 3, "the cap: example has its keys"
    return "\n".join(lines[:start] + [x[2:] for x in lines[start:end]] + lines[end:]) + "\n"


def shipped_with_cap(tmp_path: Path, edit=lambda s: s) -> Path:
    text = edit(uncommented_cap((REPO / "config.yaml").read_text(encoding="utf-8")))
    # the copy lives elsewhere: point its relative files back at the repository's own
    text = text.replace("rules_dir: rules", f"rules_dir: {REPO / 'rules'}")
    text = text.replace("registry: stations.yaml", f"registry: {REPO / 'stations.yaml'}")
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_cap_example_uncommented_passes_config_check(tmp_path: Path):
    path = shipped_with_cap(tmp_path)
    r = runner.invoke(app, ["config", "check", str(path)])
    assert r.exit_code == 0, r.output
    cap = load_config(path).cap
    assert [f.url for f in cap.feeds] == ["https://example.gov.cn/cap/atom.xml"]
    assert cap.feeds[0].interval == Duration("2m") and cap.feeds[0].timeout_s == 20
    assert cap.geocodes == {"441900": ["*"], "441900113": ["虎门镇"]}
    assert cap.max_bytes == 1048576 and cap.state_file is not None


def test_the_example_names_towns_of_the_shipped_registry():
    towns = {s.town for s in load_registry(REPO / "stations.yaml").stations.values()}
    text = uncommented_cap((REPO / "config.yaml").read_text(encoding="utf-8"))
    named = {t for line in text.splitlines() if line.strip().startswith('"4419')
             for t in line.split("[", 1)[1].rstrip("]").replace('"', "").split(", ")}
    assert named - {"*"} and named - {"*"} <= towns


def test_a_misspelt_key_in_the_uncommented_example_is_refused_with_its_line(tmp_path: Path):
    path = shipped_with_cap(tmp_path, lambda s: s.replace("      interval: 2m", "      intervall: 2m"))
    line = path.read_text(encoding="utf-8").splitlines().index(
        next(x for x in path.read_text(encoding="utf-8").splitlines() if "intervall" in x)) + 1
    r = runner.invoke(app, ["config", "check", str(path)])
    assert r.exit_code == 2
    assert f"config.yaml:{line}: cap.feeds[0].intervall:" in r.output
    assert "interval" in r.output.split("intervall:", 1)[1]


@pytest.mark.parametrize("old, new, key, fix", [
    ('"441900113": [虎门镇]', '"441900113": [虎门]', "cap.geocodes.441900113", "did you mean '虎门镇'?"),
    ("station_kinds: [rain_gauge,", "station_kinds: [rain_guage,", "cap.station_kinds",
     "did you mean 'rain_gauge'?"),
])
def test_a_town_or_kind_no_station_has_is_refused_against_the_registry(tmp_path, old, new, key, fix):
    """A geocode mapped to a misspelt town would reach no station: the area mapping drops
    names the registry does not know, so config check says so."""
    path = shipped_with_cap(tmp_path, lambda s: s.replace(old, new))
    lines = path.read_text(encoding="utf-8").splitlines()
    line = next(i for i, x in enumerate(lines, 1) if new.split(":")[-1].strip(" [,") in x)
    r = runner.invoke(app, ["config", "check", str(path)])
    assert r.exit_code == 2, r.output
    assert f"config.yaml:{line}: {key}:" in r.output and fix in r.output
