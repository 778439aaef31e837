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
import re
from collections import Counter
from collections.abc import Callable

import apprise
from apprise.decorators import notify as apprise_notify
from apprise.decorators.base import CustomNotifyPlugin

from yujing.alerts.records import Attempt, Contact, Delivery, DeliveryResult
from yujing.alerts.settings import DeliverySettings

log = logging.getLogger("yujing.notify")


# A signed acknowledge link works for whoever holds it: the log and terminal get the
# message without the link's token (the people paged get it through their own channel).
_ACK_TOKEN = re.compile(r"(/v1/(?:ack|report|notice-link)/)[A-Za-z0-9._~%-]+")


@apprise_notify(on="yujing", name="Yujing terminal log")
def _to_log(body: str, title: str, notify_type: str, *args, **kwargs) -> bool:
    log.warning("NOTIFY %s | %s", title, _ACK_TOKEN.sub(r"\1…", body))
    return True


class Private:
    """A channel URL as it may be shown (timelines, logs) and the secrets to keep out of text.

    apprise knows where each of its services keeps its secret (a password, a path token, or
    the host part of ``feishu://``, ``pushplus://``, ``schan://`` …) and renders its URLs
    with ``privacy=True``; the secrets are the parts of the URL that rendering hides. Error
    texts from apprise are scrubbed of them too, since a failed request may quote its URL."""

    def __init__(self, url: str) -> None:
        plugin = apprise.Apprise.instantiate(url) if "://" in url else None
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        if plugin is None:
            self.shown = f"{scheme}://…"
        elif isinstance(plugin, CustomNotifyPlugin):
            # a schema of this deployment's own (``yujing://``, a site's hook): apprise renders
            # only its scheme; its host names the endpoint, the rest is treated as secret
            self.shown = f"{scheme}://{plugin.host or ''}"
        else:
            self.shown = plugin.url(privacy=True).split("?", 1)[0]
        shown_parts = set(_PARTS.split(self.shown))
        self.secrets = sorted({p for p in _PARTS.split(url.split("://", 1)[-1])
                               if len(p) >= 4 and p not in shown_parts}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "…")
        return text


_PARTS = re.compile(r"[/:@?&=#,]+")


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
                    private = Private(c.url)
                    channel, error = private.shown, private.scrub(error)
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

