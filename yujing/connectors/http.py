"""HTTP ingest on the gateway.

- ``POST /v1/readings``  JSON: one reading, a multi-metric record, or a list;
- ``POST /v1/forecasts`` JSON forecasts (issue and valid times; :mod:`.forecasts`);
- ``POST /api/v2/write`` InfluxDB line protocol (Telegraf, influxdb-client, any
  device that already writes to InfluxDB); InfluxDB's status codes;
- ``POST /v1/events``    camera detections and industrial events;
- ``POST /v1/cap``       official signals, CAP 1.2 (:mod:`yujing.connectors.capfeed`);
- ``GET /healthz`` (503 while the watchdog reports a fault), ``GET /metrics`` (Prometheus);
- ``GET /openapi.yaml`` the OpenAPI description of every route of the server.

Replies list every rejected item with its index (line number for line
protocol) and reason while the valid rest is accepted. An item outside the
token's scope is marked ``"status": 403``; when nothing at all was accepted
and every refusal was a scope refusal the request answers 403. 401 without a
valid token (when tokens are configured), 413 over ``http.max_body_bytes``,
503 with Retry-After when Kafka did not take the readings (or the dead letters
of earlier requests) in ``http.store_timeout_s`` — never a silent drop.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from yujing import clock
from yujing import metrics as m
from yujing.connectors.auth import Identity
from yujing.connectors.events import parse_events
from yujing.connectors.fastparse import parse_readings
from yujing.connectors.forecasts import parse_forecasts_indexed
from yujing.connectors.lineproto import parse_lines_indexed
from yujing.connectors.parse import Rejected, too_many

if TYPE_CHECKING:
    from yujing.connectors.gateway import Gateway

log = logging.getLogger(__name__)
GATEWAY_KEY = web.AppKey("gateway", object)
OPENAPI = Path(__file__).with_name("openapi.yaml")   # the whole server's API, console included
_THREAD_BYTES = 256 * 1024   # bodies larger than this are parsed in a worker thread


def _gw(request: web.Request) -> Gateway:
    return request.app[GATEWAY_KEY]  # type: ignore[return-value]


class Refused(Exception):
    """A whole request refused before any item is looked at (401, 413)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None
                 ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


async def admit(request: web.Request, kind: str) -> tuple[Identity, bytes]:
    """Authenticate, then read the body within the size limit: the first step of every POST
    endpoint of the gateway (readings, line protocol, events, CAP), so each refuses a missing
    token, a token over its rate and an oversized body the same way; raises Refused."""
    gw = _gw(request)
    ident = gw.identify(request.headers.get("Authorization"))
    if ident is None:
        m.READINGS_REJECTED.labels(kind, "unauthorized").inc()
        raise Refused(401, "unauthorized", "missing or unknown token: send "
                      "'Authorization: Bearer <token>' (ask the bureau for one)",
                      {"WWW-Authenticate": 'Bearer realm="yujing"'})
    wait = gw.rate.wait_s(ident.gateway)
    if wait is not None:
        raise _rate_limited(kind, wait)
    await _room(gw)
    limit = gw.cfg.http.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(gw, kind, ident, request, request.content_length)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(gw, kind, ident, request, None) from None
    return ident, raw


def _too_large(gw: Gateway, kind: str, ident: Identity, request: web.Request,
               size: int | None) -> Refused:
    limit = gw.cfg.http.max_body_bytes
    what = f"{size} bytes are" if size is not None else "the body (decompressed) is"
    reason = (f"request too large: {what} over the limit of {limit} bytes; send smaller batches "
              "(or raise http.max_body_bytes)")
    gw.deadletters.send(source_of(kind, ident, request), reason, None, None, "too_large")
    m.READINGS_REJECTED.labels(kind, "too_large").inc()
    return Refused(413, "request too large", reason)


async def _room(gw: Gateway) -> None:
    """Wait while too many dead letters wait for Kafka (back-pressure on a flood of junk, which
    would otherwise lose letters); 503 with Retry-After when Kafka does not catch up in
    ``http.store_timeout_s``. The caller dead-letters without awaiting anything after it."""
    if not await gw.deadletters.room(gw.cfg.http.store_timeout_s):
        raise Refused(503, "unavailable", "the gateway is behind writing to Kafka: nothing of "
                      "this request was taken; retry after the Retry-After seconds",
                      {"Retry-After": str(gw.cfg.http.retry_after_s)})


def _rate_limited(kind: str, wait_s: int) -> Refused:
    m.READINGS_REJECTED.labels(kind, "rate_limited").inc()
    return Refused(429, "too many requests", f"over this token's rate (http.rate_limit): retry "
                   f"after {wait_s} s, or send less often", {"Retry-After": str(wait_s)})


