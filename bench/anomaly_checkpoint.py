"""What the anomaly models' streaming state adds to a worker's checkpoint.

    PYTHONPATH=. .venv/bin/python bench/anomaly_checkpoint.py                 # 1000 stations
    PYTHONPATH=. .venv/bin/python bench/anomaly_checkpoint.py --stations 200 --detector spike

Why: until 2026-12-04 a model loaded from the registry lost its payload's sha256 on the
way in, so the scorer never checkpointed its per-station state (models/stream.py skips a
model it cannot name after a restart), and a restarted worker rebuilt every station
from its retained window. With the sha256 kept the state is checkpointed: this prints
what that costs. One ``Pipeline`` per detector with ``anomaly(model=<kind>) >= 0.95`` on
bench/models.py's synthetic water levels (5-minute readings), trained on two days, fed one
more day in envelopes of 500; then ``Pipeline.snapshot()`` is encoded ``--runs`` times:

* ``<kind>_checkpoint_bytes``: the whole snapshot, the model named by its sha256 (as a
  loaded model now is), raw and as stored (zlib at the checkpoint table's level);
* ``<kind>_baseline_bytes``: the same pipeline's snapshot without the models' state (as
  before), measured in the same run; ``<kind>_ratio``: the first ÷ the second;
* ``<kind>_encode_ms``: the median time of one ``snapshot()`` with the state in it;
* with ``--previous``, ``<kind>_previous_bytes`` and ``<kind>_previous_encode_ms``: the
  same with the state in the layout before 2026-12-04 round two (rings whole, as
  ``StreamScorer.snapshot()`` without the engine's window writes it), timed in turns with
  the current one, so that both figures see the same machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import DAY, Models, anomaly_rule, columns, envelopes, readings  # noqa: E402

from yujing.models import make_detector  # noqa: E402
from yujing.pipeline import Pipeline  # noqa: E402
from yujing.streams.checkpoint import ZLIB_LEVEL  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--detector", action="append", default=None)
    ap.add_argument("--previous", action="store_true",
                    help="also the previous layout (whole rings), timed in turns")
    args = ap.parse_args()
    data = readings(args.stations, 3)
    split = data["ts"].min() + 2 * DAY * 300_000  # two days of 5-minute readings
    train, live = data[data["ts"] < split], data[data["ts"] >= split]
    for kind in args.detector or ["spike", "ensemble"]:
        det = make_detector(kind, seed=0).fit(train)
        det.meta["sha256"] = "0" * 64  # named, as a model loaded from the registry is now
        pipe = Pipeline([anomaly_rule(kind, ["water_level_m"])], models=Models(**{kind: det}))
        for env in envelopes(live, 500):
            pipe.handle(columns(env), 0)
        scorer = pipe.engine.interpreter.scorer
        spent, named, before, whole = [], b"", [], b""
        for _ in range(args.runs):
            t = time.perf_counter()
            named = pipe.snapshot()
            spent.append(time.perf_counter() - t)
            if args.previous:  # the engine's window withheld: rings whole
                scorer.snapshot = lambda window=None, s=scorer: type(s).snapshot(s)
                t = time.perf_counter()
                whole = pipe.snapshot()
                before.append(time.perf_counter() - t)
                del scorer.snapshot
        kept, scorer.entries = scorer.entries, {}  # without the models' state, as before
        plain = pipe.snapshot()
        scorer.entries = kept
        stored = [len(zlib.compress(x, ZLIB_LEVEL)) for x in (named, plain)]
        print(f"{kind}_checkpoint_bytes: {len(named):,} (stored {stored[0]:,})")
        print(f"{kind}_baseline_bytes: {len(plain):,} (stored {stored[1]:,})")
        print(f"{kind}_ratio: {len(named) / len(plain):.2f}")
        print(f"{kind}_encode_ms: {1000 * statistics.median(spent):.1f} "
              f"({args.stations} stations, {len(live):,} readings fed)")
        if args.previous:
            print(f"{kind}_previous_bytes: {len(whole):,} "
                  f"(stored {len(zlib.compress(whole, ZLIB_LEVEL)):,})")
            print(f"{kind}_previous_encode_ms: {1000 * statistics.median(before):.1f}")


if __name__ == "__main__":
    main()
