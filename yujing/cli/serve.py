"""The gateway process (``yujing gateway``): ingest and the duty console on one HTTP server.

The ingest gateway (yujing/connectors/) and the duty console (yujing/console/)
do not import each other; this module, at the top of the layers, is the one
place that knows both. It gives the console the gateway's Kafka (a ``KafkaBus``
over the gateway's producer), its live station registry and its /healthz
figures, and mounts it on the gateway's server: ingest, ``/healthz`` and
``/metrics`` from the connectors; ``/v1`` (duty API, ack links, CAP) and
``/console`` from the console.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from yujing import metrics as m
from yujing.config import Config
from yujing.connectors.bus import KafkaBus
from yujing.connectors.gateway import Gateway
from yujing.connectors.topics import declare
from yujing.console.state import Console
from yujing.console.web import mount_console

log = logging.getLogger("yujing.connectors.gateway")   # the gateway's lines, as before


def console_on(gw: Gateway) -> Callable[[web.Application], None]:
    """Mounts the console on ``gw``'s server; called by ``gw.start()`` once its producer runs."""
    def mount(app: web.Application) -> None:
        bus = KafkaBus(gw.bootstrap, gw.prod, gw.cfg.kafka)
        mount_console(app, Console(gw.cfg, bus, lambda: gw.registry, gw.health))
    return mount


async def serve(cfg: Config, bootstrap: str, mqtt_url: str | None,
                client_id: str | None = None) -> None:
    """Run the gateway with the console until SIGTERM/SIGINT."""
    gw = Gateway(cfg, bootstrap, mqtt_url, client_id)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The console follows the worker's incident snapshots and writes duty commands: with
    # those topics declared here it need not wait (and complain) until a worker made them.
    k = cfg.kafka
    await declare(bootstrap, k, [k.topics.incidents, k.topics.commands])
    await gw.start(console_on(gw))
    if gw.mqtt is not None:
        m.MQTT_CONNECTED.set_function(lambda: float(gw.mqtt.connected.is_set()))  # type: ignore[union-attr]
    print(f"gateway ready http={cfg.http.host}:{cfg.http.port}", flush=True)
    await stop.wait()
    log.info("gateway stopping")
    await gw.stop()
