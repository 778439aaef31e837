"""``yujing token new``: a bearer token for a gateway's HTTP ingest."""

from __future__ import annotations

from typing import Annotated

import typer
import yaml

from yujing.connectors.auth import TokenEntry, hash_token, new_token

app = typer.Typer(help="Gateway tokens for HTTP ingest.", no_args_is_help=True)


@app.command("new")
def token_new(gateway: Annotated[str, typer.Option(help="the gateway's name (logs, dead letters)")],
              station: Annotated[list[str] | None, typer.Option(
                  help="station id or pattern it may write (repeatable)")] = None,
              enterprise: Annotated[list[str] | None, typer.Option(
                  help="enterprise whose stations it may write (repeatable)")] = None,
              all_stations: Annotated[bool, typer.Option(help="may write every station")] = False,
              ) -> None:
    """Make a token: prints it once, and the entry (hash only) for http.tokens_file."""
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
