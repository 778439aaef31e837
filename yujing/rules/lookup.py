"""What the rules read about stations from the registry, as arrays by station id.

``station.<field>`` numbers, the group codes ``count_stations`` groups by, and
whether each rule's selector picks a station are looked up once per station and
kept until the registry is replaced.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from yujing.rules.arrays import Grow
from yujing.rules.compiled import CompiledRule


class StationLookup:
    def __init__(self, registry: Any | None, names: list[str]) -> None:
        """``names`` is the engine's list of station names by id (shared, it grows)."""
        self.registry = registry
        self.names = names
        self._fields: dict[str, Grow] = {}
        self._groups: dict[str, tuple[Grow, dict[str, int]]] = {}
        self._eligible: dict[str, Grow] = {}

    def entry(self, name: str) -> Any | None:
        return self.registry.get(name) if self.registry is not None else None

    def reset(self, registry: Any | None) -> None:
        """Use a reloaded registry: everything is looked up again."""
        self.registry = registry
        self._fields.clear()
        self._groups.clear()
        self._eligible.clear()

    def add(self, i: int) -> None:
        """A new station: fill in the tables built so far."""
        entry = self.entry(self.names[i])
        for fname, arr in self._fields.items():
            arr.ensure(i + 1)[i] = field_value(entry, fname)
        for gname, (arr, codes) in self._groups.items():
            arr.ensure(i + 1)[i] = group_code(entry, gname, codes)

    def field(self, name: str) -> np.ndarray:
        """``station.<name>`` of every station (NaN where missing)."""
        if name not in self._fields:
            arr = Grow(np.nan, np.float64)
            a = arr.ensure(len(self.names))
            for i, s in enumerate(self.names):
                a[i] = field_value(self.entry(s), name)
            self._fields[name] = arr
        return self._fields[name].ensure(len(self.names))

    def group(self, name: str) -> np.ndarray:
        """A code per distinct value of registry field ``name`` (-1 where missing)."""
        if name not in self._groups:
            arr, codes = Grow(-1, np.int64), {}
            a = arr.ensure(len(self.names))
            for i, s in enumerate(self.names):
                a[i] = group_code(self.entry(s), name, codes)
            self._groups[name] = (arr, codes)
        return self._groups[name][0].ensure(len(self.names))

    def selected(self, c: CompiledRule, st: np.ndarray) -> np.ndarray:
        """Does ``c`` watch each station id in ``st``?"""
        grow = self._eligible.get(c.id)
        if grow is None:  # not setdefault: that would build a new Grow on every call
            grow = self._eligible[c.id] = Grow(-1, np.int8)
        elig = grow.ensure(len(self.names))
        known = elig[st]
        if known.min(initial=0) >= 0:  # every station decided already (the usual chunk)
            return known == 1
        cand = np.unique(st)
        for s in cand[elig[cand] < 0].tolist():
            elig[s] = 1 if c.eligible(self.names[s], self.entry(self.names[s])) else 0
        return elig[st] == 1


def field_value(entry: Any | None, name: str) -> float:
    if entry is None:
        return np.nan
    thresholds = getattr(entry, "thresholds", None) or {}
    if name in thresholds:
        return float(thresholds[name])
    value = getattr(entry, name, None)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else np.nan


def group_code(entry: Any | None, name: str, codes: dict[str, int]) -> int:
    if entry is None:
        return -1
    value = getattr(entry, name, None)
    if value in (None, ""):
        return -1
    return codes.setdefault(str(value), len(codes))
