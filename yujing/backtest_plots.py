"""PNG plots of a backtest: a station's series, its rules' thresholds and its warning periods.

One file per station, one panel per rule that warned there. A panel shows the
raw readings, the windowed aggregate each threshold is compared with (a 50 mm
line means nothing next to one-minute rain amounts, everything next to the
3-hour sum), the thresholds as horizontal lines and the warning periods shaded
in their grade's colour. Thresholds are read from simple conditions
(``sum(rain_mm, 3h) >= 50`` or the ``{agg, window, op, value}`` shorthand);
a compound condition is drawn as shading only, never guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .backtest_stats import rolling  # noqa: E402
from .domain import GRADE_NAMES  # noqa: E402
from .durations import format_duration, parse_duration_ms  # noqa: E402

GRADE_COLOURS = {1: "#1f63d6", 2: "#e8b900", 3: "#f07800", 4: "#d62728"}
NODATA_COLOUR = "#7f7f7f"
_SIMPLE = re.compile(r"^\s*(?:(?P<agg>sum|mean|max|min|last|count)\(\s*(?P<m1>\w+)\s*"
                     r"(?:,\s*(?P<win>[\w.]+)\s*)?\)|(?P<m2>[a-z_]\w*))\s*"
                     r"(?P<op>>=|>|<=|<)\s*(?P<val>[\w.+-]+)\s*$")


@dataclass(frozen=True)
class Threshold:
    grade: int
    metric: str
    agg: str
    window_ms: int
    op: str
    value: float

    @property
    def label(self) -> str:
        win = f"({format_duration(self.window_ms)})" if self.window_ms else ""
        return f"{GRADE_NAMES[self.grade - 1]}: {self.agg}{win} {self.op} {self.value:g}"


def _resolve(text: str, station: object) -> float | None:
    """A number, or a registry field such as ``station.warning_level_m``."""
    try:
        return float(text)
    except ValueError:
        pass
    if not text.startswith("station.") or station is None:
        return None
    field = text.split(".", 1)[1]
    for source in (getattr(station, "thresholds", None) or {}, ):
        if field in source:
            return float(source[field])
    v = getattr(station, field, None)
    return float(v) if isinstance(v, (int, float)) else None


def thresholds(rule: object, station: object = None) -> list[Threshold]:
    """The simple threshold conditions of a rule's grades, for horizontal lines."""
    out: list[Threshold] = []
    grades = getattr(rule, "grades", None)
    items = grades.items() if hasattr(grades, "items") else []
    for g, (name, spec) in ((GRADE_NAMES.index(n) + 1, (n, s)) for n, s in items):
        spec = getattr(spec, "when", spec)  # a held condition {when, for}
        if hasattr(spec, "agg"):  # the shorthand {agg, window, op, value} on rule.metric
            metric = getattr(rule, "metric", None)
            if metric:
                out.append(Threshold(g, metric, spec.agg, parse_duration_ms(spec.window),
                                     spec.op, float(spec.value)))
            continue
        m = _SIMPLE.match(spec) if isinstance(spec, str) else None
        if not m:
            continue
        value = _resolve(m["val"], station)
        if value is None:
            continue
        agg = m["agg"] or "last"
        try:
            win = parse_duration_ms(m["win"]) if m["win"] else 0
        except ValueError:
            continue
        out.append(Threshold(g, m["m1"] or m["m2"], agg, win, m["op"], value))
    return out


@dataclass
class Panel:
    rule: str
    title: str
    spans: pd.DataFrame  # start, end (ms), grade
    thresholds: list[Threshold]
    metrics: list[str]  # series to draw; empty means every metric of the station


def plot_station(path: Path, station: str, title: str,
                 series: dict[str, tuple[np.ndarray, np.ndarray]], panels: list[Panel],
                 tz: object) -> Path:
    """Write one PNG for a station. ``series`` maps metric → (ts ms, values), sorted."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 2.8 * len(panels) + 0.6),
                             sharex=True, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        metrics = panel.metrics or sorted(series)
        for metric in metrics:
            if metric not in series:
                continue
            ts, v = series[metric]
            when = pd.to_datetime(ts, unit="ms", utc=True).tz_convert(tz)
            ax.plot(when, v, lw=0.6, color="#555555", label=metric)
            drawn: set[tuple[str, int]] = set()
            for th in panel.thresholds:
                if th.metric != metric:
                    continue
                if th.agg != "last" and (th.agg, th.window_ms) not in drawn:
                    drawn.add((th.agg, th.window_ms))
                    agg = rolling(ts, v, th.agg, th.window_ms)
                    ax.plot(when, agg, lw=1.2,
                            label=f"{th.agg}({metric}, {format_duration(th.window_ms)})")
                ax.axhline(th.value, color=GRADE_COLOURS[th.grade], ls="--", lw=1,
                           label=th.label)
        for start, end, grade in panel.spans[["start", "end", "grade"]].itertuples(index=False):
            colour = NODATA_COLOUR if panel.rule == "nodata" else GRADE_COLOURS.get(grade)
            ax.axvspan(pd.Timestamp(start, unit="ms", tz="UTC").tz_convert(tz),
                       pd.Timestamp(max(end, start + 60_000), unit="ms", tz="UTC").tz_convert(tz),
                       color=colour, alpha=0.22, lw=0)
        ax.set_title(panel.title, fontsize=10, loc="left")
        ax.legend(fontsize=7, loc="upper left", ncols=2)
        ax.grid(alpha=0.3)
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=tz))
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
