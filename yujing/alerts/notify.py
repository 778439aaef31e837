"""The apprise adapter: the only alerts module that does I/O.

``yujing://`` is our own apprise schema that writes the message to the log
and the terminal, so the default config and the demo show notifications
without any external service.
"""

from __future__ import annotations

import logging

import apprise
from apprise.decorators import notify as apprise_notify

from ..config import NotifyConfig
from ..domain import EventKind, Grade, WarningEvent
from . import templates

log = logging.getLogger("yujing.notify")


@apprise_notify(on="yujing", name="Yujing terminal log")
def _to_log(body: str, title: str, notify_type: str, *args, **kwargs) -> bool:  # noqa: ANN002
    line = f"NOTIFY {title} | {body}"
    log.warning(line)
    return True


class Notifier:
    def __init__(self, cfg: NotifyConfig) -> None:
        self.cfg = cfg
        self.sent = 0
        self.failed = 0

    async def send(self, ev: WarningEvent) -> bool:
        grade = Grade(ev.grade).label
        urls = self.cfg.urls_for(grade, cleared=ev.kind == EventKind.CLEARED)
        if not urls:
            return True
        ap = apprise.Apprise()
        for url in urls:
            if not ap.add(url):
                log.error("apprise cannot use notification URL %s (check its scheme)", url)
        ntype = apprise.NotifyType.SUCCESS if ev.kind == EventKind.CLEARED else (
            apprise.NotifyType.FAILURE if ev.grade >= Grade.ORANGE else apprise.NotifyType.WARNING)
        ok = await ap.async_notify(body=templates.body(ev, self.cfg.language),
                                   title=templates.title(ev, self.cfg.language), notify_type=ntype)
        if ok:
            self.sent += 1
        else:
            self.failed += 1
            log.error("notification for %s (%s) failed on at least one channel", ev.key, ev.kind.value)
        return bool(ok)
