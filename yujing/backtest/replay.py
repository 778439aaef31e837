"""``yujing backtest``: replay a readings CSV through the worker's own Pipeline.

Analysts change a rule and want to know what it would have done to history
before it goes live. The answer is only worth having if the replay runs the
same code as the worker, so this module feeds ``Pipeline.handle`` with the
same dictionary-encoded ``Columns`` an envelope decodes to, in event-time
order, and runs the no-data check on the event-time clock between chunks.
Everything here is I/O around that: reading the CSV, writing transitions,
summary, comparison and plots, printing tables. The reductions are in
``backtest.stats`` and the drawing in ``backtest.plots``.

The CSV itself is read by ``yujing.readings_csv``.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path

import numpy as np
import pandas as pd

from yujing.backtest import leadtime
from yujing.backtest import stats as stats
from yujing.domain import WarningEvent
from yujing.pipeline import Pipeline
from yujing.readings_csv import Readings, read_readings
from yujing.stations import Registry

# ------------------------------------------------------------------- replaying

@dataclass
class Replay:
    """What one rule set did over the data."""

    events: list[WarningEvent] = field(default_factory=list)
    late: int = 0


def replay(pipelines: list[Pipeline], data: Readings, chunk: int,
           on_chunk: Callable[[int], None] | None = None) -> list[Replay]:
    """Feed the data to every pipeline chunk by chunk, as the worker would see envelopes.

    After each chunk the no-data check runs on the event-time clock (the newest
    event time so far), so a station that fell silent is found during the replay,
    not only at its end. ``now_ms`` is the chunk's newest event time, so
    ``emitted_ms`` says when a live worker would at the earliest have emitted.
    One pass serves several rule sets (``--compare``), so the data is sliced once.
    """
    if chunk < 1:
        raise ValueError("chunk size must be at least 1 reading")
    out = [Replay() for _ in pipelines]
    for cols in data.chunks(chunk):
        # the newest arrival (rows come in arrival order; a forecast arrives when issued)
        now = int(cols.issued[-1] if cols.issued is not None and cols.issued[-1] else cols.ts[-1])
        for p, r in zip(pipelines, out):
            res = p.handle(cols, now)
            r.events += res.events
            r.late += len(res.late)
            r.events += p.check_nodata(now, clock="event")
        if on_chunk:
            on_chunk(len(cols))
    return out


def rule_names(rules: list, registry: Registry) -> dict[str, str]:
    """Rule id → name of every rule that runs, with the no-data rule when the registry asks."""
    names = {r.id: r.name for r in rules if getattr(r, "enabled", True)}
    if any(getattr(s, "expected_interval", None) for s in registry.stations.values()):
        names["nodata"] = "no data (数据中断)"
    return names


# ------------------------------------------------------------------- the command

@dataclass
class Options:
    rules: Path
    data: Path
    out: Path
    registry: Path | None = None
    compare: Path | None = None
    chunk: int = 200_000
    plots: int = 6
    quiet: bool = False


@dataclass
class Report:
    """One rule set's results as tables (times in epoch ms)."""

    label: str
    rules: list
    events: pd.DataFrame
    spans: pd.DataFrame
    incidents: pd.DataFrame
    summary: pd.DataFrame
    late: int


