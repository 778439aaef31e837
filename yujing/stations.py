"""The station registry: who each station is, where, whose, and how often it reports.

Parsing is pure (``parse_registry_yaml``, ``parse_registry_csv``); ``load_registry``
reads the file. Operators keep the registry in YAML or, when it comes out of a
spreadsheet, in CSV; both give the same ``Station`` records and the same located
errors ("stations.csv:14: expected_interval: bad duration '5 min' …").

``FileWatcher`` reloads a file when it changes on disk or when the process gets
SIGHUP, without a restart. A broken edit is reported and the last good registry
stays in force, so a typo never takes the gateway or a worker down.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from yujing.durations import parse_duration_ms
from yujing.yamlsrc import Located, Problem, SourceError, load_yaml, problems_from, validate

log = logging.getLogger(__name__)


class StationContact(BaseModel):
    """A person named in the station's response plan (一点一方案), shown on the console.

    Not :class:`yujing.alerts.records.Contact`: that one is an apprise URL the
    notifier delivers to, resolved from the duty roster. These people are listed
    for the officer to call; the alerting never sends them anything, so the two
    stay separate types with different names.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    phone: str = ""
    email: str = ""
    role: str = Field("", description="e.g. A (first called) or B (escalation), 负责人, 值班")


class Station(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    name: str
    kind: str = Field(description="rain_gauge, river_gauge, reservoir, waterlogging, wind, camera, "
                                  "dust, gas, ...")
    town: str = Field("", description="镇街")
    enterprise: str = Field("", description="owning enterprise id (scopes gateway tokens)")
    group: str = Field("", pattern=r"^([A-Za-z0-9][A-Za-z0-9_.:-]{0,63})?$",
                       description="neighbour group: stations a group model (neighbours) scores "
                                   "together; their readings share one Kafka partition")
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    tags: list[str] = Field(default_factory=list)
    expected_interval: str | None = Field(None, description="e.g. 5m; a silent station warns")
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="per-station levels and setpoints, e.g. "
                                          "warning_level_m, guaranteed_level_m")
    plan: str = Field("", description="response plan (一点一方案)")
    contacts: list[StationContact] = Field(default_factory=list)

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
    def __init__(self, stations: list[Station], source: str = "") -> None:
        self.stations = {s.id: s for s in stations}
        self.source = source

    def get(self, station_id: str) -> Station | None:
        return self.stations.get(station_id)

    def __contains__(self, station_id: object) -> bool:
        return station_id in self.stations

    def __len__(self) -> int:
        return len(self.stations)

    def partition_keys(self) -> dict[str, str]:
        """station → the key its readings are partitioned by, for the stations of a
        neighbour group (the others are keyed by their id). Why: a group model predicts
        each station from the others at the same time, so one worker must hold the whole
        group; keying by the group sends its readings to one partition, each station's
        still in order."""
        return {s.id: "group:" + s.group for s in self.stations.values() if s.group}


def _duplicates(stations: list[Station], line_of: Callable[[int], int], file: str) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for i, s in enumerate(stations):
        if s.id in seen:
            problems.append(Problem(file, line_of(i), f"stations[{i}].id",
                                    f"duplicate station id {s.id!r}: keep one of them"))
        seen.add(s.id)
    return problems


def parse_registry_yaml(src: Located) -> Registry:
    parsed: RegistryFile = validate(RegistryFile, src)
    problems = _duplicates(parsed.stations, lambda i: src.line_of(("stations", i, "id")), src.file)
    if problems:
        raise SourceError(problems)
    return Registry(parsed.stations, src.file)


# CSV: one row per station. Lists are ';'-separated; a contact is name:phone[:role];
# thresholds are columns named threshold.<key> (threshold.warning_level_m).
CSV_COLUMNS = ("id", "name", "kind", "town", "enterprise", "lat", "lon", "tags",
               "expected_interval", "plan", "contacts")


def parse_registry_csv(text: str, file: str = "<csv>") -> Registry:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))  # Excel writes a BOM
    header = reader.fieldnames or []
    problems: list[Problem] = []
    for col in header:
        if col not in CSV_COLUMNS and not col.startswith("threshold."):
            problems.append(Problem(file, 1, col, f"unknown column: use {', '.join(CSV_COLUMNS)} "
                                                  "or threshold.<key>"))
    for col in ("id", "name", "kind"):
        if col not in header:
            problems.append(Problem(file, 1, col, "required column is missing: add it"))
    if problems:
        raise SourceError(problems)
    stations: list[Station] = []
    lines: list[int] = []
    for row in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # blank row
        if None in row:  # more cells than header columns
            problems.append(Problem(file, line, "", "more cells than columns: quote cells "
                                                    "that contain a comma"))
            continue
        data, loc_lines = _csv_row(row)
        src = Located(data, {(k,): line for k in loc_lines} | {(): line}, file)
        try:
            stations.append(Station.model_validate(data))
            lines.append(line)
        except pydantic.ValidationError as exc:
            # name the CSV column, not the model path
            problems += [Problem(pr.file, pr.line, pr.key.replace("thresholds.", "threshold.", 1)
                                 .split("[")[0], pr.message)
                         for pr in problems_from(exc, src, Station)]
        except ValueError as exc:
            problems.append(Problem(file, line, "", str(exc)))
    problems += _duplicates(stations, lambda i: lines[i], file)
    if problems:
        raise SourceError(problems)
    return Registry(stations, file)


