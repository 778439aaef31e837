"""One fixture per service, shared by the integration and browser tiers (fixtures are lazy:
a unit or pipeline test that asks for none starts nothing).

Each server is started on a free loopback port by the helpers in tests/support and stopped
after its scope. Scopes keep the isolation the tests were written for: an Apache Kafka per
module (from the jars `make kafka` installed; ~5-15 s to start), a Tansu broker, a
Mosquitto and a VictoriaMetrics per test (Tansu is ready in ~50 ms; the Mosquitto and
VictoriaMetrics tests stop, restart or count everything in them), one amqtt per module, one
`yujing run` with the duty console per module. The durability, rebalance and restart
tests run on both Kafka-protocol brokers: ``broker`` and ``broker_kind`` are parametrised
over Tansu and Apache Kafka (tests/support/brokers.py).
"""

from __future__ import annotations

import email
import email.policy
import os
import signal

import pytest
import pytest_asyncio
import yaml
from aiohttp import web
from aiosmtpd.controller import Controller

from tests.support import kafka as apache
from tests.support import services
from tests.support.brokers import BROKERS, Broker, BrokerKind
from tests.support.console import HASHED, STEP_S, Hooks, publish, wait_incident
from tests.support.duty import Hooks as DutyHooks
from tests.support.duty import Mailbox, Procs
from tests.support.readings import rain
from tests.support.run import (
    Receiver,
    Running,
    alive,
    local_app,
    start_run,
    stop_run,
    write_config,
)
from tests.support.tiers import untiered
from yujing.connectors.embedded import free_port


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test sits in a tier folder (whose conftest marked it by now)."""
    if stray := untiered(items):
        raise pytest.UsageError(f"tests outside tests/{{unit,pipeline,integration,browser}}: {stray}")


# --- brokers and servers --------------------------------------------------------------------

@pytest.fixture
def kafka():
    """A fresh Tansu broker (Kafka protocol, in memory): its bootstrap ``host:port``."""
    with services.tansu() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def kafka_home():
    """The Apache Kafka jars `make kafka` installed; skips without them, except in CI (fails)."""
    return apache.installed_home()


@pytest.fixture(scope="module")
def kafka_broker(kafka_home, tmp_path_factory):
    """A fresh one-node Apache Kafka (KRaft, on disk) for the module: its bootstrap
    ``host:port``. Module-scoped: a start takes 5-15 s."""
    with apache.apache_kafka(tmp_path_factory.mktemp("kafka"), kafka_home) as bootstrap:
        yield bootstrap


@pytest.fixture(params=BROKERS)
def broker_kind(request) -> BrokerKind:
    """Each broker in turn (test ids ``[tansu]``, ``[kafka]``), for tests that start it as a
    child process beside the ones they kill (``broker_kind.start(procs, tmp_path)``).
    Apache Kafka skips without its jars, except in CI (fails), like ``kafka_home``."""
    if request.param == "kafka":
        return BrokerKind("kafka", request.getfixturevalue("kafka_home"))
    return BrokerKind(request.param)


@pytest.fixture
def broker(broker_kind, request):
    """Each broker in turn, running: a fresh Tansu per test, the module's Apache Kafka
    (``kafka_broker``; give each test topics of its own)."""
    if broker_kind.name == "kafka":
        yield Broker("kafka", request.getfixturevalue("kafka_broker"))
        return
    with services.tansu() as bootstrap:
        yield Broker("tansu", bootstrap)


@pytest.fixture(scope="module")
def amqtt_port():
    """An amqtt broker (``yujing mqtt-broker``, MQTT 3.1.1) for the module: its port."""
    with services.amqtt_broker() as port:
        yield port


@pytest.fixture
def mosq(tmp_path):
    """Debian's Mosquitto on a free port (``stop``/``start`` it to test reconnects)."""
    with services.mosquitto(tmp_path) as m:
        yield m


@pytest.fixture
def victoria(tmp_path):
    """VictoriaMetrics (the InfluxDB v2 write API and an export API to read back)."""
    vm = services.start_victoria(tmp_path)
    try:
        yield vm
    finally:
        vm.stop()


# --- notification channels -----------------------------------------------------------------

