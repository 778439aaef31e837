"""``yujing token new|hash``: bearer tokens for gateways (HTTP ingest) and people (console).

A token is shown once; only its sha256 is stored: gateways' in the tokens file
(``http.tokens_file``), people's in the config (``console.tokens``). ``--file``
appends a gateway's entry to the tokens file safely: it creates the file with its
``tokens:`` header and mode 0600, refuses a file anyone may read, checks the file
before and after (the result must load as the gateway loads it) and only then
writes, under a lock, in place (owner, mode and comments stay as they were).
"""

from __future__ import annotations

import fcntl
import os
import stat
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

from yujing.alerts.settings import person_hash
from yujing.connectors.auth import TokenEntry, TokensFile, hash_token, new_token
from yujing.yamlsrc import Problem, SourceError, parse_yaml, validate

app = typer.Typer(help="Tokens: gateways' for HTTP ingest, people's for the console and CLI.",
                  no_args_is_help=True)

HEADER = "tokens:\n"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"token new: {message}", err=True)
    return typer.Exit(2)


@app.command("new")
def token_new(gateway: Annotated[str | None, typer.Option(
                  help="the gateway's name (logs, dead letters): an ingest token")] = None,
              station: Annotated[list[str] | None, typer.Option(
                  help="station id or pattern it may write (repeatable)")] = None,
              enterprise: Annotated[list[str] | None, typer.Option(
                  help="enterprise whose stations it may write (repeatable)")] = None,
              all_stations: Annotated[bool, typer.Option(help="may write every station")] = False,
              official_signals: Annotated[bool, typer.Option(
                  help="may post official signals (CAP 1.2) to /v1/cap")] = False,
              person: Annotated[str | None, typer.Option(
                  help="a person's id in the roster: a console and CLI token")] = None,
              file: Annotated[Path | None, typer.Option(
                  help="append the gateway's entry to this tokens file (made if missing)")] = None,
              ) -> None:
    """Make a token: prints it once (stderr) and the entry with its hash (stdout, or --file)."""
    if person is not None:
        if gateway or station or enterprise or all_stations or official_signals or file:
            raise _fail("either --person ID (a person's token, for console.tokens) or --gateway "
                        "NAME with a scope and optionally --file (an ingest token), not both")
        _person_token(person)
        return
    if not gateway:
        raise _fail("say whose token: --gateway NAME (HTTP ingest) or --person ID (console, CLI)")
    if not (station or enterprise or all_stations or official_signals):
        raise _fail("give the token a scope: --station ID (or pattern), --enterprise ID, "
                    "--all-stations or --official-signals")
    token = new_token()
    try:
        entry = TokenEntry(gateway=gateway, sha256=hash_token(token), stations=station or [],
                           enterprises=enterprise or [], all_stations=all_stations,
                           official_signals=official_signals)
    except ValueError as exc:
        raise _fail(f"gateway name {gateway!r} is not allowed: use 1-64 letters, digits, "
                    f"'_', '-', '.', ':' ({exc.__class__.__name__})") from None
    doc = entry.model_dump(exclude_defaults=True)
    doc["sha256"] = entry.sha256
    text = yaml.safe_dump([doc], allow_unicode=True, sort_keys=False)
    if file is not None:
        count = append_entry(file, text, entry)
        typer.echo(f"# token for {gateway} (shown once; give it to the gateway's operator):",
                   err=True)
        typer.echo(f"# {token}", err=True)
        typer.echo(f"{file}: added gateway {gateway} ({count} tokens now; a running gateway "
                   "reloads the file)")
        return
    typer.echo(f"# token for {gateway} (shown once; give it to the gateway's operator):", err=True)
    typer.echo(f"# {token}", err=True)
    typer.echo("# put this under tokens: in the tokens file, or run again with --file FILE:",
               err=True)
    typer.echo(text.rstrip())


def _person_token(person: str) -> None:
    if not person or len(person) > 64 or not (person[0].isalnum() and person.isascii()):
        raise _fail(f"person id {person!r} is not allowed: write the id from the roster")
    token = new_token()
    typer.echo(f"# token for {person} (shown once; give it to them: they log in to the console "
               "with it, and the CLI reads it from $YUJING_TOKEN):", err=True)
    typer.echo(f"# {token}", err=True)
    typer.echo("# put this line under console.tokens in the config (only the hash is kept):",
               err=True)
    typer.echo(f"{person}: {person_hash(token)}")


