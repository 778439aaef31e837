"""The processes: ``yujing run``, ``demo``, ``gateway``, ``worker``, ``sink`` (and the hidden
``mqtt-broker``, a child of ``run``).

Each command imports the module of its process when it runs, not at the top:
those modules load faust, aiokafka, aiohttp, paho or influxdb_client (0.1-0.4 s
each, measured with ``python -X importtime``), and every other command, and
``yujing --help``, would pay for them.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Annotated

import typer

from yujing.cli.common import ConfigOpt, bootstrap_of, config_path, load
from yujing.connectors.embedded import run_amqtt
from yujing.yamlsrc import SourceError

BootstrapOpt = Annotated[str | None, typer.Option(help="overrides kafka.bootstrap")]


def run(config: ConfigOpt = None) -> None:
    """Run everything in one process tree (embedded brokers unless configured)."""
    from yujing.supervisor import Supervisor, run_forever  # lazy: see the module's docstring

    cfg = load(config)
    path = config_path(config)
    raise typer.Exit(run_forever(Supervisor(cfg, path.resolve() if path else None)))


def demo(config: ConfigOpt = None,
         duration: Annotated[float, typer.Option(help="seconds of simulated storm")] = 60.0) -> None:
    """`run` plus a simulated rainstorm over Dongguan published over MQTT; exits by itself."""
    from yujing.sim.demo import run_demo  # lazy: see the module's docstring

    cfg = load(config)
    logging.getLogger().setLevel(logging.WARNING)
    path = config_path(config)
    raise typer.Exit(run_demo(cfg, path.resolve() if path else None, duration))


def gateway(config: ConfigOpt = None,
            kafka_bootstrap: BootstrapOpt = None,
            mqtt_url: Annotated[str | None, typer.Option(help="overrides mqtt.url")] = None,
            mqtt_client_id: Annotated[str | None, typer.Option(
                help="overrides mqtt.client_id (one per gateway sharing a subscription)")] = None,
            embedded_kafka: Annotated[bool, typer.Option(hidden=True)] = False) -> None:
    """Run the ingest gateway alone (MQTT + HTTP → Kafka)."""
    from yujing.cli.serve import serve  # lazy: see the module's docstring
    from yujing.malloc import keep_freed_memory

    cfg = load(config)
    bootstrap = bootstrap_of(cfg, kafka_bootstrap, "gateway")
    keep_freed_memory()
    try:
        asyncio.run(serve(cfg, bootstrap, mqtt_url or cfg.mqtt.url, mqtt_client_id))
    except SourceError as exc:  # registry or tokens file broken at start
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def worker(config: ConfigOpt = None,
           kafka_bootstrap: BootstrapOpt = None,
           mqtt_url: Annotated[str | None, typer.Option(hidden=True)] = None,
           embedded_kafka: Annotated[bool, typer.Option(
               help="6 s session and rebalance timeouts, for a broker on this machine "
                    "(Tansu, or Kafka started by `yujing run`)")] = False) -> None:
    """Run one Faust worker (rules, lifecycle, notifications)."""
    from yujing.streams.app import run_worker  # lazy: see the module's docstring

    cfg = load(config)
    bootstrap = bootstrap_of(cfg, kafka_bootstrap, "worker")
    sys.argv = [sys.argv[0]]  # Faust's worker parses argv itself
    run_worker(cfg, bootstrap, embedded_kafka)


def sink(config: ConfigOpt = None,
         kafka_bootstrap: BootstrapOpt = None,
         embedded_kafka: Annotated[bool, typer.Option(
             help="6 s session and rebalance timeouts, for a broker on this machine")] = False,
         ) -> None:
    """Run the InfluxDB sink: yujing.readings and yujing.warnings → InfluxDB (influx: section)."""
    from yujing.connectors.influx import serve as serve_sink  # lazy: see the module's docstring

    cfg = load(config)
    if cfg.influx is None:
        typer.echo("sink: the config has no influx: section; add url, org, bucket and token",
                   err=True)
        raise typer.Exit(2)
    bootstrap = bootstrap_of(cfg, kafka_bootstrap, "sink")
    try:
        asyncio.run(serve_sink(cfg, bootstrap, embedded_kafka))
    except SourceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def mqtt_broker(port: int = 1883, host: str = "127.0.0.1") -> None:
    """Run the embedded amqtt broker (a child of `yujing run`)."""
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run_amqtt(port, host))
