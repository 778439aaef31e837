"""The one-click acknowledge link (issue 12, finding 5): GET only shows a confirmation page.

Mail and chat link scanners open every link they see. If opening the link acknowledged,
a scanner would stop escalation to B and the leader. So GET (and HEAD) show a page with a
button and change nothing; only the page's POST, carrying the signed token, acknowledges.
The console runs on a bus in memory; its commands are applied by a real (pure) warning book
with a fake clock, so "escalation proceeds" and "acknowledged once" are the book's own words.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.unit.test_console_bus import MemoryBus
from yujing import clock
from yujing.alerts.book import Book, Store
from yujing.alerts.lifecycle import Lifecycle, RuleMeta
from yujing.alerts.records import Command, State
from yujing.alerts.roster import parse_roster
from yujing.alerts.settings import AlertsSettings
from yujing.alerts.signing import sign
from yujing.clock import FakeClock
from yujing.config import Config
from yujing.console.state import Console
from yujing.console.web import mount_console
from yujing.domain import Finding, Grade

T = 1_748_764_800_000
MIN = 60_000
SECRET = "link-secret-0123456789abcdef"
ROSTER = """
people:
  - {id: a1, name: 张三, contacts: ["json://a1.example/hook"]}
  - {id: b1, name: 李四, contacts: ["json://b1.example/hook"]}
  - {id: l1, name: 王五, contacts: ["json://l1.example/hook"]}
teams:
  - id: flood
    name: 三防
    domain: flood
    regions: ["*"]
    rotation: {start: 2025-05-01, handover: "08:30", slots: [{A: a1, B: b1, leader: l1}]}
"""


class World:
    """A warning book holding one orange warning, and a console serving its snapshot."""

    def __init__(self) -> None:
        self.clock = FakeClock(T)
        self.book = Book(AlertsSettings(grouping={"wait": "0s", "interval": "0s"}), Store(),
                         parse_roster(ROSTER), fallback_urls=lambda g: [])
        f = Finding("rain", "DG-HM-R01", T, Grade.ORANGE, False, 60.0, "3h", "sum(3h) = 60")
        ev = Lifecycle().apply(f, RuleMeta("暴雨", "rainstorm"), T)
        ev = msgspec.structs.replace(ev, town="虎门镇")
        self.sent = list(self.book.on_event(0, ev, T).dispatch)
        [self.warning] = self.book.store.incidents.values()
        self.bus = MemoryBus()
        self.links: dict[str, str] = {}

    async def serve(self) -> TestClient:
        cfg = Config.model_validate({"console": {"link_secret": SECRET},
                                     "worker": {"rules_dir": "/nonexistent/rules"}})
        app = web.Application()
        mount_console(app, Console(cfg, self.bus))
        client = TestClient(TestServer(app))
        await client.start_server()
        w = self.warning
        self.bus.followed["yujing.incidents"](w.incident.encode(), msgspec.json.encode(w))
        return client

    def link(self, person: str = "b1") -> str:
        """The link of the message to ``person`` (signed once: the same link every call)."""
        if person not in self.links:
            self.links[person] = "/v1/ack/" + sign(
                SECRET.encode(), "ack", person, [self.warning.incident],
                clock.now_ms() + 60 * MIN)          # the API checks the real clock
        return self.links[person]

    def apply_commands(self) -> None:
        """The commands the console sent, applied by the book in order (as the worker would)."""
        for _, value, p in self.bus.sent:
            self.book.on_command(p, msgspec.json.decode(value, type=Command), self.clock.t)

    def tick(self, ms: int) -> list[tuple[str, tuple[str, ...]]]:
        self.clock.advance(ms)
        return sorted((d.person, tuple(d.kinds))
                      for d in self.book.on_tick(0, self.clock.t).dispatch)


@pytest.fixture
async def world():
    w = World()
    w.client = await w.serve()
    yield w
    await w.client.close()


async def test_opening_the_link_shows_a_confirmation_page_and_changes_nothing(world):
    r = await world.client.get(world.link())
    page = await r.text()
    assert r.status == 200 and r.content_type == "text/html"
    assert world.bus.sent == []                                # nothing went to the book
    # Chinese first, then English; the page names the warning and offers one button
    assert page.index("确认") < page.index("Acknowledge")
    assert world.warning.incident in page and "b1" in page
    form = re.search(r'<form method="post" action="([^"]+)"', page)
    assert form and urljoin(world.link(), form.group(1)) == world.link()   # posts to itself
    assert "<button" in page and "已确认" not in page
    assert r.headers.get("Cache-Control") == "no-store"
    assert r.headers.get("Referrer-Policy") == "no-referrer"    # the token stays off other sites
    r = await world.client.head(world.link())
    assert r.status == 200 and world.bus.sent == []
    # the book never heard of it: A's timeout passes and B is paged, as without the link
    world.apply_commands()
    assert world.tick(10 * MIN) == [("b1", ("escalated",))]
    assert world.book.store.incidents[next(iter(world.book.store.incidents))].state == State.ACTIVE


async def test_the_post_acknowledges_once_and_escalation_stops(world):
    assert (await world.client.get(world.link())).status == 200
    r = await world.client.post(world.link())
    assert r.status == 200 and "已确认" in await r.text()
    r = await world.client.post(world.link())                  # a second click, a retry
    assert r.status == 200
    assert len(world.bus.sent) == 2
    world.apply_commands()
    w = next(iter(world.book.store.incidents.values()))
    assert (w.state, w.acked_by) == (State.ACKNOWLEDGED, "b1")
    assert [e.kind for e in w.timeline].count("acknowledged") == 1
    assert world.tick(10 * MIN) == [] and world.tick(10 * MIN) == []   # nobody is paged


async def test_a_cross_site_post_or_a_bad_token_acknowledges_nothing(world):
    r = await world.client.post(world.link(), headers={"Origin": "https://evil.example"})
    assert r.status == 403 and "来源" in await r.text()
    tampered = world.link()[:-3] + ("AAA" if not world.link().endswith("AAA") else "BBB")
    for method in ("GET", "POST"):
        r = await world.client.request(method, tampered)
        assert r.status == 403 and "bad signature" in await r.text()
    r = await world.client.post(world.link(), headers={"Origin": str(world.client.make_url(""))
                                                       .rstrip("/")})
    assert r.status == 200                                      # the page's own origin is fine
    assert len(world.bus.sent) == 1
