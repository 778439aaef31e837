"""The watchdog's HTTP face: ``/healthz`` for people and load balancers, ``/heartbeat``
for an outside dead man's switch.

- ``/healthz``: 200 ``{"status": "ok", ...}`` or 503 with the active faults (what, why,
  what to do, in Chinese and English) and ``"status": "fault"``; 503 ``"stale"`` when the
  watchdog's own loop has not finished a round lately. Gateways read it and show it.
- ``/heartbeat``: 200 ``ok`` only while the loop runs and nothing is faulty, else 503 with
  the reason: an outside monitor that polls it notices a dead watchdog (no answer), a
  hung one (stale) and every fault, without parsing anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal

from aiohttp import web

from yujing import clock
from yujing.config import Config
from yujing.watchdog.service import Watchdog

log = logging.getLogger("yujing.watchdog")
WATCHDOG_KEY = web.AppKey("watchdog", Watchdog)


async def healthz(request: web.Request) -> web.Response:
    doc = request.app[WATCHDOG_KEY].report(clock.now_ms())
    return web.json_response(doc, status=200 if doc["status"] == "ok" else 503,
                             dumps=_dumps)


async def heartbeat(request: web.Request) -> web.Response:
    doc = request.app[WATCHDOG_KEY].report(clock.now_ms())
    if doc["status"] == "ok":
        return web.Response(text="ok\n")
    why = "; ".join(f["what"]["zh"] + " / " + f["what"]["en"] for f in doc["faults"]) or \
        "watchdog loop stale / 看门狗循环停滞"
    return web.Response(status=503, text=f"{doc['status']}: {why}\n")


def _dumps(obj: object) -> str:
    """ensure_ascii off: the Chinese reads as Chinese with curl."""
    return json.dumps(obj, ensure_ascii=False)


def make_app(dog: Watchdog) -> web.Application:
    app = web.Application()
    app[WATCHDOG_KEY] = dog
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/heartbeat", heartbeat)
    return app


async def serve(cfg: Config, bootstrap: str | None, port: int | None = None) -> None:
    """Run the watchdog until SIGTERM/SIGINT; ``port`` overrides ``watchdog.port``."""
    # the probe reports Kafka's errors as faults; aiokafka's reconnect lines every second
    # would only bury them
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    dog = Watchdog(cfg, bootstrap)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(make_app(dog), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, cfg.watchdog.host, cfg.watchdog.port if port is None else port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    print(f"watchdog ready http://{cfg.watchdog.host}:{bound} watching "
          f"{', '.join(k for k, v in vars(dog.targets).items() if v)}", flush=True)
    try:
        await asyncio.gather(dog.run(stop), dog.ping(stop))
    finally:
        await runner.cleanup()
