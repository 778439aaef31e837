"""The fast path of JSON ingest: a body of plain, valid readings read in one typed pass.

Nearly every request of a busy gateway is a list of well-formed readings, and reading
them one dict at a time (parse.py) was the largest part of the gateway's CPU per reading.
Here msgspec decodes the whole body into typed items, and the checks run per batch: each
distinct station, metric and unit once, the numbers in C-level passes over the columns.

This path only ever says "all good" or "not sure". Not sure (``None``) sends the body to
the item-by-item path of parse.py, which finds each bad item's reason. So a body accepted
here gives exactly the readings parse.py gives, and a body with anything unusual (a
record, a bad field, an unknown key, a nested ``quality``) is answered by parse.py alone.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from yujing.connectors.parse import (
    MAX_TS,
    METRIC,
    MIN_TS,
    STATION,
    Rejected,
    parse_payload_indexed,
    parse_ts,
)
from yujing.connectors.validate import unit_problem
from yujing.domain import Reading

# quality and seq are carried by devices but not used: any scalar passes here; anything
# else (a list, an object) goes the item-by-item way, which takes any JSON there.
_Scalar = str | int | float | bool | None
_UNSET = msgspec.UNSET


class Item(msgspec.Struct, forbid_unknown_fields=True):
    """One plain reading as a device sends it: parse.py's reading keys, nothing else."""

    ts: int | float | str
    value: float   # a JSON integer becomes a float, as parse.py's float(value); true fails
    station: str | msgspec.UnsetType = _UNSET
    metric: str | msgspec.UnsetType = _UNSET
    quality: _Scalar | msgspec.UnsetType = _UNSET
    seq: _Scalar | msgspec.UnsetType = _UNSET
    unit: str | msgspec.UnsetType = _UNSET


_decoder = msgspec.json.Decoder(list[Item] | Item)


def parse_readings(raw: bytes, defaults: dict[str, str] | None = None,
                   max_items: int | None = None
                   ) -> tuple[list[tuple[int | None, Reading]], list[Rejected]]:
    """As :func:`yujing.connectors.parse.parse_payload_indexed`, fast for a clean body."""
    ok = fast_readings(raw, defaults, max_items)
    if ok is not None:
        return ok, []
    return parse_payload_indexed(raw, defaults, max_items)


def _filled(given: list[Any], default: str | None) -> list[Any] | None:
    """A column with the topic's default where an item left the field out; None when an
    item has neither."""
    if _UNSET not in given:
        return given
    if default is None:
        return None
    return [default if v is _UNSET else v for v in given]


def fast_readings(raw: bytes, defaults: dict[str, str] | None, max_items: int | None
                  ) -> list[tuple[int | None, Reading]] | None:
    """The readings of ``raw`` with their item indices when every item is a plain valid
    reading; None when parse.py must look at the items one by one."""
    try:
        doc = _decoder.decode(raw)
    except msgspec.DecodeError:   # ValidationError included: bad JSON or an unusual item
        return None
    items: list[Item] = doc if isinstance(doc, list) else [doc]
    n = len(items)
    if n == 0 or (max_items is not None and n > max_items):
        return None
    defaults = defaults or {}
    bound = defaults.get("station")
    stations = _filled([it.station for it in items], bound)
    metrics = _filled([it.metric for it in items], defaults.get("metric"))
    if stations is None or metrics is None:
        return None
    distinct = set(stations)
    # an item naming a station other than its topic's: parse.py refuses it (topic_mismatch)
    if bound is not None and distinct != {bound}:
        return None
    if not all(map(STATION.fullmatch, distinct)) or not all(map(METRIC.fullmatch, set(metrics))):
        return None
    values = [it.value for it in items]
    if not all(map(math.isfinite, values)):
        return None
    units = {(m, it.unit) for m, it in zip(metrics, items) if it.unit is not _UNSET}
    if any(unit_problem(m, u) for m, u in units):
        return None
    ts = [it.ts for it in items]
    try:
        if set(map(type, ts)) != {int}:
            ts = [parse_ts(t) for t in ts]
        elif not (MIN_TS <= min(ts) and max(ts) <= MAX_TS):
            return None
    except ValueError:
        return None
    readings = list(map(Reading, stations, metrics, ts, values))
    if isinstance(doc, list):
        return list(zip(range(n), readings))
    return [(None, readings[0])]
