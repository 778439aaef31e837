"""CLI commands of the duty workflow: roster show/check, ack, note, clear, silence.

``roster`` and ``silence`` are command groups; ``ack``, ``note`` and ``clear`` are
top-level commands (app.py adds them).

Commands that change a warning go through the HTTP API of a running gateway
(``/v1/warnings/...``), authenticated with the acting person's own token
(``$YUJING_TOKEN``; the config keeps only its hash): the API knows which
partition owns the warning and puts the command on ``yujing.commands``. A
config leaked or shared with the team gives nobody a token.
"""

from __future__ import annotations

import hmac
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from yujing import clock
from yujing.alerts.orgs import load_duty
from yujing.alerts.roster import Roster, load_roster
from yujing.alerts.settings import person_hash
from yujing.cli.common import load
from yujing.yamlsrc import SourceError

roster_app = typer.Typer(help="Duty roster: who is A, B and leader; gaps and unknown people.",
                         no_args_is_help=True)
silence_app = typer.Typer(help="Silences (maintenance windows): add, list, expire.",
                          no_args_is_help=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="config.yaml")]
AsOpt = Annotated[str, typer.Option("--as", help="the person acting (id in the roster)")]
ApiOpt = Annotated[str | None, typer.Option("--api", help="gateway URL (default from config)")]


def _parse_time(text: str | None, zone: ZoneInfo) -> int:
    """A local time as the duty officer writes it (in ``zone``), or an ISO time with offset."""
    if not text:
        return clock.now_ms()
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        typer.echo(f"bad time {text!r}: write e.g. '2025-06-01 03:00' ({zone.key}) or an ISO "
                   "time with an offset", err=True)
        raise typer.Exit(2) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)
    return int(dt.timestamp() * 1000)


def _roster(config: Path | None, file: Path | None) -> Roster:
    """The roster file given, else the config's alerts.roster with its alerts.enterprises
    (exit 2 when neither loads)."""
    orgs = None
    if file is None:
        cfg = load(config)
        file, orgs = cfg.alerts.roster, cfg.alerts.enterprises
        if file is None:
            typer.echo("no roster: pass the file, or set alerts.roster in the config", err=True)
            raise typer.Exit(2)
    try:
        return load_duty(file, orgs) or load_roster(file)
    except SourceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@roster_app.command("show")
def roster_show(file: Annotated[Path | None, typer.Argument(help="roster YAML")] = None,
                at: Annotated[str | None, typer.Option(help="local time, default now")] = None,
                team: Annotated[str | None, typer.Option(help="one team id")] = None,
                config: ConfigOpt = None) -> None:
    """Who is A, B and duty leader of each team at a time (the roster's time zone)."""
    r = _roster(config, file)
    when = _parse_time(at, r.tz)
    teams = [team] if team else list(r.teams)
    if team and team not in r.teams:
        typer.echo(f"unknown team {team!r}: use one of {', '.join(r.teams)}", err=True)
        raise typer.Exit(2)
    typer.echo(f"on duty at {r.local(when):%Y-%m-%d %H:%M} ({r.tz.key})")
    for tid in teams:
        d = r.duty(tid, when)
        def name(pid: str | None) -> str:
            return f"{r.people[pid].name} ({pid})" if pid in r.people else (pid or "—")

        typer.echo(f"{tid:<14} {r.teams[tid].name}: A {name(d.A)} · B {name(d.B)} · "
                   f"leader {name(d.leader)}   [{'; '.join(d.why)}; until "
                   f"{r.local(d.end_ms):%m-%d %H:%M}]")


@roster_app.command("check")
def roster_check(file: Annotated[Path | None, typer.Argument(help="roster YAML")] = None,
                 days: Annotated[int, typer.Option(help="how far ahead to look for gaps")] = 14,
                 start: Annotated[str | None, typer.Option(help="from (local time)")] = None,
                 config: ConfigOpt = None) -> None:
    """Gaps (a shift without A or B), unknown people, unreachable people (exit 1)."""
    r = _roster(config, file)
    problems = r.check(_parse_time(start, r.tz), days * 86_400_000)
    for p in problems:
        typer.echo(p, err=True)
    if problems:
        typer.echo(f"{len(problems)} problem(s) in {r.source}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{r.source}: ok ({len(r.people)} people, {len(r.teams)} teams, no gaps in "
               f"{days} days)")


def _client(config: Path | None, api: str | None, who: str) -> Api:
    """An API client acting as ``who`` with their console token (exit 2 without one)."""
    cfg = load(config)
    token = os.environ.get("YUJING_TOKEN", "").strip()   # the config keeps only hashes
    if not token:
        typer.echo(f"no API token for {who!r}: export YUJING_TOKEN=<{who}'s own token> "
                   f"(yujing token new --person {who} makes one)", err=True)
        raise typer.Exit(2)
    stored = cfg.console.tokens.get(who)
    if stored is not None and not hmac.compare_digest(stored, person_hash(token)):
        typer.echo(f"YUJING_TOKEN is not the token of {who} (console.tokens.{who} holds "
                   "another hash)", err=True)
        raise typer.Exit(2)
    base = api or cfg.console.public_url or f"http://{cfg.http.host}:{cfg.http.port}"
    return Api(base.rstrip("/"), token)