def _csv_row(row: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    data: dict[str, Any] = {}
    thresholds: dict[str, str] = {}
    for col, cell in row.items():
        cell = (cell or "").strip()
        if not cell:
            continue
        if col.startswith("threshold."):
            thresholds[col.removeprefix("threshold.")] = cell
        elif col == "tags":
            data["tags"] = [t.strip() for t in cell.split(";") if t.strip()]
        elif col == "contacts":
            data["contacts"] = [_contact(c) for c in cell.split(";") if c.strip()]
        else:
            data[col] = cell
    if thresholds:
        data["thresholds"] = thresholds
    return data, list(data)


def _contact(text: str) -> dict[str, str]:
    parts = [p.strip() for p in text.split(":")]
    if not parts[0] or len(parts) > 3:
        raise ValueError(f"contact {text.strip()!r}: write name:phone or name:phone:role, "
                         "several separated by ';'")
    return dict(zip(("name", "phone", "role"), parts))


def load_registry(path: str | Path | None) -> Registry:
    """Read and validate a registry file (.csv, else YAML); None gives an empty registry."""
    if path is None:
        return Registry([])
    p = Path(path)
    if p.suffix.lower() == ".csv":
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SourceError([Problem(str(p), 0, "", "file not found: check the path "
                                       "(relative paths are from the config file's folder)")]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError([Problem(str(p), 0, "", f"cannot read file: {exc}")]) from None
        return parse_registry_csv(text, str(p))
    return parse_registry_yaml(load_yaml(p))


T = TypeVar("T")


class FileWatcher(Generic[T]):
    """Reloads a file when it changes (mtime, size or inode) or when asked (SIGHUP).

    Polling a stat every couple of seconds costs nothing and works on every
    file system and with editors that replace the file; inotify would not be
    portable. A file that fails to load is logged with its located problems
    and the last good value stays in force.
    """

    def __init__(self, path: Path, load: Callable[[Path], T], on_change: Callable[[T], None],
                 what: str = "file") -> None:
        self.path, self.load, self.on_change, self.what = Path(path), load, on_change, what
        self._stamp = self._stat()
        self._wake: asyncio.Event | None = None
        self.reloads = 0
        self.failures = 0

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def check(self, force: bool = False) -> bool:
        """Reload if the file changed (or ``force``); True when a new value was applied."""
        stamp = self._stat()
        if stamp == self._stamp and not force:
            return False
        self._stamp = stamp
        if stamp is None:
            log.error("%s %s is gone: keeping the last good one", self.what, self.path)
            self.failures += 1
            return False
        try:
            value = self.load(self.path)
        except SourceError as exc:
            self.failures += 1
            log.error("%s %s not reloaded, the last good one stays in force:\n%s",
                      self.what, self.path, exc)
            return False
        except Exception as exc:
            self.failures += 1
            log.error("%s %s not reloaded (%s: %s); the last good one stays in force",
                      self.what, self.path, type(exc).__name__, exc)
            return False
        self.reloads += 1
        self.on_change(value)
        log.info("%s %s reloaded", self.what, self.path)
        return True

    def request(self) -> None:
        """Ask for a reload now (the SIGHUP handler)."""
        if self._wake is not None:
            self._wake.set()

    async def run(self, interval_s: float = 2.0) -> None:
        """Poll until cancelled; SIGHUP (``request``) forces a reload at once."""
        self._wake = asyncio.Event()
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), interval_s)
                forced = True
            except TimeoutError:
                forced = False
            self._wake.clear()
            self.check(force=forced)


def reload_on_sighup(*watchers: FileWatcher[Any]) -> bool:
    """One SIGHUP handler for the running loop that reloads every watcher at once."""
    def handler() -> None:
        log.info("SIGHUP: reloading %s", ", ".join(w.what for w in watchers))
        for w in watchers:
            w.request()

    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, handler)
        return True
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / not Unix
        log.info("SIGHUP reload is not available here; file changes are still picked up by polling")
        return False


async def watch_registry(path: Path, on_change: Callable[[Registry], None],
                         interval_s: float = 2.0) -> None:
    """Reload the registry at ``path`` on change or SIGHUP until cancelled (the worker's task)."""
    w: FileWatcher[Registry] = FileWatcher(path, load_registry, on_change, "station registry")
    reload_on_sighup(w)
    await w.run(interval_s)