async def _parse(request: web.Request, kind: str, ident: Identity, raw: bytes, parse: Any,
                 *args: Any) -> tuple[list[Any], list[Rejected]]:
    """Parse a body, off the event loop when it is large (a 4 MB body is seconds of work that
    would hold every other request), then count its items against the token's rate; raises
    Refused for too many items (413) or a token over its rate (429)."""
    gw = _gw(request)
    if len(raw) > _THREAD_BYTES:
        items, bad = await asyncio.to_thread(parse, raw, *args)
    else:
        items, bad = parse(raw, *args)
    await _room(gw)  # from here to the handler's report nothing awaits
    if bad and bad[0].code == "too_many":
        gw.report(kind, source_of(kind, ident, request), bad[:1])
        raise Refused(413, "request too large", bad[0].reason)
    wait = gw.rate.take(ident.gateway, len(items) + len(bad))
    if wait is not None:
        raise _rate_limited(kind, wait)
    return items, bad


def source_of(kind: str, ident: Identity, request: web.Request) -> str:
    """Who sent a request, as dead letters and reports name it (``http:gw-1@10.0.0.5``)."""
    return f"{kind}:{ident.gateway}@{request.remote}"


def _items(rejected: list[Rejected], listed: int) -> dict[str, Any]:
    """The reply's ``rejected`` list (the first ``listed`` by index) and ``rejected_more``,
    the count of the rest: a reply stays small whatever the request held."""
    first = heapq.nsmallest(listed, rejected, key=lambda r: -1 if r.index is None else r.index)
    out = []
    for r in first:
        item: dict[str, Any] = {"index": r.index, "reason": r.reason}
        if r.code == "forbidden":
            item["status"] = 403
        out.append(item)
    more = {"rejected_more": len(rejected) - len(out)} if len(rejected) > len(out) else {}
    return {"rejected": out, **more}


def _status(accepted: int, rejected: list[Rejected]) -> int:
    if accepted or not rejected:
        return 200
    return 403 if all(r.code == "forbidden" for r in rejected) else 400


def _unavailable(gw: Gateway, exc: BaseException, n: int) -> dict[str, Any]:
    log.error("%d readings not stored (Kafka did not acknowledge within %.0fs): %s", n,
              gw.cfg.http.store_timeout_s, exc or type(exc).__name__)
    return {"status": 503, "headers": {"Retry-After": str(gw.cfg.http.retry_after_s)}}


def count_request(endpoint: str, status: int) -> None:
    """Count a request's reply by endpoint and status (yujing_gateway_http_requests_total), once per
    request whichever way it ends."""
    m.REQUESTS.labels(endpoint, str(status)).inc()


async def post_readings(request: web.Request) -> web.Response:
    return await _post_json(request, "http", "readings", parse_readings)


async def post_forecasts(request: web.Request) -> web.Response:
    """Forecasts: their own route, because a readings record takes every unknown key for a
    metric ("issued" would be one); same tokens, scope, checks and replies as readings."""
    return await _post_json(request, "forecasts", "forecasts", parse_forecasts_indexed)


async def _post_json(request: web.Request, kind: str, endpoint: str, parse: Any) -> web.Response:
    gw = _gw(request)
    try:
        ident, raw = await admit(request, kind)
        items, bad = await _parse(request, kind, ident, raw, parse, None, gw.cfg.http.max_items)
    except Refused as r:
        count_request(endpoint, r.status)
        return web.json_response({"error": r.message}, status=r.status, headers=r.headers)
    s = gw.screen(items, ident)
    rejected = bad + s.rejected
    gw.report(kind, source_of(kind, ident, request), rejected, s)
    body = {"accepted": len(s.keep), "duplicates": s.duplicates,
            **_items(rejected, gw.cfg.http.max_listed)}
    try:
        await gw.store(kind, s.keep)
    except Exception as exc:
        u = _unavailable(gw, exc, len(s.keep))
        count_request(endpoint, 503)
        return web.json_response({"error": f"{endpoint} not stored: Kafka is unavailable; retry "
                                  "after the Retry-After seconds", **body, "accepted": 0}, **u)
    status = _status(len(s.keep) + s.duplicates, rejected)
    count_request(endpoint, status)
    return web.json_response(body, status=status)


