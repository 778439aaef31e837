"""``yujing watchdog``: who watches the watchman (系统自身故障).

Run it under its own systemd unit beside gateways and workers; ``yujing run`` starts
the same process as a child. The module of the process is imported when the command
runs (aiokafka and aiohttp are slow to import; see run.py).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from yujing.cli.common import ConfigOpt, bootstrap_of, load


def watchdog(config: ConfigOpt = None,
             kafka_bootstrap: Annotated[str | None, typer.Option(
                 help="overrides kafka.bootstrap")] = None,
             port: Annotated[int | None, typer.Option(help="overrides watchdog.port")] = None,
             ) -> None:
    """Watch Kafka, the worker group, gateway, sink and notification channels; tell the duty
    room directly when one fails; serve /healthz and /heartbeat."""
    from yujing.watchdog.web import serve  # lazy: see the module's docstring

    cfg = load(config)
    bootstrap = bootstrap_of(cfg, kafka_bootstrap, "watchdog")
    asyncio.run(serve(cfg, bootstrap, port))
