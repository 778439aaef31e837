"""Discrete events (camera detections, industrial incidents) → readings + event detail.

Pure: no I/O. A smoke detection or a vent-panel burst is not a measurement,
but the rule engine already counts and thresholds readings, so each event
becomes one reading the rules can use (``count`` of ``fire`` over 10m, ``max``
of ``smoke`` confidence): metric = event type, value = the camera's confidence
(0..1) or 1 for an occurrence. What a reading cannot carry (bounding box,
image URL, free detail) is kept as an event record for the duty console on
the topic ``yujing.events``.

Accepted forms, one object or a list:

camera detection::

    {"type": "smoke", "camera": "CAM-QX-03", "ts": "2025-06-01T08:00:00+08:00",
     "confidence": 0.91, "bbox": [x, y, w, h], "image_url": "https://…/f.jpg"}

industrial event::

    {"type": "vent_burst", "station": "ENT17-DUST-2", "ts": 1748736000000,
     "detail": {"line": "polishing 2"}}
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from yujing.connectors.parse import STATION, Rejected, load_items, parse_ts
from yujing.domain import Reading

CAMERA_TYPES = ("smoke", "fire")
INDUSTRIAL_TYPES = ("spark", "vent_burst", "airlock_fault", "extinguisher")
EVENT_TYPES = CAMERA_TYPES + INDUSTRIAL_TYPES
_KEYS = {"type", "camera", "station", "ts", "confidence", "bbox", "image_url", "detail", "id"}
_URL = re.compile(r"https?://[^\s]{1,2040}")
MAX_DETAIL_BYTES = 4096
MAX_DETAIL_DEPTH = 8


def event_from(item: Any) -> tuple[Reading, dict[str, Any]]:
    """One event's reading and its detail record; raises ValueError naming the bad field."""
    if not isinstance(item, dict):
        raise ValueError(f"an event must be a JSON object, got {type(item).__name__}")
    unknown = set(item) - _KEYS
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}: an event has type, camera or "
                         "station, ts, confidence, bbox, image_url, detail")
    kind = item.get("type")
    if kind not in EVENT_TYPES:
        raise ValueError(f"type {kind!r} is not an event type: use one of {', '.join(EVENT_TYPES)}")
    station = item.get("camera", item.get("station"))
    if "camera" in item and "station" in item and item["camera"] != item["station"]:
        raise ValueError("camera and station differ: send one of them")
    if station is None:
        raise ValueError("missing field 'camera' (or 'station'): which device saw it")
    if not isinstance(station, str) or not STATION.fullmatch(station):
        raise ValueError("camera/station must be 1-64 letters, digits, '_', '-', '.', ':'")
    if "ts" not in item:
        raise ValueError("missing field 'ts'")
    ts = parse_ts(item["ts"])
    detail: dict[str, Any] = {"type": kind, "station": station, "ts": ts}
    if kind in CAMERA_TYPES:
        conf = item.get("confidence")
        if conf is None:
            raise ValueError("missing field 'confidence' (0..1) for a camera detection")
        if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not math.isfinite(conf) \
                or not 0 <= conf <= 1:
            raise ValueError("confidence must be a number from 0 to 1")
        value = float(conf)
        detail["confidence"] = value
    else:
        if "confidence" in item:
            raise ValueError(f"confidence is for camera detections, not {kind}")
        value = 1.0
    if "bbox" in item:
        detail["bbox"] = _bbox(item["bbox"])
    if "image_url" in item:
        url = item["image_url"]
        if not isinstance(url, str) or not _URL.fullmatch(url):
            raise ValueError("image_url must be an http(s) URL of at most 2048 characters")
        detail["image_url"] = url
    if "detail" in item:
        d = item["detail"]
        if not isinstance(d, dict) or deeper_than(d, MAX_DETAIL_DEPTH) \
                or len(orjson.dumps(d)) > MAX_DETAIL_BYTES:
            raise ValueError(f"detail must be a JSON object of at most {MAX_DETAIL_BYTES} bytes "
                             f"nested at most {MAX_DETAIL_DEPTH} levels")
        detail["detail"] = d
    if "id" in item:
        if not isinstance(item["id"], str) or not 0 < len(item["id"]) <= 128:
            raise ValueError("id must be text of 1-128 characters")
        detail["id"] = item["id"]
    return Reading(station, kind, ts, value), detail


def deeper_than(doc: Any, cap: int) -> bool:
    """Whether a decoded JSON value nests more than ``cap`` levels of objects and lists.

    Iterative, and stops at the first level past the cap: a hostile document nested a
    thousand levels costs ``cap`` levels of work, not a RecursionError (orjson reads 1024
    levels but writes only 254, so such a detail could not even be passed on)."""
    level = [doc]
    for _ in range(cap + 1):
        level = [v for x in level if isinstance(x, (dict, list))
                 for v in (x.values() if isinstance(x, dict) else x)]
        if not level:
            return False
    return True


def _bbox(b: Any) -> list[float]:
    if (not isinstance(b, list) or len(b) != 4
            or any(isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x)
                   or x < 0 for x in b)):
        raise ValueError("bbox must be [x, y, width, height]: four non-negative numbers "
                         "(pixels, or fractions of the frame)")
    return [float(x) for x in b]


def parse_events(raw: bytes, max_items: int | None = None
                 ) -> tuple[list[tuple[int | None, Reading, dict[str, Any]]], list[Rejected]]:
    """Events from a JSON body holding one event or a list: (item index, reading, detail)."""
    items, is_list, refused = load_items(raw, max_items)
    if refused is not None:
        return [], [refused]
    ok: list[tuple[int | None, Reading, dict[str, Any]]] = []
    bad: list[Rejected] = []
    for i, item in enumerate(items):
        index = i if is_list else None
        try:
            reading, detail = event_from(item)
            ok.append((index, reading, detail))
        except ValueError as exc:
            bad.append(Rejected(index, str(exc), item))
    return ok, bad