def run_backtest(opts: Options) -> int:
    """The whole command; returns the exit code. Raises SourceError/BacktestInputError."""
    from rich.console import Console

    from yujing.rules.loader import load_rules
    from yujing.stations import load_registry

    # A file or pipe gets wide lines rather than rich's 80-column default, so tables stay legible.
    out_console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    err_console = Console(stderr=True, highlight=False)
    sets = [(str(opts.rules), load_rules(opts.rules))]
    if opts.compare is not None:
        sets.append((str(opts.compare), load_rules(opts.compare)))
    registry = load_registry(opts.registry)
    if opts.registry is not None:
        for label, _ in sets:
            _note_references(err_console, Path(label), registry)

    with _progress(err_console, opts.quiet) as progress:
        task = progress.add_task(f"reading {opts.data.name}", total=None)
        data = read_readings(opts.data, lambda n: progress.advance(task, n))
        progress.update(task, total=len(data), completed=len(data))
        task = progress.add_task("replaying", total=len(data) * len(sets))
        t0 = time.perf_counter()
        results = replay([Pipeline(rules, registry) for _, rules in sets], data, opts.chunk,
                         lambda n: progress.advance(task, n * len(sets)))
        engine_s = time.perf_counter() - t0

    end_ms = int(data.ts[-1])
    reports = [_report(label, rules, registry, res, end_ms)
               for (label, rules), res in zip(sets, results)]
    opts.out.mkdir(parents=True, exist_ok=True)
    written = _write(reports[0], opts.out, data.tz)
    _print_summary(out_console, reports[0], data.tz)
    written += _plots(reports[0], data, registry, opts.out, opts.plots)
    written += _lead_times(out_console, reports[0], results[0], data, opts.out)
    if len(reports) == 2:
        written += _write(reports[1], opts.out / "compare", data.tz)
        cmp = stats.compare(reports[0].incidents, reports[1].incidents)
        path = opts.out / "compare.csv"
        _iso_columns(cmp, ["a_start", "b_start", "a_end", "b_end"], data.tz).to_csv(path,
                                                                                   index=False)
        written.append(path)
        _print_compare(out_console, cmp, reports[0].label, reports[1].label, data.tz)
    late = sum(r.late for r in reports)
    out_console.print(
        f"{len(data):,} readings of {len(data.stations):,} stations, "
        f"{_iso(int(data.ts[0]), data.tz)} .. {_iso(end_ms, data.tz)}; engine "
        f"{engine_s:.1f} s ({len(data) * len(sets) / max(engine_s, 1e-9):,.0f} readings/s)"
        + (f"; {late} late readings rejected" if late else ""))
    out_console.print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _lead_times(console, rep: Report, res: Replay, data: Readings, out: Path) -> list[Path]:
    """Projection and forecast warnings (eta, project, sum_ahead, max_ahead, past + ahead):
    minutes gained before the crossing they foresaw, and false alarms; printed, written to
    lead_time.csv and drawn in plots/lead_time.png."""
    from rich.table import Table

    from yujing.backtest import plots as bp

    rows = leadtime.lead_times(res.events, data)
    if rows.empty:
        return []
    summ = leadtime.summary(rows)
    t = Table(title=f"Lead time of projection and forecast warnings in {rep.label} (minutes from the warning "
                    f"to the observed crossing; false alarm: none within the horizon + "
                    f"{leadtime.SLACK_MS // 60_000} min)")
    for col in ("rule", "warnings", "crossed", "false alarms", "undecided", "median",
                "p25", "p75", "min", "max"):
        t.add_column(col, justify="left" if col == "rule" else "right")
    for r in summ.itertuples(index=False):
        q = [r.lead_median_min, r.lead_p25_min, r.lead_p75_min, r.lead_min_min, r.lead_max_min]
        t.add_row(r.rule, str(r.warnings), str(r.crossed), str(r.false_alarms), str(r.undecided),
                  *["-" if pd.isna(x) else f"{x:.0f}" for x in q])
    console.print(t)
    path = out / "lead_time.csv"
    _iso_columns(rows, ["raised_ms", "crossed_ms"], data.tz).rename(
        columns={"raised_ms": "raised", "crossed_ms": "crossed"}).to_csv(path, index=False)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    plot = bp.plot_lead_times(out / "plots" / "lead_time.png", rows,
                              f"Lead time of projection warnings: {rep.label}")
    return [path, plot]


def _note_references(console, rules_dir: Path, registry: Registry) -> None:
    """Say where a rule cannot fire for want of a registry field: not an error (a backtest
    over part of the city is fine), but a silent rule would read as "no warnings"."""
    try:
        from yujing.rules.loader import check_references, load_rules_located
    except ImportError:  # an engine without the check
        return
    problems = check_references(load_rules_located(rules_dir), registry)
    for p in problems[:5]:
        console.print(f"note: {p}", markup=False)
    if len(problems) > 5:
        console.print(f"note: ... and {len(problems) - 5} more (yujing rules check "
                      f"{rules_dir} --registry FILE lists them)", markup=False)


def _progress(console, quiet: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, disable=quiet or not console.is_terminal)


def _report(label: str, rules: list, registry: Registry, res: Replay, end_ms: int) -> Report:
    ev = stats.events_frame(res.events)
    spans = stats.periods(ev, end_ms)
    inc = stats.incidents(spans, ev)
    return Report(label, rules, ev, spans, inc,
                  stats.summary(spans, inc, rule_names(rules, registry)), res.late)


def _iso(ms: int | None, tz: tzinfo) -> str:
    if ms is None or pd.isna(ms):
        return ""
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").tz_convert(tz).isoformat()


def _iso_columns(df: pd.DataFrame, cols: list[str], tz: tzinfo) -> pd.DataFrame:
    df = df.copy()
    for c in cols:
        df[c] = [_iso(v, tz) for v in df[c]]
    return df


def _grade(g: object) -> str:
    from yujing.domain import GRADE_NAMES
    return GRADE_NAMES[int(g) - 1] if pd.notna(g) and int(g) > 0 else ""


