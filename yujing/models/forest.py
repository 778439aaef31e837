"""IsolationForests as flat numpy arrays: every tree of every key walked at once.

Why: scikit-learn's ``score_samples`` calls each tree's ``apply`` in turn, about ten
microseconds of Python per tree and call. A worker's envelope holds a few readings of
each of many stations, each station with its own forest, so the per-call cost was the
whole cost (2.5 k readings/s). Here the nodes of all the forests of a detector are laid
end to end in one array and all (reading, tree) pairs descend one level per numpy step;
a forest of 256-sample trees is at most 8 levels deep.

Each node is one signed 64-bit record: its threshold as an order-preserving integer in
the high half (:func:`float32_key`), its first child and feature in the low half
(``child << 3 | feature``). A reading's feature is looked up as ``key(x) << 32``, so
``x > threshold`` is one comparison of two int64 (the low half never changes the
outcome), and a level is eight numpy calls on contiguous (readings × trees) int64
arrays, written into buffers allocated once per call (the former float32 and link
halves of a record were strided views, two to three times slower an operation).
The gathers use ``mode="clip"``: with numpy's default ``"raise"`` an ``out`` buffer is
copied on every call (six times slower a gather).

Layout: a key's nodes are ordered by level, then tree, then breadth first within the
tree (a node's two children side by side). A level's gather then reads one band of the
key's nodes, a few kilobytes that stay in cache across the key's readings, instead of
a few nodes out of every tree's whole range. Readings × trees, not trees × readings: the
readings of one station (sorted together) reuse its forest while it is in cache.

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
FEATURE_BITS = 3  # the low half of a record: first child << 3 | feature
CHILD_MASK = 2 ** (32 - FEATURE_BITS) - 1


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


def float32_key(f: np.ndarray) -> np.ndarray:
    """Each float32 as an int64 in [-2**31, 2**31) with the same order: ``a > b`` exactly
    when ``key(a) > key(b)``, for every pair of float32 that are not NaN. The sign-magnitude
    bits of a negative float become two's complement; -0.0 is made +0.0 first (as floats
    they are equal)."""
    f = np.asarray(f, dtype=np.float32) + np.float32(0.0)  # -0.0 + 0.0 is +0.0
    bits = f.view(np.int32).astype(np.int64)
    return np.where(bits < 0, bits ^ 0x7FFFFFFF, bits)


def breadth_first(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Node ids in breadth-first order with each node's two children adjacent, and the
    level of each of them (the root's is 0)."""
    level = np.zeros(1, dtype=np.int64)
    parts, depth = [], []
    while level.size:
        parts.append(level)
        depth.append(np.full(level.size, len(depth)))
        inner = level[left[level] != LEAF]
        level = np.stack((left[inner], right[inner]), axis=1).reshape(-1)
    return np.concatenate(parts), np.concatenate(depth)