async def post_write(request: web.Request) -> web.Response:
    """InfluxDB v2 write API: 204 on success, InfluxDB's JSON error bodies otherwise.

    ``org`` and ``bucket`` are accepted and ignored (the gateway has one
    destination); ``precision`` is honoured (ns default).
    """
    gw = _gw(request)
    try:
        ident, raw = await admit(request, "lineproto")
        lines, cap = raw.count(b"\n") + 1, gw.cfg.http.max_items
        if lines > cap:
            refused = Rejected(None, too_many(lines, cap, "lines"), None, "too_many")
            gw.report("lineproto", source_of("lineproto", ident, request), [refused])
            raise Refused(413, "request too large", refused.reason)
        items, bad = await _parse(request, "lineproto", ident, raw, parse_lines_indexed,
                                  request.query.get("precision", "ns"), clock.now_ms())
    except Refused as r:
        count_request("write", r.status)
        return web.json_response({"code": r.code, "message": r.message}, status=r.status,
                                 headers=r.headers)
    s = gw.screen(items, ident)
    rejected = bad + s.rejected
    gw.report("lineproto", source_of("lineproto", ident, request), rejected, s)
    try:
        await gw.store("lineproto", s.keep)
    except Exception as exc:
        u = _unavailable(gw, exc, len(s.keep))
        count_request("write", 503)
        return web.json_response({"code": "unavailable", "message": "points not stored: Kafka "
                                  "is unavailable; retry later"}, **u)
    if not rejected:
        count_request("write", 204)
        return web.Response(status=204)
    status = _status(len(s.keep) + s.duplicates, rejected)
    status = 400 if status == 200 else status
    count_request("write", status)
    first = min(rejected, key=lambda r: r.index or 0).reason
    what = "partial write" if s.keep or s.duplicates else "nothing written"
    return web.json_response({"code": "forbidden" if status == 403 else "invalid",
                              "message": f"{what}: {len(rejected)} point(s) rejected, first: {first}",
                              "accepted": len(s.keep), **_items(rejected, gw.cfg.http.max_listed)},
                             status=status)


async def post_events(request: web.Request) -> web.Response:
    gw = _gw(request)
    try:
        ident, raw = await admit(request, "events")
        parsed, bad = await _parse(request, "events", ident, raw, parse_events,
                                   gw.cfg.http.max_items)
    except Refused as r:
        count_request("events", r.status)
        return web.json_response({"error": r.message}, status=r.status, headers=r.headers)
    details = {i: d for i, _, d in parsed}
    s = gw.screen([(i, r) for i, r, _ in parsed], ident)
    rejected = bad + s.rejected
    source = source_of("events", ident, request)
    gw.report("events", source, rejected, s)
    now = clock.now_ms()
    kept = [{**details[i], "gateway": ident.gateway, "recv_ms": now} for i in s.kept_index]
    try:
        await gw.store("events", s.keep)
        if kept:
            try:
                await gw.publish_events(kept)
            except BaseException:
                gw.dedup.forget(s.keep)  # the retry must publish the detail again
                raise
    except Exception as exc:
        u = _unavailable(gw, exc, len(s.keep))
        count_request("events", 503)
        return web.json_response({"error": "events not stored: Kafka is unavailable; retry "
                                  "after the Retry-After seconds", "accepted": 0,
                                  **_items(rejected, gw.cfg.http.max_listed)}, **u)
    status = _status(len(s.keep) + s.duplicates, rejected)
    count_request("events", status)
    return web.json_response({"accepted": len(s.keep), "duplicates": s.duplicates,
                              **_items(rejected, gw.cfg.http.max_listed)}, status=status)


async def post_cap(request: web.Request) -> web.Response:
    """Official signals in (CAP 1.2): yujing/connectors/capfeed.py."""
    return await _gw(request).cap.post(request)


async def healthz(request: web.Request) -> web.Response:
    """200, or 503 while the watchdog reports a fault of the system (系统自身故障)."""
    doc = _gw(request).health()
    if (doc.get("watchdog") or {}).get("faults"):
        return web.json_response({**doc, "status": "fault"}, status=503)
    return web.json_response(doc)


async def openapi(request: web.Request) -> web.Response:
    """This server's API as OpenAPI 3.1 (the file ships in the package)."""
    return web.Response(body=OPENAPI.read_bytes(), content_type="application/yaml", charset="utf-8")


async def metrics(request: web.Request) -> web.Response:
    body, ctype = m.exposition()
    return web.Response(body=body, headers={"Content-Type": ctype})


def make_app(gw: Gateway, max_body_bytes: int) -> web.Application:
    """The ingest app. The process that serves it may mount more on it (``yujing gateway``
    mounts the duty console: yujing/cli/serve.py)."""
    app = web.Application(client_max_size=max_body_bytes)
    app[GATEWAY_KEY] = gw
    app.router.add_post("/v1/readings", post_readings)
    app.router.add_post("/v1/forecasts", post_forecasts)
    app.router.add_post("/api/v2/write", post_write)
    app.router.add_post("/v1/events", post_events)
    app.router.add_post("/v1/cap", post_cap)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.yaml", openapi)
    return app
