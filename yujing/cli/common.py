"""What every command module shares: the ``--config`` option and loading the config."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from yujing.config import Config, load_config
from yujing.yamlsrc import SourceError

ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", help="config.yaml (default: ./config.yaml if present)")]


def config_path(path: Path | None) -> Path | None:
    """The given config file, else ./config.yaml when there is one, else None (defaults)."""
    if path is not None:
        return path
    default = Path("config.yaml")
    return default if default.exists() else None


def load(path: Path | None) -> Config:
    """Load the config (exit 2 with the located errors) and set up logging from it."""
    try:
        cfg = load_config(config_path(path))
    except SourceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(level=cfg.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return cfg


def bootstrap_of(cfg: Config, override: str | None, command: str, hint: str = "") -> str:
    """The Kafka bootstrap from ``--kafka-bootstrap`` or the config; exit 2 when neither."""
    bootstrap = override or cfg.kafka.bootstrap
    if not bootstrap:
        typer.echo(f"{command}: set kafka.bootstrap in the config or pass --kafka-bootstrap{hint}",
                   err=True)
        raise typer.Exit(2)
    return bootstrap
