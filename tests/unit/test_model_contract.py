"""One contract, the same checks over every detector (DESIGN style rule 7)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from yujing.models import (
    KINDS,
    ChecksumError,
    ModelError,
    ModelKey,
    SchemaError,
    load_model,
    make_detector,
)
from yujing.models.scoring import score_series
from yujing.models.signing import sign

STEP = 300_000  # 5 minutes
T0 = 1_735_660_800_000  # 2025-01-01T00:00:00Z
KEY = ModelKey.from_text("contract-test-key-" + "0" * 32, "test")


def series(n: int, seed: int, level: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(n, dtype=np.int64) * STEP
    v = level + 0.3 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 0.02, n)
    return ts, v


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    parts = []
    for k, station in enumerate(("gauge-1", "gauge-2")):
        ts, v = series(288 * 4, seed=k, level=2.0 + k)
        parts.append(pd.DataFrame({"ts": ts, "station": station, "metric": "water_level_m",
                                   "value": v}))
    parts.append(pd.DataFrame({"ts": [T0], "station": ["gauge-1"], "metric": ["rain_mm"],
                               "value": [1.0]}))
    return pd.concat(parts, ignore_index=True)


# small forests keep the contract test quick; the contract is the same. The ensemble's
# record memory is shortened so that the probe (600 readings) runs past its history
# (record + the spike's 121) and the cached member scores are trimmed and reused; so is
# novelty's context memory.
HYPER = {"iforest": {"n_estimators": 25},
         "ensemble": {"record": 200, "members": {"iforest": {"n_estimators": 25}}},
         "novelty": {"memory": 200, "rate": 100}}  # history 306: the probe runs past it

# every detector runs the whole contract; a new kind must be added here
CONTRACT_KINDS = ["baseline", "ensemble", "entropy", "iforest", "novelty", "spike"]


def fitted(kind: str, history: pd.DataFrame, seed: int = 7):
    return make_detector(kind, seed=seed, **HYPER.get(kind, {})).fit(history, "water_level_m")


@pytest.fixture(scope="module")
def models(history):
    return {kind: fitted(kind, history) for kind in CONTRACT_KINDS}


@pytest.fixture(scope="module")
def probe() -> tuple[np.ndarray, np.ndarray]:
    ts, v = series(600, seed=42)
    return ts + 288 * 4 * STEP, v


KIND = pytest.mark.parametrize("kind", CONTRACT_KINDS)


def test_every_detector_kind_runs_the_contract():
    assert sorted(KINDS) == CONTRACT_KINDS


@KIND
def test_scores_are_in_unit_interval_and_finite(kind, models, probe):
    s = score_series(models[kind], *probe, station="gauge-1")
    assert s.shape == probe[0].shape
    assert np.isfinite(s).all()
    assert ((s >= 0) & (s <= 1)).all()


@KIND
def test_same_seed_same_scores(kind, history, models, probe):
    again = fitted(kind, history)
    assert np.array_equal(score_series(again, *probe, station="gauge-1"),
                          score_series(models[kind], *probe, station="gauge-1"))


@KIND
def test_save_load_round_trip_gives_identical_scores(kind, models, probe, tmp_path):
    models[kind].save(tmp_path / kind, KEY)
    back = load_model(tmp_path / kind, KEY)
    assert type(back) is type(models[kind])
    for station in ("gauge-1", "gauge-2", "never-seen"):
        assert np.array_equal(score_series(back, *probe, station=station),
                              score_series(models[kind], *probe, station=station))
    meta = json.loads((tmp_path / kind / "meta.json").read_text())
    assert meta["schema"]["hash"] == models[kind].schema.hash
    assert meta["training"]["rows"] == 288 * 4 * 2
    assert meta["metric"] == "water_level_m"
    assert {"numpy", "python"} <= set(meta["libraries"])


@KIND
def test_inputs_are_not_mutated(kind, history, probe):
    before = history.copy()
    det = fitted(kind, history)
    pd.testing.assert_frame_equal(history, before)
    ts, v = probe[0].copy(), probe[1].copy()
    ts.flags.writeable = False
    v.flags.writeable = False
    score_series(det, ts, v)
    assert np.array_equal(ts, probe[0]) and np.array_equal(v, probe[1])


@KIND
def test_streaming_in_chunks_equals_scoring_the_whole_series(kind, models, probe):
    det = models[kind]
    whole = score_series(det, *probe, station="gauge-2")
    state = det.new_state("gauge-2")
    rng = np.random.default_rng(3)
    cuts = np.sort(rng.choice(np.arange(1, probe[0].size), 25, replace=False))
    parts = [det.score(t, v, state) for t, v in zip(np.split(probe[0], cuts),
                                                     np.split(probe[1], cuts))]
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=0, atol=1e-9)


@KIND
def test_a_score_uses_only_the_past(kind, models, probe):
    ts, v = probe
    changed = v.copy()
    changed[400:] += 5.0
    a = score_series(models[kind], ts, v)
    b = score_series(models[kind], ts, changed)
    assert np.array_equal(a[:400], b[:400])
    assert (b[400:] != a[400:]).any()


@KIND
def test_missing_values_score_zero_and_do_not_poison_later_scores(kind, models, probe):
    ts, v = probe
    holes = v.copy()
    holes[[50, 51, 300]] = np.nan
    s = score_series(models[kind], ts, holes)
    assert np.isfinite(s).all() and (s[[50, 51, 300]] == 0).all()


@KIND
def test_unknown_feature_schema_is_refused_with_the_fix(kind, models, tmp_path):
    # signed (a model of another build), so the schema check is what refuses it
    folder = models[kind].save(tmp_path / kind, KEY)
    meta = json.loads((folder / "meta.json").read_text())
    meta["schema"]["version"] += 1
    (folder / "meta.json").write_text(json.dumps(sign(meta, KEY)))
    with pytest.raises(SchemaError, match="retrain"):
        load_model(folder, KEY)
    meta["schema"]["version"] -= 1
    meta["schema"]["features"] = meta["schema"]["features"][::-1] + ["extra"]
    (folder / "meta.json").write_text(json.dumps(sign(meta, KEY)))
    with pytest.raises(SchemaError, match="feature schema"):
        load_model(folder, KEY)


@KIND
def test_tampered_payload_fails_the_checksum_before_unpickling(kind, models, tmp_path):
    folder = models[kind].save(tmp_path / kind, KEY)
    data = bytearray((folder / "model.skops").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "model.skops").write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="checksum"):
        load_model(folder, KEY)


@KIND
def test_contract_errors_name_the_fix(kind, history):
    det = make_detector(kind, **HYPER.get(kind, {}))
    with pytest.raises(ModelError, match="fit"):
        det.score(np.array([T0]), np.array([1.0]))
    with pytest.raises(ModelError, match="--metric"):
        det.fit(history)  # two metrics, none chosen
    with pytest.raises(ModelError, match="lacks column"):
        det.fit(history.drop(columns=["station"]), "water_level_m")


def test_unknown_kind_and_missing_folder(tmp_path):
    with pytest.raises(ModelError, match="unknown detector"):
        make_detector("prophet")
    with pytest.raises(ModelError, match="not a saved model"):
        load_model(tmp_path, KEY)
    (tmp_path / "meta.json").write_text(json.dumps(sign({"kind": "prophet", "format": 2}, KEY)))
    with pytest.raises(ModelError, match="unknown detector kind"):
        load_model(tmp_path, KEY)
