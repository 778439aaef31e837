"""``yujing demo``: the whole stack plus a simulated rainstorm, shown live in the terminal.

The demo is an honest end-to-end run: readings go over real MQTT into the
gateway, through Kafka to the Faust worker, and notifications leave through
apprise to a local webhook receiver (``json://``) that this process runs, so
what the terminal shows is what a duty officer's channel would have received.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import orjson
import yaml
from aiohttp import web
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from yujing import clock
from yujing.config import Config, load_config
from yujing.connectors.embedded import free_port
from yujing.connectors.kafka import consumer as kafka_consumer
from yujing.domain import EventKind, Grade, WarningEvent
from yujing.envelope import count
from yujing.sim.publisher import Publisher
from yujing.sim.scenario import GAUGES, HOURS, rainstorm
from yujing.stations import load_registry
from yujing.supervisor import Supervisor

_STYLE = {Grade.BLUE: "bold blue", Grade.YELLOW: "bold yellow", Grade.ORANGE: "bold dark_orange",
          Grade.RED: "bold red"}


def local_time(ts_ms: int, tz: ZoneInfo) -> str:
    """Wall time in the configured zone (``timezone:``), as the demo's lines show it."""
    return clock.local_time(ts_ms, tz.key)


@dataclass
class DemoState:
    tz: ZoneInfo
    readings_in_kafka: int = 0
    published: int = 0
    sim_ts: int = 0
    events: list[WarningEvent] = field(default_factory=list)
    notifications: list[dict] = field(default_factory=list)
    active: dict[str, Grade] = field(default_factory=dict)
    book_ids: dict[str, str] = field(default_factory=dict)   # episode -> the book's incident

    def incident_of(self, episode: str) -> str:
        """The book's id of the episode's incident once the book has published it, else
        the episode (the worker's name for it)."""
        return self.book_ids.get(episode, episode)

    def line(self, rate: float) -> Text:
        by = Counter(self.active.values())
        t = Text(f"sim {local_time(self.sim_ts, self.tz) if self.sim_ts else '-':16}  "
                 f"published {self.published:6d}  in Kafka {self.readings_in_kafka:6d}  "
                 f"{rate:7.0f} readings/s  active: ")
        for g in (Grade.RED, Grade.ORANGE, Grade.YELLOW, Grade.BLUE):
            t.append(f"{g.zh} {by.get(g, 0)}  ", style=_STYLE[g])
        t.append(f" notifications {len(self.notifications)}")
        return t


def _demo_config(cfg: Config, receiver_port: int, workdir: Path) -> Path:
    data = cfg.model_dump(mode="json")
    url = f"json://127.0.0.1:{receiver_port}/notify"
    data["notify"]["default"] = [url]
    data["notify"]["grades"] = {}
    data["notify"]["cleared"] = None
    data["worker"]["nodata_clock"] = "event"  # the storm runs in accelerated event time
    data["worker"]["nodata_check_s"] = 1.0
    data["worker"]["data_dir"] = str(workdir / "worker")
    # 12 simulated hours pass in about a minute: group and tick at the same speed, or a
    # 30 s group interval would hold a message for six simulated hours
    data["alerts"]["grouping"]["wait"] = "1s"
    data["alerts"]["grouping"]["interval"] = "1s"
    data["alerts"]["tick"] = "1s"
    if cfg.http.port and _port_busy(cfg.http.port):
        data["http"]["port"] = free_port()
    if cfg.worker.registry is not None:
        # Only the gauges the scenario feeds: every other registered station would
        # (rightly) raise a no-data warning in a drill that does not simulate it.
        reg = load_registry(cfg.worker.registry)
        keep = [st.model_dump(mode="json", exclude_defaults=True)
                for sid, st in reg.stations.items() if sid in GAUGES]
        reg_path = workdir / "demo-stations.yaml"
        reg_path.write_text(yaml.safe_dump({"stations": keep}, allow_unicode=True), encoding="utf-8")
        data["worker"]["registry"] = str(reg_path)
    path = workdir / "demo-config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def _watch(bootstrap: str, cfg: Config, state: DemoState, console: Console,
                 stop: asyncio.Event) -> None:
    """Consume warnings and count readings in Kafka, printing each warning event; learn
    the book's incident id of each episode from ``yujing.incidents``."""
    t = cfg.kafka.topics
    consumer = kafka_consumer(bootstrap, t.warnings, t.readings, t.incidents,
                              security=cfg.kafka.security, group_id=None,
                              auto_offset_reset="earliest")
    await consumer.start()
    decoder = msgspec.json.Decoder(WarningEvent)
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for rec in records:
                    if tp.topic == t.readings:
                        state.readings_in_kafka += count(rec.value)
                        continue
                    if tp.topic == t.incidents:
                        _learn_ids(state, rec.value)
                        continue
                    ev = decoder.decode(rec.value)
                    if ev.kind == EventKind.CLEARED and ev.key not in state.active:
                        continue  # a fresh worker's "nothing to clear" for the book: not news
                    if ev.kind == EventKind.PENDING:
                        continue
                    state.events.append(ev)
                    if ev.kind == EventKind.CLEARED:
                        state.active.pop(ev.key, None)
                    else:
                        state.active[ev.key] = Grade(ev.grade)
                    console.print(event_line(ev, state.tz))
    finally:
        await consumer.stop()


