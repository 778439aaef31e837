"""``yujing topics check|apply``: the project's declared topics on the configured Kafka.

``check`` prints each difference with its exact fix and exits 1 when there is one;
``apply`` creates, grows and alters what it can and says what it cannot (partitions never
shrink, replicas are moved with Kafka's own reassignment tool). Both run against
``kafka.bootstrap``, ``--kafka-bootstrap``, or the embedded Kafka of ``yujing run``
(``kafka.embedded: kafka``) at the port of its last start.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from yujing.cli.common import ConfigOpt, bootstrap_of, load
from yujing.config import Config

app = typer.Typer(help="Declared Kafka topics: partitions, replication, retention, compaction.",
                  no_args_is_help=True)
BootstrapOpt = Annotated[str | None, typer.Option(help="overrides kafka.bootstrap")]


def _bootstrap(cfg: Config, override: str | None, command: str) -> str:
    # lazy: aiokafka (through kafka_broker) is 50 ms that --help and the other commands skip
    from yujing.connectors.kafka_broker import remembered_bootstrap

    if not override and not cfg.kafka.bootstrap and cfg.kafka.embedded == "kafka":
        found = remembered_bootstrap(cfg.worker.data_dir / "kafka")
        if found:
            return found
    return bootstrap_of(cfg, override, command, " (yujing run prints it: 'ready kafka=…')")


def _run(cfg: Config, bootstrap: str, fix: bool) -> int:
    from yujing.connectors import topics  # lazy: see _bootstrap

    async def main() -> topics.Report:
        admin = await topics.connect(bootstrap, timeout_s=10, security=cfg.kafka.security)
        try:
            wanted = await topics.specs(admin, cfg.kafka)
            if fix:
                return await topics.apply(admin, wanted, bootstrap)
            return await topics.check(admin, wanted, bootstrap)
        finally:
            await admin.close()

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)   # a failure is reported below
    try:
        report = asyncio.run(main())
    except (RuntimeError, OSError) as exc:
        hint = "" if cfg.kafka.bootstrap else " (the embedded broker runs while `yujing run` does)"
        typer.echo(f"topics: {exc}{hint}", err=True)
        return 2
    for line in report.done:
        typer.echo(f"done: {line}")
    for f in report.findings:
        typer.echo(f"{'note' if f.note else 'MISMATCH'}: {f.text}")
        typer.echo(f"  fix: {f.fix}")
    if report.ok:
        typer.echo(f"ok: {report.topics} topics on {bootstrap} as declared")
        return 0
    left = len(report.mismatches)
    typer.echo(f"{left} difference{'s' if left > 1 else ''} on {bootstrap}", err=True)
    return 1


@app.command("check")
def topics_check(config: ConfigOpt = None, kafka_bootstrap: BootstrapOpt = None) -> None:
    """Compare every declared topic with the broker; exit 1 with each difference and its fix."""
    cfg = load(config)
    logging.getLogger().setLevel(logging.WARNING)
    raise typer.Exit(_run(cfg, _bootstrap(cfg, kafka_bootstrap, "topics check"), fix=False))


@app.command("apply")
def topics_apply(config: ConfigOpt = None, kafka_bootstrap: BootstrapOpt = None) -> None:
    """Create missing topics, add partitions, alter configs; exit 1 if something is left."""
    cfg = load(config)
    logging.getLogger().setLevel(logging.WARNING)
    raise typer.Exit(_run(cfg, _bootstrap(cfg, kafka_bootstrap, "topics apply"), fix=True))
