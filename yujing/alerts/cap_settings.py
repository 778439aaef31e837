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

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from yujing.durations import Duration

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
