"""NAB held out: settings chosen on one half of the files, scored on the other (issue 16).

The NAB figures in docs/models.md were tuned on all 58 files. Here the files are split
deterministically into two folds — alternating files within each category, in name order
(A: 1st, 3rd, …; B: 2nd, 4th, …) — and every setting is chosen on one fold and scored on
the other, both ways. A setting is:

- the detectors combined (each record-filtered, then the largest score per row, as the
  ensemble does): spike (window 48 or 96), baseline (refit every 1000 rows), iforest;
- the record filter's memory (500, 1000, 2000 rows) and floor (1.5, 2, 3; iforest's
  floor is the smaller of that and 1, as in the ensemble);
- the threshold: NAB's best threshold on the choosing fold, standard profile — the
  held-out fold is scored at that threshold, not at its own best.

Each detector's plain scores are computed once per file, streaming, as
``yujing models evaluate`` does (fit on the probationary rows; evaluate.py); the filters
and the choice are cheap array work on those scores.

    .venv/bin/python bench/nab_folds.py --data ../shared/data/nab
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from yujing.models import evaluate, nab
from yujing.models.scoring import RecordFilter

PROFILE = nab.PROFILES["standard"]
MEMBERS = {"spike48": ("spike", {"window": 48}, 0), "spike96": ("spike", {}, 0),
           "baseline": ("baseline", {}, 1000), "iforest": ("iforest", {}, 0)}
SETS = (("spike96",), ("spike48",), ("baseline",), ("baseline", "spike96"), ("baseline", "spike48"),
        ("baseline", "spike96", "iforest"), ("baseline", "spike48", "iforest"))
MEMORIES = (500, 1000, 2000)
FLOORS = (1.5, 2.0, 3.0)


def folds(corpus: list[evaluate.Series]) -> tuple[list[str], list[str]]:
    """Alternate files within each category, in name order."""
    a, b = [], []
    by_cat: dict[str, list[str]] = {}
    for s in sorted(corpus, key=lambda s: s.name):
        by_cat.setdefault(s.category, []).append(s.name)
    for names in by_cat.values():
        a += names[0::2]
        b += names[1::2]
    return a, b


def plain_scores(corpus: list[evaluate.Series], seed: int) -> dict[str, dict[str, np.ndarray]]:
    """member → file → plain calibrated scores, streaming."""
    out = {}
    for member, (kind, hyper, refit) in MEMBERS.items():
        t = time.perf_counter()
        out[member] = evaluate.run(corpus, [kind], refit_every=refit, seed=seed,
                                   hyper={kind: hyper}, record=0, refit_kinds=(kind,))[kind]
        print(f"  {member}: {time.perf_counter() - t:.0f} s", flush=True)
    return out


def filtered(scores: dict[str, np.ndarray], memory: int, floor: float) -> dict[str, np.ndarray]:
    return {f: RecordFilter(memory, floor)(s) for f, s in scores.items()}


def sweeps_of(scores: dict[str, np.ndarray], windows: dict[str, list[tuple[int, int]]],
              files: list[str]) -> list[nab.Sweep]:
    return [nab.sweep(f, scores[f], windows[f], PROFILE) for f in sorted(files)]


def best_on(sweeps: list[nab.Sweep]) -> tuple[float, float]:
    """(threshold, normalised standard score) at NAB's best threshold on these files."""
    threshold, raw = nab.curve(sweeps, PROFILE.fn).best()
    null, perfect = nab.null_and_perfect(sweeps, PROFILE)
    return threshold, nab.normalise(raw, null, perfect)


def score_at(sweeps: list[nab.Sweep], threshold: float) -> tuple[float, int, int, int]:
    """(normalised standard score, windows found, windows, false alarm runs) at a threshold."""
    results = [nab.score_file(s, threshold, PROFILE.fn) for s in sweeps]
    null, perfect = nab.null_and_perfect(sweeps, PROFILE)
    return (nab.normalise(sum(r.score for r in results), null, perfect),
            sum(r.found for r in results), sum(r.windows for r in results),
            sum(r.false_alarms for r in results))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the NAB folder (data/, labels/)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=5, help="settings listed per choosing fold")
    a = ap.parse_args()
    corpus = evaluate.load_corpus(a.data / "data", a.data / "labels" / "combined_windows.json")
    windows = {s.name: s.windows for s in corpus}
    fold = dict(zip("AB", folds(corpus)))
    print(f"{len(corpus)} files: fold A {len(fold['A'])}, fold B {len(fold['B'])}; plain scores:")
    plain = plain_scores(corpus, a.seed)
    cache = {(m, mem, fl): filtered(plain[m], mem, min(fl, 1.0) if m == "iforest" else fl)
             for m in MEMBERS for mem in MEMORIES for fl in FLOORS}
    results = []  # (set, memory, floor, {fold: (threshold, best score)}, combined scores)
    for members, mem, fl in itertools.product(SETS, MEMORIES, FLOORS):
        combined = {f: np.max(np.stack([cache[(m, mem, fl)][f] for m in members]), axis=0)
                    for f in windows}
        own = {k: best_on(sweeps_of(combined, windows, files)) for k, files in fold.items()}
        results.append(("+".join(members), mem, fl, own, combined))
    print("\n| chosen on | setting (members, memory, floor) | threshold | score on choosing fold | "
          "held-out fold | held-out score | windows found | false alarm runs | held-out own best |")
    for choose, held in (("A", "B"), ("B", "A")):
        ranked = sorted(results, key=lambda r: -r[3][choose][1])
        for rank, (name, mem, fl, own, combined) in enumerate(ranked[:a.top]):
            threshold, chosen_score = own[choose]
            score, found, total, fa = score_at(sweeps_of(combined, windows, fold[held]), threshold)
            mark = "**" if rank == 0 else ""
            print(f"| {choose} | {mark}{name}, {mem}, {fl:g}{mark} | {threshold:.4f} | "
                  f"{chosen_score:.1f} | {held} | {mark}{score:.1f}{mark} | {found}/{total} | {fa} | "
                  f"{own[held][1]:.1f} |")
    print("\nThe first row of each choosing fold is the setting chosen; its held-out score is "
          "the honest figure. 'held-out own best' reads the held-out labels (NAB's definition).")


if __name__ == "__main__":
    main()
