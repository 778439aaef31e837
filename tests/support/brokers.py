"""The two Kafka-protocol brokers the durability, rebalance and restart tests run on.

Tansu is the embedded default (in memory, ready in ~50 ms, wrong end offsets); Apache Kafka
is the production engine (on disk, 5-15 s to start on two cores). The fixtures in
tests/conftest.py are parametrised over :data:`BROKERS`, so each test id names its broker
(``[tansu]``, ``[kafka]``): ``broker`` is a running one for tests that only talk to it, and
``broker_kind`` starts one as a test's child process (beside the gateway and workers it
kills) with :meth:`BrokerKind.start`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.support.duty import Procs
from yujing.connectors.embedded import free_port, tansu_command, wait_port
from yujing.connectors.kafka_broker import BrokerSpec, prepare, wait_answering

BROKERS = ("tansu", "kafka")


@dataclass(frozen=True)
class Broker:
    """A running broker: which one, and where."""

    name: str
    bootstrap: str


@dataclass(frozen=True)
class BrokerKind:
    """One of :data:`BROKERS`, and how to start it (``home``: the Kafka jars' folder)."""

    name: str
    home: Path | None = None

    def start(self, procs: Procs, data: Path) -> Broker:
        """Start a fresh broker as the process ``procs.procs[self.name]`` (stopped with the
        test's other processes), with its storage under ``data``; return it once it answers."""
        if self.name == "tansu":
            port = free_port()
            procs.start("tansu", tansu_command(port))
            assert wait_port("127.0.0.1", port, 20), "Tansu did not listen"
            return Broker("tansu", f"127.0.0.1:{port}")
        assert self.home is not None, "Apache Kafka needs the folder `make kafka` filled"
        port = free_port()
        controller = free_port()
        while controller == port:
            controller = free_port()
        spec = BrokerSpec(data / "kafka", port, controller)
        proc = procs.start("kafka", prepare(spec, self.home), die_with_parent=True)
        # in a thread: wait_answering runs its own event loop, and async tests call this
        with ThreadPoolExecutor(1) as pool:
            answering = pool.submit(wait_answering, spec.bootstrap, 120,
                                    lambda: proc.poll() is None).result()
        if not answering:
            raise AssertionError(f"Apache Kafka did not answer on {spec.bootstrap}:\n"
                                 + procs.log("kafka")[-3000:])
        return Broker("kafka", spec.bootstrap)
