"""The worker's model reload timer with a real, signed model registry (issue 12 finding 9):
a new signed version reaches every pipeline; a tampered one is refused, nothing of it
runs, and every pipeline keeps the model it had."""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pandas as pd

from yujing.clock import FakeClock
from yujing.models import ModelKey, make_detector
from yujing.models.registry import ModelRegistry
from yujing.pipeline import ModelsView
from yujing.streams.checkpoint import MemoryTable

from .storm import T0
from .worker import Worker

KEY_TEXT = "pipeline-models-key-" + "5" * 32
KEY = ModelKey.from_text(KEY_TEXT, "test")


class Boom:
    def __init__(self, path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def fitted(level: float):
    rng = np.random.default_rng(int(level * 10))
    n = 600
    return make_detector("baseline").fit(pd.DataFrame({
        "ts": T0 - (n - np.arange(n)) * 300_000, "station": "DG-HM-R01", "metric": "rain_mm",
        "value": level + rng.normal(0, 0.1, n)}))


async def test_reload_takes_a_signed_version_and_keeps_the_old_one_over_a_tampered_one(tmp_path):
    root = tmp_path / "models"
    key_file = tmp_path / "models.key"
    key_file.write_text(KEY_TEXT)
    key_file.chmod(0o600)
    publisher = ModelRegistry(root, KEY)
    publisher.publish("rain-baseline", fitted(1.0))
    view = ModelsView(root, key_file)
    first = view.get("rain-baseline")
    w = Worker(MemoryTable(), [], FakeClock(T0))
    await w.start()
    w.evaluator.models = view
    w.pipes.set_models(view)
    await w.evaluator.reload_models()                                   # nothing new
    assert view.get("rain-baseline") is first

    publisher.publish("rain-baseline", fitted(2.0))                     # a signed new version
    await w.evaluator.reload_models()
    second = view.get("rain-baseline")
    assert second is not first and view.registry.loaded["rain-baseline"].version == "0002"
    assert w.pipes.states[0].pipeline.engine.models is view

    marker = tmp_path / "PWNED"
    evil = pickle.dumps({"params": Boom(marker), "groups": {}})
    planted = root / "rain-baseline" / "0003"
    planted.mkdir()
    (planted / "model.pkl").write_bytes(evil)
    (planted / "model.skops").write_bytes(evil)
    meta = json.loads((root / "rain-baseline" / "0002" / "meta.json").read_text())
    meta.update(payload="model.pkl", sha256=hashlib.sha256(evil).hexdigest(),
                registry={"name": "rain-baseline", "version": "0003"})
    (planted / "meta.json").write_text(json.dumps(meta))
    await w.evaluator.reload_models()
    assert not marker.exists()
    assert view.get("rain-baseline") is second
    assert view.registry.loaded["rain-baseline"].version == "0002"
