"""``models train --far`` on epoch-ms readings, ``models score`` and ``models evaluate --model``
on tiny CSVs (labels as points and as windows)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from yujing.cli.app import app
from yujing.models.labelled import judge, read_labels

KEY_TEXT = "cli-score-test-key-" + "0" * 32
STEP = 600_000
T0 = 1_735_660_800_000
FAULT = (1500, 1540)  # rows of the test part where the ΔP sensor of s1 steps up


def readings(n: int, seed: int, start: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = start + np.arange(n, dtype=np.int64) * STEP
    parts = []
    for st in ("s1", "s2"):
        load = np.sin(np.arange(n) / 40.0) + rng.normal(0, 0.1, n)
        for metric, (a, b) in {"temp": (20, 5), "dp": (1, 0.3), "flow": (100, 10)}.items():
            parts.append(pd.DataFrame({"ts": ts, "station": st, "metric": metric,
                                       "value": a + b * load + rng.normal(0, 0.05 * b, n)}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    train = readings(2000, 1, T0)
    train.to_csv(d / "train.csv", index=False)  # epoch ms timestamps
    test = readings(2000, 2, T0 + 2000 * STEP)
    a, b = FAULT
    sel = (test["station"] == "s1") & (test["metric"] == "dp")
    idx = test.index[sel][a:b]
    test.loc[idx, "value"] += 1.5
    test["ts"] = pd.to_datetime(test["ts"], unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    test.to_csv(d / "test.csv", index=False)  # ISO 8601
    start, end = T0 + (2000 + a) * STEP, T0 + (2000 + b - 1) * STEP
    pd.DataFrame({"start": [start], "end": [end], "station": ["s1"], "metric": ["dp"]}).to_csv(
        d / "windows.csv", index=False)
    pts = pd.DataFrame({"ts": T0 + (2000 + np.arange(a - 5, b + 5)) * STEP, "station": "s1",
                        "metric": "dp", "label": [0] * 5 + [1] * (b - a) + [0] * 5})
    pts.to_csv(d / "points.csv", index=False)
    runner = CliRunner(env={"YUJING_MODELS_KEY": KEY_TEXT})
    for extra in (["--detector", "pca"], ["--detector", "spike", "--metric", "dp"]):
        r = runner.invoke(app, ["models", "train", "--data", str(d / "train.csv"), "--out",
                                str(d / "reg"), "--far", "0.005", "--quiet", *extra])
        assert r.exit_code == 0, r.output
        assert "alarm threshold" in r.output
    return d, runner


def test_train_reads_epoch_ms_and_stores_the_signed_threshold(files):
    d, _ = files
    meta = json.loads((d / "reg" / "station-pca" / "0001" / "meta.json").read_text())
    assert meta["metrics"] == ["dp", "flow", "temp"]
    assert meta["training"]["start_ms"] == T0
    assert meta["alarm"]["far"] == 0.005 and 0 < meta["alarm"]["threshold"] < 1
    assert "signature" in meta


@pytest.mark.parametrize("name,metric", [("station-pca", "dp+flow+temp"), ("dp-spike", "dp")])
def test_score_writes_a_score_and_an_alarm_per_row(files, name, metric):
    d, runner = files
    out = d / f"{name}.csv"
    r = runner.invoke(app, ["models", "score", "--model", name, "--models", str(d / "reg"),
                            "--data", str(d / "test.csv"), "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    got = pd.read_csv(out)
    assert list(got.columns) == ["ts", "station", "metric", "score", "alarm"]
    assert len(got) == 4000 and set(got["metric"]) == {metric}
    s1 = got[got["station"] == "s1"].reset_index(drop=True)
    a, b = FAULT
    assert s1["alarm"][a:b].mean() > 0.5  # the step is caught
    assert got["alarm"].mean() < 0.05
    assert s1["ts"][0] == "2025-01-14T13:20:00.000Z"


@pytest.mark.parametrize("labels", ["windows.csv", "points.csv"])
def test_evaluate_reports_f1_false_and_missed_alarms_and_nab(files, labels):
    d, runner = files
    out = d / f"eval-{labels}"
    r = runner.invoke(app, ["models", "evaluate", "--model", "station-pca", "--models",
                            str(d / "reg"), "--data", str(d / "test.csv"), "--labels",
                            str(d / labels), "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    row = pd.read_csv(out).iloc[0]
    assert row["positives"] == FAULT[1] - FAULT[0]
    assert row["f1"] > 0.5 and row["false_alarm_rate"] < 0.05 and row["missed_alarm_rate"] < 0.5
    assert row["auc"] > 0.9 and np.isfinite(row["nab_at_alarms"])
    for k in ("false alarm rate", "missed alarm rate", "nab best threshold"):
        assert k in r.output


def test_judge_counts_by_hand():
    scored = pd.DataFrame({"ts": np.arange(10) * 1000, "station": "s", "metric": "m",
                           "score": np.linspace(0, 1, 10)})
    labels = pd.DataFrame({"station": ["s"], "metric": [""], "start": [7000], "end": [9000]})
    alarm = np.zeros(10, dtype=bool)
    alarm[[2, 8, 9]] = True
    j = judge(scored, labels, alarm)
    assert (j.tp, j.fp, j.fn, j.positives) == (2, 1, 1, 3)
    assert j.far == pytest.approx(1 / 7) and j.missed == pytest.approx(1 / 3)
    assert j.f1 == pytest.approx(2 / 3) and j.auc == pytest.approx(1.0)


def test_bad_labels_name_the_formats(tmp_path):
    from yujing.models import ModelError

    bad = tmp_path / "l.csv"
    bad.write_text("when,where\n1,2\n")
    with pytest.raises(ModelError, match="start,end,station"):
        read_labels(bad)


def test_readings_in_epoch_ms_are_read_as_utc_and_a_bad_one_is_named(tmp_path):
    from yujing.readings_csv import BacktestInputError, read_readings

    good = tmp_path / "ms.csv"
    good.write_text(f"ts,station,metric,value\n{T0 + STEP},s,m,2\n{T0},s,m,1\n")
    r = read_readings(good)
    assert r.ts.tolist() == [T0, T0 + STEP] and r.val.tolist() == [1.0, 2.0]
    bad = tmp_path / "bad.csv"
    bad.write_text(f"ts,station,metric,value\n{T0},s,m,1\n17356608x0000,s,m,2\n")
    with pytest.raises(BacktestInputError, match=r"bad.csv:3: ts '17356608x0000' is not an ISO 8601"):
        read_readings(bad)


def test_train_says_which_option_each_kind_of_model_takes(tmp_path):
    runner = CliRunner(env={"YUJING_MODELS_KEY": KEY_TEXT})
    r = runner.invoke(app, ["models", "train", "--data", str(tmp_path / "r.csv"), "--out",
                            str(tmp_path / "reg"), "--detector", "spike", "--metrics", "a,b"])
    assert r.exit_code == 2 and "--metric" in r.output and "station models mcd, pca" in r.output
