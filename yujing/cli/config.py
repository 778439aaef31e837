"""``yujing config check``: a config file, its rules and its registry, with located errors."""

from __future__ import annotations

from pathlib import Path

import typer

from yujing.config import load_config
from yujing.rules.loader import check_references, load_rules_located
from yujing.stations import load_registry
from yujing.yamlsrc import SourceError

app = typer.Typer(help="Check configuration files.", no_args_is_help=True)


@app.command("check")
def config_check(file: Path) -> None:
    """Validate a config file; errors name file, line, key and the fix (exit 2)."""
    try:
        cfg = load_config(file)
    except SourceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
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
