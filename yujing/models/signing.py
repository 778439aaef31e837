"""Signed models: an HMAC-SHA256 of ``meta.json`` under a key only trainers and workers hold.

Why: anyone who can write into the model registry (a shared folder, a restored backup)
could otherwise plant a version that a worker hot-reloads. The sha256 of the payload in
``meta.json`` only detects damage, since whoever plants a payload writes its sha256 too.
The HMAC binds ``meta.json`` (which holds that sha256, the kind, the feature schema, the
hyper-parameters and, in a registry, the model's name and version) to a secret, and a
worker checks it before it reads anything else of the folder.

The key is text of at least 32 characters: ``yujing models keygen FILE`` writes 64 random
hex digits to a new file of mode 0600. Workers read it from ``worker.models_key_file``,
trainers from ``--key-file``; both fall back to ``$YUJING_MODELS_KEY_FILE`` and then
``$YUJING_MODELS_KEY``. A key file that others can read is refused (like ssh does).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yujing.models.errors import ModelError, SignatureError

ENV_KEY = "YUJING_MODELS_KEY"
ENV_KEY_FILE = "YUJING_MODELS_KEY_FILE"
ALG = "hmac-sha256"
FIELD = "signature"
MIN_KEY = 32
DOMAIN = b"yujing model meta v2\n"  # so the key signs nothing else by accident
HEX = re.compile(r"[0-9a-f]{1,64}")
MAC = re.compile(r"[0-9a-f]{64}")
NO_KEY_FIX = (f"set worker.models_key_file (or --key-file for the CLI), ${ENV_KEY_FILE} or "
              f"${ENV_KEY}; create a key with `yujing models keygen FILE`")


@dataclass(frozen=True, repr=False)
class ModelKey:
    """The signing secret and where it came from (messages name the source, never the key)."""

    secret: bytes
    source: str

    @property
    def id(self) -> str:
        """A short public name of the key: tells 'another key' from 'a changed file'."""
        return hashlib.sha256(b"yujing model key id\n" + self.secret).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"ModelKey(id={self.id}, source={self.source})"

    @classmethod
    def from_text(cls, text: str, source: str) -> ModelKey:
        text = text.strip()
        if len(text) < MIN_KEY:
            raise ModelError(f"{source}: the model signing key has {len(text)} characters; use "
                             f"at least {MIN_KEY} (`yujing models keygen FILE` makes one)")
        return cls(text.encode("utf-8"), source)


def load_key_file(path: str | Path) -> ModelKey:
    """The key in ``path``: a regular file that only its owner can read."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ModelError(f"{p}: no model signing key there: create one with "
                         f"`yujing models keygen {p}`") from None
    except OSError as exc:
        raise ModelError(f"{p}: cannot read the model signing key ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"{p}: the model signing key must be a plain file")
    if st.st_mode & 0o077:
        raise ModelError(f"{p}: the model signing key can be read by others (mode "
                         f"{stat.S_IMODE(st.st_mode):04o}): run `chmod 600 {p}`")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{p}: cannot read the model signing key ({exc})") from None
    return ModelKey.from_text(text, str(p))


def resolve_key(key_file: str | Path | None = None,
                env: Mapping[str, str] | None = None) -> ModelKey | None:
    """The key from ``key_file``, else ``$YUJING_MODELS_KEY_FILE``, else ``$YUJING_MODELS_KEY``;
    None when none is set. A set but unusable source raises ModelError naming the fix."""
    env = os.environ if env is None else env
    if key_file:
        return load_key_file(key_file)
    if env.get(ENV_KEY_FILE):
        return load_key_file(env[ENV_KEY_FILE])
    if env.get(ENV_KEY):
        return ModelKey.from_text(env[ENV_KEY], f"${ENV_KEY}")
    return None


def new_key_file(path: str | Path) -> ModelKey:
    """Write a fresh random key to a new file of mode 0600 (never over an existing one)."""
    p = Path(path)
    text = secrets.token_hex(32)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ModelError(f"{p}: exists; a new key would make every model signed with it "
                         "unloadable: choose another file or remove this one first") from None
    except OSError as exc:
        raise ModelError(f"{p}: cannot create the key file ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    return ModelKey.from_text(text, str(p))


def canonical(meta: Mapping[str, Any]) -> bytes:
    """The bytes the signature covers: the metadata without its signature, as sorted compact
    JSON. The parsed metadata is what gets signed, so what is checked is what is used."""
    body = {k: v for k, v in meta.items() if k != FIELD}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def _mac(meta: Mapping[str, Any], key: ModelKey) -> str:
    return hmac.new(key.secret, DOMAIN + canonical(meta), hashlib.sha256).hexdigest()


def sign(meta: Mapping[str, Any], key: ModelKey) -> dict[str, Any]:
    """``meta`` with its signature under ``key`` (any earlier signature replaced)."""
    try:
        mac = _mac(meta, key)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ModelError(f"model metadata cannot be signed ({exc})") from None
    return {**{k: v for k, v in meta.items() if k != FIELD},
            FIELD: {"alg": ALG, "key_id": key.id, "mac": mac}}


def verify(meta: Mapping[str, Any], key: ModelKey | None, where: Any) -> None:
    """Raise SignatureError unless ``meta`` carries a valid signature under ``key``."""
    if key is None:
        raise SignatureError(f"{where}: refused: no model signing key is configured, so no "
                             f"model can be checked: {NO_KEY_FIX}")
    sig = meta.get(FIELD)
    if not isinstance(sig, dict) or not isinstance(sig.get("mac"), str) or not MAC.fullmatch(sig["mac"]):
        raise SignatureError(
            f"{where}: refused: not signed (a model trained before models were signed, or one "
            f"put there by hand); nothing of it was loaded. Retrain it with `yujing models "
            f"train` and the key of {key.source}")
    if sig.get("alg") != ALG:
        raise SignatureError(f"{where}: refused: signature algorithm {str(sig.get('alg'))[:20]!r} "
                             f"is not {ALG}; retrain with `yujing models train`")
    try:
        expect = _mac(meta, key)
    except (TypeError, ValueError, RecursionError):
        expect = ""
    if not expect or not hmac.compare_digest(expect, sig["mac"]):
        their = str(sig.get("key_id"))
        why = (f"signed with another key (key id {their}, this worker's {key.id} from "
               f"{key.source})" if HEX.fullmatch(their) and their != key.id
               else "meta.json was changed after it was signed")
        raise SignatureError(f"{where}: refused: bad signature ({why}); nothing of it was "
                             "loaded. If you trained it, retrain with `yujing models train` "
                             "and the worker's key")
