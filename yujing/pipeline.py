"""The worker's core without Faust: envelope columns → findings → warning events.

The Faust agent, the in-memory pipeline tests and the backtest all run this
same code, so a rule behaves the same in every one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .alerts.lifecycle import Lifecycle, RuleMeta
from .domain import Reading, WarningEvent
from .envelope import Columns
from .registry import Registry
from .rules.engine import Engine
from .rules.schema import Rule


@dataclass
class Outcome:
    events: list[WarningEvent]
    late: list[Reading]


class Pipeline:
    def __init__(self, rules: list[Rule], registry: Registry | None = None,
                 lateness_ms: int = 3_600_000) -> None:
        self.engine = Engine(rules, lateness_ms)
        self.lifecycle = Lifecycle()
        self.registry = registry or Registry([])
        self.meta = {r.id: RuleMeta(r.name, r.hazard) for r in rules}

    def handle(self, cols: Columns, now_ms: int) -> Outcome:
        findings, late_idx = self.engine.process(cols.stations, cols.si, cols.metrics, cols.mi,
                                                 cols.ts, cols.val)
        events = []
        for f in findings:
            ev = self.lifecycle.apply(f, self.meta[f.rule], now_ms)
            if ev is not None:
                st = self.registry.get(ev.station)
                if st is not None:
                    ev = _with_station(ev, st.name, st.town)
                events.append(ev)
        return Outcome(events, [cols.reading(i) for i in late_idx])


def _with_station(ev: WarningEvent, name: str, town: str) -> WarningEvent:
    import msgspec
    return msgspec.structs.replace(ev, station_name=name, town=town)
