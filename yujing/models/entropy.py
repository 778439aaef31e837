"""Histogram change: how far the distribution of the last readings is from the one before.

Why: some anomalies change what values a series takes rather than any one value: a
steady series that starts to oscillate, a busy one that goes flat, noise that grows.
The spike detector sees the first jump of such a change at best; novelty (novelty.py)
sees new contexts, but not a familiar mix of values in a new proportion. NAB's
"relativeEntropy" detector scores exactly this (a window's histogram against earlier
ones). This is our own version, vectorised:

1. Each reading falls in one of ``bins`` equal-frequency bins of the training values
   (their quantiles), or in one of two outer bins below and above the training range.
2. For reading i, the *window* is the ``window`` readings ending at i and the
   *reference* the ``reference`` readings before the window.
3. The statistic is ``window · KL(window ‖ reference)`` in bits, the reference
   Laplace-smoothed (half a count per bin): twice it, in nats, is the G statistic of
   the window against the reference, which grows with both how different and how long
   the change is, and is about chi-square when nothing changed.
4. Calibrated against training like every detector (``base.calibrate``).

After a change the statistic stays high until the reference has absorbed it; the record
filter (scoring.RecordFilter) keeps the first, rising part, which is what NAB rewards.
The score of a reading reads itself and the ``window + reference - 1`` readings before
it, so streaming equals one pass (history is bounded).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from yujing.models.base import Detector, FeatureSchema, calibrate, reference


def bin_of(v: np.ndarray, edges: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Bin numbers: 0 below ``lo``, 1.. for the quantile bins by ``edges``, last above ``hi``."""
    b = np.searchsorted(edges, v, side="right") + 1
    b[v < lo] = 0
    b[v > hi] = edges.size + 2
    return b


def window_bits(b: np.ndarray, nbins: int, start: int, window: int, ref: int) -> np.ndarray:
    """``window · KL(window ‖ reference)`` in bits for readings ``start..`` of bin
    sequence ``b``; shorter pasts use what there is (a series' first readings)."""
    n = b.size
    c = np.zeros((n + 1, nbins))
    c[np.arange(1, n + 1), b] = 1.0
    c = np.cumsum(c, axis=0)
    i = np.arange(start, n)
    w0 = np.maximum(i + 1 - window, 0)
    r0 = np.maximum(w0 - ref, 0)
    wc = c[i + 1] - c[w0]
    rc = c[w0] - c[r0]
    wn = wc.sum(axis=1, keepdims=True)
    q = (rc + 0.5) / (rc.sum(axis=1, keepdims=True) + 0.5 * nbins)
    p = wc / wn
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(wc > 0, p * np.log2(p / q), 0.0).sum(axis=1)
    out = wn[:, 0] * kl
    out[w0 == r0] = 0.0  # no reference yet
    return out


class EntropyDetector(Detector):
    kind = "entropy"
    schema = FeatureSchema("entropy", 1, ("window_kl_bits",))

    def __init__(self, seed: int = 0, bins: int = 6, window: int = 24,
                 reference: int = 500) -> None:
        super().__init__(seed)
        if bins < 1 or window < 1 or reference < 1:
            raise ValueError("entropy: bins, window and reference must be >= 1")
        self.bins = int(bins)
        self.window = int(window)
        self.reference = int(reference)
        self.history = self.window + self.reference - 1

    def hyper(self) -> dict[str, Any]:
        return {"seed": self.seed, "bins": self.bins, "window": self.window,
                "reference": self.reference}

    def _bits(self, v: np.ndarray, start: int, params: dict[str, Any]) -> np.ndarray:
        edges = np.asarray(params["edges"], dtype=np.float64)
        b = bin_of(v, edges, params["lo"], params["hi"])
        return window_bits(b, edges.size + 3, start, self.window, self.reference)

    def _fit_key(self, series: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
        v_all = np.concatenate([v for _, v in series])
        # interior quantiles; ties (a series that sits on few values) merge bins
        edges = np.unique(np.quantile(v_all, np.arange(1, self.bins) / self.bins))
        params = {"edges": edges.tolist(), "lo": float(v_all.min()), "hi": float(v_all.max())}
        z = np.concatenate([self._bits(v, 0, params) for _, v in series])
        params["ref"] = reference(z, floor=1.0)
        return params

    def _score(self, ts: np.ndarray, v: np.ndarray, start: int,
               params: dict[str, Any]) -> np.ndarray:
        return calibrate(self._bits(v, start, params), params["ref"])
