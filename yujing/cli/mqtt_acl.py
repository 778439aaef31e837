"""``yujing mqtt-acl``: the Mosquitto password and ACL files that bind MQTT sources to devices.

The gateway scopes a message on ``yujing/<source>/…`` by the tokens-file entry named
``<source>`` (connectors/auth.py). That only means something if nobody else can publish
under ``<source>``: the broker must know who is who. This command writes, from the tokens
file, what Mosquitto needs for that:

- ``mosquitto.passwd``: one user per tokens-file entry (its ``gateway`` name) and one for
  the gateway itself, in Mosquitto 2's PBKDF2-SHA512 format (``$7$``), computed with
  hashlib so the command works where the broker is not installed;
- ``mosquitto.acl``: each device user may only ``write`` ``yujing/<its name>/#``; the
  gateway's user may only ``read`` ``yujing/#``.

Passwords: an ingest token cannot be recovered from its hash, so device passwords are
separate secrets. A user already in the password file keeps its line (regenerating after
adding a device does not lock out the others); a new user, or one named with ``--rotate``,
gets a fresh random password, printed once on stdout, never stored in clear. A user no
longer in the tokens file is dropped. The gateway's password is taken from the config
(``mqtt.password`` or the URL) when it is there. Both files are written with mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlsplit

import typer

from yujing.cli.common import ConfigOpt, load
from yujing.config import Config
from yujing.connectors.auth import load_tokens
from yujing.yamlsrc import SourceError

PASSWD, ACL = "mosquitto.passwd", "mosquitto.acl"
DEFAULT_GATEWAY_USER = "yujing-gateway"
# mosquitto_passwd's default. The passwords made here are 192-bit random, so more rounds
# would only cost the broker CPU on every CONNECT, not slow down any real attack.
ITERATIONS = 101


def mosquitto_hash(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """``$7$<iterations>$<salt>$<hash>``: PBKDF2-SHA512, 12-byte salt, 64-byte key, base64."""
    salt = salt if salt is not None else os.urandom(12)
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def acl_text(gateway_user: str, devices: list[str], source: str) -> str:
    lines = [f"# Written by yujing mqtt-acl from {source}; run it again after changing that file.",
             "# Each device may publish only under its own source, yujing/<name>/#; the gateway",
             "# may only subscribe.", "", f"user {gateway_user}", "topic read yujing/#"]
    for name in devices:
        lines += ["", f"user {name}", f"topic write yujing/{name}/#"]
    return "\n".join(lines) + "\n"


def read_passwd(path: Path) -> dict[str, str]:
    """user → hash line of an existing password file ({} when there is none)."""
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        user, sep, hashed = line.partition(":")
        if sep and user and not line.startswith("#"):
            out[user] = hashed
    return out


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, never readable by others, not even for a moment."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def gateway_login(cfg: Config) -> tuple[str, str | None]:
    """The gateway's own broker user and password, as the config gives them."""
    url = urlsplit(cfg.mqtt.url) if cfg.mqtt.url else None
    user = cfg.mqtt.username or (unquote(url.username) if url and url.username else None)
    password = cfg.mqtt.password if cfg.mqtt.username else (
        unquote(url.password) if url and url.password else None)
    return user or DEFAULT_GATEWAY_USER, password


def _fail(message: str) -> typer.Exit:
    typer.echo(f"mqtt-acl: {message}", err=True)
    return typer.Exit(2)


def device_names(cfg: Config) -> list[str]:
    if cfg.http.tokens_file is None:
        raise _fail("no http.tokens_file in the config: the broker's users are its entries "
                    "(yujing token new --gateway NAME --file tokens.yaml)")
    try:
        tokens = load_tokens(cfg.http.tokens_file)
    except (SourceError, OSError) as exc:
        raise _fail(str(exc)) from None
    names = list(dict.fromkeys(ident.gateway for _, ident in tokens.entries))
    bad = [n for n in names if ":" in n]
    if bad:
        raise _fail(f"gateway name(s) {bad} contain ':', which a Mosquitto user name cannot: "
                    "rename them in the tokens file")
    return names


def mqtt_acl(config: ConfigOpt = None,
             out: Annotated[Path | None, typer.Option(
                 help="where to write mosquitto.passwd and mosquitto.acl (default: the tokens "
                      "file's folder)")] = None,
             rotate: Annotated[list[str] | None, typer.Option(
                 help="give this user a fresh password (repeatable)")] = None) -> None:
    """Mosquitto password + ACL files from the tokens file: each device publishes only under
    yujing/<its gateway name>/#. New passwords are printed once."""
    cfg = load(config)
    devices = device_names(cfg)
    gw_user, gw_password = gateway_login(cfg)
    if gw_user in devices:
        raise _fail(f"the gateway's MQTT user {gw_user!r} is also a device in the tokens file: "
                    "give the gateway another mqtt.username")
    folder = out or Path(cfg.http.tokens_file).parent  # type: ignore[arg-type]
    folder.mkdir(parents=True, exist_ok=True)
    old = read_passwd(folder / PASSWD)
    unknown = sorted(set(rotate or []) - set(devices) - {gw_user})
    if unknown:
        raise _fail(f"--rotate {unknown}: no such user (the users are {[gw_user, *devices]})")
    lines, fresh = [], []
    for user in [gw_user, *devices]:
        if user == gw_user and gw_password is not None:
            lines.append(f"{user}:{mosquitto_hash(gw_password)}")
        elif user in old and user not in (rotate or []):
            lines.append(f"{user}:{old[user]}")
        else:
            password = secrets.token_urlsafe(24)
            fresh.append((user, password))
            lines.append(f"{user}:{mosquitto_hash(password)}")
    write_private(folder / PASSWD, "\n".join(lines) + "\n")
    write_private(folder / ACL, acl_text(gw_user, devices, str(cfg.http.tokens_file)))
    for user, password in fresh:
        typer.echo(f"{user} {password}")
    dropped = sorted(set(old) - {gw_user, *devices})
    typer.echo(f"# {folder / PASSWD}: {len(lines)} users ({len(fresh)} new passwords above, shown "
               f"once{'; removed ' + ', '.join(dropped) if dropped else ''}); {folder / ACL}. "
               "Reload Mosquitto (kill -HUP) to apply.", err=True)
    if any(u == gw_user for u, _ in fresh):
        typer.echo(f"# the gateway's password: put it in mqtt.password (user {gw_user}) or the "
                   "mqtt.url", err=True)
