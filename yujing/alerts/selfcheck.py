"""The system's own fault checks (系统自身故障): samples in, the active faults out.

Pure: the watchdog process (yujing/watchdog/) reads Kafka, the gateway's /healthz and
the workers' and sink's /metrics, and hands each round here as a :class:`Sample` with
its time; :meth:`Checks.observe` keeps what the checks need to remember and
:meth:`Checks.faults` says what is wrong at ``now``, each fault with since when and the
figures that show it (``selfcheck_text`` words them for the duty room). Every check
waits for its condition to hold for a configured time, so a slow moment is not a page:

- stall: a partition of the worker group's input whose committed offset stood still
  while readings waited (its end offset grew, or the end is past the committed offset).
  Tansu under-reports end offsets (DESIGN.md) but they still grow with every batch
  produced, so growth, not lag, is what counts;
- unreachable: Kafka, the gateway, or a worker's or sink's metrics did not answer;
- gateway: its MQTT session down, or its envelopes failing with none stored;
- backlog: the sink's backlog above a limit and not shrinking;
- channel: failed deliveries in a row on one notification channel, or failures without
  a success for a while.

A counter that goes down means its process restarted: the check starts again from it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from yujing.alerts.selfcheck_settings import WatchdogSettings

PARTS = ("kafka", "worker", "gateway", "sink")


@dataclass(frozen=True)
class Probe:
    """One attempt to read a part: answered or not (and why not)."""

    ok: bool
    error: str = ""


@dataclass(frozen=True)
class GatewayFigures:
    """From the gateway's /healthz."""

    mqtt_enabled: bool
    mqtt_connected: bool
    envelopes: int
    failed_envelopes: int


@dataclass
class Sample:
    """What one round read; None where a part is not configured or was not reachable."""

    at_ms: int
    probes: dict[str, Probe] = field(default_factory=dict)          # part -> answered?
    offsets: dict[int, tuple[int | None, int]] | None = None       # partition -> (committed, end)
    gateway: GatewayFigures | None = None
    channels: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (sent, failed)
    backlog: float | None = None


@dataclass(frozen=True)
class Fault:
    """An active fault: ``key`` is stable while it lasts ("worker-stalled", "channel:json")."""

    key: str
    part: str
    since_ms: int
    facts: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def _at(t: int | None, now_ms: int) -> int:
    """``t``, or ``now_ms`` when unknown (0 is a time, not "unknown")."""
    return now_ms if t is None else t


class Held:
    """Since when a condition has held without a break; None while it does not."""

    def __init__(self) -> None:
        self.since: int | None = None

    def update(self, holds: bool, now_ms: int) -> int | None:
        if not holds:
            self.since = None
        elif self.since is None:
            self.since = now_ms
        return self.since

    def longer_than(self, ms: int, now_ms: int) -> bool:
        return self.since is not None and now_ms - self.since >= ms


@dataclass
class _Partition:
    committed: int
    end: int                        # at the committed offset's last move
    waiting_since: int | None
    latest: int = 0                 # the end offset seen last


class Stall:
    """Per partition: since when readings have waited while the committed offset stood still."""

    def __init__(self) -> None:
        self.parts: dict[int, _Partition] = {}

    def observe(self, offsets: dict[int, tuple[int | None, int]], now_ms: int) -> None:
        for p, (committed, end) in offsets.items():
            c = 0 if committed is None or committed < 0 else committed   # none: from the start
            st = self.parts.get(p)
            if st is None or c != st.committed or end < st.end:   # progress, first look, new topic
                self.parts[p] = _Partition(c, end, now_ms if c < end else None, end)
                continue
            st.latest = end
            if st.waiting_since is None and (end > st.end or c < end):
                st.waiting_since = now_ms

    def fault(self, after_ms: int, now_ms: int) -> Fault | None:
        stalled = {p: st for p, st in sorted(self.parts.items())
                   if st.waiting_since is not None and now_ms - st.waiting_since >= after_ms}
        if not stalled:
            return None
        since = min(_at(st.waiting_since, now_ms) for st in stalled.values())
        behind = sum(max(0, st.latest - st.committed) for st in stalled.values())
        return Fault("worker-stalled", "worker", since, {
            "partitions": list(stalled), "committed": {p: st.committed for p, st in stalled.items()},
            "behind": behind})


