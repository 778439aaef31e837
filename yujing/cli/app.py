"""The ``yujing`` command line (typer)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from yujing.config import Config, load_config
from yujing.yamlsrc import SourceError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Yujing (预警): real-time monitoring and early warning.")
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
rules_app = typer.Typer(help="Check rule packs.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(rules_app, name="rules")
from yujing.cli.models import models_app  # noqa: E402 - yujing models train|evaluate|list
app.add_typer(models_app, name="models")

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
    from yujing.supervisor import Supervisor, run_forever

    cfg = _load(config)
    path = _config_path(config)
    raise typer.Exit(run_forever(Supervisor(cfg, path.resolve() if path else None)))


@app.command()
def demo(config: ConfigOpt = None,
         duration: Annotated[float, typer.Option(help="seconds of simulated storm")] = 60.0) -> None:
    """`run` plus a simulated rainstorm over Dongguan published over MQTT; exits by itself."""
    from yujing.sim.demo import run_demo

    cfg = _load(config)
    logging.getLogger().setLevel(logging.WARNING)
    path = _config_path(config)
    raise typer.Exit(run_demo(cfg, path.resolve() if path else None, duration))


@app.command()
def gateway(config: ConfigOpt = None,
            kafka_bootstrap: Annotated[Optional[str], typer.Option(help="overrides kafka.bootstrap")] = None,
            mqtt_url: Annotated[Optional[str], typer.Option(help="overrides mqtt.url")] = None,
            mqtt_client_id: Annotated[Optional[str], typer.Option(
                help="overrides mqtt.client_id (one per gateway sharing a subscription)")] = None,
            embedded_kafka: Annotated[bool, typer.Option(hidden=True)] = False) -> None:
    """Run the ingest gateway alone (MQTT + HTTP → Kafka)."""
    from yujing.connectors.gateway import serve

    cfg = _load(config)
    bootstrap = kafka_bootstrap or cfg.kafka.bootstrap
    if not bootstrap:
        typer.echo("gateway: set kafka.bootstrap in the config or pass --kafka-bootstrap", err=True)
        raise typer.Exit(2)
    try:
        asyncio.run(serve(cfg, bootstrap, mqtt_url or cfg.mqtt.url, mqtt_client_id))
    except SourceError as exc:  # registry or tokens file broken at start
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command()
def worker(config: ConfigOpt = None,
           kafka_bootstrap: Annotated[Optional[str], typer.Option(help="overrides kafka.bootstrap")] = None,
           mqtt_url: Annotated[Optional[str], typer.Option(hidden=True)] = None,
           embedded_kafka: Annotated[bool, typer.Option(help="use timeouts tuned for Tansu")] = False) -> None:
    """Run one Faust worker (rules, lifecycle, notifications)."""
    from yujing.streams.app import run_worker

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
    from yujing.connectors.embedded import run_amqtt

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
    from yujing.stations import load_registry
    from yujing.rules.loader import check_references, load_rules_located
    try:
        rules = load_rules_located(cfg.worker.rules_dir)
        registry = load_registry(cfg.worker.registry) if cfg.worker.registry else None
        problems = check_references(rules, registry) if registry is not None else []
    except SourceError as exc:
        problems = exc.problems
    if problems:
        typer.echo("\n".join(str(p) for p in problems), err=True)
        raise typer.Exit(2)
    typer.echo(f"{file}: ok ({len(rules)} rules in {cfg.worker.rules_dir}"
               + (f", registry {cfg.worker.registry})" if cfg.worker.registry else ")"))


@rules_app.command("check")
def rules_check(folder: Path,
                registry: Annotated[Optional[Path], typer.Option(
                    help="station registry to check selectors and station fields against")] = None
                ) -> None:
    """Validate every rule file in a folder (exit 2 on any error)."""
    from yujing.stations import load_registry
    from yujing.rules.loader import check_references, load_rules_located
    try:
        located = load_rules_located(folder)
        problems = check_references(located, load_registry(registry)) if registry else []
    except SourceError as exc:
        problems = exc.problems
        located = []
    if problems:
        for p in problems:
            typer.echo(str(p), err=True)
        typer.echo(f"{len(problems)} problem(s)", err=True)
        raise typer.Exit(2)
    typer.echo(f"{folder}: {len(located)} rules ok" + (f" against {registry}" if registry else ""))


@rules_app.command("test")
def rules_test(folder: Path,
               registry: Annotated[Optional[Path], typer.Option(
                   help="registry for test files that name none")] = None) -> None:
    """Run the YAML rule tests (*.test.yaml) next to the rules; exit 1 if any fails."""
    from yujing.backtest.ruletests import run_folder
    try:
        results = run_folder(folder, registry)
    except SourceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    for r in results:
        typer.echo(f"{'PASS' if r.ok else 'FAIL'}  {r.file}: {r.name}")
        for failure in r.failures:
            typer.echo(f"      {failure}")
    failed = sum(not r.ok for r in results)
    typer.echo(f"{len(results) - failed} passed, {failed} failed")
    raise typer.Exit(1 if failed else 0)


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
    from yujing.backtest.replay import BacktestInputError, Options, run_backtest
    try:
        code = run_backtest(Options(rules, data, out, registry, compare, chunk_readings, plots,
                                    quiet))
    except (SourceError, BacktestInputError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


deadletter_app = typer.Typer(help="Inspect rejected input (yujing.deadletter).",
                             no_args_is_help=True)
token_app = typer.Typer(help="Gateway tokens for HTTP ingest.", no_args_is_help=True)
app.add_typer(deadletter_app, name="deadletter")
app.add_typer(token_app, name="token")


@app.command()
def sink(config: ConfigOpt = None,
         kafka_bootstrap: Annotated[Optional[str], typer.Option(help="overrides kafka.bootstrap")] = None,
         embedded_kafka: Annotated[bool, typer.Option(help="use timeouts tuned for Tansu")] = False,
         ) -> None:
    """Run the InfluxDB sink: yujing.readings and yujing.warnings → InfluxDB (influx: section)."""
    from yujing.connectors.influx import serve as serve_sink

    cfg = _load(config)
    if cfg.influx is None:
        typer.echo("sink: the config has no influx: section; add url, org, bucket and token",
                   err=True)
        raise typer.Exit(2)
    bootstrap = kafka_bootstrap or cfg.kafka.bootstrap
    if not bootstrap:
        typer.echo("sink: set kafka.bootstrap in the config or pass --kafka-bootstrap", err=True)
        raise typer.Exit(2)
    try:
        asyncio.run(serve_sink(cfg, bootstrap, embedded_kafka))
    except SourceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@deadletter_app.command("tail")
def deadletter_tail(
        config: ConfigOpt = None,
        n: Annotated[int, typer.Option("-n", "--lines", help="how many of the newest to show")] = 20,
        follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new ones")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
        kafka_bootstrap: Annotated[Optional[str], typer.Option(help="overrides kafka.bootstrap")] = None,
) -> None:
    """Show the newest dead letters: time, source, reason and the raw payload's start."""
    import signal as _signal

    import orjson

    from yujing.connectors.deadletter import format_letter, tail

    cfg = _load(config)
    logging.getLogger().setLevel(logging.WARNING)
    bootstrap = kafka_bootstrap or cfg.kafka.bootstrap
    if not bootstrap:
        typer.echo("deadletter tail: set kafka.bootstrap in the config or pass --kafka-bootstrap "
                   "(yujing run prints it: 'ready kafka=…')", err=True)
        raise typer.Exit(2)

    def emit(d: dict) -> None:
        typer.echo(orjson.dumps(d).decode() if as_json else format_letter(d))

    async def main_() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (_signal.SIGINT, _signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await tail(bootstrap, cfg.kafka.topics.deadletter, n, follow, emit, stop)

    try:
        shown = asyncio.run(main_())
    except Exception as exc:  # noqa: BLE001 - Kafka unreachable: say so, no traceback
        typer.echo(f"deadletter tail: cannot read {cfg.kafka.topics.deadletter} from {bootstrap}: "
                   f"{exc}", err=True)
        raise typer.Exit(1) from None
    if not shown and not follow:
        typer.echo("no dead letters", err=True)


@token_app.command("new")
def token_new(gateway: Annotated[str, typer.Option(help="the gateway's name (logs, dead letters)")],
              station: Annotated[Optional[list[str]], typer.Option(
                  help="station id or pattern it may write (repeatable)")] = None,
              enterprise: Annotated[Optional[list[str]], typer.Option(
                  help="enterprise whose stations it may write (repeatable)")] = None,
              all_stations: Annotated[bool, typer.Option(help="may write every station")] = False,
              ) -> None:
    """Make a token: prints it once, and the entry (hash only) for http.tokens_file."""
    import yaml

    from yujing.connectors.auth import TokenEntry, hash_token, new_token

    if not (station or enterprise or all_stations):
        typer.echo("token new: give the token a scope: --station ID (or pattern), --enterprise ID "
                   "or --all-stations", err=True)
        raise typer.Exit(2)
    token = new_token()
    try:
        entry = TokenEntry(gateway=gateway, sha256=hash_token(token), stations=station or [],
                           enterprises=enterprise or [], all_stations=all_stations)
    except ValueError as exc:
        typer.echo(f"token new: gateway name {gateway!r} is not allowed: use 1-64 letters, digits, "
                   f"'_', '-', '.', ':' ({exc.__class__.__name__})", err=True)
        raise typer.Exit(2) from None
    doc = entry.model_dump(exclude_defaults=True)
    doc["sha256"] = entry.sha256
    typer.echo(f"# token for {gateway} (shown once; give it to the gateway's operator):", err=True)
    typer.echo(f"# {token}", err=True)
    typer.echo("# append under tokens: in the tokens file:", err=True)
    typer.echo(yaml.safe_dump([doc], allow_unicode=True, sort_keys=False).rstrip())


# Duty workflow: roster show|check, ack, note, clear, silence add|list|expire (issue 4).
from yujing.cli.duty import register as _register_duty  # noqa: E402

_register_duty(app, _load)


def main() -> None:
    app()
