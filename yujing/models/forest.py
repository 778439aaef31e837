"""IsolationForests as flat numpy arrays: every tree of every key walked at once.

Why: scikit-learn's ``score_samples`` calls each tree's ``apply`` in turn, about ten
microseconds of Python per tree and call. A worker's envelope holds a few readings of
each of many stations, each station with its own forest, so the per-call cost was the
whole cost (2.5 k readings/s). Here the nodes of all the forests of a detector are laid
end to end in one array and all (reading, tree) pairs descend one level per numpy step;
a forest of 256-sample trees is at most 8 levels deep.

Each node is one 8-byte record (a float32 threshold; the feature in 3 bits and the first
child in 29), so a visit reads one cache line, and each tree is renumbered breadth first
with the two children of a node side by side; a level is a few numpy operations on
(readings × trees) arrays of 32-bit values, written into buffers allocated once per call.
Readings × trees, not trees × readings: a reading's trees are then visited in address
order, and the readings of one station (sorted together) reuse its forest while it is in
cache (a quarter faster). The gathers use ``mode="clip"``: with numpy's default
``"raise"`` an ``out`` buffer is copied on every call (six times slower a gather).

One series (``IsolationForestDetector._raw``) walks the bank too: a station's few new
readings then cost a few numpy calls per level instead of scikit-learn's call per tree.

The numbers are scikit-learn's own: ``tree.apply`` compares a float32 feature with a
float64 threshold; the record stores the largest float32 not above the threshold, which
splits every float32 the same way. A leaf contributes its depth plus the average path
length of its samples minus one (``_decision_path_lengths``,
``_average_path_length_per_tree``), the contributions are added tree by tree in the
forest's order, and the raw score is ``2 ** -(depth / (trees · c(max_samples)))``.
``tests/unit/test_model_speed.py`` asserts equality with ``-score_samples``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

LEAF = -1  # scikit-learn's TREE_LEAF
FEATURE_BITS = 3  # a link: feature | first child << 3


def average_path_length(n: np.ndarray) -> np.ndarray:
    """c(n): the average path length of an unsuccessful search in a binary tree of n
    items (Liu et al., the normalisation of IsolationForest); 0 for n <= 1, 1 for n = 2."""
    n = np.asarray(n, dtype=np.float64).reshape(-1)
    out = np.zeros(n.shape)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def float32_below(t: np.ndarray) -> np.ndarray:
    """The largest float32 <= t: ``x > t`` and ``x > float32_below(t)`` agree for every
    float32 x."""
    f = t.astype(np.float32)
    over = f.astype(np.float64) > t
    f[over] = np.nextafter(f[over], np.float32(-np.inf))
    return f


def breadth_first(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Node ids in breadth-first order with each node's two children adjacent."""
    level = np.zeros(1, dtype=np.int64)
    parts = []
    while level.size:
        parts.append(level)
        inner = level[left[level] != LEAF]
        level = np.stack((left[inner], right[inner]), axis=1).reshape(-1)
    return np.concatenate(parts)