def event_line(ev: WarningEvent, tz: ZoneInfo) -> Text:
    """One warning event as the demo prints it: the reason in words (the expression is the
    analysts' detail, on the event and in the console)."""
    g = Grade(ev.grade)
    return Text(f"{local_time(ev.ts, tz)}  {ev.kind.value:8}  {g.zh}{g.label:>7}  "
                f"{ev.town} {ev.station_name or ev.station}  {ev.rule_name}  "
                f"{ev.reason_zh or ev.reason}", style=_STYLE.get(g, ""))


def _learn_ids(state: DemoState, raw: bytes | None) -> None:
    """An incident record of the book (or a silence, or a tombstone: nothing to learn)."""
    rec = orjson.loads(raw) if raw else {}
    if isinstance(rec, dict) and "sources" in rec and "incident" in rec:
        for episode in rec["sources"]:
            state.book_ids[episode] = rec["incident"]


async def _receiver(state: DemoState, console: Console, port: int) -> web.AppRunner:
    async def notify(request: web.Request) -> web.Response:
        msg = await request.json()
        state.notifications.append(msg)
        console.print(Text(f"    → notified: {msg.get('title', '')}", style="dim"))
        for line in str(msg.get("message", "")).splitlines()[1:4]:
            if line[:2].rstrip(".").isdigit():  # the warnings listed in a grouped message
                console.print(Text(f"       {line[:110]}", style="dim"))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/notify", notify)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def _top_reason(evs: list[WarningEvent]) -> str:
    """Why the incident reached its highest grade, in words."""
    graded = [e for e in evs if e.kind != EventKind.CLEARED] or evs
    top = max(graded, key=lambda e: int(e.grade))
    return top.reason_zh or top.reason


def _summary(state: DemoState, console: Console) -> None:
    table = Table(title="Warnings in this run")
    zone = state.tz.key
    for col in ("incident", "station", "town", "rule", "highest", f"raised ({zone})",
                f"cleared ({zone})", "events", "依据 (highest)"):
        table.add_column(col)
    incidents: dict[str, list[WarningEvent]] = {}
    for ev in state.events:
        incidents.setdefault(state.incident_of(ev.episode), []).append(ev)
    for inc, evs in incidents.items():
        top = Grade(max(e.grade for e in evs))
        cleared = next((e for e in evs if e.kind == EventKind.CLEARED), None)
        table.add_row(inc, evs[0].station_name or evs[0].station, evs[0].town, evs[0].rule_name,
                      Text(f"{top.zh} {top.label}", style=_STYLE.get(top, "")),
                      local_time(evs[0].ts, state.tz),
                      local_time(cleared.ts, state.tz) if cleared else "active",
                      str(len(evs)), _top_reason(evs))
    console.print(table)
    console.print(f"readings published {state.published}, in Kafka {state.readings_in_kafka}, "
                  f"warning events {len(state.events)}, notifications delivered "
                  f"{len(state.notifications)}")


