"""Load time of a saved model: signed skops folder (now) against the pickle of before.

    .venv/bin/python bench/model_load.py                  # 3 runs, 20 stations
    .venv/bin/python bench/model_load.py --stations 50 --runs 5

Per detector, one model with parameters per station is trained on two days of
synthetic water levels (5-minute readings) and published to a registry. Timed (median
of --runs, each a fresh load of the folder):

* ``<kind>_load_s``: ``ModelRegistry.load`` (read meta.json, check the HMAC, the
  checksum and the schema, parse model.skops with skops);
* ``<kind>_pickle_load_s``: the baseline in the same run, ``pickle.loads`` of the same
  parameters (what format 1 did after its checksum), and the ratio of the two;
* ``<kind>_payload_mb``: the size of model.skops (and of the pickle).

A worker loads a model at its first use and again on each new version (hot reload), so
this is how long it is busy then. skops is imported once before the runs (its import
time is printed on its own: it imports all of scikit-learn to build its trusted list).
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from yujing.models import KINDS, ModelKey, make_detector
from yujing.models.registry import ModelRegistry

STEP = 300_000
T0 = 1_735_660_800_000
KEY = ModelKey.from_text("bench-key-" + "0" * 32, "bench")


def history(stations: int, days: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = days * 288
    t = np.arange(n)
    parts = [pd.DataFrame({"ts": T0 + t * STEP, "station": f"s{k:03d}", "metric": "level_m",
                           "value": 2 + 0.3 * np.sin(2 * np.pi * t / 144) + rng.normal(0, 0.02, n)})
             for k in range(stations)]
    return pd.concat(parts, ignore_index=True)


def timed(fn, runs: int) -> float:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kinds", nargs="*", default=sorted(KINDS))
    args = ap.parse_args()
    t = time.perf_counter()
    import skops.io  # noqa: F401 - timed on its own, see the docstring
    print(f"skops_import_s={time.perf_counter() - t:.2f}")
    frame = history(args.stations)
    with tempfile.TemporaryDirectory() as tmp:
        reg = ModelRegistry(tmp, KEY)
        for kind in args.kinds:
            det = make_detector(kind).fit(frame)
            folder = reg.publish(kind, det)
            pick = pickle.dumps({"params": det.params, "groups": det.groups},
                                protocol=pickle.HIGHEST_PROTOCOL)
            now = timed(lambda k=kind, v=folder.name: reg.load(k, v), args.runs)
            before = timed(lambda p=pick: pickle.loads(p), args.runs)
            size = (folder / "model.skops").stat().st_size / 1e6
            print(f"{kind}_load_s={now:.3f} {kind}_pickle_load_s={before:.3f} "
                  f"ratio={now / max(before, 1e-9):.1f} {kind}_payload_mb={size:.2f} "
                  f"pickle_mb={len(pick) / 1e6:.2f} stations={args.stations} runs={args.runs}")


if __name__ == "__main__":
    main()
