"""The ``yujing`` command line (typer)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .config import Config, load_config
from .yamlsrc import SourceError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Yujing (预警): real-time monitoring and early warning.")
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
rules_app = typer.Typer(help="Check rule packs.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(rules_app, name="rules")

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="config.yaml (default: ./config.yaml if present)")]


def _config_path(path: Path | None) -> Path | None:
    if path is not None:
        return path
    default = Path("config.yaml")
    return default if default.exists() else None


def _load(path: Path | None) -> Config:
    try:
        cfg = load_config(_config_path(path))
    except SourceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(level=cfg.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return cfg


@app.command()
def run(config: ConfigOpt = None) -> None:
    """Run everything in one process tree (embedded brokers unless configured)."""
    from .supervisor import Supervisor, run_forever

    cfg = _load(config)
    path = _config_path(config)
    raise typer.Exit(run_forever(Supervisor(cfg, path.resolve() if path else None)))


@app.command()
def demo(config: ConfigOpt = None,
         duration: Annotated[float, typer.Option(help="seconds of simulated storm")] = 60.0) -> None:
    """`run` plus a simulated rainstorm over Dongguan published over MQTT; exits by itself."""
    from .sim.demo import run_demo

    cfg = _load(config)
    logging.getLogger().setLevel(logging.WARNING)
    path = _config_path(config)
    raise typer.Exit(run_demo(cfg, path.resolve() if path else None, duration))


@app.command()
def gateway(config: ConfigOpt = None,
            kafka_bootstrap: Annotated[Optional[str], typer.Option(help="overrides kafka.bootstrap")] = None,
            mqtt_url: Annotated[Optional[str], typer.Option(help="overrides mqtt.url")] = None,
            embedded_kafka: Annotated[bool, typer.Option(hidden=True)] = False) -> None:
    """Run the ingest gateway alone (MQTT + HTTP → Kafka)."""
    from .connectors.gateway import serve

    cfg = _load(config)
    bootstrap = kafka_bootstrap or cfg.kafka.bootstrap
    if not bootstrap:
        typer.echo("gateway: set kafka.bootstrap in the config or pass --kafka-bootstrap", err=True)
        raise typer.Exit(2)
    asyncio.run(serve(cfg, bootstrap, mqtt_url or cfg.mqtt.url))


@app.command()
def worker(config: ConfigOpt = None,
           kafka_bootstrap: Annotated[Optional[str], typer.Option(help="overrides kafka.bootstrap")] = None,
           mqtt_url: Annotated[Optional[str], typer.Option(hidden=True)] = None,
           embedded_kafka: Annotated[bool, typer.Option(help="use timeouts tuned for Tansu")] = False) -> None:
    """Run one Faust worker (rules, lifecycle, notifications)."""
    from .streams.app import run_worker

    cfg = _load(config)
    bootstrap = kafka_bootstrap or cfg.kafka.bootstrap
    if not bootstrap:
        typer.echo("worker: set kafka.bootstrap in the config or pass --kafka-bootstrap", err=True)
        raise typer.Exit(2)
    sys.argv = [sys.argv[0]]  # Faust's worker parses argv itself
    run_worker(cfg, bootstrap, embedded_kafka)


@app.command("mqtt-broker", hidden=True)
def mqtt_broker(port: int = 1883, host: str = "127.0.0.1") -> None:
    """Run the embedded amqtt broker (a child of `yujing run`)."""
    from .connectors.embedded import run_amqtt

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run_amqtt(port, host))


@config_app.command("check")
def config_check(file: Path) -> None:
    """Validate a config file; errors name file, line, key and the fix (exit 2)."""
    try:
        cfg = load_config(file)
    except SourceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    from .rules.loader import load_rules
    try:
        rules = load_rules(cfg.worker.rules_dir)
    except SourceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{file}: ok ({len(rules)} rules in {cfg.worker.rules_dir})")


@rules_app.command("check")
def rules_check(folder: Path) -> None:
    """Validate every rule file in a folder (exit 2 on any error)."""
    from .rules.loader import load_rules
    try:
        rules = load_rules(folder)
    except SourceError as exc:
        typer.echo(str(exc), err=True)
        typer.echo(f"{len(exc.problems)} problem(s)", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{folder}: {len(rules)} rules ok")


@app.command()
def backtest(
    rules: Annotated[Path, typer.Option(help="folder of *.yaml rule files (rule set A)")],
    data: Annotated[Path, typer.Option(help="readings CSV: ts,station,metric,value")],
    out: Annotated[Path, typer.Option(help="folder for transitions.csv, summary.csv, plots/")],
    registry: Annotated[Optional[Path], typer.Option(help="station registry (no-data checks, "
                                                          "thresholds, names)")] = None,
    compare: Annotated[Optional[Path], typer.Option(help="rule set B: report warnings added, "
                                                         "lost and shifted against A")] = None,
    chunk_readings: Annotated[int, typer.Option(min=1, help="readings per replayed chunk")] = 200_000,
    plots: Annotated[int, typer.Option(min=0, help="plot this many most-warned stations")] = 6,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Replay a readings CSV through the worker's rules: transitions, summary, plots, compare."""
    from .backtest import BacktestInputError, Options, run_backtest
    try:
        code = run_backtest(Options(rules, data, out, registry, compare, chunk_readings, plots,
                                    quiet))
    except (SourceError, BacktestInputError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def main() -> None:
    app()
