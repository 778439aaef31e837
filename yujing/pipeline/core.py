"""The worker's core without Faust: envelope columns → findings → warning events.

The Faust agent, the in-memory pipeline tests and the backtest all run this
same code, so a rule behaves the same in every one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from yujing.alerts.lifecycle import Lifecycle, RuleMeta
from yujing.clock import local_time
from yujing.domain import Grade, Reading, WarningEvent, warning_key
from yujing.durations import parse_duration_ms
from yujing.envelope import Columns
from yujing.models.stream import StreamScorer
from yujing.pipeline.held import OpenWarnings
from yujing.pipeline.models_view import ModelsView
from yujing.rules import nodata
from yujing.rules.engine import Engine
from yujing.rules.localtime import DEFAULT_ZONE
from yujing.rules.messages import KIND_ZH, render
from yujing.rules.schema import Rule
from yujing.stations import Registry


@dataclass
class Outcome:
    events: list[WarningEvent]
    late: list[Reading]


SNAPSHOT_VERSION = 1
_snap_encoder = msgspec.msgpack.Encoder()


class Pipeline:
    """``owns`` limits the no-data check to some stations (the worker runs one pipeline per
    Kafka partition, each watching the stations of its partition); ``models`` shares one
    :class:`ModelsView` between pipelines instead of opening ``models_dir`` again."""

    def __init__(self, rules: list[Rule], registry: Registry | None = None,
                 lateness_ms: int = 3_600_000, models_dir: Any | None = None,
                 owns: Callable[[str], bool] | None = None, models: Any | None = None,
                 tz: str = DEFAULT_ZONE) -> None:
        self.registry = registry or Registry([])
        self.models = models if models is not None else (
            ModelsView(models_dir) if models_dir is not None else None)
        self.engine = Engine(rules, lateness_ms, self.registry, self.models, scorer=StreamScorer(),
                             tz=tz)
        self.tz = tz  # the duty officers' zone: rules' hour()/month() and {time} in messages
        self.lifecycle = Lifecycle(tz)
        self.held = OpenWarnings()  # open warnings per station: a silent gauge keeps their grade
        self.meta = {r.id: RuleMeta(r.name, r.hazard) for r in rules}
        self.templates = {r.id: r.message for r in rules if r.message}
        self.meta[nodata.RULE_ID] = RuleMeta("数据中断", "nodata")
        self.owns = owns
        self.nodata = nodata.NoDataTracker(self._intervals(self.registry))
        self.watermark = 0  # newest event time seen: the event-time clock for no-data checks
        self._wall_start: int | None = None
        self.nodata_grace_ms = 120_000

    def handle(self, cols: Columns, now_ms: int) -> Outcome:
        cols, forecasts = cols.split()  # forecasts are no readings: not seen, not the clock
        findings, late_idx = self.engine.process(cols.stations, cols.si, cols.metrics, cols.mi,
                                                 cols.ts, cols.val, forecasts)
        self.held.begin(cols)
        events = self._events(self._hold(findings, cols), now_ms)
        if len(cols):
            self.nodata.observe(cols.stations, cols.si, cols.ts, self.held.context)
            self.held.record(cols)
            self.watermark = max(self.watermark, int(cols.ts.max()))
        self.held.begin(None)
        return Outcome(events, [cols.reading(i) for i in late_idx])

    def _hold(self, findings: list, cols: Columns) -> list:
        """Drop what missing data says about an open warning: a clear or a lower grade
        judged at a silent station after its last reading (a timed rule's window emptying).
        The warning holds until data returns (the rule then judges it afresh) or a person
        clears it."""
        if not self.nodata.offline or not findings:
            return findings
        kept = []
        for f in findings:
            if f.station in self.nodata.offline and f.ts > self.nodata.last_seen.get(f.station, 0) \
                    and f.ts < _first_reading(cols, f.station):
                cur = self.lifecycle.active.get(warning_key(f.rule, f.station))
                if cur is not None and not cur.pending and (f.clear or f.grade < cur.grade):
                    self.engine.forget_outcome(f.rule, f.station)
                    continue
            kept.append(f)
        return kept

    def check_nodata(self, now_ms: int, clock: str = "wall",
                     owns=lambda station: True) -> list[WarningEvent]:
        """Deadman check, on the wall clock or on the stream's event time.

        ``wall`` is for live stations: silence is measured against ``now_ms``.
        ``event`` measures it against the newest event time seen (the
        watermark), for replays and the accelerated demo, where event time
        runs apart from the wall clock.
        """
        at = now_ms if clock == "wall" else self.watermark
        if not at:
            return []
        if clock == "wall":
            # After a (re)start the worker may still be reading a backlog: judge silence only
            # after a grace period, and time never-reported stations from the first check,
            # not from old backlog data, so a restart never pages anyone about silence.
            if self._wall_start is None:
                self._wall_start = now_ms
                self.nodata.watch_from = max(self.nodata.watch_from or 0, now_ms)
            if now_ms - self._wall_start < self.nodata_grace_ms:
                return []
        return self._events(self.nodata.check(at, owns, self.held.context), now_ms)

    def _events(self, findings: list, now_ms: int) -> list[WarningEvent]:
        events = []
        for f in findings:
            ev = self.lifecycle.apply(f, self.meta[f.rule], now_ms)
            if ev is not None:
                self.held.note(ev)
                events.append(self._describe(ev))
        return events

    def set_registry(self, registry: Registry) -> None:
        """Hot reload of the station registry: rules see new selectors and station fields,
        the no-data check the new intervals; window and warning state are kept."""
        self.registry = registry
        self.engine.set_registry(registry)
        self.nodata.intervals_ms = self._intervals(registry)

    def _intervals(self, registry: Registry) -> dict[str, int]:
        return {s.id: parse_duration_ms(s.expected_interval)
                for s in registry.stations.values()
                if s.expected_interval and (self.owns is None or self.owns(s.id))}

    def snapshot(self) -> bytes:
        """Window, rule, warning and no-data state as one msgpack document (uncompressed).

        Restored into a fresh Pipeline of the same configuration, it continues exactly
        where this one stands: the same readings afterwards give the same events, with the
        same episodes. The wall-clock start (no-data grace period) is not part of it:
        a restarted worker waits out its grace period again.
        """
        return _snap_encoder.encode({
            "v": SNAPSHOT_VERSION, "watermark": self.watermark,
            "engine": self.engine.snapshot(), "lifecycle": self.lifecycle.snapshot(),
            "nodata": self.nodata.snapshot(), "held": self.held.snapshot()})

    def restore(self, raw: bytes) -> None:
        """Load :meth:`snapshot` into this fresh pipeline (ValueError on a foreign document)."""
        try:
            snap = msgspec.msgpack.decode(raw)
        except msgspec.DecodeError as exc:
            raise ValueError(f"not a pipeline snapshot: {exc}") from None
        version = snap.get("v") if isinstance(snap, dict) else None
        if version != SNAPSHOT_VERSION:
            raise ValueError(f"pipeline snapshot version {version} is not {SNAPSHOT_VERSION}")
        self.engine.restore(snap["engine"])
        self.lifecycle.restore(snap["lifecycle"])
        self.nodata.restore(snap["nodata"])
        self.held.restore(snap.get("held"), self.lifecycle.active)  # absent before issue 15
        self.watermark = int(snap["watermark"])

    def reload_models(self) -> list[str]:
        """Pick up new model versions from the registry without a restart (worker timer)."""
        if self.models is None:
            return []
        changed = self.models.reload()
        if changed:
            self.engine.set_models(self.models)
        return changed

    def _describe(self, ev: WarningEvent) -> WarningEvent:
        """Add the station's name and town, and the rule's own message if it has one."""
        st = self.registry.get(ev.station)
        name, town, plan = (st.name, st.town, st.plan) if st is not None else ("", "", "")
        enterprise = st.enterprise if st is not None else ""
        messages = {}
        for lang, text in self.templates.get(ev.rule, {}).items():
            g = Grade(ev.grade)
            messages[lang] = render(text, {
                "station": ev.station, "station_name": name or ev.station, "town": town,
                "rule": ev.rule, "rule_name": ev.rule_name, "grade": g.label, "grade_zh": g.zh,
                "grade_roman": g.roman, "window": ev.window,
                "value": float("nan") if ev.value is None else ev.value,
                "time": local_time(ev.ts, self.tz), "plan": plan,
                "reason": (ev.reason_en if lang == "en" else ev.reason_zh) or ev.reason,
                "incident": ev.episode, "kind": ev.kind.value,
                "kind_zh": KIND_ZH.get(ev.kind.value, ev.kind.value)})
        return msgspec.structs.replace(ev, station_name=name, town=town, enterprise=enterprise,
                                       messages=messages)




def _first_reading(cols: Columns, station: str) -> int:
    """The event time of ``station``'s first reading in ``cols`` (beyond any time if none)."""
    if station in cols.stations:
        ts = cols.ts[cols.si == cols.stations.index(station)]
        if ts.size:
            return int(ts.min())
    return 2 ** 62