def flatten_tree(tree: Any, value: np.ndarray, base: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One tree's thresholds, links (feature | first child << 3, renumbered from ``base``)
    and leaf values, breadth first."""
    order = breadth_first(tree.children_left, tree.children_right)
    new = np.empty(order.size, dtype=np.int64)
    new[order] = np.arange(order.size)
    left = tree.children_left[order]
    leaf = left == LEAF
    # a leaf never goes right (threshold +inf) and its "first child" is itself
    threshold = np.where(leaf, np.float32(np.inf), float32_below(tree.threshold[order]))
    feature = np.where(leaf, 0, tree.feature[order]).astype(np.int64)
    child = base + np.where(leaf, np.arange(order.size), new[np.where(leaf, 0, left)])
    return threshold.astype(np.float32), (feature | (child << FEATURE_BITS)).astype(np.uint32), \
        value[order]


class ForestBank:
    """The forests of several keys, flattened: ``raw(X, key)`` is ``-score_samples``.

    ``forests`` are fitted ``IsolationForest`` objects without feature subsampling (the
    detector's: ``max_features`` 1.0); key ``k`` of ``raw`` is ``forests[k]``.
    """

    def __init__(self, forests: Sequence[Any]) -> None:
        thresholds, links, values, roots, denom = [], [], [], [], []
        base = 0
        self.depth = 0
        for forest in forests:
            width = int(forest.n_features_in_)
            if any(not np.array_equal(f, np.arange(width)) for f in forest.estimators_features_):
                raise ValueError("forest bank: a forest with feature subsampling "
                                 "(max_features < 1.0) is not supported")
            lengths = getattr(forest, "_decision_path_lengths", None)
            averages = getattr(forest, "_average_path_length_per_tree", None)
            starts = []
            for t, est in enumerate(forest.estimators_):
                tree = est.tree_
                depth = lengths[t] if lengths is not None else tree.compute_node_depths()
                avg = averages[t] if averages is not None else \
                    average_path_length(tree.n_node_samples)
                thr, link, val = flatten_tree(tree, depth + avg - 1.0, base)
                thresholds.append(thr)
                links.append(link)
                values.append(val)
                starts.append(base)
                base += thr.size
                self.depth = max(self.depth, int(tree.max_depth))
            roots.append(np.array(starts, dtype=np.uint32))
            denom.append(len(forest.estimators_) * average_path_length([forest._max_samples])[0])
        if base >= 2 ** (32 - FEATURE_BITS):
            raise ValueError("forest bank: too many nodes for one bank")
        self.trees = max((r.size for r in roots), default=0)
        if any(r.size != self.trees for r in roots):
            raise ValueError("forest bank: every forest must have the same number of trees")
        threshold = np.concatenate(thresholds) if thresholds else np.empty(0, np.float32)
        link = np.concatenate(links) if links else np.empty(0, np.uint32)
        # one 8-byte record per node (threshold bits low, link high): one cache line a visit
        self.nodes = threshold.view(np.uint32).astype(np.uint64) | (
            link.astype(np.uint64) << np.uint64(32))
        self.value = np.concatenate(values) if values else np.empty(0)
        self.roots = np.stack(roots) if roots else np.empty((0, 0), np.uint32)
        self.root_records = self.nodes[self.roots]  # (keys, trees): level 0 of every walk
        self.denom = np.array(denom, dtype=np.float64)

    def raw(self, X: np.ndarray, key: np.ndarray) -> np.ndarray:
        """The raw anomaly score (``-score_samples``) of each row of ``X`` under the forest
        ``key[i]``; rows must be finite."""
        n, width = X.shape
        if n == 0:
            return np.empty(0)
        if width > 2 ** FEATURE_BITS:
            raise ValueError(f"forest bank: {width} features, at most {2 ** FEATURE_BITS}")
        # rows padded to 8 features: feature f of row i sits at 8·i + f
        x32 = np.zeros((n, 2 ** FEATURE_BITS), np.float32)
        x32[:, :width] = X
        x32 = x32.reshape(-1)
        # (rows, trees): a row's trees one after the other, rows of one key side by side, so
        # a level reads each forest's nodes in address order while they are in cache
        # level 0 is every tree's root: its records are one row per key, copied whole
        rec = self.root_records[key]
        rows = (np.arange(n, dtype=np.uint32) * np.uint32(2 ** FEATURE_BITS))[:, None]
        words = rec.view(np.uint32)  # (rows, 2·trees): threshold bits, link, threshold, ...
        threshold, link = words[:, 0::2].view(np.float32), words[:, 1::2]
        node = self.roots[key] if self.depth == 0 else np.empty(rec.shape, np.uint32)
        at = np.empty_like(node)
        x = np.empty(node.shape, np.float32)
        right = np.empty(node.shape, bool)
        mask, shift = np.uint32(2 ** FEATURE_BITS - 1), np.uint32(FEATURE_BITS)
        # mode "clip": the indices are always in range, and with mode "raise" numpy buffers
        # ``out`` (a copy of every gather: six times slower)
        for level in range(self.depth):
            if level:
                np.take(self.nodes, node, out=rec, mode="clip")
            np.bitwise_and(link, mask, out=at)
            np.add(at, rows, out=at)
            np.take(x32, at, out=x, mode="clip")
            np.greater(x, threshold, out=right)
            np.right_shift(link, shift, out=node)
            np.add(node, right, out=node, casting="unsafe")
        # scikit-learn adds the trees' contributions one tree after the other, from zero: a
        # sum over the first axis of a (trees, rows) array adds row after row in that order
        # (numpy sums pairwise only along the contiguous axis)
        depths = np.add.reduce(np.take(self.value, node.T), axis=0)
        d = self.denom[key]
        return 2 ** (-np.divide(depths, d, out=np.ones_like(depths), where=d != 0))
