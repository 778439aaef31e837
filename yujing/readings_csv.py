"""Readings CSV (``ts,station,metric,value``, ISO 8601 with an offset, or epoch ms): the one format
every offline command reads (backtest, rule tuning, model training).

Bad rows stop the read with every bad line listed (up to a limit) rather than
being skipped: a dropped row is a gap, and gaps raise no-data warnings, so a
silently cleaned file would give a different answer from the one asked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, tzinfo
from pathlib import Path

import numpy as np
import pandas as pd

from yujing.envelope import Columns

COLUMNS = ("ts", "station", "metric", "value")
READ_BLOCK = 1_000_000  # CSV rows parsed at once: bounds the transient string memory
MAX_LISTED = 10  # bad rows named in one error
_OFFSET = re.compile(r"(?:Z|[+-]\d\d(?::?\d\d)?)$")
_EPOCH_MS = r"-?\d{1,16}"  # epoch milliseconds, UTC
_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


class BacktestInputError(Exception):
    """A readings file an offline command cannot use; the message names file, line and fix."""


@dataclass
class Readings:
    """A readings file as dictionary-encoded columns, sorted by event time (stable)."""

    stations: list[str]
    metrics: list[str]
    si: np.ndarray  # uint32
    mi: np.ndarray  # uint32
    ts: np.ndarray  # int64 epoch ms, UTC
    val: np.ndarray  # float64
    tz: tzinfo = UTC  # offset of the file's timestamps, for output
    issued: np.ndarray | None = None  # int64 issue time of forecast rows, 0 for readings

    def __len__(self) -> int:
        return int(self.ts.size)

    def chunks(self, size: int) -> Iterator[Columns]:
        """Envelope-shaped slices (views) of at most ``size`` readings, in arrival order
        (event time; a forecast arrives at its issue time)."""
        for a in range(0, len(self), size):
            b = a + size
            yield Columns(0, 0, self.stations, self.metrics, self.si[a:b], self.mi[a:b],
                          self.ts[a:b], self.val[a:b],
                          None if self.issued is None else self.issued[a:b])


# ------------------------------------------------------------------- reading the CSV

def read_readings(path: Path, on_rows: Callable[[int], None] | None = None) -> Readings:
    """Parse a ``ts,station,metric,value`` CSV (DESIGN's readings format) into sorted columns.

    An optional ``issued`` column makes a row a forecast (docs/rules.md "Forecast
    readings"): ``ts`` is then its valid time and the row arrives at its issue time;
    rows with ``issued`` empty are readings.

    Fast path: pandas' C parser with dtype hints (stations and metrics straight to
    categoricals, values to float64) and vectorised ISO 8601 parsing, in blocks.
    On any problem, a second, slower pass reads the file as text to name every
    bad line; that pass only runs when the file is broken.
    """
    path = Path(path)
    if not path.is_file():
        raise BacktestInputError(f"{path}: file not found: pass a readings CSV with columns "
                                 "ts,station,metric,value")
    extra = ["issued"] if "issued" in _check_header(path) else []
    parts: list[tuple] = []  # per block: stations, si, metrics, mi, ts, value, issued
    tzs: set[str] = set()
    try:
        # No usecols: with it pandas drops a row's extra fields silently instead of failing.
        reader = pd.read_csv(path, index_col=False, engine="c",
                             encoding="utf-8-sig", skip_blank_lines=False, chunksize=READ_BLOCK,
                             dtype={"ts": "str", "station": "category", "metric": "category",
                                    "value": "float64", "issued": "str"})
        with reader:
            for block in reader:
                block = block[list(COLUMNS) + extra]
                ts, tz = _parse_ts(block["ts"])
                if ts is None or block[list(COLUMNS)].isna().to_numpy().any():
                    raise _Broken()
                tzs.add(tz)
                st, me = block["station"].cat, block["metric"].cat
                parts.append((st.categories, st.codes.to_numpy(), me.categories,
                              me.codes.to_numpy(), ts, block["value"].to_numpy(np.float64),
                              _issued(block) if extra else np.zeros(len(block), np.int64)))
                if on_rows:
                    on_rows(len(block))
    except pd.errors.ParserError as exc:
        raise _located_parser_error(path, exc) from None
    except (_Broken, ValueError, TypeError) as exc:
        _diagnose(path)  # raises naming the bad lines
        raise BacktestInputError(f"{path}: cannot read the readings ({exc}); expected "
                                 "ts,station,metric,value rows") from None
    if not parts:
        raise BacktestInputError(f"{path}: no readings after the header line")
    return _assemble(parts, tzs)


class _Broken(Exception):
    pass


def _issued(block: pd.DataFrame) -> np.ndarray:
    """Epoch ms of the ``issued`` column, 0 where it is empty (a reading)."""
    out = np.zeros(len(block), np.int64)
    given = block["issued"].notna().to_numpy()
    if given.any():
        iss, _ = _parse_ts(block["issued"][given])
        if iss is None:
            raise _Broken()
        out[given] = iss
    return out


def _check_header(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig") as f:
        header = f.readline().strip()
    names = [h.strip() for h in header.split(",")]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise BacktestInputError(
            f"{path}:1: header {header!r} lacks {', '.join(missing)}: the first line must be "
            "ts,station,metric,value")
    return names


def _parse_ts(text: pd.Series) -> tuple[np.ndarray | None, str]:
    """Epoch ms and the offset's name, or None when some row needs a closer look.
    A column of plain integers is epoch milliseconds (UTC), as exports and NAB-style
    tools write them."""
    if text.str.fullmatch(_EPOCH_MS).all():
        return text.astype("int64").to_numpy(), "UTC"
    try:
        dt = pd.to_datetime(text, format="ISO8601")
    except (ValueError, TypeError):  # mixed offsets (fine) or bad text (not fine)
        try:
            dt = pd.to_datetime(text, format="ISO8601", utc=True)
        except (ValueError, TypeError):
            return None, ""
        if not text.str.contains(_OFFSET).all():  # a naive time among aware ones
            return None, ""
        return dt.dt.as_unit("ms").astype("int64").to_numpy(), "UTC"
    if dt.dt.tz is None:  # naive: UTC or local? Refuse to guess.
        return None, ""
    return dt.dt.tz_convert("UTC").dt.as_unit("ms").astype("int64").to_numpy(), str(dt.dt.tz)


def _assemble(parts: list, tzs: set[str]) -> Readings:
    """One station and metric dictionary over all blocks, then sort by event time."""
    stations = pd.Index(sorted(set().union(*(set(p[0]) for p in parts))))
    metrics = pd.Index(sorted(set().union(*(set(p[2]) for p in parts))))
    si = np.concatenate([stations.get_indexer(p[0])[p[1]] for p in parts]).astype(np.uint32)
    mi = np.concatenate([metrics.get_indexer(p[2])[p[3]] for p in parts]).astype(np.uint32)
    ts = np.concatenate([p[4] for p in parts])
    val = np.concatenate([p[5] for p in parts])
    issued = np.concatenate([p[6] for p in parts])
    arrival = np.where(issued != 0, issued, ts)   # a forecast arrives when it is issued
    order = np.argsort(arrival, kind="stable")  # file order among equal times, as a gateway keeps it
    tz: tzinfo = UTC
    if len(tzs) == 1:
        name = next(iter(tzs))
        tz = pd.Timestamp(0, tz=name).tzinfo if name != "UTC" else UTC
    return Readings([str(s) for s in stations], [str(m) for m in metrics], si[order], mi[order],
                    ts[order], val[order], tz, issued[order] if issued.any() else None)


def _located_parser_error(path: Path, exc: Exception) -> BacktestInputError:
    m = _FIELDS.search(str(exc))
    if m:
        want, line, saw = m.groups()
        return BacktestInputError(
            f"{path}:{line}: {saw} fields where the header has {want}: write "
            "ts,station,metric,value and quote a field that contains a comma")
    return BacktestInputError(f"{path}: not a readable CSV ({exc})")


def _diagnose(path: Path) -> None:
    """Read the file as text and raise naming each bad line (the slow path)."""
    bad: list[str] = []
    count = 0
    reader = pd.read_csv(path, index_col=False, dtype="str",
                         keep_default_na=False, na_filter=False, skip_blank_lines=False,
                         encoding="utf-8-sig", chunksize=READ_BLOCK)
    first_line = 2
    try:
        with reader:
            for block in reader:
                for i, why in _row_problems(block[list(COLUMNS)]):
                    count += 1
                    if len(bad) < MAX_LISTED:
                        bad.append(f"  {path}:{first_line + i}: {why}")
                first_line += len(block)
    except pd.errors.ParserError as exc:
        raise _located_parser_error(path, exc) from None
    if count:
        shown = f" (the first {MAX_LISTED} shown)" if count > MAX_LISTED else ""
        raise BacktestInputError(
            f"{path}: {count} bad row(s){shown}; each row must be ts,station,metric,value with "
            "ts in ISO 8601 with a UTC offset (2025-06-01T08:00:00+08:00) or epoch ms, and a numeric "
            "value:\n" + "\n".join(bad) + "\nFix or delete these rows and run again.")


def _row_problems(block: pd.DataFrame) -> list[tuple[int, str]]:
    """(row index in block, reason) for every bad row; vectorised per column."""
    text = {c: block[c].astype("str").str.strip() for c in COLUMNS}
    blank = np.logical_and.reduce([(text[c] == "").to_numpy() for c in COLUMNS])
    epoch = text["ts"].str.fullmatch(_EPOCH_MS).to_numpy()
    ts = pd.to_datetime(text["ts"], format="ISO8601", utc=True, errors="coerce")
    no_offset = ~(text["ts"].str.contains(_OFFSET).to_numpy() | epoch)
    value = pd.to_numeric(text["value"], errors="coerce")
    checks = [
        (blank, lambda i: "blank line: delete it"),
        ((text["ts"] == "").to_numpy(), lambda i: "ts is empty"),
        (ts.isna().to_numpy() & ~epoch, lambda i: f"ts {text['ts'].iloc[i]!r} is not an ISO 8601 time"),
        (no_offset, lambda i: f"ts {text['ts'].iloc[i]!r} has no UTC offset: add one, "
                              "e.g. +08:00"),
        ((text["station"] == "").to_numpy(), lambda i: "station is empty"),
        ((text["metric"] == "").to_numpy(), lambda i: "metric is empty"),
        ((text["value"] == "").to_numpy(), lambda i: "value is empty"),
        (value.isna().to_numpy(), lambda i: f"value {text['value'].iloc[i]!r} is not a number"),
    ]
    out: dict[int, str] = {}
    for mask, why in checks:
        for i in np.flatnonzero(mask).tolist():
            out.setdefault(i, why(i))  # the first (most specific) reason per row
    return sorted(out.items())
