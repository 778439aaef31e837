"""``yujing deadletter tail``: the newest rejected inputs, and new ones as they come."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Annotated

import orjson
import typer

from yujing.cli.common import ConfigOpt, bootstrap_of, load

app = typer.Typer(help="Inspect rejected input (yujing.deadletter).", no_args_is_help=True)


@app.command("tail")
def deadletter_tail(
        config: ConfigOpt = None,
        n: Annotated[int, typer.Option("-n", "--lines", help="how many of the newest to show")] = 20,
        follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new ones")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
        kafka_bootstrap: Annotated[str | None, typer.Option(help="overrides kafka.bootstrap")] = None,
) -> None:
    """Show the newest dead letters: time, source, reason and the raw payload's start."""
    # lazy: aiokafka takes about 50 ms to import, which --help and the other commands skip
    from yujing.connectors.deadletter import format_letter, tail
    from yujing.connectors.kafka_security import diagnose

    cfg = load(config)
    logging.getLogger().setLevel(logging.WARNING)
    bootstrap = bootstrap_of(cfg, kafka_bootstrap, "deadletter tail",
                             " (yujing run prints it: 'ready kafka=…')")

    def emit(d: dict) -> None:
        typer.echo(orjson.dumps(d).decode() if as_json else format_letter(d))

    async def main_() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        def following() -> None:
            typer.echo(f"following {cfg.kafka.topics.deadletter} (Ctrl-C stops)", err=True)

        return await tail(bootstrap, cfg.kafka.topics.deadletter, n, follow, emit, stop,
                          following=following, security=cfg.kafka.security)

    try:
        shown = asyncio.run(main_())
    except Exception as exc:
        why = asyncio.run(diagnose(bootstrap, cfg.kafka.security)) or exc
        typer.echo(f"deadletter tail: cannot read {cfg.kafka.topics.deadletter} from {bootstrap}: "
                   f"{why}", err=True)
        raise typer.Exit(1) from None
    if not shown and not follow:
        typer.echo("no dead letters", err=True)
