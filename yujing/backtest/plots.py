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

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from yujing.backtest.stats import rolling
from yujing.domain import GRADE_NAMES
from yujing.durations import format_duration, parse_duration_ms

GRADE_COLOURS = {1: "#1f63d6", 2: "#e8b900", 3: "#f07800", 4: "#d62728"}
NODATA_COLOUR = "#7f7f7f"
_SIMPLE = re.compile(r"^\s*(?:(?P<agg>sum|mean|max|min|last|count)\(\s*(?P<m1>\w+)\s*"
                     r"(?:,\s*(?P<win>[\w.]+)\s*)?\)|(?P<m2>[a-z_]\w*))\s*"
                     r"(?P<op>>=|>|<=|<)\s*(?P<val>[\w.+-]+)\s*$")


_METRIC_ARG = re.compile(r"\b(?:sum|mean|max|min|last|count|first|delta|rate|spread|jump|"
                         r"days_since|eta|project)\(\s*([a-z_]\w*)")


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
    for g, spec in ((GRADE_NAMES.index(n) + 1, s) for n, s in items):
        spec = getattr(spec, "when", spec)  # a held condition {when, for}
        if hasattr(spec, "agg"):  # the shorthand {agg, window, op, value} on rule.metric
            metric = getattr(rule, "metric", None)
            if metric:
                out.append(Threshold(g, metric, spec.agg, spec.window_ms, spec.op,
                                     float(spec.value)))
            continue
        for part in _alternatives(spec) if isinstance(spec, str) else []:
            m = _SIMPLE.match(part)
            value = _resolve(m["val"], station) if m else None
            if value is None:
                continue
            try:
                win = parse_duration_ms(m["win"]) if m["win"] else 0
            except ValueError:
                continue
            out.append(Threshold(g, m["m1"] or m["m2"], m["agg"] or "last", win, m["op"], value))
    return out


def _alternatives(text: str) -> list[str]:
    """The top-level ``or`` branches of a condition: each alone is enough for the grade,
    so each simple one is a true threshold line (an ``and`` part alone is not)."""
    parts, depth, start = [], 0, 0
    for m in re.finditer(r"[()]|\bor\b", text):
        tok = m.group()
        depth += {"(": 1, ")": -1}.get(tok, 0)
        if tok == "or" and depth == 0:
            parts.append(text[start:m.start()])
            start = m.end()
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _gaps(ts: np.ndarray) -> np.ndarray:
    """Indices where the gap to the previous reading is over 3x the usual step."""
    if ts.size < 3:
        return np.empty(0, dtype=np.intp)
    step = np.diff(ts)
    return np.flatnonzero(step > 3 * np.median(step)) + 1


def _specs(rule: object) -> list[object]:
    grades = getattr(rule, "grades", None)
    specs = [s for _, s in grades.items()] if hasattr(grades, "items") else []
    clear = getattr(rule, "clear", None)
    return [getattr(s, "when", s) for s in specs + ([clear] if clear is not None else [])]


def metrics_of(rule: object) -> list[str]:
    """Metrics a rule reads, from its shorthand ``metric`` and its expressions' aggregates."""
    found = {getattr(rule, "metric", None)} - {None}
    for spec in _specs(rule):
        if isinstance(spec, str):
            found |= set(_METRIC_ARG.findall(spec))
        elif hasattr(spec, "agg") and getattr(rule, "metric", None):
            found.add(rule.metric)
    return sorted(found)


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
            gaps = _gaps(ts)  # a silent station shows as a break, not as a straight line
            at = np.insert(np.arange(ts.size), gaps, gaps - 1)  # NaN rows break the line
            ax.plot(when[at], np.insert(v.astype(np.float64), gaps, np.nan), lw=0.6,
                    alpha=0.8, label=metric)
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
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left", ncols=2)
        else:
            ax.text(0.5, 0.5, "no readings of this rule's metrics in the file",
                    ha="center", va="center", transform=ax.transAxes, color="#555555")
        ax.grid(alpha=0.3)
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=tz))
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_lead_times(path: Path, rows: pd.DataFrame, title: str) -> Path:
    """A histogram per projection rule of the minutes its warnings gained before the
    crossing they foresaw (``leadtime.lead_times`` rows); false alarms in the legend."""
    rules = sorted(rows["rule"].unique())
    fig, axes = plt.subplots(len(rules), 1, figsize=(9, 2.6 * len(rules) + 0.6), squeeze=False)
    for ax, rule in zip(axes[:, 0], rules):
        g = rows[rows["rule"] == rule]
        lead = g.loc[g["outcome"] == "crossed", "lead_min"].to_numpy(dtype=np.float64)
        false = int((g["outcome"] == "false alarm").sum())
        if lead.size:
            ax.hist(lead, bins=min(30, max(5, lead.size)), color=GRADE_COLOURS[2], alpha=0.8,
                    label=f"crossed: {lead.size}, median {np.median(lead):.0f} min")
            ax.axvline(float(np.median(lead)), color="#333333", ls="--", lw=1)
        ax.plot([], [], " ", label=f"false alarms: {false}")
        ax.set_title(rule, fontsize=10, loc="left")
        ax.set_xlabel("minutes from the projection warning to the observed crossing")
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
