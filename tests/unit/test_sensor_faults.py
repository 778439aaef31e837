"""The sensor-faults kind (yujing/models/sensor_faults.py): trained, signed, loaded and
scored like neighbours; streamed in any chunking to the one pass's numbers; the engine's
rule over it; its refusals."""

from __future__ import annotations

import msgspec
import numpy as np
import pandas as pd
import pytest

from yujing.models import GROUP_KINDS, ModelError, ModelKey, SensorFaults
from yujing.models.group_stream import GroupScorer
from yujing.models.labelled import score_readings
from yujing.models.registry import ModelRegistry
from yujing.models.stream import StreamScorer
from yujing.models.stuck import run_lengths
from yujing.models.train import train

from .test_group_stream import as_series, at, engine_for, feed, one_pass, transitions
from .test_model_group import HOUR, STATIONS

KEY = ModelKey.from_text("sensor-faults-test-key-" + "0" * 32, "test")
TRAIN_ROWS, PROBE_ROWS = 3000, 360
STEP = (3100, 3140)  # station b's TEMP 4 degrees high
STUCK = (3250, 3290)  # station c's DEWP stuck at its first value


def readings(rows: int, seed: int, start: int = 0) -> pd.DataFrame:
    """Hourly TEMP, DEWP, WSPM and PRES (to 0.1 hPa) at four stations sharing the weather:
    a daily cycle and slow walks, per-station offsets and gains, sensor noise; the dew
    point stays a few degrees below the temperature."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    weather = 5 * np.sin(2 * np.pi * t / 24) + np.cumsum(rng.normal(0, 0.3, rows))
    wind = 3 + np.abs(np.cumsum(rng.normal(0, 0.2, rows))) % 6
    pres = 1010 + np.cumsum(rng.normal(0, 0.3, rows))
    parts = []
    for i, s in enumerate(STATIONS):
        gain = 0.9 + 0.1 * i
        for m, v in (("TEMP", i + gain * weather + rng.normal(0, 0.5, rows)),
                     ("DEWP", i - 5 + gain * weather + rng.normal(0, 0.6, rows)),
                     ("WSPM", wind * gain + rng.normal(0, 0.3, rows)),
                     ("PRES", np.round(pres - 3 * i + rng.normal(0, 0.3, rows), 1))):
            parts.append(pd.DataFrame({"ts": at(start + t), "station": s, "metric": m,
                                       "value": v}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def fitted():
    return train(readings(TRAIN_ROWS, 1), None, "sensor-faults", far=0.01).model


@pytest.fixture(scope="module")
def model(tmp_path_factory, fitted):
    """The model published and loaded back (signed: it has a sha256, as in a worker)."""
    reg = ModelRegistry(tmp_path_factory.mktemp("models"), KEY)
    reg.publish("sf", fitted)
    return reg.load_latest("sf")


@pytest.fixture(scope="module")
def probe() -> pd.DataFrame:
    new = readings(PROBE_ROWS, 2, start=TRAIN_ROWS)
    step = (new["station"] == "b") & (new["metric"] == "TEMP") & new["ts"].between(
        at(STEP[0]), at(STEP[1]))
    new.loc[step, "value"] += 4.0
    stuck = (new["station"] == "c") & (new["metric"] == "DEWP") & new["ts"].between(
        at(STUCK[0]), at(STUCK[1]))
    new.loc[stuck, "value"] = new.loc[stuck, "value"].iloc[0]
    return new.sort_values(["ts", "station", "metric"], kind="stable", ignore_index=True)


def chunked(model, values: dict, sizes) -> np.ndarray:
    state, out, a = model.new_group_state(), [], 0
    n = next(iter(values.values())).shape[0]
    for size in sizes:
        if a >= n:
            break
        out.append(model.score_rows({m: v[a:a + size] for m, v in values.items()}, state))
        a += size
    out.append(model.score_rows({m: v[a:] for m, v in values.items()}, state))
    return np.vstack(out)


def test_the_kind_is_registered_and_holds_the_bench_composition(fitted) -> None:
    assert GROUP_KINDS["sensor-faults"] is SensorFaults
    assert fitted.parts == ["neighbours", "stuck", "saturation", "local.size.ends",
                            "local.steps.ends"]
    assert fitted.meta["alarm"]["threshold"] == 0.5
    assert fitted.params["alarm"]["rules"] == [[4, 0.0002, 0.1, 3]]


def test_chunks_of_any_size_score_as_one_pass_to_the_bit(model, probe) -> None:
    _, values = model._aligned(probe, "scoring")
    whole = model.score_rows(values, model.new_group_state())
    assert whole.shape == (PROBE_ROWS, 4) and np.isfinite(whole).all()
    rng = np.random.default_rng(0)
    for sizes in ([1] * 120, [7] * 60, rng.integers(1, 60, 40).tolist(), [2, 1, 300]):
        assert np.array_equal(chunked(model, values, sizes), whole), sizes


def test_the_faults_alarm_and_the_clean_rows_keep_near_the_rate(model, probe) -> None:
    rows = score_readings(model, probe)
    assert list(rows.columns) == ["ts", "station", "metric", "score", "alarm"]
    assert (rows["alarm"] == (rows["score"] > 0.5)).all()
    hours = (rows["ts"] - at(0)) // HOUR
    step = rows[(rows["station"] == "b") & hours.between(STEP[0] + 2, STEP[1])]
    stuck = rows[(rows["station"] == "c") & hours.between(STUCK[0] + 12, STUCK[1])]
    assert step["alarm"].mean() > 0.5 and stuck["alarm"].mean() > 0.5
    clean = ~(((rows["station"] == "b") & hours.between(STEP[0], STEP[1] + 24))
              | ((rows["station"] == "c") & hours.between(STUCK[0], STUCK[1] + 24)))
    assert rows.loc[clean, "alarm"].mean() < 0.05


def test_stuck_runs_resume_across_calls_as_in_one_pass() -> None:
    from yujing.models.fault_parts import runs_from

    rng = np.random.default_rng(3)
    v = np.round(rng.normal(0, 1, (200, 3)), 0)
    v[rng.random(v.shape) < 0.2] = np.nan
    last, run, out = np.full(3, np.nan), np.zeros(3), []
    for a in range(0, 200, 9):
        out.append(runs_from(v[a:a + 9], last, run))
    assert np.array_equal(np.vstack(out), run_lengths(v), equal_nan=True)


def test_save_and_load_keep_the_scores(fitted, model, probe) -> None:
    assert isinstance(model, SensorFaults) and model.meta.get("sha256")
    assert model.latch == fitted.latch and model.stations == fitted.stations
    pd.testing.assert_frame_equal(score_readings(fitted, probe), score_readings(model, probe))


def test_a_missing_station_or_metric_is_refused_with_the_fix(model, probe) -> None:
    with pytest.raises(ModelError, match=r"sensor-faults: scoring needs the readings of every "
                                         r"station.*none of c.*--stations"):
        model.score_group(probe[probe["station"] != "c"])
    with pytest.raises(ModelError, match="sensor-faults: no readings of DEWP to scoring"):
        model.score_group(probe[probe["metric"] != "DEWP"])
    with pytest.raises(ModelError, match="sensor-faults: latch 'x:1'"):
        SensorFaults(latch="x:1")


def test_without_dew_point_the_saturation_part_is_left_out() -> None:
    history = readings(TRAIN_ROWS, 1)
    m = train(history[history["metric"] != "DEWP"], None, "sensor-faults", far=0.01).model
    assert "saturation" not in m.parts and m.params["alarm"]["rules"][0][0] == 3


def test_the_workers_scorer_scores_hour_by_hour_as_one_pass(model, probe) -> None:
    scorer, got = GroupScorer(), {}
    for h in range(TRAIN_ROWS, TRAIN_ROWS + PROBE_ROWS):
        part = probe[probe["ts"].between(at(h - 3), at(h))]
        for station, (t, s) in scorer.update(model, as_series(part)).items():
            got.update(zip(zip([station] * t.size, t.tolist()), s.tolist()))
    want = one_pass(model, probe)
    assert set(got) == set(want) and [got[k] for k in want] == list(want.values())


def test_the_checkpoint_resumes_every_parts_state(model, probe) -> None:
    mid = at(TRAIN_ROWS + 200)
    first, rest = probe[probe["ts"] < mid], probe[probe["ts"] >= mid - 3 * HOUR]
    before, again, got = StreamScorer(), StreamScorer(), {}
    before.group(model, as_series(first))
    again.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(before.snapshot())))
    for station, (t, s) in again.group(model, as_series(rest)).items():
        got.update(zip(zip([station] * t.size, t.tolist()), s.tolist()))
    want = {k: v for k, v in one_pass(model, probe).items() if k[1] >= mid}
    assert set(got) == set(want) and all(got[k] == v for k, v in want.items())
    assert again.groups.scored == 4 * (PROBE_ROWS - 200)


def test_a_rule_over_it_raises_and_clears_where_the_one_pass_crosses(model, probe) -> None:
    engine, found = engine_for(model), []
    for h in range(TRAIN_ROWS, TRAIN_ROWS + PROBE_ROWS):
        found += feed(engine, probe[probe["ts"] == at(h)])
    got = [(f.station, f.ts, f.clear) for f in found]
    assert got == transitions(model, probe)
    assert any(s == "b" and not clear and at(STEP[0]) <= t <= at(STEP[1])
               for s, t, clear in got)


def test_rules_check_accepts_a_rule_over_it(tmp_path, fitted) -> None:
    from typer.testing import CliRunner

    from yujing.cli.app import app
    from yujing.models.signing import new_key_file

    key = new_key_file(tmp_path / "model.key")
    ModelRegistry(tmp_path / "models", key).publish("sf", fitted)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "sf.yaml").write_text(
        "rules:\n  - id: sf\n    name: 传感器故障\n    hazard: sensor\n"
        "    select: {group: [bj]}\n"
        "    grades:\n      blue: anomaly(model=sf) > 0.5\n", encoding="utf-8")
    stations = tmp_path / "stations.yaml"
    stations.write_text("stations:\n" + "".join(
        f"  - {{id: {s}, name: {s}, kind: weather, group: bj}}\n" for s in STATIONS),
        encoding="utf-8")
    out = CliRunner().invoke(app, ["rules", "check", str(rules), "--models",
                                   str(tmp_path / "models"), "--key-file",
                                   str(tmp_path / "model.key"), "--registry", str(stations)])
    assert out.exit_code == 0 and "1 rules ok" in out.output, out.output


def test_a_model_saved_before_the_saturation_clip_keeps_its_old_statistic(model) -> None:
    """saturation.py: a model fitted before the clip was calibrated on the old statistic
    (dew − temp less the fitted maximum, negative on sound air); it is scored with it."""
    assert model.params["saturation"]["clip"] is True
    assert model._checks()[1].clip
    old = SensorFaults(stations=model.stations, metrics=model.metrics)
    old.params = {**model.params, "saturation": {"top": model.params["saturation"]["top"]}}
    sat = old._checks()[1]
    assert not sat.clip
    values = {"DEWP": np.full((1, 4), 0.0), "TEMP": np.full((1, 4), 10.0)}
    assert (sat.statistic(values) < 0).all() and (model._checks()[1].statistic(values) == 0).all()
