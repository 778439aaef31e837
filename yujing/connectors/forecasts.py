"""Turn untrusted forecast JSON into Forecasts, item by item, with reasons.

Pure, like ``parse.py`` (whose helpers it shares): a bad item, or a bad step of a
compact issue, never spoils the rest. Two forms, alone or mixed in a list:

- one value ``{"station", "metric", "issued", "valid", "value"}`` (``unit`` optional);
- one issue, compact ``{"station", "metric", "issued", "steps": [[valid, value], …]}``.

``issued`` and ``valid`` are epoch milliseconds or ISO 8601 with an offset, as ``ts``
of a reading. The metric of a forecast ends in ``_fcst`` (``rain_mm_fcst``,
``water_level_m_fcst``): its observed twin stays a separate series, and a rule says
which it reads (``sum(rain_mm, 1h) + sum_ahead(rain_mm_fcst, 2h)``). Over MQTT the
topic ``yujing/<source>/<station>/forecast`` binds the station like a readings topic.
"""

from __future__ import annotations

import math
from typing import Any

from yujing.connectors.parse import (
    METRIC,
    STATION,
    Rejected,
    check_bound,
    parse_ts,
    split_items,
)
from yujing.connectors.validate import unit_problem
from yujing.domain import Forecast

SUFFIX = "_fcst"
MQTT_KIND = "forecast"  # the <kind> segment of a forecast topic
_ITEM_KEYS = {"station", "metric", "issued", "valid", "value", "unit"}
_ISSUE_KEYS = {"station", "metric", "issued", "steps", "unit"}
_FORMS = ('a forecast is {"station", "metric", "issued", "valid", "value"} or one issue '
          '{"station", "metric", "issued", "steps": [[valid, value], ...]}')


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number")
    if not math.isfinite(value):
        raise ValueError(f"{what} is not finite (NaN or infinity)")
    return float(value)


def _time(value: Any, what: str) -> int:
    try:
        return parse_ts(value)
    except ValueError as exc:
        raise ValueError(str(exc).replace("ts", what, 1)) from None


def _head(item: Any, keys: set[str], defaults: dict[str, str] | None) -> tuple[str, str, int]:
    """(station, metric, issued) of an item, checked; raises ValueError naming the field."""
    if not isinstance(item, dict):
        raise ValueError(f"a forecast must be a JSON object, got {type(item).__name__}: {_FORMS}")
    unknown = set(item) - keys
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}: {_FORMS}")
    check_bound(item, defaults)
    station = item.get("station", (defaults or {}).get("station"))
    for key, got in (("station", station), ("metric", item.get("metric")),
                     ("issued", item.get("issued"))):
        if got is None:
            raise ValueError(f"missing field '{key}'")
    metric = item["metric"]
    if not isinstance(station, str) or not STATION.fullmatch(station):
        raise ValueError("station must be 1-64 letters, digits, '_', '-', '.', ':'")
    if not isinstance(metric, str) or not METRIC.fullmatch(metric) or not metric.endswith(SUFFIX):
        raise ValueError("metric of a forecast is the observed metric with _fcst, e.g. "
                         "rain_mm_fcst, water_level_m_fcst")
    if "unit" in item:
        problem = unit_problem(metric[: -len(SUFFIX)], item["unit"])
        if problem:
            raise ValueError(problem)
    return station, metric, _time(item["issued"], "issued")


def forecast_from(item: Any, defaults: dict[str, str] | None = None) -> Forecast:
    """One forecast value; raises ValueError naming the bad field."""
    station, metric, issued = _head(item, _ITEM_KEYS, defaults)
    for key in ("valid", "value"):
        if key not in item:
            raise ValueError(f"missing field '{key}'")
    return Forecast(station, metric, _time(item["valid"], "valid"),
                    _number(item["value"], "value"), issued)


def issue_from(item: dict, defaults: dict[str, str] | None = None
               ) -> tuple[list[Forecast], list[str]]:
    """The values of one compact issue, and a reason per bad step (the rest are kept).
    A fault of the issue itself (station, metric, issued, steps not a list) raises."""
    station, metric, issued = _head(item, _ISSUE_KEYS, defaults)
    steps = item.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ValueError("steps must be a non-empty list of [valid, value] pairs")
    out: list[Forecast] = []
    bad: list[str] = []
    for k, step in enumerate(steps):
        try:
            if not isinstance(step, list) or len(step) != 2:
                raise ValueError("a step is [valid, value]")
            out.append(Forecast(station, metric, _time(step[0], "valid"),
                                _number(step[1], "value"), issued))
        except ValueError as exc:
            bad.append(f"steps[{k}]: {exc}")
    return out, bad


def parse_forecasts_indexed(raw: bytes, defaults: dict[str, str] | None = None,
                            max_items: int | None = None
                            ) -> tuple[list[tuple[int | None, Forecast]], list[Rejected]]:
    """Forecasts from a JSON body (one item or a list), each with its item's index, and
    the rejected items with their reasons (as :func:`parse.parse_payload_indexed`)."""
    return split_items(raw, defaults, max_items, _is_issue, issue_from, forecast_from)


def _is_issue(item: Any) -> bool:
    """One issue with its list of steps (the compact form), not a single forecast value."""
    return isinstance(item, dict) and "steps" in item
