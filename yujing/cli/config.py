"""``yujing config check``: a config and every file it names, with located errors.

The config itself, then the rules, the station registry, the gateways' tokens
file, the duty roster and the anomaly models the rules use: each read the way the
process that uses it reads it, so a config that passes here does not stop a
gateway or a worker at start. Every problem of every file is listed (file, line,
key, fix), not only the first.
"""

from __future__ import annotations

from pathlib import Path

import typer

from yujing.alerts.cap_settings import registry_problems
from yujing.alerts.orgs import load_orgs, merge
from yujing.alerts.roster import load_roster
from yujing.cli.tokens import tokens_file_problems
from yujing.config import Config, load_config
from yujing.models.base import ModelError
from yujing.models.registry import ModelRegistry
from yujing.models.signing import resolve_key
from yujing.rules.compiled import compile_rule
from yujing.rules.loader import Origin, check_references, field_warnings, load_rules_located
from yujing.rules.schema import Rule
from yujing.stations import load_registry
from yujing.yamlsrc import Problem, SourceError, load_yaml

app = typer.Typer(help="Check configuration files.", no_args_is_help=True)


@app.command("check")
def config_check(file: Path) -> None:
    """Validate a config file and the files it names; errors name file, line, key and the
    fix (exit 2)."""
    try:
        cfg = load_config(file)
    except SourceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    problems: list[Problem] = []
    said: list[str] = []
    rules = _rules_and_registry(cfg, problems, said, file)
    _tokens(cfg, problems, said)
    _roster(cfg, problems, said)
    _models(cfg, rules, problems, said)
    if problems:
        typer.echo("\n".join(str(p) for p in problems), err=True)
        raise typer.Exit(2)
    typer.echo(f"{file}: ok ({', '.join(said)})")


def _rules_and_registry(cfg: Config, problems: list[Problem], said: list[str],
                        cfg_file: Path) -> list[tuple[Rule, Origin]]:
    w = cfg.worker
    try:
        rules = load_rules_located(w.rules_dir)
    except SourceError as exc:
        problems.extend(exc.problems)
        rules = []
    said.append(f"{len(rules)} rules in {w.rules_dir}")
    if w.registry:
        try:
            registry = load_registry(w.registry)
            problems.extend(check_references(rules, registry))
            for note in field_warnings(rules, registry):
                typer.echo(f"warning: {note}", err=True)
            src = load_yaml(cfg_file)  # the cap section's lines, for the registry's cross-check
            problems.extend(registry_problems(cfg.cap, registry, str(cfg_file), src.line_of))
            said.append(f"registry {w.registry}")
        except SourceError as exc:
            problems.extend(exc.problems)
    return rules


def _tokens(cfg: Config, problems: list[Problem], said: list[str]) -> None:
    path = cfg.http.tokens_file
    if path is None:
        said.append("open ingest: no http.tokens_file")
        return
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(Problem(str(path), 0, "", "file not found: make it with `yujing token "
                                "new --gateway NAME --file FILE`, or fix http.tokens_file"
                                if isinstance(exc, FileNotFoundError)
                                else f"cannot read file: {exc.strerror}"))
        return
    n, found = tokens_file_problems(Path(path), text)
    problems.extend(found)
    said.append(f"tokens {path} ({n} token{'' if n == 1 else 's'})")


def _roster(cfg: Config, problems: list[Problem], said: list[str]) -> None:
    if cfg.alerts.roster is None:
        return
    try:
        r = load_roster(cfg.alerts.roster)
    except SourceError as exc:
        problems.extend(exc.problems)
        return
    said.append(f"roster {cfg.alerts.roster} ({len(r.people)} people, {len(r.teams)} teams)")
    if cfg.alerts.enterprises is None:
        return
    try:
        orgs = load_orgs(cfg.alerts.enterprises)
        merge(r, orgs)
        reg = load_registry(cfg.worker.registry)
    except SourceError as exc:
        problems.extend(exc.problems)
        return
    problems.extend(Problem(str(cfg.worker.registry), 0, "enterprise", p)
                    for p in orgs.unknown_enterprises({s.id: s.enterprise
                                                       for s in reg.stations.values()}))
    said.append(f"enterprises {cfg.alerts.enterprises} ({len(orgs.enterprises)} enterprises, "
                f"{len(orgs.towns)} towns)")


def _models(cfg: Config, rules: list[tuple[Rule, Origin]], problems: list[Problem],
            said: list[str]) -> None:
    """Every model an enabled rule's anomaly() names must load from worker.models_dir (the
    worker would otherwise evaluate that rule without it)."""
    root = cfg.worker.models_dir
    registry = None
    if root is not None:
        try:
            key = resolve_key(cfg.worker.models_key_file)
        except ModelError as exc:   # an unusable key file: every model fails for that reason
            key = None
            problems.append(Problem(str(cfg.worker.models_key_file or "environment"), 0,
                                    "worker.models_key_file", str(exc)))
        registry = ModelRegistry(root, key)
    loaded: dict[str, str | None] = {}
    for rule, origin in rules:
        if not rule.enabled:
            continue
        for name in sorted(compile_rule(rule).models):
            if name not in loaded:
                loaded[name] = _load_model(registry, name)
            if loaded[name] is not None:
                problems.append(Problem(origin.file, origin.line("grades"),
                                        f"rules[{origin.index}].grades",
                                        f"rule {rule.id}: anomaly model {name!r}: {loaded[name]}"))
    if loaded:
        said.append(f"models {', '.join(sorted(loaded))}")


def _load_model(registry: ModelRegistry | None, name: str) -> str | None:
    """Why ``name`` does not load (None when it does)."""
    if registry is None:
        return ("worker.models_dir is not set: set it to the model registry folder "
                f"(`yujing models train --name {name} --out models`)")
    try:
        registry.load_latest(name)
    except ModelError as exc:
        return str(exc)
    return None
