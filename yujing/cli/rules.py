"""``yujing rules check|test``: validate rule packs and run their YAML rule tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from yujing.backtest.ruletests import run_folder
from yujing.rules.loader import check_references, field_warnings, load_rules_located
from yujing.stations import load_registry
from yujing.yamlsrc import SourceError

app = typer.Typer(help="Check rule packs.", no_args_is_help=True)


@app.command("check")
def rules_check(folder: Path,
                registry: Annotated[Path | None, typer.Option(
                    help="station registry to check selectors and station fields against")] = None
                ) -> None:
    """Validate every rule file in a folder (exit 2 on any error)."""
    try:
        located = load_rules_located(folder)
        reg = load_registry(registry) if registry else None
        problems = check_references(located, reg) if reg is not None else []
        for w in field_warnings(located, reg):
            typer.echo(f"warning: {w}", err=True)
    except SourceError as exc:
        problems = exc.problems
        located = []
    if problems:
        for p in problems:
            typer.echo(str(p), err=True)
        typer.echo(f"{len(problems)} problem(s)", err=True)
        raise typer.Exit(2)
    typer.echo(f"{folder}: {len(located)} rules ok" + (f" against {registry}" if registry else ""))


@app.command("test")
def rules_test(folder: Path,
               registry: Annotated[Path | None, typer.Option(
                   help="registry for test files that name none")] = None) -> None:
    """Run the YAML rule tests (*.test.yaml) next to the rules; exit 1 if any fails."""
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
