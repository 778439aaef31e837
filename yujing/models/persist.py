"""Loading a saved model folder: every check before anything of the payload is parsed.

Order, each step refusing with the fix: ``meta.json`` (a plain file of bounded size,
parsed as JSON only) → its HMAC signature under the operator's key (signing.py) → the
format → kind and feature schema → ``model.skops`` (the one fixed name in the folder; no
path written in ``meta.json`` is followed) → its sha256 against the signed one → only then
skops parses it, trusting no type beyond its list (codec.py). So a planted or altered
folder is refused before any of it is built, and never runs code.
"""

from __future__ import annotations

import hashlib
import json
import stat
import warnings
from pathlib import Path
from typing import Any

from yujing.models import codec, signing
from yujing.models.base import FORMAT, META, Detector, FeatureSchema, library_versions
from yujing.models.codec import PAYLOAD
from yujing.models.errors import ChecksumError, ModelError, SchemaError, SignatureError

MAX_META_BYTES = 1 << 20
MAX_PAYLOAD_BYTES = 1 << 30  # a forest per station of a large province stays far below


def _read_plain(path: Path, limit: int, what: str) -> bytes:
    """The bytes of ``path`` if it is a plain file (not a link) of at most ``limit`` bytes."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise ModelError(f"{path}: missing: {what}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"{path}: refused: not a plain file (a link or a folder); restore the "
                         "model folder as `yujing models train` writes it")
    if st.st_size > limit:
        raise ModelError(f"{path}: refused: {st.st_size} bytes is more than {limit}")
    return path.read_bytes()


def read_meta(folder: Path) -> dict[str, Any]:
    """``meta.json`` as parsed JSON (not yet trusted: verify its signature before using it)."""
    meta_path = folder / META
    raw = _read_plain(meta_path, MAX_META_BYTES, "not a saved model folder (train one with "
                      "`yujing models train`)")
    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelError(f"{meta_path}: not valid JSON ({str(exc)[:200]}): restore it or "
                         "retrain") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{meta_path}: not a model's metadata: restore it or retrain")
    return meta


def _check_schema(folder: Path, meta: dict[str, Any], cls: type[Detector]) -> None:
    schema = meta.get("schema") or {}
    want = cls.schema
    try:
        saved = FeatureSchema(schema["name"], int(schema["version"]), tuple(schema["features"]))
    except (KeyError, TypeError, ValueError):
        raise SchemaError(f"{folder}: {META} has no readable feature schema: retrain with "
                          "`yujing models train`") from None
    if saved.hash != schema.get("hash") or saved.hash != want.hash:
        raise SchemaError(
            f"{folder}: feature schema {saved.name} v{saved.version} (hash {schema.get('hash')}) "
            f"is not the one this build computes for {cls.kind} ({want.name} v{want.version}, "
            f"hash {want.hash}): retrain the model with `yujing models train`")


def _check_published(folder: Path, meta: dict[str, Any], name: str, version: str) -> None:
    reg = meta.get("registry")
    if not isinstance(reg, dict) or (reg.get("name"), reg.get("version")) != (name, version):
        was = (f"{str(reg.get('name'))[:64]!r} version {str(reg.get('version'))[:16]!r}"
               if isinstance(reg, dict) else "no registry version")
        raise SignatureError(f"{folder}: refused: it was signed as {was}, not {name!r} version "
                             f"{version!r} (a copied or renamed version); publish models with "
                             "`yujing models train`")


def load_model(path: str | Path, key: signing.ModelKey | None,
               expect: type[Detector] | None = None,
               published_as: tuple[str, str] | None = None) -> Detector:
    """Load any saved detector signed with ``key`` (see the module's docstring for the checks).

    ``published_as``: the (name, version) a registry found it under, which its signed
    metadata must name (registry.py)."""
    # not at the top: yujing.models (the kinds' table) imports this module
    from yujing.models import ALL_KINDS, GROUP_KINDS

    KINDS = {**ALL_KINDS, **GROUP_KINDS}

    folder = Path(path)
    meta = read_meta(folder)
    signing.verify(meta, key, folder)
    if published_as is not None:
        _check_published(folder, meta, *published_as)
    if meta.get("format") != FORMAT:
        raise ModelError(f"{folder}: model format {meta.get('format')!r} is not {FORMAT}: "
                         "retrain with `yujing models train`")
    kind = meta.get("kind")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ModelError(f"{folder}: unknown detector kind {kind!r}; this build knows "
                         f"{', '.join(sorted(KINDS))}")
    if expect is not None and expect is not Detector and not issubclass(cls, expect):
        raise ModelError(f"{folder}: holds a {kind} model, not {expect.kind}")
    _check_schema(folder, meta, cls)
    payload_path = folder / PAYLOAD
    payload = _read_plain(payload_path, MAX_PAYLOAD_BYTES,
                          "the model folder is incomplete; retrain")
    digest = hashlib.sha256(payload).hexdigest()
    if digest != meta.get("sha256"):
        raise ChecksumError(f"{payload_path}: checksum {digest[:12]}… does not match "
                            f"{str(meta.get('sha256'))[:12]}… in {META}: the file was changed "
                            "or damaged; restore it or retrain (never load it as is)")
    libs = meta.get("libraries") or {}
    now = library_versions()
    for lib in ("scikit-learn", "numpy"):
        if lib in libs and lib in now and str(libs[lib]).split(".")[:2] != now[lib].split(".")[:2]:
            warnings.warn(f"{folder}: trained with {lib} {libs[lib]}, running {now[lib]}; "
                          "retrain if scores look wrong", stacklevel=2)
    data = codec.decode(payload, payload_path)
    try:
        det = cls(**dict(meta.get("hyper") or {}))
    except (TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{folder}: hyper-parameters this build does not take ({exc}): "
                         "retrain with `yujing models train`") from None
    det.metric = meta.get("metric")
    if isinstance(meta.get("metrics"), list):
        det.metrics = [str(m) for m in meta["metrics"]]
    det.params = data["params"]
    det.groups = data["groups"]
    # the payload's sha256 stays: a worker's checkpointed streaming state names its model by it
    det.meta = {k: v for k, v in meta.items() if k != signing.FIELD}
    return det
