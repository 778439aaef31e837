"""The anomaly models a pipeline's rules may name, as the engine asks for them.

Its own module because it changes with the model registry (where versions live,
what counts as loadable), not with how readings flow through a pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from yujing.models.registry import ModelRegistry
from yujing.models.signing import NO_KEY_FIX, resolve_key
from yujing.rules.compiled import compile_rule
from yujing.rules.schema import Rule

log = logging.getLogger(__name__)


class ModelsView:
    """Anomaly models by name for the engine: the newest good version in the registry.

    Only versions signed with the operator's key load (``key_file``, else the environment:
    yujing.models.signing). Without a usable key the worker still runs, says so once, and
    every rule's anomaly() has no model, rather than trusting an unsigned folder."""

    def __init__(self, root: Any, key_file: Any | None = None, preload: Iterable[Rule] = ()
                 ) -> None:
        """``preload``: load the models these rules name now, before a worker joins its
        consumer group: a forest model takes seconds to load (bench/model_load.py), which
        must not happen later on the event loop while partitions are assigned."""
        try:
            key = resolve_key(key_file)
        except Exception as exc:
            log.error("anomaly models in %s: none will load: %s", root, exc)
            key = None
        else:
            if key is None:
                log.error("anomaly models in %s: none will load: no signing key: %s", root,
                          NO_KEY_FIX)
        self.registry = ModelRegistry(root, key)
        self._missing: set[str] = set()
        for name in sorted({n for r in preload if r.enabled for n in compile_rule(r).models}):
            self.get(name)

    def get(self, name: str) -> Any | None:
        loaded = self.registry.loaded.get(name)
        if loaded is not None:
            return loaded.model
        if name in self._missing:
            return None
        try:
            return prepared(self.registry.load_latest(name))
        except Exception as exc:
            log.warning("anomaly model %s not available: %s", name, exc)
            self._missing.add(name)
            return None

    def reload(self) -> list[str]:
        self._missing.clear()
        changed = self.registry.reload_if_changed()
        for model in changed.values():
            prepared(model)
        return sorted(changed)


def prepared(model: Any) -> Any:
    """The model with its scoring tables built (a forest flattened: models/forest.py), so
    the first envelope after a load does not pay for it on the event loop."""
    prepare = getattr(model, "prepare", None)
    if prepare is not None:
        prepare()
    return model


def split_groups(models: Any | None, rules: Iterable[Rule], registry: Any) -> list[str]:
    """What is wrong with each group model (neighbours) an enabled rule reads whose stations
    the registry does not give one ``group``: their readings are then partitioned by
    station, may reach different workers, and each is scored only against the neighbours
    beside it. Said at start (the worker runs on), with the fix."""
    if models is None:
        return []
    keys = registry.partition_keys()
    out = []
    for name in sorted({n for r in rules if r.enabled for n in compile_rule(r).models}):
        model = models.get(name)
        if not getattr(model, "group_level", False):
            continue
        groups = {keys.get(s, "") for s in model.stations}
        if len(groups) != 1 or "" in groups:
            said = ", ".join(f"{s}: {keys.get(s, '—').removeprefix('group:')}"
                             for s in model.stations)
            out.append(f"anomaly model {name} compares stations {', '.join(model.stations)}, "
                       f"which the station registry does not put in one group ({said}): give "
                       f"them one `group:` in the registry, or their readings may reach "
                       f"different workers and each is scored only against those beside it")
    return out