def _write(rep: Report, folder: Path, tz: tzinfo) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ev = rep.events
    tr = pd.DataFrame({"ts": [_iso(t, tz) for t in ev["ts"]], "station": ev["station"],
                       "rule": ev["rule"], "kind": ev["kind"],
                       "grade": [_grade(g) for g in ev["grade"]],
                       "previous": [_grade(g) for g in ev["previous"]], "value": ev["value"],
                       "window": ev["window"], "reason_zh": ev["reason_zh"],
                       "reason_en": ev["reason_en"], "reason": ev["reason"],
                       "incident": ev["incident"]})
    paths = [folder / "transitions.csv", folder / "summary.csv"]
    tr.to_csv(paths[0], index=False)
    ms_cols = [c for c in rep.summary.columns if c.endswith("_ms")]
    summ = _iso_columns(rep.summary, ms_cols, tz).rename(
        columns={c: c.removesuffix("_ms") for c in ms_cols})
    summ.to_csv(paths[1], index=False)
    return paths


def _print_summary(console, rep: Report, tz: tzinfo) -> None:
    from rich.table import Table
    t = Table(title=f"Backtest of {rep.label}: warnings per rule (incidents by peak grade)")
    for col, kw in (("rule", {}), ("incidents", {"justify": "right"}),
                    ("stations", {"justify": "right"}), ("blue", {"justify": "right"}),
                    ("yellow", {"justify": "right"}), ("orange", {"justify": "right"}),
                    ("red", {"justify": "right"}), ("hours in warning", {"justify": "right"}),
                    ("first alert", {})):
        t.add_column(col, **kw)
    for r in rep.summary.itertuples(index=False):
        first = f"{_iso(r.first_alert_ms, tz)} {r.first_alert_station}".strip()
        t.add_row(r.rule, str(r.incidents), str(r.stations), str(r.peak_blue),
                  str(r.peak_yellow), str(r.peak_orange), str(r.peak_red),
                  f"{r.hours_in_warning:,.1f}", first or "-")
    console.print(t)
    for r in rep.summary.itertuples(index=False):  # the first alert's reason, in words, unwrapped
        if r.first_alert_reason_zh:
            console.print(f"{r.rule} 首次预警依据：{r.first_alert_reason_zh}", soft_wrap=True,
                          markup=False)


def _print_compare(console, cmp: pd.DataFrame, a: str, b: str, tz: tzinfo) -> None:
    from rich.table import Table
    counts = stats.compare_counts(cmp)
    t = Table(title=f"A = {a}, B = {b}: warnings added (B only), lost (A only), shifted "
                    "(first alert moved; < 0 = B earlier)")
    for col in ("rule", "added", "lost", "shifted", "same", "median shift (min)"):
        t.add_column(col, justify="left" if col == "rule" else "right")
    for r in counts.itertuples(index=False):
        med = "" if r.median_shift_min is None or pd.isna(r.median_shift_min) \
            else f"{r.median_shift_min:+.0f}"
        t.add_row(r.rule, str(r.added), str(r.lost), str(r.shifted), str(r.same), med)
    console.print(t)
    changed = cmp[cmp["change"] != "same"].head(15)
    if len(changed):
        d = Table(title="First changes (all in compare.csv)")
        for col in ("change", "rule", "station", "A first alert", "B first alert", "shift"):
            d.add_column(col)
        for r in changed.itertuples(index=False):
            shift = "" if pd.isna(r.shift_min) else f"{r.shift_min:+.0f} min"
            d.add_row(r.change, r.rule, r.station, _iso(r.a_start, tz), _iso(r.b_start, tz),
                      shift)
        console.print(d)


def _plots(rep: Report, data: Readings, registry: Registry, out: Path, n: int) -> list[Path]:
    """PNG per most-warned station: its series, thresholds and warning periods."""
    from yujing.backtest import plots as bp

    stations = stats.most_warned(rep.incidents, rep.spans, n)
    if not stations:
        return []
    folder = out / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    rules = {r.id: r for r in rep.rules}
    code = {s: i for i, s in enumerate(data.stations)}
    paths = []
    for station in stations:
        series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if station in code:
            mask = data.si == code[station]
            mi, ts, val = data.mi[mask], data.ts[mask], data.val[mask]
            for m in np.unique(mi).tolist():
                sel = mi == m
                series[data.metrics[m]] = (ts[sel], val[sel])
        panels = []
        inc = rep.incidents[rep.incidents["station"] == station]
        for rule_id, ri in inc.groupby("rule", sort=True):
            spans = rep.spans[(rep.spans["station"] == station) & (rep.spans["rule"] == rule_id)]
            rule = rules.get(rule_id)
            ths = bp.thresholds(rule, registry.get(station)) if rule is not None else []
            metrics = sorted({th.metric for th in ths} | set(bp.metrics_of(rule))) \
                if rule is not None else []
            hours = float((spans["end"] - spans["start"]).sum()) / 3_600_000
            panels.append(bp.Panel(rule_id, f"{rule_id}: {len(ri)} warning(s), "
                                            f"{hours:.1f} h in warning", spans, ths, metrics))
        path = folder / f"{_safe(station)}.png"
        paths.append(bp.plot_station(path, station, f"{station}: backtest of {rep.label}",
                                     series, panels, data.tz))
    return paths


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
