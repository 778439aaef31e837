"""Apache Kafka for the tests: the jars `make kafka` installed (never installed from here),
one KRaft node on free loopback ports in a test's folder (yujing/connectors/kafka_broker.py
writes its properties and formats its storage), and a check that no broker of a test is
left running. The fixtures (kafka_home, kafka_broker) are in tests/conftest.py."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from yujing.connectors.embedded import die_with_parent, free_port
from yujing.connectors.kafka_broker import (
    BrokerSpec,
    KafkaNotInstalled,
    check_installed,
    kafka_home,
    prepare,
    wait_answering,
)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def installed_home() -> Path:
    """The installed jars' folder. Missing: a skip on a developer's machine, a failure in CI
    (`make test`, and so .ci/run, installs them first)."""
    home = kafka_home()
    try:
        check_installed(home)
    except KafkaNotInstalled as exc:
        if in_ci():
            pytest.fail(f"CI must run on Apache Kafka too: {exc}", pytrace=False)
        pytest.skip(f"Apache Kafka is not installed (run `make kafka`): {exc}")
    return home


@contextmanager
def apache_kafka(data_dir: Path, home: Path) -> Iterator[str]:
    """One broker on its own storage under ``data_dir``; yields its bootstrap once it answers
    a metadata request; stopped with SIGTERM (a clean shutdown) after."""
    port = free_port()
    controller = free_port()
    while controller == port:
        controller = free_port()
    spec = BrokerSpec(data_dir, port, controller)
    with broker_process(prepare(spec, home), spec.bootstrap, data_dir):
        yield spec.bootstrap


@contextmanager
def broker_process(argv: list[str], bootstrap: str, data_dir: Path,
                   auth: dict | None = None) -> Iterator[subprocess.Popen]:
    """Run a prepared broker's command line with its log in ``data_dir/kafka.log`` until it
    answers on ``bootstrap`` (with ``auth``: aiokafka security arguments); SIGTERM (a clean
    shutdown) after, SIGKILL if that takes over a minute."""
    with open(data_dir / "kafka.log", "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=die_with_parent)
    try:
        if not wait_answering(bootstrap, 120, lambda: proc.poll() is None, auth):
            raise AssertionError(f"Apache Kafka did not answer on {bootstrap}:\n"
                                 + (data_dir / "kafka.log").read_text(errors="replace")[-3000:])
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def brokers_under(folder: Path) -> list[int]:
    """Pids of Kafka brokers (java ... kafka.Kafka) whose properties lie under ``folder``."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and b"kafka.Kafka" in argv and any(
                a.startswith(str(folder).encode()) for a in argv):
            found.append(int(d.name))
    return found