def run_demo(cfg: Config, config_path: Path | None, duration_s: float) -> int:
    console = Console()
    state = DemoState(cfg.tz)
    workdir = Path(tempfile.mkdtemp(prefix="yujing-demo-"))
    receiver_port = free_port()
    demo_cfg_path = _demo_config(cfg, receiver_port, workdir)
    demo_cfg = load_config(demo_cfg_path)
    sup = Supervisor(demo_cfg, demo_cfg_path, log_dir=workdir / "logs")
    interrupted = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    signal.signal(signal.SIGTERM, lambda *_: interrupted.set())
    console.print(f"[bold]Yujing demo[/]: a {HOURS} h rainstorm over Dongguan in {duration_s:.0f} s "
                  f"(logs in {workdir / 'logs'})")
    try:
        ends = sup.start(quiet_children=True)
    except RuntimeError as exc:
        console.print(f"[red]demo failed to start: {exc}[/]")
        return 1
    try:
        return asyncio.run(_run(sup, ends, demo_cfg, state, console, duration_s, receiver_port,
                                interrupted))
    finally:
        sup.stop()


async def _run(sup: Supervisor, ends, cfg: Config, state: DemoState, console: Console,
               duration_s: float, receiver_port: int, interrupted: threading.Event) -> int:
    runner = await _receiver(state, console, receiver_port)
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch(ends.kafka, cfg, state, console, stop))
    start = clock.now_ms() - HOURS * 3_600_000  # the storm happened over the last 12 hours
    steps = rainstorm(start - start % 300_000)
    pub = Publisher(ends.mqtt)
    loop = asyncio.get_running_loop()

    def on_step(i: int, step) -> None:
        state.sim_ts = step.ts
        state.published = pub.published

    publish = loop.run_in_executor(None, pub.run, steps, duration_s, on_step)
    last, last_n = clock.monotonic(), 0
    rate = 0.0
    with Live(state.line(0), console=console, refresh_per_second=4, transient=True) as live:
        while not publish.done() and not interrupted.is_set():
            await asyncio.sleep(0.25)
            now = clock.monotonic()
            if now - last >= 1:
                rate = (state.readings_in_kafka - last_n) / (now - last)
                last, last_n = now, state.readings_in_kafka
            live.update(state.line(rate))
            if sup.failed():
                break
        # let the worker finish: wait for all readings in Kafka and a quiet spell of events
        quiet_since, seen = clock.monotonic(), len(state.events)
        deadline = clock.monotonic() + 60
        while clock.monotonic() < deadline and not interrupted.is_set() and not sup.failed():
            await asyncio.sleep(0.25)
            live.update(state.line(0))
            if len(state.events) != seen or len(state.notifications) < len(state.events):
                quiet_since, seen = clock.monotonic(), len(state.events)
            if state.readings_in_kafka >= pub.published and clock.monotonic() - quiet_since > 6:
                break
    pub.close()
    stop.set()
    await watcher
    await runner.cleanup()
    _summary(state, console)
    dead = sup.failed()
    if dead is not None:
        console.print(f"[red]{dead.name} died (exit {dead.proc.returncode}); see its log[/]")
        return 1
    if interrupted.is_set():
        return 130
    grades = {Grade(e.grade) for e in state.events if e.rule != "nodata"}
    if not {Grade.ORANGE, Grade.RED} <= grades:
        console.print("[red]expected an orange and a red warning; the pipeline did not deliver them[/]")
        return 1
    return 0