@pytest_asyncio.fixture
async def receiver():
    """One webhook (``/hook``) that apprise's json:// posts to; ``wait_for`` a message."""
    rec = Receiver(free_port())

    async def hook(request: web.Request) -> web.Response:
        rec.messages.append(await request.json())
        return web.Response(text="ok")

    async with local_app(rec.port, web.post("/hook", hook)):
        yield rec


@pytest_asyncio.fixture
async def hooks():
    """A webhook per path (one per person or channel); paths in ``failing`` answer 500."""
    h = DutyHooks(free_port())

    async def post(request: web.Request) -> web.Response:
        path = request.match_info["path"]
        if path in h.failing:
            h.failed.append(path)
            return web.Response(status=500, text="channel down")
        h.got.append((path, await request.json()))
        return web.Response(text="ok")

    async with local_app(h.port, web.post("/{path}", post)):
        yield h


@pytest.fixture
def smtp():
    """An SMTP server (aiosmtpd) that keeps every mail, for apprise's mailto://."""
    box = Mailbox(free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            box.mails.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
            return "250 OK"

    ctl = Controller(Handler(), hostname="127.0.0.1", port=box.port)
    ctl.start()
    yield box
    ctl.stop()


# --- yujing processes ----------------------------------------------------------------------

@pytest.fixture
def procs(tmp_path):
    """Processes of a test, each logging to its own file, stopped in reverse order."""
    ps = Procs(tmp_path)
    yield ps
    ps.stop_all()


@pytest.fixture
def run_factory(tmp_path):
    """Starts `yujing run` (embedded brokers) with a config of the test's; stops it after."""
    started: list[Running] = []

    def make(receiver_port: int, **over) -> Running:
        config, http_port, mqtt_port = write_config(tmp_path, receiver_port, **over)
        r = start_run(tmp_path, config, http_port, mqtt_port)
        started.append(r)
        return r

    yield make
    for r in started:
        stop_run(r)
        for pid in r.pids.values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def duty(tmp_path_factory):
    """One `yujing run` with the duty console for the module: (run, hooks, warm-up warning).

    Roster: flood team A a1, B b1, leader l1 (every town); chemical team c1. Escalation is
    shortened to STEP_S per step. The warm-up warning at DG-MY-R01 says the worker is ready.
    """
    tmp = tmp_path_factory.mktemp("console")
    hooks = Hooks()
    roster = {
        "people": [{"id": "a1", "name": "张三", "phone": "13800000001", "contacts": [hooks.url("a1")]},
                   {"id": "b1", "name": "李四", "phone": "13800000002", "contacts": [hooks.url("b1")]},
                   {"id": "l1", "name": "王五", "contacts": [hooks.url("l1")]},
                   {"id": "c1", "name": "赵六", "contacts": [hooks.url("c1")]}],
        "teams": [{"id": "flood", "name": "三防·全市", "domain": "flood", "regions": ["*"],
                   "rotation": {"start": "2025-01-01", "slots": [{"A": "a1", "B": "b1",
                                                                 "leader": "l1"}]}},
                  {"id": "chem", "name": "危化", "domain": "chemical",
                   "rotation": {"start": "2025-01-01", "slots": [{"A": "c1"}]}}],
    }
    (tmp / "roster.yaml").write_text(yaml.safe_dump(roster, allow_unicode=True))
    config, http_port, mqtt_port = write_config(tmp, hooks.port, **{
        "worker": {"metrics_port": free_port()},
        "alerts": {"roster": str(tmp / "roster.yaml"), "tick": "300ms",
                   "grouping": {"wait": "0s", "interval": "0s"},
                   "escalation": {"orange": {"first": ["A"], "ack_timeout": f"{STEP_S}s",
                                             "then": [["B"], ["leader"]], "repeat": "0s"}},
                   "delivery": {"retries": 1, "backoff": "100ms", "timeout": "5s"}},
        "console": {"tokens": HASHED}})
    run = start_run(tmp, config, http_port, mqtt_port)
    try:
        # warm-up: the worker has joined its group once a first warning comes back
        publish(mqtt_port, "DG-MY-R01", rain("DG-MY-R01"))
        warm = wait_incident(run.http, "DG-MY-R01", 60)
        yield run, hooks, warm
    finally:
        stop_run(run)
        for pid in run.pids.values():
            if alive(pid):
                os.kill(pid, 9)
        hooks.server.shutdown()
