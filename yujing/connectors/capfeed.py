"""Official signals in, on the gateway: ``POST /v1/cap``, feed polling and expiry.

The gateway hosts this rather than a process of its own: it already has the
token check, the Kafka producer, the station registry (reloaded on change) and
an HTTP server, and a poll every few minutes is one small task on its loop, so
one more process to deploy, supervise and secure would buy nothing. Each
gateway keeps its own :class:`~yujing.alerts.capmap.SignalBook`; with several
gateways, point the feeds and the service's pushes at one of them (a cancel
reaching another still clears: keys come from the message itself).

Every message becomes warning events on ``yujing.warnings``, keyed as the
worker keys its own (the group: town + hazard), so the book takes them as it
takes the rules' warnings. A feed is polled with If-None-Match and
If-Modified-Since; an Atom feed's entries carry CAP inline (``<content>``) or
link it (``<link href>``), and a message already taken is not fetched again.
"""

from __future__ import annotations

import asyncio
import logging
import os
from io import BytesIO
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin
from xml.etree.ElementTree import tostring

import aiohttp
import msgspec
import xmlschema
from aiohttp import web

from yujing import clock
from yujing.alerts.cap_settings import CapFeed
from yujing.alerts.capin import NS, CapError, parse_cap
from yujing.alerts.capmap import Outcome, SignalBook
from yujing.connectors.http import Refused, admit, count_request, source_of
from yujing.domain import WarningEvent, group_key

if TYPE_CHECKING:
    from yujing.connectors.gateway import Gateway

log = logging.getLogger(__name__)
ATOM = "http://www.w3.org/2005/Atom"
_enc = msgspec.json.Encoder()


