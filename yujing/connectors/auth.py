"""Per-gateway bearer tokens for HTTP ingest, stored hashed, scoped to stations.

The tokens file (``http.tokens_file``) holds one entry per gateway::

    tokens:
      - gateway: humen-water            # a name for logs, metrics and dead letters
        sha256: 3b1f…                   # sha256 hex of the token, never the token
        stations: ["DG-HM-*"]           # station ids or fnmatch patterns
      - gateway: factory-0017
        sha256: 9ac2…
        enterprises: ["ENT-0017"]       # every station whose registry enterprise matches
      - gateway: telegraf-city
        sha256: 51d0…
        all_stations: true              # the bureau's own collectors

Why sha256 and not argon2: tokens are 256-bit random strings made by
``yujing token new``, so there is nothing to brute-force; a slow password hash
would only cost CPU on every request. A leaked tokens file still gives no
token. The presented token's hash is compared with *every* entry by
``hmac.compare_digest``, without an early exit, so the time taken says nothing
about which entry, or how much of one, matched.

MQTT uses the same scopes: a message on ``yujing/<source>/…`` may write what the
entry whose ``gateway`` is ``<source>`` may write (``Tokens.for_source``); the broker
makes sure only that gateway's user publishes there (``yujing mqtt-acl``). So one name
has one scope: a rotated token under the same name must keep the scope.

No tokens file means open ingest (drills, a laptop demo): the gateway logs a
loud warning at start.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from yujing.stations import Registry
from yujing.yamlsrc import Problem, SourceError, load_yaml, validate


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh token: 32 random bytes, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


class TokenEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    gateway: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$",
                        description="hex sha256 of the token (yujing token new prints it)")
    stations: list[str] = Field(default_factory=list)
    enterprises: list[str] = Field(default_factory=list)
    all_stations: bool = False
    official_signals: bool = Field(False, description="may post CAP alerts to /v1/cap")

    @model_validator(mode="after")
    def _one_scope(self) -> TokenEntry:
        if not (self.stations or self.enterprises or self.all_stations or self.official_signals):
            raise ValueError("give the token a scope: stations: [...], enterprises: [...] "
                             "or all_stations: true")
        return self


class TokensFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens: list[TokenEntry] = Field(default_factory=list)


@dataclass(frozen=True)
class Identity:
    """Who sent a request, and what they may write."""

    gateway: str
    stations: tuple[str, ...] = ()
    enterprises: tuple[str, ...] = ()
    all_stations: bool = False
    official_signals: bool = False   # may post CAP alerts (POST /v1/cap)

    def may_write(self, station: str, registry: Registry) -> bool:
        if self.all_stations:
            return True
        if any(fnmatch.fnmatchcase(station, p) for p in self.stations):
            return True
        if self.enterprises:
            st = registry.get(station)
            return st is not None and st.enterprise in self.enterprises
        return False


OPEN = Identity("anonymous", all_stations=True, official_signals=True)


class Tokens:
    def __init__(self, entries: list[TokenEntry]) -> None:
        self.entries = [(bytes.fromhex(e.sha256), Identity(e.gateway, tuple(e.stations),
                                                           tuple(e.enterprises), e.all_stations,
                                                           e.official_signals))
                        for e in entries]

    def identify(self, authorization: str | None) -> Identity | None:
        """The gateway an ``Authorization`` header belongs to, or None.

        Accepts ``Bearer <token>`` and ``Token <token>`` (what influxdb-client
        and Telegraf send), so InfluxDB writers work unchanged.
        """
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() not in ("bearer", "token") or not token.strip():
            return None
        digest = hashlib.sha256(token.strip().encode()).digest()
        found: Identity | None = None
        for stored, ident in self.entries:  # no early exit: constant time over all entries
            if hmac.compare_digest(stored, digest):
                found = ident
        return found

    def for_source(self, source: str) -> Identity | None:
        """The scope of MQTT messages under ``yujing/<source>/…``: the entry named ``source``."""
        for _, ident in self.entries:
            if ident.gateway == source:
                return ident
        return None

    def __len__(self) -> int:
        return len(self.entries)


def load_tokens(path: str | Path) -> Tokens:
    src = load_yaml(path)
    parsed: TokensFile = validate(TokensFile, src)
    problems = []
    seen: set[str] = set()
    scopes: dict[str, tuple] = {}
    for i, e in enumerate(parsed.tokens):
        scope = (sorted(e.stations), sorted(e.enterprises), e.all_stations)
        if scopes.setdefault(e.gateway, scope) != scope:
            problems.append(Problem(str(path), src.line_of(("tokens", i, "gateway")),
                                    f"tokens[{i}].gateway", f"gateway {e.gateway!r} is listed "
                                    "again with another scope: one name has one scope (it is also "
                                    "the MQTT source yujing/<gateway>/…); give this one a new name "
                                    "or the same scope"))
        if e.sha256 in seen:
            problems.append(Problem(str(path), src.line_of(("tokens", i, "sha256")),
                                    f"tokens[{i}].sha256", "the same token is listed twice: "
                                    "give every gateway its own (yujing token new)"))
        seen.add(e.sha256)
    if problems:
        raise SourceError(problems)
    return Tokens(parsed.tokens)
