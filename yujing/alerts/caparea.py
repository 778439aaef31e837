"""Which towns and stations of the registry a CAP area covers. Pure (numpy).

A CAP ``<area>`` names its extent four ways, and each counts:

- ``<polygon>``: the stations whose coordinates lie inside (even-odd ray casting,
  vectorised over every station; edges count as outside);
- ``<circle>``: the stations within the radius (km, great-circle distance);
- ``<geocode>``: a code (e.g. the GB/T 2260 administrative code 441900) mapped
  to towns by ``cap.geocodes`` in config (``"*"``: every town);
- ``<areaDesc>``: every registry town named in the text (「东莞市虎门镇、长安镇」).

A town covered means all of its stations. Stations without coordinates are
reached only through their town. Only stations of the configured kinds count
(``cap.station_kinds``: the hydro-meteorological ones by default, so a rainstorm
signal does not open a warning at every gas detector of a town).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

from yujing.alerts.capin import Area
from yujing.stations import Registry

EARTH_KM = 6371.0088


def inside(lat: np.ndarray, lon: np.ndarray, ring: list[tuple[float, float]]) -> np.ndarray:
    """Which points lie inside the polygon ``ring`` of (lat, lon) vertices (even-odd rule)."""
    hit = np.zeros(lat.shape, dtype=bool)
    n = len(ring)
    for k in range(n):
        (y1, x1), (y2, x2) = ring[k], ring[(k + 1) % n]
        if y1 == y2:
            continue  # a horizontal edge never crosses the ray
        crosses = (y1 > lat) != (y2 > lat)
        x_at = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
        hit ^= crosses & (lon < x_at)
    return hit


def within(lat: np.ndarray, lon: np.ndarray, clat: float, clon: float, radius_km: float
           ) -> np.ndarray:
    """Which points lie within ``radius_km`` of the centre (haversine)."""
    p1, p2 = np.radians(lat), np.radians(clat)
    dphi, dlmb = p2 - p1, np.radians(clon - lon)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))) <= radius_km


class AreaIndex:
    """The registry's stations as arrays, for one CAP area after another."""

    def __init__(self, registry: Registry, geocodes: Mapping[str, list[str]] | None = None,
                 kinds: Collection[str] | None = None) -> None:
        """``kinds``: the station kinds an official signal reaches (None: every kind)."""
        stations = [s for s in registry.stations.values() if kinds is None or s.kind in kinds]
        located = [s for s in stations if s.lat is not None and s.lon is not None]
        self.ids = np.array([s.id for s in located], dtype=object)
        self.lat = np.array([s.lat for s in located], dtype=float)
        self.lon = np.array([s.lon for s in located], dtype=float)
        self.by_town: dict[str, list[str]] = {}
        for s in stations:
            if s.town:
                self.by_town.setdefault(s.town, []).append(s.id)
        self.geocodes = dict(geocodes or {})

    def towns_of(self, area: Area) -> set[str]:
        towns = {t for t in self.by_town if t in area.desc}
        for _, value in area.geocodes:
            named = self.geocodes.get(value, [])
            towns |= set(self.by_town) if "*" in named else set(named) & set(self.by_town)
        return towns

    def stations_of(self, areas: list[Area]) -> set[str]:
        """Every station any of ``areas`` covers."""
        found: set[str] = set()
        for area in areas:
            mask = np.zeros(self.lat.shape, dtype=bool)
            for ring in area.polygons:
                if len(ring) >= 3:
                    mask |= inside(self.lat, self.lon, ring)
            for clat, clon, radius in area.circles:
                mask |= within(self.lat, self.lon, clat, clon, radius)
            found.update(self.ids[mask].tolist())
            for town in self.towns_of(area):
                found.update(self.by_town[town])
        return found
