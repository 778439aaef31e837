"""The ``cap:`` section of config.yaml: official signals in (pydantic, unknown keys rejected).

Example::

    cap:
      feeds:
        - url: https://example.gov.cn/cap/atom.xml   # an Atom feed of CAP alerts, or one CAP alert
          interval: 2m
      geocodes: {"441900": ["*"], "441900113": [虎门镇]}
      station_kinds: [rain_gauge, river_gauge, reservoir, waterlogging, weather]
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from yujing.durations import Duration
from yujing.yamlsrc import Problem

HYDROMET = ["rain_gauge", "river_gauge", "reservoir", "waterlogging", "weather"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CapFeed(_Strict):
    url: str = Field(pattern=r"^https?://\S+$", description="http(s) URL of an Atom feed of CAP "
                                                             "1.2 alerts, or of one CAP alert")
    interval: Duration = Field(Duration("2m"), description="how often to poll, e.g. 2m; the "
                               "poll sends If-None-Match / If-Modified-Since")
    timeout_s: float = Field(20.0, gt=0, le=600, description="give up on one poll after this")


class CapSettings(_Strict):
    feeds: list[CapFeed] = Field(default_factory=list, description="CAP feeds the gateway polls")
    geocodes: dict[str, list[str]] = Field(
        default_factory=dict, description="a CAP <geocode> value → the towns (镇街) it covers; "
                                          '"*" for every town, e.g. {"441900": ["*"]}')
    station_kinds: list[str] | None = Field(
        default_factory=lambda: list(HYDROMET), description="station kinds an official signal "
        "reaches (null: every station of the covered towns and shapes)")
    state_file: Path | None = Field(
        Path(".yujing/cap-signals.json"), description="where the gateway keeps the signals in "
        "force across a restart (their expiry, their chains); null: in memory only")
    max_bytes: int = Field(1024 * 1024, ge=1024, description="largest CAP message or feed taken")


def registry_problems(cap: CapSettings, registry: Any, file: str,
                      line_of: Callable[[tuple], int]) -> list[Problem]:
    """Towns of ``cap.geocodes`` and set ``cap.station_kinds`` that no station of the registry
    has: a signal for such a town would reach no one (the area mapping drops names it does
    not know), so ``yujing config check`` refuses them with a did-you-mean."""
    stations = list(registry.stations.values())
    towns = sorted({s.town for s in stations if s.town})
    kinds = sorted({s.kind for s in stations})
    out = []
    for code, named in cap.geocodes.items():
        for i, town in enumerate(named):
            if town != "*" and town not in towns:
                out.append(Problem(file, line_of(("cap", "geocodes", code, i)),
                                   f"cap.geocodes.{code}", f"no station of the registry is in "
                                   f"town {town!r}: {_hint(town, towns)}"))
    if "station_kinds" in cap.model_fields_set:
        for i, kind in enumerate(cap.station_kinds or []):
            if kind not in kinds:
                out.append(Problem(file, line_of(("cap", "station_kinds", i)), "cap.station_kinds",
                                   f"no station of the registry is of kind {kind!r}: "
                                   f"{_hint(kind, kinds)}"))
    return out


def _hint(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"did you mean {close[0]!r}?" if close else f"the registry has {', '.join(known) or 'none'}"