class Failing:
    """Totals of (successes, failures) of one thing: failures since its last success."""

    def __init__(self) -> None:
        self.totals: tuple[float, float] | None = None
        self.streak = 0.0
        self.first_failure: int | None = None

    def observe(self, ok: float, failed: float, now_ms: int) -> None:
        last = self.totals
        self.totals = (ok, failed)
        if last is None or ok < last[0] or failed < last[1]:     # first look, or a restart
            # failures and never a success: all of them are "since the last success" (a
            # labelled counter appears only at its first failure); else the order is unknown
            self.streak, self.first_failure = (failed, now_ms) if ok == 0 < failed else (0.0, None)
        elif ok > last[0]:            # a success in this round: the channel works
            self.streak, self.first_failure = 0.0, None
        elif failed > last[1]:
            self.streak += failed - last[1]
            if self.first_failure is None:
                self.first_failure = now_ms

    def failing(self, in_a_row: int | None, after_ms: int, now_ms: int) -> bool:
        if self.first_failure is None:
            return False
        return (in_a_row is not None and self.streak >= in_a_row) or \
            now_ms - self.first_failure >= after_ms


class Backlog:
    """A backlog above ``limit`` for ``after`` and not smaller than it was ``after`` ago."""

    def __init__(self) -> None:
        self.above = Held()
        self.history: deque[tuple[int, float]] = deque()

    def observe(self, value: float, limit: int, keep_ms: int, now_ms: int) -> None:
        self.above.update(value > limit, now_ms)
        self.history.append((now_ms, value))
        while len(self.history) > 2 and self.history[1][0] <= now_ms - keep_ms:
            self.history.popleft()

    def fault(self, after_ms: int, now_ms: int) -> Fault | None:
        if not self.above.longer_than(after_ms, now_ms) or not self.history:
            return None
        then = [v for t, v in self.history if t <= now_ms - after_ms]
        now_v = self.history[-1][1]
        if then and now_v < then[-1]:
            return None        # draining: the sink is catching up
        return Fault("sink-backlog", "sink", _at(self.above.since, now_ms),
                     {"backlog": now_v, "before": then[-1] if then else None})


class Checks:
    """Every check of one watchdog, fed one :class:`Sample` per round."""

    def __init__(self, s: WatchdogSettings) -> None:
        self.s = s
        self.unanswered = {part: Held() for part in PARTS}
        self.errors: dict[str, str] = {}
        self.stall = Stall()
        self.mqtt_down = Held()
        self.store = Failing()
        self.backlog = Backlog()
        self.channels: dict[str, Failing] = {}

    def observe(self, sample: Sample) -> None:
        now = sample.at_ms
        for part, held in self.unanswered.items():
            probe = sample.probes.get(part)
            held.update(probe is not None and not probe.ok, now)
            if probe is not None and not probe.ok:
                self.errors[part] = probe.error
        if sample.offsets is not None:
            self.stall.observe(sample.offsets, now)
        g = sample.gateway
        if g is not None:
            self.mqtt_down.update(g.mqtt_enabled and not g.mqtt_connected, now)
            self.store.observe(g.envelopes, g.failed_envelopes, now)
        if sample.backlog is not None:
            self.backlog.observe(sample.backlog, self.s.backlog_points,
                                 self.s.backlog_after.ms * 2, now)
        for name, (sent, failed) in sample.channels.items():
            self.channels.setdefault(name, Failing()).observe(sent, failed, now)

    def faults(self, now_ms: int) -> list[Fault]:
        s, out = self.s, []
        for part, held in self.unanswered.items():
            if held.longer_than(s.unreachable_after.ms, now_ms):
                out.append(Fault(f"{part}-unreachable", part, _at(held.since, now_ms),
                                 {"error": self.errors.get(part, "")}))
        stalled = self.stall.fault(s.stall_after.ms, now_ms)
        if stalled is not None and self.unanswered["kafka"].since is None:
            out.append(stalled)
        if self.mqtt_down.longer_than(s.mqtt_after.ms, now_ms):
            out.append(Fault("gateway-mqtt", "gateway", _at(self.mqtt_down.since, now_ms)))
        if self.store.failing(None, s.store_after.ms, now_ms):
            out.append(Fault("gateway-kafka", "gateway", _at(self.store.first_failure, now_ms),
                             {"failed": self.store.streak}))
        backlog = self.backlog.fault(s.backlog_after.ms, now_ms)
        if backlog is not None:
            out.append(backlog)
        for name, ch in sorted(self.channels.items()):
            if ch.failing(s.channel_failures, s.channel_after.ms, now_ms):
                out.append(Fault(f"channel:{name}", "channel", _at(ch.first_failure, now_ms),
                                 {"channel": name, "failed": ch.streak}))
        return out
