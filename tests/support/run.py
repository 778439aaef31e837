"""`yujing run` as a subprocess (config writer, start, stop) and a webhook receiver that
apprise's json:// posts to. The fixtures built on them are in tests/conftest.py."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from aiohttp import web

from yujing.connectors.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Receiver:
    """A real HTTP server that apprise's json:// posts to."""

    port: int
    messages: list[dict] = field(default_factory=list)

    async def wait_for(self, pred, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.messages:
                if pred(m):
                    return m
            await asyncio.sleep(0.2)
        raise AssertionError(f"no matching notification in {timeout}s; got {self.messages}")


@dataclass
class Running:
    proc: subprocess.Popen
    log: Path
    http: str
    mqtt_port: int
    kafka: str = ""
    pids: dict[str, int] = field(default_factory=dict)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def write_config(tmp: Path, receiver_port: int, **over) -> tuple[Path, int, int]:
    http_port, mqtt_port = free_port(), free_port()
    cfg = {
        "kafka": {"partitions": 2},
        "mqtt": {"embedded_port": mqtt_port},
        "http": {"port": http_port},
        "gateway": {"linger_ms": 20},
        "worker": {"rules_dir": str(ROOT / "rules"), "registry": str(ROOT / "stations.yaml"),
                   "data_dir": str(tmp / "worker"), "nodata_check_s": 3600},
        "notify": {"default": [f"json://127.0.0.1:{receiver_port}/hook"]},
    }
    for section, values in over.items():
        cfg.setdefault(section, {}).update(values)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    return path, http_port, mqtt_port


def start_run(tmp: Path, config: Path, http_port: int, mqtt_port: int,
              timeout: float = 60) -> Running:
    log = tmp / "run.log"
    proc = subprocess.Popen([sys.executable, "-m", "yujing", "run", "--config", str(config)],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=tmp)
    r = Running(proc, log, f"http://127.0.0.1:{http_port}", mqtt_port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = r.text()
        m = re.search(r"yujing: ready kafka=(\S+)", text)
        if m:
            r.kafka = m.group(1)
            r.pids = {name: int(pid) for name, pid in re.findall(r"started (\w+) pid=(\d+)", text)}
            return r
        if proc.poll() is not None:
            raise AssertionError(f"yujing run exited {proc.returncode}:\n{text}")
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"yujing run not ready in {timeout}s:\n{r.text()}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def stop_run(r: Running, sig: int = signal.SIGINT, timeout: float = 40) -> int:
    if r.proc.poll() is None:
        r.proc.send_signal(sig)
        try:
            r.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            r.proc.kill()
            r.proc.wait()
    return r.proc.returncode


@asynccontextmanager
async def local_app(port: int, *routes: web.RouteDef) -> AsyncIterator[None]:
    """A real aiohttp server with ``routes`` on ``127.0.0.1:port`` (webhook receivers and
    other endpoints the code under test calls), stopped after."""
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield
    finally:
        await runner.cleanup()
