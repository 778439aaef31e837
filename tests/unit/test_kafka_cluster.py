"""The three-node KRaft cluster the fault bench runs (yujing/connectors/kafka_broker.py
``cluster``): every node knows every voter, Kafka's own topics are replicated like the
declared ones, and the one-node broker of ``yujing run`` is left as it was."""

from __future__ import annotations

from pathlib import Path

from yujing.connectors.kafka_broker import BrokerSpec, bootstrap_of, cluster


def props(spec: BrokerSpec) -> dict[str, str]:
    return dict(line.split("=", 1) for line in spec.properties().splitlines())


def test_three_nodes_on_distinct_ports_each_knowing_all_three_voters(tmp_path: Path) -> None:
    nodes = cluster(tmp_path / "k")
    assert [n.node_id for n in nodes] == [1, 2, 3]
    ports = [p for n in nodes for p in (n.port, n.controller_port)]
    assert len(set(ports)) == 6
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes)
    for n in nodes:
        p = props(n)
        assert p["node.id"] == str(n.node_id)
        assert p["controller.quorum.voters"] == voters
        assert p["listeners"] == (f"PLAINTEXT://127.0.0.1:{n.port},"
                                  f"CONTROLLER://127.0.0.1:{n.controller_port}")
        assert p["log.dirs"] == str(tmp_path / "k" / f"node-{n.node_id}" / "log")
    assert bootstrap_of(nodes) == ",".join(f"127.0.0.1:{n.port}" for n in nodes)
    assert (tmp_path / "k").is_dir()      # the cluster id is kept there


def test_a_cluster_replicates_its_own_topics_three_times_with_two_in_sync(tmp_path: Path) -> None:
    p = props(cluster(tmp_path)[0])
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "share.coordinator.state.topic.replication.factor", "default.replication.factor"):
        assert p[key] == "3", key
    for key in ("transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr",
                "min.insync.replicas"):
        assert p[key] == "2", key
    assert p["auto.create.topics.enable"] == "false"


def test_two_nodes_replicate_twice_and_need_one_in_sync(tmp_path: Path) -> None:
    p = props(cluster(tmp_path, 2)[1])
    assert (p["offsets.topic.replication.factor"], p["min.insync.replicas"]) == ("2", "1")


def test_one_node_keeps_replication_one_and_the_broker_defaults(tmp_path: Path) -> None:
    spec = BrokerSpec(tmp_path, 9092, 9093)
    p = props(spec)
    assert spec.replicas == 1
    assert p["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert p["transaction.state.log.min.isr"] == "1"
    assert "min.insync.replicas" not in p and "default.replication.factor" not in p