def flatten_tree(tree: Any, value: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One tree breadth first: thresholds (float32), features, first children (a leaf
    its own index), leaf values and levels; node ids are the tree's own, from 0."""
    order, level = breadth_first(tree.children_left, tree.children_right)
    new = np.empty(order.size, dtype=np.int64)
    new[order] = np.arange(order.size)
    left = tree.children_left[order]
    leaf = left == LEAF
    # a leaf never goes right (threshold +inf) and its "first child" is itself
    threshold = np.where(leaf, np.float32(np.inf), float32_below(tree.threshold[order]))
    feature = np.where(leaf, 0, tree.feature[order]).astype(np.int64)
    child = np.where(leaf, np.arange(order.size), new[np.where(leaf, 0, left)])
    return threshold.astype(np.float32), feature, child, value[order], level


def flatten_forest(forest: Any, base: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """A forest's records (numbered from ``base``, level by level across its trees), leaf
    values, roots and the depth of its deepest tree."""
    width = int(forest.n_features_in_)
    if any(not np.array_equal(f, np.arange(width)) for f in forest.estimators_features_):
        raise ValueError("forest bank: a forest with feature subsampling "
                         "(max_features < 1.0) is not supported")
    lengths = getattr(forest, "_decision_path_lengths", None)
    averages = getattr(forest, "_average_path_length_per_tree", None)
    parts, starts, size, depth = [], [], 0, 0
    for t, est in enumerate(forest.estimators_):
        tree = est.tree_
        d = lengths[t] if lengths is not None else tree.compute_node_depths()
        avg = averages[t] if averages is not None else average_path_length(tree.n_node_samples)
        thr, feat, child, val, level = flatten_tree(tree, d + avg - 1.0)
        parts.append((thr, feat, child + size, val, level))
        starts.append(size)
        size += thr.size
        depth = max(depth, int(tree.max_depth))
    thr, feat, child, val, level = (np.concatenate(p) for p in zip(*parts))
    # level first, then tree, then breadth first: children stay side by side
    order = np.argsort(level, kind="stable")
    new = np.empty(size, dtype=np.int64)
    new[order] = base + np.arange(size)
    child = new[child[order]]
    records = (float32_key(thr[order]) << 32) | (child << FEATURE_BITS) | feat[order]
    return records, val[order], new[np.array(starts, dtype=np.int64)], depth


class ForestBank:
    """The forests of several keys, flattened: ``raw(X, key)`` is ``-score_samples``.

    ``forests`` are fitted ``IsolationForest`` objects without feature subsampling (the
    detector's: ``max_features`` 1.0); key ``k`` of ``raw`` is ``forests[k]``.
    """

    def __init__(self, forests: Sequence[Any]) -> None:
        records, values, roots, denom = [], [], [], []
        base = 0
        self.depth = 0
        for forest in forests:
            rec, val, root, depth = flatten_forest(forest, base)
            records.append(rec)
            values.append(val)
            roots.append(root)
            base += rec.size
            self.depth = max(self.depth, depth)
            denom.append(len(forest.estimators_) * average_path_length([forest._max_samples])[0])
        if base > CHILD_MASK:
            raise ValueError("forest bank: too many nodes for one bank")
        self.trees = max((r.size for r in roots), default=0)
        if any(r.size != self.trees for r in roots):
            raise ValueError("forest bank: every forest must have the same number of trees")
        self.nodes = np.concatenate(records) if records else np.empty(0, np.int64)
        self.value = np.concatenate(values) if values else np.empty(0)
        self.roots = np.stack(roots) if roots else np.empty((0, 0), np.intp)
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
        # rows padded to 8 features: feature f of row i sits at 8·i + f, as key << 32
        xk = np.zeros((n, 2 ** FEATURE_BITS), np.int64)
        xk[:, :width] = float32_key(X.astype(np.float32)) << 32
        xk = xk.reshape(-1)
        # (rows, trees): a row's trees one after the other, rows of one key side by side
        # level 0 is every tree's root: its records are one row per key, copied whole
        rec = self.root_records[key]
        rows = (np.arange(n, dtype=np.intp) * 2 ** FEATURE_BITS)[:, None]
        node = self.roots[key] if self.depth == 0 else np.empty(rec.shape, np.intp)
        at = np.empty_like(node)
        x = np.empty(node.shape, np.int64)
        right = np.empty(node.shape, bool)
        for level in range(self.depth):
            if level:
                np.take(self.nodes, node, out=rec, mode="clip")
            np.bitwise_and(rec, 2 ** FEATURE_BITS - 1, out=at)
            np.add(at, rows, out=at)
            np.take(xk, at, out=x, mode="clip")
            np.greater(x, rec, out=right)  # key(x) > key(threshold): the low half is moot
            np.right_shift(rec, FEATURE_BITS, out=node)
            np.bitwise_and(node, CHILD_MASK, out=node)
            np.add(node, right, out=node)
        # scikit-learn adds the trees' contributions one tree after the other, from zero: a
        # sum over the first axis of a (trees, rows) array adds row after row in that order
        # (numpy sums pairwise only along the contiguous axis)
        leaf = np.take(self.value, np.ascontiguousarray(node.T), mode="clip")
        depths = np.add.reduce(leaf, axis=0)
        d = self.denom[key]
        return 2 ** (-np.divide(depths, d, out=np.ones_like(depths), where=d != 0))
