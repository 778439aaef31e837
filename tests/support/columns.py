"""Readings as the rule engine takes them: dictionary-encoded numpy columns."""

from __future__ import annotations

import numpy as np

from yujing.domain import Reading


def columns(readings: list[Reading]):
    """Dictionary-encoded columns, in the order the readings are given (arrival order)."""
    stations: dict[str, int] = {}
    metrics: dict[str, int] = {}
    si = [stations.setdefault(r.station, len(stations)) for r in readings]
    mi = [metrics.setdefault(r.metric, len(metrics)) for r in readings]
    return (list(stations), np.asarray(si, np.uint32), list(metrics), np.asarray(mi, np.uint32),
            np.asarray([r.ts for r in readings], np.int64),
            np.asarray([r.value for r in readings], np.float64))