def ack(incident: str, as_: AsOpt, note: Annotated[str, typer.Option(help="a note")] = "",
        config: ConfigOpt = None, api: ApiOpt = None) -> None:
    """Acknowledge a warning: escalation stops (exit 1 if it does not take)."""
    c = _client(config, api, as_)
    c.post(f"/v1/warnings/{incident}/ack", {"note": note})
    c.wait(incident, lambda w: w.get("acked_by") or w.get("state") != "active", "acknowledged")


def note(incident: str, as_: AsOpt, text: Annotated[str, typer.Option(help="the note")],
         config: ConfigOpt = None, api: ApiOpt = None) -> None:
    """Add a note to a warning's timeline."""
    c = _client(config, api, as_)
    c.post(f"/v1/warnings/{incident}/note", {"text": text})
    c.wait(incident, lambda w: any(e.get("reason") == text for e in w.get("timeline", [])),
           "noted")


def clear(incident: str, as_: AsOpt,
          reason: Annotated[str, typer.Option(help="why it is over (销警)")],
          config: ConfigOpt = None, api: ApiOpt = None) -> None:
    """Clear (销警) a warning by hand, with a reason."""
    c = _client(config, api, as_)
    c.post(f"/v1/warnings/{incident}/clear", {"reason": reason})
    c.wait(incident, lambda w: w.get("state") == "cleared", "cleared")


@silence_app.command("add")
def silence_add(as_: AsOpt,
                match: Annotated[list[str], typer.Option(help="label=value, label!=value, "
                                                         "label=~regex (repeat)")],
                reason: Annotated[str, typer.Option(help="why")],
                for_: Annotated[str | None, typer.Option("--for", help="e.g. 2h")] = None,
                until: Annotated[str | None, typer.Option(help="end, local time")] = None,
                start: Annotated[str | None, typer.Option(help="start, local time")] = None,
                weekly: Annotated[list[str] | None, typer.Option(
                    help="only inside e.g. 'sat 02:00-04:00' (repeat)")] = None,
                config: ConfigOpt = None, api: ApiOpt = None) -> None:
    """Silence warnings matching every --match, from --start for --for or --until."""
    body: dict[str, Any] = {"matchers": match, "reason": reason, "weekly": weekly or []}
    zone = load(config).tz
    if start:
        body["starts_ms"] = _parse_time(start, zone)
    if until:
        body["ends_ms"] = _parse_time(until, zone)
    elif for_:
        body["duration"] = for_
    else:
        typer.echo("say how long: --for 2h or --until '2025-06-01 18:00'", err=True)
        raise typer.Exit(2)
    out = _client(config, api, as_).post("/v1/silences", body)
    typer.echo(f"silence {out['id']} added")


@silence_app.command("list")
def silence_list(as_: AsOpt, all_: Annotated[bool, typer.Option("--all", help="include "
                                                                "expired")] = False,
                 config: ConfigOpt = None, api: ApiOpt = None) -> None:
    """Silences with their matchers, window, creator, reason and audit trail."""
    out = _client(config, api, as_).get("/v1/silences" + ("?all=1" if all_ else ""))
    if not out:
        typer.echo("no silences")
    for s in out:
        typer.echo(f"{s['id']}  {s['state']:<8} {', '.join(s['matchers'])}  "
                   f"{s['starts']} → {s['ends']}{'  weekly ' + '; '.join(s['weekly']) if s['weekly'] else ''}"
                   f"  by {s['created_by']}: {s['reason']}")
        for a in s["audit"]:
            typer.echo(f"    {a['at']} {a['actor']} {a['action']}: {a['reason']}")


@silence_app.command("expire")
def silence_expire(silence_id: str, as_: AsOpt,
                   reason: Annotated[str, typer.Option(help="why it ends now")] = "expired",
                   config: ConfigOpt = None, api: ApiOpt = None) -> None:
    """End a silence now (audited)."""
    _client(config, api, as_).post(f"/v1/silences/{silence_id}/expire", {"reason": reason})
    typer.echo(f"silence {silence_id} expiring")


class Api:
    """The gateway's /v1 API as one person (their bearer token); errors exit with a message."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(self.base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                msg = json.loads(exc.read()).get("error", "")
            except ValueError:
                msg = exc.reason
            typer.echo(f"{method} {path}: {exc.code} {msg}", err=True)
            raise typer.Exit(1) from None
        except OSError as exc:
            typer.echo(f"the Yujing API at {self.base} is not reachable ({exc}): start `yujing run` "
                       "or `yujing gateway`, or pass --api URL", err=True)
            raise typer.Exit(1) from None

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self._call("POST", path, body)

    def wait(self, incident: str, done: Callable[[dict], bool], what: str,
             timeout_s: float = 20) -> None:
        deadline = clock.monotonic() + timeout_s
        while clock.monotonic() < deadline:
            w = self.get(f"/v1/warnings/{incident}")
            if done(w):
                last = w["timeline"][-1] if w.get("timeline") else {}
                typer.echo(f"{incident}: {w['state']} — {last.get('reason', '')}")
                return
            time.sleep(0.3)
        typer.echo(f"{incident}: command sent, but not {what} within {timeout_s:.0f}s: is a worker "
                   "running? (`yujing run`)", err=True)
        raise typer.Exit(1)
