"""Versioned registry, hot reload, training exclusions and the models CLI on tiny data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from yujing.cli.app import app
from yujing.models import ModelError, ModelKey, make_detector
from yujing.models.registry import ModelRegistry
from yujing.models.scoring import score_series
from yujing.models.train import drop_periods, exclusion_periods, train

STEP = 300_000
T0 = 1_735_660_800_000
KEY_TEXT = "registry-test-key-" + "0" * 32
KEY = ModelKey.from_text(KEY_TEXT, "test")


def frame(n=600, seed=0, station="g1", metric="water_level_m", level=1.0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"ts": T0 + np.arange(n, dtype=np.int64) * STEP, "station": station,
                         "metric": metric, "value": level + rng.normal(0, 0.05, n)})


def test_publish_versions_and_load_latest(tmp_path):
    reg = ModelRegistry(tmp_path, KEY)
    a = make_detector("spike").fit(frame(seed=1))
    b = make_detector("spike").fit(frame(seed=2, level=5.0))
    assert reg.publish("wl-spike", a).name == "0001"
    assert reg.publish("wl-spike", b, {"data": "x.csv"}).name == "0002"
    assert reg.names() == ["wl-spike"] and reg.versions("wl-spike") == ["0001", "0002"]
    latest = reg.load_latest("wl-spike")
    assert latest.params["*"]["floor"] == b.params["*"]["floor"]
    assert reg.meta("wl-spike")["registry"] == {"name": "wl-spike", "version": "0002",
                                                "data": "x.csv"}
    assert not list(tmp_path.glob("wl-spike/.new-*"))  # no temporary folder left behind


def test_reload_if_changed_picks_up_a_new_version_and_skips_a_broken_one(tmp_path):
    reg = ModelRegistry(tmp_path, KEY)
    reg.publish("m", make_detector("baseline").fit(frame(seed=1)))
    worker = ModelRegistry(tmp_path, KEY)
    first = worker.load_latest("m")
    assert worker.reload_if_changed() == {}
    reg.publish("m", make_detector("baseline").fit(frame(seed=2, level=3.0)))
    changed = worker.reload_if_changed()
    assert set(changed) == {"m"} and changed["m"] is not first
    assert worker.loaded["m"].version == "0002"
    bad = reg.publish("m", make_detector("baseline").fit(frame(seed=3)))
    (bad / "model.skops").write_bytes(b"tampered")
    assert worker.reload_if_changed() == {}  # logged, last good model kept
    assert worker.loaded["m"].version == "0002"
    reg.publish("m", make_detector("baseline").fit(frame(seed=4)))
    assert set(worker.reload_if_changed("m")) == {"m"}
    assert worker.loaded["m"].version == "0004"


def test_registry_errors_name_the_fix(tmp_path):
    reg = ModelRegistry(tmp_path, KEY)
    with pytest.raises(ModelError, match="yujing models train"):
        reg.load_latest("nothing-here")
    with pytest.raises(ModelError, match="use 1-64 letters"):
        reg.publish("../escape", make_detector("baseline").fit(frame()))


def test_training_leaves_out_hazard_periods_unless_asked(tmp_path):
    readings = pd.concat([frame(station="g1"), frame(station="g2", seed=5)])
    periods_csv = tmp_path / "periods.csv"
    periods_csv.write_text("station,start,end\n"
                           "g1,2025-01-01T08:00:00+08:00,2025-01-01T10:00:00+08:00\n")
    periods = exclusion_periods(periods_csv)
    kept, dropped = drop_periods(readings, periods)
    assert dropped == 25  # 00:00..02:00 UTC at 5-minute steps, both ends inclusive
    assert len(kept) == len(readings) - 25
    res = train(readings, "water_level_m", "baseline", exclusions=periods)
    assert res.excluded == 25 and res.model.meta["training"]["rows"] == len(readings) - 25
    res = train(readings, "water_level_m", "baseline", exclusions=periods, include_hazards=True)
    assert res.excluded == 0 and res.model.meta["training"]["include_hazards"]
    with pytest.raises(ModelError, match="the data has: water_level_m"):
        train(readings, "rain_mm")


def test_exclusions_from_a_backtest_transitions_csv(tmp_path):
    path = tmp_path / "transitions.csv"
    path.write_text(
        "ts,station,rule,kind,grade,previous,value,window,reason,incident\n"
        "2025-01-01T08:00:00+08:00,g1,flood,pending,,,1,,r,\n"
        "2025-01-01T08:10:00+08:00,g1,flood,raised,yellow,,1,,r,i1\n"
        "2025-01-01T09:00:00+08:00,g1,flood,upgraded,orange,yellow,1,,r,i1\n"
        "2025-01-01T11:00:00+08:00,g1,flood,cleared,,orange,1,,r,i1\n"
        "2025-01-01T12:00:00+08:00,g2,flood,raised,blue,,1,,r,i2\n")
    p = exclusion_periods(path).sort_values("station").reset_index(drop=True)
    assert p["station"].tolist() == ["g1", "g2"]
    assert p.loc[0, "end"] - p.loc[0, "start"] == 170 * 60_000
    assert p.loc[1, "end"] == np.iinfo(np.int64).max  # still open: to the end of time
    with pytest.raises(ModelError, match="expected columns"):
        bad = tmp_path / "bad.csv"
        bad.write_text("a,b\n1,2\n")
        exclusion_periods(bad)


def _readings_csv(path, n=400):
    rows = []
    for st, seed in (("g1", 1), ("g2", 2)):
        f = frame(n, seed, st)
        f["ts"] = pd.to_datetime(f["ts"], unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        rows.append(f[["ts", "station", "metric", "value"]])
    pd.concat(rows).to_csv(path, index=False)


def test_cli_train_then_list_then_score(tmp_path):
    data = tmp_path / "readings.csv"
    _readings_csv(data)
    out = tmp_path / "models"
    runner = CliRunner(env={"YUJING_MODELS_KEY": KEY_TEXT})
    r = runner.invoke(app, ["models", "train", "--data", str(data), "--metric", "water_level_m",
                            "--detector", "spike", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "water-level-m-spike version 0001" in r.output
    r = runner.invoke(app, ["models", "list", str(out)])
    assert r.exit_code == 0 and "water-level-m-spike" in r.output
    model = ModelRegistry(out, KEY).load_latest("water-level-m-spike")
    s = score_series(model, T0 + np.arange(50) * STEP, np.ones(50), station="g1")
    assert np.isfinite(s).all()
    r = runner.invoke(app, ["models", "train", "--data", str(data), "--metric", "rain_mm",
                            "--out", str(out), "--quiet"])
    assert r.exit_code == 2 and "rain_mm" in r.output


def test_cli_evaluate_on_a_tiny_nab_corpus(tmp_path):
    rng = np.random.default_rng(0)
    labels = {}
    for cat, k in (("catA", 0), ("catA", 1), ("catB", 2)):
        n = 800
        ts = pd.date_range("2024-01-01", periods=n, freq="5min")
        v = 10 + rng.normal(0, 0.5, n)
        v[500:] += 8  # a level shift inside the window
        (tmp_path / cat).mkdir(exist_ok=True)
        pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": v}).to_csv(
            tmp_path / cat / f"s{k}.csv", index=False)
        labels[f"{cat}/s{k}.csv"] = [[str(ts[480]) + ".000000", str(ts[540]) + ".000000"]]
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    csv = tmp_path / "rows.csv"
    r = CliRunner().invoke(app, ["models", "evaluate", "--data", str(tmp_path), "--labels",
                                 str(tmp_path / "labels.json"), "--detector", "spike",
                                 "--detector", "baseline", "--out", str(csv), "--quiet"])
    assert r.exit_code == 0, r.output
    rows = pd.read_csv(csv)
    total = rows[(rows.level == "total") & (rows.profile == "standard")
                 & (rows.detector == "spike")].iloc[0]
    assert total.found == 3 and total.recall == 1.0
    assert total.normalised > 50
    assert set(rows.level) == {"file", "category", "total"}
    assert {"max(spike,baseline)"} <= set(rows.detector)
    assert "reward_low_FN_rate" in r.output


def test_cli_trains_and_evaluates_the_ensemble(tmp_path):
    data = tmp_path / "readings.csv"
    _readings_csv(data)
    out = tmp_path / "models"
    runner = CliRunner(env={"YUJING_MODELS_KEY": KEY_TEXT})
    r = runner.invoke(app, ["models", "train", "--data", str(data), "--metric", "water_level_m",
                            "--detector", "ensemble", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    model = ModelRegistry(out, KEY).load_latest("water-level-m-ensemble")
    assert model.kind == "ensemble" and model.alarm_style
    assert set(model.params["g1"]) == {"baseline", "spike", "iforest"}
    s = score_series(model, T0 + np.arange(50) * STEP, np.ones(50), station="g1")
    assert np.isfinite(s).all()
    # evaluate: the ensemble filters its members itself; no max(...) row for one single kind
    rng = np.random.default_rng(1)
    ts = pd.date_range("2024-01-01", periods=800, freq="5min")
    v = 10 + rng.normal(0, 0.5, 800)
    v[500:] += 8
    (tmp_path / "nab" / "cat").mkdir(parents=True)
    pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": v}).to_csv(
        tmp_path / "nab" / "cat" / "s.csv", index=False)
    (tmp_path / "labels.json").write_text(json.dumps(
        {"cat/s.csv": [[str(ts[480]) + ".000000", str(ts[540]) + ".000000"]]}))
    csv = tmp_path / "rows.csv"
    r = runner.invoke(app, ["models", "evaluate", "--data", str(tmp_path / "nab"), "--labels",
                            str(tmp_path / "labels.json"), "--detector", "ensemble",
                            "--detector", "spike", "--out", str(csv), "--quiet"])
    assert r.exit_code == 0, r.output
    rows = pd.read_csv(csv)
    assert set(rows.detector) == {"ensemble", "spike"}
    total = rows[(rows.level == "total") & (rows.profile == "standard")
                 & (rows.detector == "ensemble")].iloc[0]
    assert total.found == 1 and total.false_alarms == 0 and total.normalised > 50
