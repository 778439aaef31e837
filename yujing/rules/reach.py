"""How far back before an evaluation point the rules read each metric.

A chunk's window aggregates are computed on the readings its points can see, not
on everything a series retains: a series keeps the longest window of its rules
plus the lateness (and for ``for:`` and held grades, their duration), but a point
at ``t`` only reads ``(t - W, t]`` for the windows ``W`` of the nodes that read the
metric. ``Reach`` says, per metric, that time span and how many readings at or
before the point a node needs whatever their age (``jump`` the newest two,
``last(x)`` the newest one; ``days_since`` reads the retained series itself,
``SeriesStore.days_since``). A metric read by an anomaly model,
or by a node not listed here, is read whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from yujing.rules import tree as ex

WHOLE = -1  # the metric is read whole (anomaly models score the retained series)


@dataclass
class Reach:
    ms: int = 0      # the longest window ending at a point
    readings: int = 2  # readings at or before the point needed whatever their age


def of_trees(trees: list[object], whole: set[str]) -> dict[str, Reach]:
    """Metric → its reach over ``trees``; the metrics in ``whole`` are read whole."""
    out: dict[str, Reach] = {}

    def need(metric: str, ms: int) -> None:
        r = out.setdefault(metric, Reach())
        r.ms = WHOLE if WHOLE in (r.ms, ms) else max(r.ms, ms)

    def walk(node: object) -> None:
        if isinstance(node, ex.Agg):
            need(node.metric, 0 if node.window_ms >= ex.UNBOUNDED_MS and node.fn == "last"
                 else WHOLE if node.window_ms >= ex.UNBOUNDED_MS else node.window_ms)
        elif isinstance(node, ex.SeriesFn):   # days_since reads the store, not the layout
            need(node.metric, 0)
        elif isinstance(node, ex.Trend):
            need(node.metric, node.window_ms)
        for child in ex.children(node):
            walk(child)

    for t in trees:
        walk(t)
    for metric in whole:
        need(metric, WHOLE)
    return out
