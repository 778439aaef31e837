"""The neighbours detector as a registry model (yujing/models/group.py): train, publish,
load and score round trip, and the refusals that name the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from yujing.models import GroupNeighbours, ModelError, ModelKey
from yujing.models.labelled import score_readings
from yujing.models.registry import ModelRegistry
from yujing.models.train import train

KEY = ModelKey.from_text("group-test-key-" + "0" * 32, "test")
HOUR = 3_600_000
STATIONS = ("a", "b", "c", "d")


def readings(rows: int, seed: int) -> pd.DataFrame:
    """Hourly TEMP and WSPM at four stations that share the weather: a daily cycle and a
    slow walk, a per-station offset and gain, independent sensor noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    weather = 5 * np.sin(2 * np.pi * t / 24) + np.cumsum(rng.normal(0, 0.3, rows))
    wind = 3 + np.abs(np.cumsum(rng.normal(0, 0.2, rows))) % 6
    parts = []
    for i, s in enumerate(STATIONS):
        temp = i + (0.9 + 0.1 * i) * weather + rng.normal(0, 0.5, rows)
        wspm = wind * (0.8 + 0.1 * i) + rng.normal(0, 0.3, rows)
        for m, v in (("TEMP", temp), ("WSPM", wspm)):
            parts.append(pd.DataFrame({"ts": t * HOUR, "station": s, "metric": m, "value": v}))
    return pd.concat(parts, ignore_index=True)


def test_the_group_schema_and_screens_follow_the_neighbours_detector() -> None:
    from yujing.models import group, neighbours

    assert group.VIEWS == neighbours.VIEWS and group.SCREENS == neighbours.SCREENS


def test_train_publish_load_score_round_trip(tmp_path) -> None:
    history = readings(4000, 1)
    model = train(history, None, "neighbours", far=0.01).model
    assert isinstance(model, GroupNeighbours)
    assert model.stations == list(STATIONS) and model.metrics == ["TEMP", "WSPM"]
    reg = ModelRegistry(tmp_path, KEY)
    reg.publish("beijing-neighbours", model)
    loaded = reg.load_latest("beijing-neighbours")
    assert isinstance(loaded, GroupNeighbours) and loaded.stations == model.stations

    new = readings(1500, 2)
    new["ts"] += 4000 * HOUR
    step = (new["station"] == "b") & (new["metric"] == "TEMP") & new["ts"].between(
        4800 * HOUR, 4847 * HOUR)
    new.loc[step, "value"] += 6.0  # a step fault of two days at station b
    before = score_readings(model, new)
    after = score_readings(loaded, new)
    pd.testing.assert_frame_equal(before, after)
    assert list(after.columns) == ["ts", "station", "metric", "score", "alarm"]
    assert len(after) == 4 * 1500 and set(after["metric"]) == {"TEMP+WSPM"}
    fault = (after["station"] == "b") & after["ts"].between(4800 * HOUR, 4847 * HOUR)
    assert after.loc[fault, "alarm"].mean() > 0.5
    assert after.loc[~fault, "alarm"].mean() < 0.05


def test_scoring_a_group_with_a_missing_station_is_refused_with_the_fix() -> None:
    model = train(readings(3000, 3), None, "neighbours", far=0.01).model
    new = readings(200, 4)
    with pytest.raises(ModelError, match=r"every station of the group.*none of c: give their "
                                         r"readings"):
        score_readings(model, new[new["station"] != "c"])


def test_training_refusals_name_the_fix() -> None:
    history = readings(3000, 5)
    with pytest.raises(ModelError, match="--far"):
        train(history, None, "neighbours")
    with pytest.raises(ModelError, match="none of e"):
        train(history, None, "neighbours", far=0.01, hyper={"stations": ["a", "b", "e"]})


def test_cli_trains_and_scores_a_group(tmp_path) -> None:
    from typer.testing import CliRunner

    from yujing.cli.app import app

    history = readings(3000, 6)
    history["ts"] = pd.to_datetime(history["ts"], unit="ms", utc=True).dt.strftime(
        "%Y-%m-%dT%H:%M:%S+00:00")
    data, out, scores = tmp_path / "r.csv", tmp_path / "models", tmp_path / "s.csv"
    history.to_csv(data, index=False)
    runner = CliRunner(env={"YUJING_MODELS_KEY": "group-test-key-" + "0" * 32})
    r = runner.invoke(app, ["models", "train", "--data", str(data), "--detector", "neighbours",
                            "--far", "0.01", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "group-neighbours version 0001" in r.output
    r = runner.invoke(app, ["models", "score", "--model", "group-neighbours", "--models", str(out),
                            "--data", str(data), "--out", str(scores), "--quiet"])
    assert r.exit_code == 0, r.output
    scored = pd.read_csv(scores)
    assert len(scored) == 4 * 3000 and set(scored["station"]) == set(STATIONS)
    history[history["station"] != "d"].to_csv(data, index=False)
    r = runner.invoke(app, ["models", "score", "--model", "group-neighbours", "--models", str(out),
                            "--data", str(data), "--out", str(scores), "--quiet"])
    assert r.exit_code == 2 and "none of d" in r.output
