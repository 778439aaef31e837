"""The gateway's view of the watchdog: its faults, read every second with a short timeout.

The gateway's ``/healthz`` turns 503 while the watchdog reports a fault, and the duty
console's health page (which shows the gateway's health) lists the faults.

A watchdog that does not answer is shown as unreachable, and /healthz stays 200 for it:
a load balancer drops a gateway that answers 503, so a dead watchdog would take every
gateway out of service at once and turn a monitoring failure into lost readings. The
dead watchdog is noticed outside instead: its heartbeat push stops and its /heartbeat
does not answer (the outside dead man's switch), and ``yujing run`` stops when a child dies.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

import aiohttp

from yujing import clock
from yujing.alerts.selfcheck_settings import WatchdogSettings

log = logging.getLogger(__name__)
ENV = "YUJING_WATCHDOG_URL"   # what `yujing run` tells its gateway when it picked the port


class WatchdogStatus:
    def __init__(self, url: str | None, every_s: float = 1.0, timeout_s: float = 1.0,
                 now_ms: Callable[[], int] = clock.now_ms) -> None:
        self.url = url.rstrip("/") + "/healthz" if url else None
        self.every_s, self.timeout_s, self.now_ms = every_s, timeout_s, now_ms
        self.doc: dict[str, Any] | None = None
        self.read_ms: int | None = None
        self.error = "not read yet"

    @classmethod
    def of(cls, settings: WatchdogSettings) -> WatchdogStatus:
        """From the ``watchdog:`` section, or the URL ``yujing run`` exported."""
        return cls(settings.status_url(os.environ.get(ENV)))

    async def run(self) -> None:
        if self.url is None:
            return
        async with aiohttp.ClientSession() as session:
            while True:
                await self.read(session)
                await asyncio.sleep(self.every_s)

    async def read(self, session: aiohttp.ClientSession) -> None:
        try:
            async with session.get(self.url, timeout=aiohttp.ClientTimeout(
                    total=self.timeout_s)) as r:
                self.doc = await r.json(content_type=None)
                self.read_ms, self.error = self.now_ms(), ""
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            self.error = str(exc) or type(exc).__name__

    def snapshot(self) -> dict[str, Any] | None:
        """None without a watchdog; else reachable, faults and the watchdog's status."""
        if self.url is None:
            return None
        now = self.now_ms()
        stale = self.read_ms is None or now - self.read_ms > 5_000 + self.timeout_s * 1000
        if stale or self.doc is None:
            return {"url": self.url, "reachable": False, "faults": [],
                    "error": f"watchdog unreachable: {self.error}"}
        return {"url": self.url, "reachable": True, "status": self.doc.get("status", ""),
                "faults": list(self.doc.get("faults", []))}
