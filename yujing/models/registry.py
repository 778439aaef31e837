"""A versioned model registry on disk, with hot reload.

Layout: ``ROOT/<model-name>/<version>/{meta.json, model.skops}``, versions numbered
``0001``, ``0002``, … A new version is written into a hidden temporary folder and
renamed into place, so a worker polling the registry never sees half a model. Its
``meta.json`` is signed with the registry's key (signing.py) and names the model and
version it was published as: a signed version copied to another name or number (to roll
a model back or swap two) is refused like an unsigned one.

The worker loads the newest version of each model it needs at start
(:meth:`ModelRegistry.load_latest`) and calls :meth:`ModelRegistry.reload_if_changed`
from a timer: a newer version on disk is loaded and returned; one that fails to load
(unsigned, bad signature or checksum, unknown schema, anything else) is logged once and
skipped, and the last good model stays in force until a newer version appears.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yujing.models.base import META, Detector, write_meta
from yujing.models.errors import ModelError, SignatureError
from yujing.models.persist import load_model
from yujing.models.signing import NO_KEY_FIX, ModelKey

log = logging.getLogger(__name__)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
VERSION = re.compile(r"[0-9]{4,}")


@dataclass
class Loaded:
    version: str
    model: Detector


class ModelRegistry:
    """Versions under ``root``, published and loaded with ``key`` (None: nothing loads)."""

    def __init__(self, root: str | Path, key: ModelKey | None) -> None:
        self.root = Path(root)
        self.key = key
        self.loaded: dict[str, Loaded] = {}
        self._failed: dict[str, str] = {}  # name → newest version that would not load

    # -- reading ----------------------------------------------------------------------------

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and NAME.fullmatch(p.name) and self.versions(p.name))

    def versions(self, name: str) -> list[str]:
        folder = self.root / _check_name(name)
        if not folder.is_dir():
            return []
        found = [p.name for p in folder.iterdir()
                 if p.is_dir() and VERSION.fullmatch(p.name) and (p / META).is_file()]
        return sorted(found, key=int)

    def latest_version(self, name: str) -> str | None:
        v = self.versions(name)
        return v[-1] if v else None

    def load(self, name: str, version: str) -> Detector:
        """One version, signed with this registry's key for exactly this name and version."""
        return load_model(self.root / _check_name(name) / version, self.key,
                          published_as=(name, version))

    def load_latest(self, name: str) -> Detector:
        """The newest version of ``name`` (remembered for :meth:`reload_if_changed`)."""
        version = self.latest_version(name)
        if version is None:
            known = ", ".join(self.names()) or "none"
            raise ModelError(f"model {name!r}: no version in {self.root} (models there: {known}); "
                             f"train one with `yujing models train --name {name} --out {self.root}`")
        model = self.load(name, version)
        self.loaded[name] = Loaded(version, model)
        return model

    def reload_if_changed(self, name: str | None = None) -> dict[str, Detector]:
        """Load models whose newest version on disk differs from the one in use.

        Returns name → new model for each model that changed (all loaded models when
        ``name`` is None). A version that fails to load is logged once and skipped.
        """
        changed: dict[str, Detector] = {}
        for n in ([name] if name is not None else list(self.loaded)):
            version = self.latest_version(n)
            current = self.loaded.get(n)
            if version is None or (current is not None and current.version == version):
                continue
            if self._failed.get(n) == version:
                continue
            try:
                model = self.load(n, version)
            except Exception as exc:  # whatever is wrong with a version, the worker goes on
                self._failed[n] = version
                log.error("model %s version %s refused, keeping version %s: %s", n, version,
                          current.version if current else "none", exc)
                continue
            self.loaded[n] = Loaded(version, model)
            self._failed.pop(n, None)
            changed[n] = model
            log.info("model %s: now version %s", n, version)
        return changed

    def meta(self, name: str, version: str | None = None) -> dict[str, Any]:
        version = version or self.latest_version(name)
        if version is None:
            raise ModelError(f"model {name!r}: no version in {self.root}")
        return json.loads((self.root / name / version / META).read_text(encoding="utf-8"))

    # -- writing ----------------------------------------------------------------------------

    def publish(self, name: str, model: Detector, extra: dict[str, Any] | None = None) -> Path:
        """Save ``model`` as the next version of ``name``, signed for that name and version;
        returns the version folder."""
        folder = self.root / _check_name(name)
        if self.key is None:
            raise SignatureError(f"model {name!r}: cannot publish an unsigned model: {NO_KEY_FIX}")
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".new-", dir=folder))
        try:
            model.save(tmp, self.key)
            meta = json.loads((tmp / META).read_text(encoding="utf-8"))
            for _ in range(100):  # another trainer may take a number at the same time
                versions = self.versions(name)
                version = f"{(int(versions[-1]) + 1) if versions else 1:04d}"
                meta["registry"] = {"name": name, "version": version, **(extra or {})}
                write_meta(tmp, meta, self.key)
                target = folder / version
                try:
                    os.rename(tmp, target)  # atomic; fails if the version exists
                except OSError:
                    if target.exists():
                        continue
                    raise
                return target
            raise ModelError(f"{folder}: could not take a version number")
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ModelError(f"model name {name!r}: use 1-64 letters, digits, '_', '-', '.', "
                         "starting with a letter or digit (e.g. water-level-if)")
    return name
