"""The station registry: who each station is, where, and how often it reports.

Parsing is pure; ``load_registry`` does the file read. Messages use the
station's name and town; later stages use thresholds and response plans.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .durations import parse_duration_ms
from .yamlsrc import Problem, SourceError, load_yaml, validate


class Station(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    name: str
    kind: str = Field(description="rain_gauge, river_gauge, reservoir, waterlogging, wind, ...")
    town: str = Field("", description="镇街")
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    tags: list[str] = Field(default_factory=list)
    expected_interval: str | None = Field(None, description="e.g. 5m; a silent station warns")
    thresholds: dict[str, float] = Field(default_factory=dict)
    plan: str = Field("", description="response plan (一点一方案)")

    @field_validator("expected_interval")
    @classmethod
    def _interval(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration_ms(v)
        return v


class RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stations: list[Station] = Field(default_factory=list)


class Registry:
    def __init__(self, stations: list[Station]) -> None:
        self.stations = {s.id: s for s in stations}

    def get(self, station_id: str) -> Station | None:
        return self.stations.get(station_id)

    def __len__(self) -> int:
        return len(self.stations)


def load_registry(path: str | Path | None) -> Registry:
    if path is None:
        return Registry([])
    src = load_yaml(path)
    parsed: RegistryFile = validate(RegistryFile, src)
    seen: set[str] = set()
    problems = []
    for i, s in enumerate(parsed.stations):
        if s.id in seen:
            problems.append(Problem(str(path), src.line_of(("stations", i, "id")),
                                    f"stations[{i}].id", f"duplicate station id {s.id!r}"))
        seen.add(s.id)
    if problems:
        raise SourceError(problems)
    return Registry(parsed.stations)
