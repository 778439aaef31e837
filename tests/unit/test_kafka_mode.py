"""kafka.embedded: kafka without a broker: the config keys, the broker's properties and the
ports a restarted `yujing run` reuses (yujing/connectors/kafka_broker.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from yujing.config import load_config
from yujing.connectors.kafka_broker import (
    BrokerSpec,
    KafkaNotInstalled,
    check_installed,
    cluster_id,
    remembered_bootstrap,
    stable_ports,
)


def test_embedded_defaults_to_tansu_and_home_is_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("kafka: {}\n")
    assert load_config(tmp_path / "a.yaml").kafka.embedded == "tansu"
    (tmp_path / "b.yaml").write_text("kafka: {embedded: kafka, home: jars, heap_mb: 256}\n")
    k = load_config(tmp_path / "b.yaml").kafka
    assert (k.embedded, k.home, k.heap_mb) == ("kafka", tmp_path / "jars", 256)


def test_an_unknown_embedded_broker_is_refused_with_the_choices(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("kafka: {embedded: redpanda}\n")
    with pytest.raises(Exception, match="tansu.*kafka"):
        load_config(tmp_path / "c.yaml")


def test_broker_properties_are_one_node_kraft_without_auto_created_topics(tmp_path: Path) -> None:
    props = BrokerSpec(tmp_path, 9092, 9093).properties()
    lines = dict(line.split("=", 1) for line in props.splitlines())
    assert lines["process.roles"] == "broker,controller"
    assert lines["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert lines["auto.create.topics.enable"] == "false"
    assert lines["offsets.topic.replication.factor"] == "1"
    assert lines["log.dirs"] == str(tmp_path / "log")


def test_ports_are_remembered_in_the_data_dir(tmp_path: Path) -> None:
    first = stable_ports(tmp_path)
    assert first[0] != first[1]
    assert stable_ports(tmp_path) == first            # a restart answers where it did
    assert stable_ports(tmp_path, 0) == first
    assert (tmp_path / "ports").read_text().split() == [str(p) for p in first]


def test_the_configured_port_wins_and_a_taken_port_is_replaced(tmp_path: Path) -> None:
    client, controller = stable_ports(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", client))
        s.listen()
        moved = stable_ports(tmp_path)
    assert moved[0] != client and moved[1] == controller
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        mine = s.getsockname()[1]
    assert stable_ports(tmp_path, mine)[0] == mine


def test_missing_jars_say_how_to_install_them(tmp_path: Path) -> None:
    with pytest.raises(KafkaNotInstalled, match="make kafka"):
        check_installed(tmp_path)


def test_topics_commands_find_the_embedded_kafka_at_the_port_of_its_last_start(
        tmp_path: Path) -> None:
    assert remembered_bootstrap(tmp_path) is None        # never started
    client, _ = stable_ports(tmp_path)
    assert remembered_bootstrap(tmp_path) == f"127.0.0.1:{client}"


def test_a_cluster_id_is_kept_and_never_reads_as_an_option(tmp_path: Path) -> None:
    first = cluster_id(tmp_path)
    assert cluster_id(tmp_path) == first and len(first) == 22
    for i in range(300):     # about 1 in 64 random ids would start with "-"
        d = tmp_path / str(i)
        d.mkdir()
        assert not cluster_id(d).startswith("-")
