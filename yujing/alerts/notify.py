"""The apprise adapter: the only alerts module that does I/O.

One delivery is one message to one person. Their contacts are tried in
preference order; each gets ``retries`` attempts with doubling backoff, then
the next contact takes over. The result (which channel worked, every failed
attempt with its error) goes back to the book, which writes it on the
warnings' timelines. Deliveries run as their own tasks, so a dead SMS gateway
delays nobody else; :class:`Counters` keeps totals for a metrics exporter.

``yujing://`` is our own apprise schema that writes the message to the log and
the terminal, so the default config and the demo show notifications without
any external service.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

import apprise
from apprise.decorators import notify as apprise_notify

from yujing.alerts.channels import redact
from yujing.alerts.records import Attempt, Contact, Delivery, DeliveryResult
from yujing.alerts.settings import DeliverySettings

log = logging.getLogger("yujing.notify")


@apprise_notify(on="yujing", name="Yujing terminal log")
def _to_log(body: str, title: str, notify_type: str, *args, **kwargs) -> bool:
    log.warning("NOTIFY %s | %s", title, body)
    return True


class Counters:
    """Delivery totals by channel kind and outcome (sent, failed, retried, fell_back)."""

    def __init__(self) -> None:
        self.by: Counter[tuple[str, str]] = Counter()

    def add(self, kind: str, outcome: str) -> None:
        self.by[(kind, outcome)] += 1

    def total(self, outcome: str) -> int:
        return sum(n for (_, o), n in self.by.items() if o == outcome)

    def snapshot(self) -> dict[str, int]:
        return {f"{k}:{o}": n for (k, o), n in sorted(self.by.items())}


def _payload(d: Delivery, c: Contact) -> tuple[str, str, apprise.NotifyFormat]:
    m = d.message
    if c.kind == "sms":
        return "", m.sms, apprise.NotifyFormat.TEXT
    if c.kind == "markdown":
        return m.title, m.markdown, apprise.NotifyFormat.MARKDOWN
    return m.title, m.text, apprise.NotifyFormat.TEXT


class Deliverer:
    def __init__(self, settings: DeliverySettings, now_ms: Callable[[], int],
                 counters: Counters | None = None,
                 sleep: Callable[[float], object] = asyncio.sleep) -> None:
        self.retries = settings.retries
        self.backoff_s = settings.backoff.s
        self.backoff_max_s = settings.backoff_max.s
        self.timeout_s = settings.timeout.s
        self.now_ms = now_ms
        self.counters = counters or Counters()
        self.sleep = sleep
        self.limit = asyncio.Semaphore(settings.concurrency)

    async def deliver(self, d: Delivery) -> DeliveryResult:
        async with self.limit:
            attempts: list[Attempt] = []
            for i, c in enumerate(d.contacts):
                if i:
                    self.counters.add(c.kind, "fell_back")
                for n in range(self.retries):
                    if n:
                        self.counters.add(c.kind, "retried")
                        await self.sleep(min(self.backoff_s * 2 ** (n - 1), self.backoff_max_s))
                    ok, error = await self._send(d, c)
                    channel = redact(c.url)
                    if ok:
                        self.counters.add(c.kind, "sent")
                        return DeliveryResult(d.id, True, channel, attempts, self.now_ms())
                    attempts.append(Attempt(channel, False, error, self.now_ms()))
                    self.counters.add(c.kind, "failed")
                    if error.startswith("unusable URL"):
                        break  # retrying a URL apprise cannot parse changes nothing
            if not d.contacts:
                attempts.append(Attempt("", False, "no contacts", self.now_ms()))
            log.error("delivery %s to %s failed on every contact: %s", d.id, d.person,
                      "; ".join(f"{a.channel}: {a.error}" for a in attempts))
            return DeliveryResult(d.id, False, "", attempts, self.now_ms())

    async def _send(self, d: Delivery, c: Contact) -> tuple[bool, str]:
        ap = apprise.Apprise()
        if not ap.add(c.url):
            return False, "unusable URL: apprise does not accept it (check the scheme and fields)"
        title, body, fmt = _payload(d, c)
        try:
            with apprise.LogCapture(level=logging.WARNING) as captured:
                ok = await asyncio.wait_for(ap.async_notify(body=body, title=title,
                                                            body_format=fmt), self.timeout_s)
                detail = captured.getvalue().strip().splitlines()
        except TimeoutError:
            return False, f"no answer within {self.timeout_s:g}s"
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        if ok:
            return True, ""
        return False, (detail[-1] if detail else "apprise reported failure")[:300]

