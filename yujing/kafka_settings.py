"""``kafka.security`` of config.yaml: TLS and SASL (SCRAM) for every Kafka client.

Who may read the Kafka password? Only the account yujing runs as. So it never stands in
config.yaml (which is shared, diffed, pasted into tickets), never on a command line (every
local user sees argv in /proc) and never in a log: it comes from a file that only its owner
may read (refused otherwise at load, the way ssh refuses an open private key) or from an
environment variable (systemd ``Environment=`` in a root-only drop-in). A client key file is
held to the same rule. The values are read when a client is built
(yujing/connectors/kafka_security.py), so a rotated password takes effect on restart.

The checks that need the files (exists, mode) run in :func:`security_problems` once the
paths are resolved against the config's folder; everything else is checked by the models.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from yujing.yamlsrc import Located, Problem

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SECRET_MODE_FIX = "chmod 600 {path} (and chown it to the user yujing runs as)"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KafkaSasl(_Strict):
    """The SASL login. The password comes from ``password_file`` or ``password_env``."""

    mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="PLAIN sends the password itself: only over SASL_SSL")
    username: str = Field(min_length=1)
    password_file: Path | None = Field(None, description="a file holding the password (one "
                                       "line), readable by its owner only (chmod 600)")
    password_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                     description="name of the environment variable holding it")

    @model_validator(mode="before")
    @classmethod
    def _no_inline_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and "password" in data:
            # the value itself is never echoed: pydantic would print it as "got ..."
            raise ValueError("sasl.password: never write the Kafka password in the config: put "
                             "it in a file only yujing's user can read (chmod 600) and set "
                             "password_file, or set password_env to the name of an environment "
                             "variable that holds it")
        return data

    @model_validator(mode="after")
    def _one_source(self) -> KafkaSasl:
        if (self.password_file is None) == (self.password_env is None):
            raise ValueError("sasl: set exactly one of password_file (a chmod 600 file) or "
                             "password_env (an environment variable's name)")
        return self


class KafkaTls(_Strict):
    ca_file: Path | None = Field(None, description="CA certificates (PEM) the brokers' "
                                 "certificates are checked against; null: the system CAs")
    cert_file: Path | None = Field(None, description="client certificate (PEM), for brokers "
                                   "that want mutual TLS")
    key_file: Path | None = Field(None, description="its private key (PEM, unencrypted), "
                                  "readable by its owner only (chmod 600)")
    check_hostname: bool = Field(True, description="check that a broker's certificate names "
                                 "the host connected to; turn off only for test brokers")

    @model_validator(mode="after")
    def _pair(self) -> KafkaTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls: mutual TLS needs both cert_file and key_file (or neither)")
        return self


class KafkaSecurity(_Strict):
    """How every client (gateway, worker, sink, console, CLI) reaches the brokers."""

    protocol: Protocol = Field("PLAINTEXT", description="PLAINTEXT | SSL | SASL_PLAINTEXT | "
                               "SASL_SSL, as the brokers' listener is configured")
    sasl: KafkaSasl | None = Field(None, description="the login, for SASL_SSL or SASL_PLAINTEXT")
    tls: KafkaTls | None = Field(None, description="for SSL or SASL_SSL; null: system CAs")

    @model_validator(mode="after")
    def _combination(self) -> KafkaSecurity:
        p = self.protocol
        if p.startswith("SASL_") and self.sasl is None:
            raise ValueError(f"protocol {p} needs a login: add sasl: {{mechanism: SCRAM-SHA-512, "
                             "username: ..., password_file: ...}")
        if not p.startswith("SASL_") and self.sasl is not None:
            raise ValueError(f"protocol {p} sends no login: use SASL_SSL (or SASL_PLAINTEXT) to "
                             "log in with sasl, or remove sasl")
        if self.tls is not None and not self.uses_tls:
            raise ValueError(f"protocol {p} does not use TLS: use SSL or SASL_SSL, or remove tls")
        if p == "SASL_PLAINTEXT" and self.sasl is not None and self.sasl.mechanism == "PLAIN":
            raise ValueError("PLAIN over SASL_PLAINTEXT sends the password readable on the "
                             "network: use protocol SASL_SSL, or mechanism SCRAM-SHA-512")
        return self

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def resolve_paths(self, base: Path) -> KafkaSecurity:
        """Relative paths are from the config file's folder, like every path in it."""
        def fix(p: Path | None) -> Path | None:
            return p if p is None or p.is_absolute() else base / p

        tls = self.tls and self.tls.model_copy(update={k: fix(getattr(self.tls, k))
                                                       for k in ("ca_file", "cert_file", "key_file")})
        sasl = self.sasl and self.sasl.model_copy(update={"password_file": fix(self.sasl.password_file)})
        return self.model_copy(update={"tls": tls, "sasl": sasl})


def security_problems(sec: KafkaSecurity, src: Located,
                      at: tuple[str, ...] = ("kafka", "security")) -> list[Problem]:
    """What is wrong with the files and variables ``sec`` names (paths already resolved):
    missing files, secrets others may read, an unset variable. Located in ``src``."""
    out: list[Problem] = []

    def problem(loc: tuple[str, ...], message: str) -> None:
        key = at + loc
        out.append(Problem(src.file, src.line_of(key), ".".join(key), message))

    if sec.tls is not None:
        for name in ("ca_file", "cert_file"):
            path = getattr(sec.tls, name)
            if path is not None and not path.is_file():
                problem(("tls", name), f"no such file: {path}")
        if sec.tls.key_file is not None:
            if why := _secret_file(sec.tls.key_file):
                problem(("tls", "key_file"), why)
    if sec.sasl is not None:
        if sec.sasl.password_file is not None:
            if why := _secret_file(sec.sasl.password_file):
                problem(("sasl", "password_file"), why)
            elif not read_password(sec.sasl):
                problem(("sasl", "password_file"), f"{sec.sasl.password_file} is empty: write "
                        "the password on its first line")
        elif sec.sasl.password_env and not os.environ.get(sec.sasl.password_env):
            problem(("sasl", "password_env"), f"environment variable {sec.sasl.password_env} is "
                    "not set: export it where yujing starts (systemd: Environment= in a drop-in "
                    "only root can read), or use password_file")
    return out


def _secret_file(path: Path) -> str:
    """Why ``path`` cannot hold a secret ('' if it can): like ssh, refuse one that users
    other than its owner may read or change."""
    try:
        st = path.stat()
    except OSError:
        return f"no such file: {path}"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    if st.st_mode & 0o077:
        return (f"{path} may be read by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"a secret must be readable by its owner only: {SECRET_MODE_FIX.format(path=path)}")
    return ""


def read_password(sasl: KafkaSasl) -> str:
    """The password, from its file (first line, without the line end) or variable."""
    if sasl.password_file is not None:
        text = sasl.password_file.read_text(encoding="utf-8")
        return text.splitlines()[0] if text else ""
    return os.environ.get(sasl.password_env or "", "")
