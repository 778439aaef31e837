"""Readings as the ingest APIs take them (JSON dicts), for the tests that post or publish."""

from __future__ import annotations

import time

MIN = 60_000
HOUR = 60 * MIN


def rain(station: str, start_ms: int | None = None, n: int = 36, mm: float = 1.5) -> list[dict]:
    """``n`` rain readings of ``mm`` each at ``station``, one every 5 minutes from ``start_ms``.

    Without ``start_ms`` they start 4 h ago, so the defaults (36 × 1.5 mm = 54 mm in the
    last 3 h) raise the shipped 3 h rainstorm rule's orange warning now.
    """
    if start_ms is None:
        start_ms = int(time.time() * 1000) - 4 * HOUR
    return [{"station": station, "metric": "rain_mm", "ts": start_ms + i * 5 * MIN, "value": mm}
            for i in range(n)]
