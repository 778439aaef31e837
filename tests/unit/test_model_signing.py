"""Issue 12 finding 9: a planted or altered model folder is refused and nothing of it runs.

Each attack writes a pickle that would create a marker file when unpickled; the marker's
absence proves nothing ran. The worker's view (ModelsView) and the registry keep the last
good version; a correctly signed model loads and scores exactly as the fitted one (which is
what the pickle of the format before reproduced too).
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import shutil
import stat

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from yujing.cli.app import app
from yujing.domain import Reading
from yujing.models import ModelError, ModelKey, SignatureError, load_model, make_detector
from yujing.models.registry import ModelRegistry
from yujing.models.scoring import score_series
from yujing.models.signing import resolve_key, sign
from yujing.pipeline import ModelsView
from yujing.rules.engine import Engine
from yujing.rules.schema import Rule

STEP = 300_000
T0 = 1_735_660_800_000
KEY_TEXT = "signing-test-key-" + "0123456789abcdef" * 2
KEY = ModelKey.from_text(KEY_TEXT, "test")
OTHER = ModelKey.from_text("another-key-" + "f" * 40, "other")
NO_ENV = {"YUJING_MODELS_KEY": "", "YUJING_MODELS_KEY_FILE": ""}


class Boom:
    """Unpickling this opens ``path`` for writing: the marker that code ran."""

    def __init__(self, path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class Planted:
    """A class skops does not trust: building it would write the marker."""

    def __init__(self, path) -> None:
        self.path = str(path)

    def __setstate__(self, state) -> None:
        open(state["path"], "w").close()


def frame(seed=0, level=1.0, n=600, station="g1"):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"ts": T0 + np.arange(n, dtype=np.int64) * STEP, "station": station,
                         "metric": "water_level_m", "value": level + rng.normal(0, 0.05, n)})


def probe():
    ts = T0 + (600 + np.arange(200, dtype=np.int64)) * STEP
    v = 1.0 + np.random.default_rng(9).normal(0, 0.05, 200)
    v[120:] += 0.8
    return ts, v


def evil_pickle(marker) -> bytes:
    return pickle.dumps({"params": Boom(marker), "groups": {}})


def plant(version_dir, meta, files: dict[str, bytes]) -> None:
    version_dir.mkdir(parents=True)
    for name, data in files.items():
        path = version_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (version_dir / "meta.json").write_text(json.dumps(meta))


@pytest.fixture
def registry(tmp_path):
    """A registry holding m/0001 (baseline) and a worker that has loaded it."""
    root = tmp_path / "models"
    ModelRegistry(root, KEY).publish("m", make_detector("baseline").fit(frame()))
    worker = ModelRegistry(root, KEY)
    worker.load_latest("m")
    return root, worker


@pytest.mark.parametrize("signature", ["copied", "stripped"])
def test_a_planted_pickle_is_refused_on_hot_reload_and_nothing_runs(registry, tmp_path, caplog,
                                                                    signature):
    root, worker = registry
    first = worker.loaded["m"].model
    before = score_series(first, *probe(), station="g1")
    marker = tmp_path / "PWNED"
    evil = evil_pickle(marker)
    meta = json.loads((root / "m" / "0001" / "meta.json").read_text())
    meta.update(format=1, payload="model.pkl", sha256=hashlib.sha256(evil).hexdigest(),
                registry={"name": "m", "version": "0002"})
    if signature == "stripped":
        del meta["signature"]
    plant(root / "m" / "0002", meta, {"model.pkl": evil, "model.skops": evil})
    with caplog.at_level(logging.ERROR, logger="yujing.models.registry"):
        assert worker.reload_if_changed() == {}
        assert worker.reload_if_changed() == {}  # logged once, not retried every tick
    assert not marker.exists()
    assert worker.loaded["m"].version == "0001" and worker.loaded["m"].model is first
    assert np.array_equal(score_series(first, *probe(), station="g1"), before)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "version 0002 refused, keeping version 0001" in lines[0]
    why = "not signed" if signature == "stripped" else "changed after it was signed"
    assert why in lines[0] and "yujing models train" in lines[0]


def test_a_payload_path_in_meta_is_never_followed(registry, tmp_path):
    root, worker = registry
    marker = tmp_path / "PWNED"
    outside = tmp_path / "outside" / "evil.pkl"
    outside.parent.mkdir()
    outside.write_bytes(evil_pickle(marker))
    good = json.loads((root / "m" / "0001" / "meta.json").read_text())
    # unsigned: refused before anything is read
    meta = dict(good, payload="../../../outside/evil.pkl",
                sha256=hashlib.sha256(outside.read_bytes()).hexdigest(),
                registry={"name": "m", "version": "0002"})
    meta.pop("signature")
    plant(root / "m" / "0002", meta, {})
    assert worker.reload_if_changed() == {} and not marker.exists()
    # even signed by the key holder, the path is ignored: the payload is model.skops
    meta = dict(good, payload="../../../outside/evil.pkl", registry={"name": "m", "version": "0003"})
    plant(root / "m" / "0003", sign(meta, KEY),
          {"model.skops": (root / "m" / "0001" / "model.skops").read_bytes()})
    changed = worker.reload_if_changed()
    assert set(changed) == {"m"} and worker.loaded["m"].version == "0003"
    assert not marker.exists()
    assert np.array_equal(score_series(changed["m"], *probe(), station="g1"),
                          score_series(ModelRegistry(root, KEY).load("m", "0001"), *probe(),
                                       station="g1"))


def test_a_signed_pickle_under_the_payload_name_is_still_never_unpickled(registry, tmp_path):
    root, worker = registry
    marker = tmp_path / "PWNED"
    evil = evil_pickle(marker)
    meta = json.loads((root / "m" / "0001" / "meta.json").read_text())
    meta.update(sha256=hashlib.sha256(evil).hexdigest(), registry={"name": "m", "version": "0002"})
    plant(root / "m" / "0002", sign(meta, KEY), {"model.skops": evil})
    with pytest.raises(ModelError, match="cannot be read"):
        worker.load("m", "0002")
    assert worker.reload_if_changed() == {} and worker.loaded["m"].version == "0001"
    assert not marker.exists()


def test_a_signed_payload_with_an_untrusted_type_is_refused_before_it_is_built(registry, tmp_path):
    root, worker = registry
    marker = tmp_path / "PWNED"
    payload = sio.dumps({"params": {"*": {"x": Planted(marker)}}, "groups": {}})
    meta = json.loads((root / "m" / "0001" / "meta.json").read_text())
    meta.update(sha256=hashlib.sha256(payload).hexdigest(), registry={"name": "m", "version": "0002"})
    plant(root / "m" / "0002", sign(meta, KEY), {"model.skops": payload})
    with pytest.raises(ModelError, match="types this build never loads"):
        worker.load("m", "0002")
    assert not marker.exists()


@pytest.mark.parametrize("kind, hyper", [("baseline", {}), ("spike", {}),
                                         ("iforest", {"n_estimators": 20}),
                                         ("ensemble", {"members": {"iforest": {"n_estimators": 20}}})])
def test_a_signed_model_loads_and_scores_as_the_fitted_one(tmp_path, kind, hyper):
    det = make_detector(kind, **hyper).fit(pd.concat([frame(1), frame(2, 3.0, station="g2")]))
    ModelRegistry(tmp_path, KEY).publish("m", det)
    back = ModelRegistry(tmp_path, KEY).load_latest("m")
    before = pickle.loads(pickle.dumps(det))  # what the pickle of format 1 gave back
    for station in ("g1", "g2", "never-seen"):
        want = score_series(det, *probe(), station=station)
        assert np.array_equal(score_series(back, *probe(), station=station), want)
        assert np.array_equal(score_series(before, *probe(), station=station), want)
    assert not list(tmp_path.glob("m/*/*.pkl"))


def test_a_version_copied_to_another_number_or_name_is_refused(registry, tmp_path):
    root, worker = registry
    ModelRegistry(root, KEY).publish("m", make_detector("baseline").fit(frame(3, 4.0)))
    assert set(worker.reload_if_changed()) == {"m"}
    shutil.copytree(root / "m" / "0001", root / "m" / "0003")  # roll back to the old model
    assert worker.reload_if_changed() == {} and worker.loaded["m"].version == "0002"
    shutil.copytree(root / "m" / "0001", root / "n" / "0001")
    with pytest.raises(SignatureError, match="signed as 'm' version '0001'"):
        worker.load_latest("n")


def test_another_key_or_an_edited_meta_is_refused_saying_why(registry):
    root, _ = registry
    with pytest.raises(SignatureError, match="signed with another key"):
        ModelRegistry(root, OTHER).load_latest("m")
    meta_path = root / "m" / "0001" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["hyper"]["min_count"] = 1
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(SignatureError, match="changed after it was signed"):
        ModelRegistry(root, KEY).load_latest("m")


def test_a_format_1_model_from_before_is_refused_with_the_retrain_fix(tmp_path):
    marker = tmp_path / "PWNED"
    evil = evil_pickle(marker)
    det = make_detector("baseline").fit(frame())
    meta = dict(det.meta, payload="model.pkl", sha256=hashlib.sha256(evil).hexdigest(),
                registry={"name": "m", "version": "0001"})
    plant(tmp_path / "m" / "0001", meta, {"model.pkl": evil})
    with pytest.raises(SignatureError, match="trained before models were signed.*yujing models train"):
        ModelRegistry(tmp_path, KEY).load_latest("m")
    assert not marker.exists()


def test_without_a_key_nothing_loads_or_publishes_and_the_log_names_the_fix(registry, caplog,
                                                                           monkeypatch):
    root, _ = registry
    for k, v in NO_ENV.items():
        monkeypatch.setenv(k, v)
    with caplog.at_level(logging.WARNING):
        view = ModelsView(root)
        assert view.get("m") is None
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "no signing key" in text and "yujing models keygen" in text
    with pytest.raises(SignatureError, match="unsigned"):
        ModelRegistry(root, None).publish("m", make_detector("baseline").fit(frame()))


def test_the_worker_view_keeps_the_old_model_when_a_tampered_version_appears(registry, tmp_path):
    root, _ = registry
    key_file = tmp_path / "models.key"
    key_file.write_text(KEY_TEXT + "\n")
    key_file.chmod(0o600)
    view = ModelsView(root, key_file)
    first = view.get("m")
    assert first is not None
    bad = ModelRegistry(root, KEY).publish("m", make_detector("baseline").fit(frame(5, 2.0)))
    data = bytearray((bad / "model.skops").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / "model.skops").write_bytes(bytes(data))
    assert view.reload() == [] and view.get("m") is first


def test_anomaly_rules_score_with_a_signed_model_through_the_worker_view(registry, tmp_path):
    root, _ = registry
    ModelRegistry(root, KEY).publish("lvl", make_detector("spike").fit(frame(7)))
    key_file = tmp_path / "k"
    key_file.write_text(KEY_TEXT)
    key_file.chmod(0o600)
    r = Rule.model_validate({"id": "r", "name": "n", "hazard": "h",
                             "grades": {"yellow": "anomaly(model=lvl) >= 0.9"},
                             "clear": "anomaly(model=lvl) < 0.5"})
    values = list(1.0 + np.random.default_rng(8).normal(0, 0.05, 120)) + [1.0 + 0.4 * k
                                                                          for k in range(1, 7)]
    readings = [Reading("g1", "water_level_m", T0 + (600 + i) * STEP, float(v))
                for i, v in enumerate(values)]

    def graded(models):
        e = Engine([r], models=models, scorer=score_series)
        f, _ = e.process(["g1"], np.zeros(len(readings), np.uint32), ["water_level_m"],
                         np.zeros(len(readings), np.uint32),
                         np.array([x.ts for x in readings], np.int64),
                         np.array([x.value for x in readings]))
        return [x for x in f if not x.clear]

    hits = graded(ModelsView(root, key_file))
    assert hits and min(x.ts for x in hits) >= readings[120].ts
    assert graded(ModelsView(root, tmp_path / "absent.key")) == []  # no key: no model, no score


def test_key_files_keygen_modes_and_the_cli(tmp_path, monkeypatch):
    for k, v in NO_ENV.items():
        monkeypatch.setenv(k, v)
    runner = CliRunner()
    key_file = tmp_path / "models.key"
    r = runner.invoke(app, ["models", "keygen", str(key_file)])
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text().strip()) == 64
    r = runner.invoke(app, ["models", "keygen", str(key_file)])
    assert r.exit_code == 2 and "exists" in r.output
    key = resolve_key(key_file)
    monkeypatch.setenv("YUJING_MODELS_KEY_FILE", str(key_file))
    assert resolve_key().id == key.id
    key_file.chmod(0o644)
    with pytest.raises(ModelError, match="chmod 600"):
        resolve_key(key_file)
    with pytest.raises(ModelError, match="at least 32"):
        ModelKey.from_text("short", "x")
    key_file.chmod(0o600)
    data = tmp_path / "readings.csv"
    f = frame(n=300)
    f["ts"] = pd.to_datetime(f["ts"], unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    f.to_csv(data, index=False)
    out = tmp_path / "models"
    monkeypatch.setenv("YUJING_MODELS_KEY_FILE", "")
    train = ["models", "train", "--data", str(data), "--metric", "water_level_m",
             "--detector", "spike", "--out", str(out), "--quiet"]
    r = runner.invoke(app, train)
    assert r.exit_code == 2 and "no model signing key" in r.output and "keygen" in r.output
    assert not out.exists()
    r = runner.invoke(app, [*train, "--key-file", str(key_file)])
    assert r.exit_code == 0, r.output
    assert ModelsView(out, key_file).get("water-level-m-spike") is not None
    assert load_model(out / "water-level-m-spike" / "0001", key).kind == "spike"
    r = runner.invoke(app, ["models", "list", str(out)])
    assert r.exit_code == 0 and "signed" in r.output and "UNSIGNED" not in r.output


def test_links_instead_of_files_are_refused(registry, tmp_path):
    root, worker = registry
    version = ModelRegistry(root, KEY).publish("m", make_detector("baseline").fit(frame(4)))
    real = tmp_path / "elsewhere.skops"
    (version / "model.skops").rename(real)
    (version / "model.skops").symlink_to(real)
    with pytest.raises(ModelError, match="not a plain file"):
        worker.load("m", version.name)
    assert worker.reload_if_changed() == {} and worker.loaded["m"].version == "0001"


def test_the_worker_view_preloads_the_models_its_rules_name(registry, tmp_path):
    root, _ = registry
    key_file = tmp_path / "k"
    key_file.write_text(KEY_TEXT)
    key_file.chmod(0o600)
    named = Rule.model_validate({"id": "a", "name": "n", "hazard": "h",
                                 "grades": {"yellow": "anomaly(model=m) >= 0.9"}})
    off = Rule.model_validate({"id": "b", "name": "n", "hazard": "h", "enabled": False,
                               "grades": {"yellow": "anomaly(model=gone) >= 0.9"}})
    view = ModelsView(root, key_file, preload=[named, off])
    assert set(view.registry.loaded) == {"m"}  # loaded before the engine asks
    assert ModelsView(root, key_file).registry.loaded == {}


JSON = st.recursive(st.none() | st.booleans() | st.integers()
                    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)
FIELDS = st.fixed_dictionaries({}, optional={
    "format": JSON | st.just(2), "kind": JSON | st.sampled_from(["baseline", "spike"]),
    "schema": JSON, "hyper": JSON, "sha256": JSON, "registry": JSON, "libraries": JSON,
    "signature": JSON | st.fixed_dictionaries({"alg": st.just("hmac-sha256"),
                                               "mac": st.text("0123456789abcdefé", max_size=64)})})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meta=FIELDS, signed=st.booleans(), payload=st.binary(max_size=200), raw=st.binary(max_size=60))
def test_any_meta_or_payload_gives_a_model_error_and_nothing_else(tmp_path_factory, meta, signed,
                                                                   payload, raw):
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "model.skops").write_bytes(payload)
    if signed:  # the key holder signed nonsense: the later checks must still hold
        meta = sign(dict(meta, sha256=hashlib.sha256(payload).hexdigest()), KEY)
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError):
        load_model(folder, KEY)
    (folder / "meta.json").write_bytes(raw)
    with pytest.raises(ModelError):
        load_model(folder, KEY)
    (folder / "meta.json").write_text("[" * 100_000)
    with pytest.raises(ModelError):
        load_model(folder, KEY)