class CapIngest:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        c = gw.cfg.cap
        self.book = SignalBook(gw.registry, c.geocodes, c.station_kinds, gw.cfg.timezone)
        self.validators: dict[str, dict[str, str]] = {}   # feed url -> ETag / Last-Modified
        self.lock = asyncio.Lock()   # one message at a time: the book's chain is shared state
        self.taken = 0
        self.seen: dict[Any, None] = {}   # messages (sender, id) and links taken: not again
        self.state = c.state_file
        if self.state is not None and self.state.exists():
            try:
                self.book.load(self.state.read_bytes())
                log.info("CAP: %d official signals in force (from %s)", len(self.book.signals),
                         self.state)
            except (OSError, ValueError) as exc:
                log.error("CAP: %s unreadable, starting without the signals in force: %s",
                          self.state, exc)

    def start(self) -> list[asyncio.Task[Any]]:
        tasks = [asyncio.create_task(self._expiry())]
        tasks += [asyncio.create_task(self._poll(f)) for f in self.gw.cfg.cap.feeds]
        return tasks

    def set_registry(self) -> None:
        self.book.set_registry(self.gw.registry)

    async def take(self, raw: bytes, source: str) -> Outcome:
        """Parse, map and publish one CAP message; CapError when refused (dead-lettered)."""
        try:
            alert = parse_cap(raw)
        except CapError as err:
            self.gw.deadletters.send(source, f"CAP refused: {err.reason}", raw, None, err.code)
            raise
        async with self.lock:
            if alert.ref in self.seen:
                return Outcome(note="already taken")
            out = self.book.apply(alert, clock.now_ms())
            await self.publish(out.events)
            self._saw(alert.ref)
            self._save()
        self.taken += 1
        log.info("CAP %s %s from %s (%s): %d warning events %s", alert.msg_type, alert.identifier,
                 alert.sender, source, len(out.events), out.note)
        return out

    def _save(self) -> None:
        """Write the signals in force (small: a few per service) beside the old copy, then swap."""
        if self.state is None:
            return
        try:
            self.state.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state.with_suffix(".tmp")
            tmp.write_bytes(self.book.dump())
            os.replace(tmp, self.state)
        except OSError as exc:
            log.error("CAP: signals in force not saved to %s: %s", self.state, exc)

    def _saw(self, what: Any) -> None:
        self.seen[what] = None
        while len(self.seen) > 10_000:
            del self.seen[next(iter(self.seen))]

    async def publish(self, events: list[WarningEvent]) -> None:
        topic = self.gw.cfg.kafka.topics.warnings
        futs = [await self.gw.prod.send(topic, _enc.encode(ev),
                                        key=group_key(ev.town, ev.hazard, ev.station).encode())
                for ev in events]
        await asyncio.wait_for(asyncio.gather(*futs), self.gw.cfg.http.store_timeout_s)

    # -- POST /v1/cap ------------------------------------------------------------------------
    async def post(self, request: web.Request) -> web.Response:
        try:
            ident, raw = await admit(request, "cap")
        except Refused as r:
            count_request("cap", r.status)
            return web.json_response({"error": r.message}, status=r.status, headers=r.headers)
        if not ident.official_signals:
            count_request("cap", 403)
            return web.json_response({"error": f"token {ident.gateway!r} may not post official "
                                      "signals: grant it official_signals: true in the tokens "
                                      "file"}, status=403)
        try:
            out = await self.take(raw, source_of("cap", ident, request))
        except CapError as err:
            count_request("cap", 400)
            return web.json_response({"error": err.reason, "code": err.code}, status=400)
        except Exception as exc:  # Kafka did not take the events
            log.error("CAP not published: %s", exc or type(exc).__name__)
            count_request("cap", 503)
            return web.json_response({"error": "not stored: Kafka is unavailable; retry after the "
                                      "Retry-After seconds"}, status=503,
                                     headers={"Retry-After": str(self.gw.cfg.http.retry_after_s)})
        count_request("cap", 200)
        return web.json_response({"accepted": True, "warnings": len(out.events), "note": out.note})

    # -- expiry and feeds --------------------------------------------------------------------
    async def _expiry(self) -> None:
        """Clears for expired signals, checked every second (a dict scan: nearly free)."""
        while True:
            await asyncio.sleep(1.0)
            async with self.lock:
                events = self.book.expire(clock.now_ms())
                if events:
                    try:
                        await self.publish(events)
                    except Exception as exc:
                        log.error("expired CAP signals: clears not published: %s", exc)
                    self._save()

    async def _poll(self, feed: CapFeed) -> None:
        timeout = aiohttp.ClientTimeout(total=feed.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                try:
                    await self.poll_once(session, feed)
                except Exception as exc:  # the next poll tries again; the feed may be down
                    log.warning("CAP feed %s: %s", feed.url, exc or type(exc).__name__)
                await asyncio.sleep(feed.interval.s)

    async def poll_once(self, session: aiohttp.ClientSession, feed: CapFeed) -> int:
        """One poll of ``feed``: how many new CAP messages it brought."""
        body = await self._get(session, feed.url, self.validators.setdefault(feed.url, {}))
        if body is None:
            return 0
        n = 0
        for raw, link in entries(body):
            url = urljoin(feed.url, link) if link else ""
            if url in self.seen:
                continue
            if raw is None:
                raw = await self._get(session, url, None)
                if raw is None:
                    continue
            try:
                out = await self.take(raw, f"cap-feed:{feed.url}")
                n += out.note != "already taken"
            except CapError as err:
                log.warning("CAP feed %s: entry refused: %s", feed.url, err.reason)
            if url:
                self._saw(url)
        return n

    async def _get(self, session: aiohttp.ClientSession, url: str,
                   validators: dict[str, str] | None) -> bytes | None:
        headers = {}
        if validators:
            if "etag" in validators:
                headers["If-None-Match"] = validators["etag"]
            if "modified" in validators:
                headers["If-Modified-Since"] = validators["modified"]
        async with session.get(url, headers=headers) as resp:
            if resp.status == 304:
                return None
            resp.raise_for_status()
            body = await resp.content.read(self.gw.cfg.cap.max_bytes + 1)
            if len(body) > self.gw.cfg.cap.max_bytes:
                raise ValueError(f"{url}: over cap.max_bytes ({self.gw.cfg.cap.max_bytes})")
            if validators is not None:
                validators.clear()
                if resp.headers.get("ETag"):
                    validators["etag"] = resp.headers["ETag"]
                if resp.headers.get("Last-Modified"):
                    validators["modified"] = resp.headers["Last-Modified"]
            return body


def entries(body: bytes) -> list[tuple[bytes | None, str]]:
    """The CAP messages of a feed body: (inline XML, "") or (None, link to fetch).
    A body that is itself a CAP alert is one entry. Read with the same defused parser."""
    try:
        root = xmlschema.XMLResource(BytesIO(body), defuse="always", allow="none").root
    except Exception as exc:
        raise CapError("xml", f"feed unreadable: {exc}") from None
    if root.tag == f"{{{NS}}}alert":
        return [(body, "")]
    out: list[tuple[bytes | None, str]] = []
    for entry in root.iter(f"{{{ATOM}}}entry"):
        inline = entry.find(f".//{{{NS}}}alert")
        if inline is not None:
            out.append((tostring(inline, encoding="utf-8"), ""))
            continue
        links = entry.findall(f"{{{ATOM}}}link")
        cap = [lk for lk in links if "cap" in (lk.get("type") or "")] or links
        if cap and cap[0].get("href"):
            out.append((None, cap[0].get("href") or ""))
    return out
