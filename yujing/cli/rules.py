"""``yujing rules check|test``: validate rule packs and run their YAML rule tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from yujing.backtest.ruletests import run_folder
from yujing.models.errors import ModelError
from yujing.models.registry import ModelRegistry
from yujing.models.signing import NO_KEY_FIX, resolve_key
from yujing.pipeline.models_view import split_groups
from yujing.rules.loader import check_models, check_references, field_warnings, load_rules_located
from yujing.stations import Registry, load_registry
from yujing.yamlsrc import Problem, SourceError

app = typer.Typer(help="Check rule packs.", no_args_is_help=True)


@app.command("check")
def rules_check(folder: Path,
                registry: Annotated[Path | None, typer.Option(
                    help="station registry to check selectors and station fields against")] = None,
                models: Annotated[Path | None, typer.Option(
                    help="model registry folder: every anomaly(model=...) must load from it "
                         "(signed with the key), a group model's stations be one registry group")
                ] = None,
                key_file: Annotated[Path | None, typer.Option(
                    help="the model signing key (default $YUJING_MODELS_KEY_FILE, "
                         "$YUJING_MODELS_KEY)")] = None) -> None:
    """Validate every rule file in a folder (exit 2 on any error)."""
    try:
        located = load_rules_located(folder)
        reg = load_registry(registry) if registry else None
        problems = check_references(located, reg) if reg is not None else []
        for w in field_warnings(located, reg):
            typer.echo(f"warning: {w}", err=True)
        if models is not None:
            problems += _model_problems(located, reg, registry, models, key_file)
    except SourceError as exc:
        problems = exc.problems
        located = []
    if problems:
        for p in problems:
            typer.echo(str(p), err=True)
        typer.echo(f"{len(problems)} problem(s)", err=True)
        raise typer.Exit(2)
    typer.echo(f"{folder}: {len(located)} rules ok" + (f" against {registry}" if registry else ""))


def _model_problems(located: list, reg: Registry | None, registry: Path | None, models: Path,
                    key_file: Path | None) -> list[Problem]:
    """Rules naming a model that does not load from ``models``; group models over stations
    the registry does not put in one group (what the worker would only log)."""
    try:
        key = resolve_key(key_file)
    except ModelError as exc:
        return [Problem(str(key_file or models), 0, "", str(exc))]
    if key is None:
        return [Problem(str(models), 0, "", f"no model signing key to check the models: "
                                            f"{NO_KEY_FIX}")]
    store, loaded = ModelRegistry(models, key), {}

    def load(name: str) -> Any:
        if name not in loaded:
            loaded[name] = store.load_latest(name)
        return loaded[name]

    problems = check_models(located, load)
    if reg is not None:
        problems += [Problem(str(registry), 0, "group", said) for said in
                     split_groups(loaded, [r for r, _ in located], reg)]
    return problems


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
