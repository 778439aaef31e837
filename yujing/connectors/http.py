"""HTTP ingest: ``POST /v1/readings`` (one reading or a list) and ``GET /healthz``.

The reply lists every rejected item with its index and reason while the valid
rest is accepted; 503 with Retry-After when Kafka cannot take the readings.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from .parse import parse_payload

if TYPE_CHECKING:
    from .gateway import Gateway

log = logging.getLogger(__name__)
GATEWAY_KEY = web.AppKey("gateway", object)


async def post_readings(request: web.Request) -> web.Response:
    gw: Gateway = request.app[GATEWAY_KEY]  # type: ignore[assignment]
    raw = await request.read()
    readings, rejected = parse_payload(raw)
    source = f"http:{request.remote}"
    for r in rejected:
        await gw.deadletters.send(source, r.reason, r.raw, r.index)
    gw.count_rejected(len(rejected))
    body = {"accepted": len(readings),
            "rejected": [{"index": r.index, "reason": r.reason} for r in rejected]}
    if readings:
        try:
            await asyncio.wait_for(gw.accept(readings), timeout=10)
        except Exception as exc:  # noqa: BLE001 - any storage failure means "try again"
            log.error("HTTP batch of %d readings not stored: %s", len(readings), exc)
            return web.json_response({"error": f"readings not stored: {exc}", "accepted": 0,
                                      "rejected": body["rejected"]},
                                     status=503, headers={"Retry-After": "5"})
    status = 200 if readings or not rejected else 400
    return web.json_response(body, status=status)


async def healthz(request: web.Request) -> web.Response:
    gw: Gateway = request.app[GATEWAY_KEY]  # type: ignore[assignment]
    return web.json_response(gw.health())


def make_app(gw: "Gateway", max_body_bytes: int) -> web.Application:
    app = web.Application(client_max_size=max_body_bytes)
    app[GATEWAY_KEY] = gw
    app.router.add_post("/v1/readings", post_readings)
    app.router.add_get("/healthz", healthz)
    return app