@app.command("hash")
def token_hash(person: Annotated[str | None, typer.Option(
                   help="print the config line for this person")] = None) -> None:
    """Hash a token someone already has (read from stdin) for console.tokens."""
    token = (typer.prompt("token", hide_input=True) if sys.stdin.isatty()
             else sys.stdin.readline()).strip()
    if not token:
        typer.echo("token hash: no token on stdin", err=True)
        raise typer.Exit(2)
    typer.echo(f"{person}: {person_hash(token)}" if person else person_hash(token))


def tokens_file_problems(path: Path, text: str, before_append: bool = False
                         ) -> tuple[int, list[Problem]]:
    """(entries, problems) of a tokens file's text, exactly as the gateway reads it; a file
    of entries without the header says how to fix it. ``before_append``: an empty file or a
    bare ``tokens:`` is fine too (the entry about to be added makes it a loadable file)."""
    try:
        src = parse_yaml(text, str(path))
    except SourceError as exc:
        return 0, exc.problems
    if before_append and (src.data is None or src.data == {"tokens": None}):
        return 0, []
    if isinstance(src.data, list):
        return 0, [Problem(str(path), 1, "", "entries without the `tokens:` header (what `yujing "
                           "token new >> FILE` used to make): add a first line `tokens:` and "
                           "indent the entries under it, or make them with `yujing token new "
                           "--file FILE`")]
    try:
        parsed: TokensFile = validate(TokensFile, src)
    except SourceError as exc:
        return 0, exc.problems
    seen: set[str] = set()
    problems = []
    for i, e in enumerate(parsed.tokens):
        if e.sha256 in seen:
            problems.append(Problem(str(path), src.line_of(("tokens", i, "sha256")),
                                    f"tokens[{i}].sha256", "the same token is listed twice: give "
                                    "every gateway its own (yujing token new)"))
        seen.add(e.sha256)
    return len(parsed.tokens), problems


def append_entry(path: Path, entry_text: str, entry: TokenEntry) -> int:
    """Add one entry to the tokens file (made with its header and mode 0600 if missing);
    returns the number of entries after. Exits 2, file unchanged, when it is unsafe."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fd = os.open(path, os.O_RDWR)
    with os.fdopen(fd, "r+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)    # two operators at once: one waits for the other
        mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        if mode & 0o007:
            raise _fail(f"{path} may be read by anyone (mode {mode:o}): run `chmod 600 {path}` "
                        "(or 640 with the service's group) and try again")
        old = f.read()
        count, problems = tokens_file_problems(path, old, before_append=True)
        if problems:
            typer.echo("\n".join(str(p) for p in problems), err=True)
            raise _fail(f"{path} does not load as it is: fix it first, nothing was written")
        if entry.gateway in _gateways(path, old):
            typer.echo(f"note: {entry.gateway} already has a token in {path}; both work until "
                       "you remove the old entry", err=True)
        addition = ("" if not old or old.endswith("\n") else "\n") + (HEADER if not old.strip()
                                                                       else "")
        addition += _indented(entry_text, _indent_of(old))
        after, problems = tokens_file_problems(path, old + addition)
        if problems or after != count + 1:
            raise _fail(f"cannot append to {path} safely (its tokens: list is not a block list "
                        "at the end of the file); add this entry by hand under tokens:\n"
                        + entry_text)
        f.seek(0, os.SEEK_END)
        f.write(addition)
        f.flush()
        os.fsync(f.fileno())
    return after


def _gateways(path: Path, text: str) -> list[str]:
    data = parse_yaml(text, str(path)).data if text.strip() else None
    items = data.get("tokens") if isinstance(data, dict) else None
    return [str(e.get("gateway", "")) for e in items or [] if isinstance(e, dict)]


def _indent_of(text: str) -> int:
    """How the file indents its entries (the first ``- `` line), 2 when it has none."""
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if stripped.startswith("- "):
            return len(line) - len(stripped)
    return 2


def _indented(block: str, n: int) -> str:
    return "".join(" " * n + line if line.strip() else line
                   for line in block.splitlines(keepends=True))
