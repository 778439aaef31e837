"""``yujing backtest``: replay a readings CSV through the worker's own Pipeline.

Analysts change a rule and want to know what it would have done to history
before it goes live. The answer is only worth having if the replay runs the
same code as the worker, so this module feeds ``Pipeline.handle`` with the
same dictionary-encoded ``Columns`` an envelope decodes to, in event-time
order, and runs the no-data check on the event-time clock between chunks.
Everything here is I/O around that: reading the CSV, writing transitions,
summary, comparison and plots, printing tables. The reductions are in
``backtest_stats`` and the drawing in ``backtest_plots``.

Bad rows stop the run with every bad line listed (up to a limit) rather than
being skipped: a dropped row is a gap, and gaps raise no-data warnings, so a
silently cleaned file would give a different answer from the one asked for.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timezone, tzinfo
from pathlib import Path

import numpy as np
import pandas as pd

from .domain import WarningEvent
from .envelope import Columns
from .pipeline import Pipeline
from .registry import Registry
from . import backtest_stats as stats

COLUMNS = ("ts", "station", "metric", "value")
READ_BLOCK = 1_000_000  # CSV rows parsed at once: bounds the transient string memory
MAX_LISTED = 10  # bad rows named in one error
_OFFSET = re.compile(r"(?:Z|[+-]\d\d(?::?\d\d)?)$")
_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


class BacktestInputError(Exception):
    """A readings file the backtest cannot use; the message names file, line and fix."""


@dataclass
class Readings:
    """A readings file as dictionary-encoded columns, sorted by event time (stable)."""

    stations: list[str]
    metrics: list[str]
    si: np.ndarray  # uint32
    mi: np.ndarray  # uint32
    ts: np.ndarray  # int64 epoch ms, UTC
    val: np.ndarray  # float64
    tz: tzinfo = timezone.utc  # offset of the file's timestamps, for output

    def __len__(self) -> int:
        return int(self.ts.size)

    def chunks(self, size: int) -> Iterator[Columns]:
        """Envelope-shaped slices (views) of at most ``size`` readings, in event-time order."""
        for a in range(0, len(self), size):
            b = a + size
            yield Columns(0, 0, self.stations, self.metrics, self.si[a:b], self.mi[a:b],
                          self.ts[a:b], self.val[a:b])


# ------------------------------------------------------------------- reading the CSV

def read_readings(path: Path, on_rows: Callable[[int], None] | None = None) -> Readings:
    """Parse a ``ts,station,metric,value`` CSV (DESIGN's readings format) into sorted columns.

    Fast path: pandas' C parser with dtype hints (stations and metrics straight to
    categoricals, values to float64) and vectorised ISO 8601 parsing, in blocks.
    On any problem, a second, slower pass reads the file as text to name every
    bad line; that pass only runs when the file is broken.
    """
    path = Path(path)
    if not path.is_file():
        raise BacktestInputError(f"{path}: file not found: pass a readings CSV with columns "
                                 "ts,station,metric,value")
    _check_header(path)
    parts: list[tuple[pd.Index, np.ndarray, pd.Index, np.ndarray, np.ndarray, np.ndarray]] = []
    tzs: set[str] = set()
    try:
        # No usecols: with it pandas drops a row's extra fields silently instead of failing.
        reader = pd.read_csv(path, index_col=False, engine="c",
                             encoding="utf-8-sig", skip_blank_lines=False, chunksize=READ_BLOCK,
                             dtype={"ts": "str", "station": "category", "metric": "category",
                                    "value": "float64"})
        with reader:
            for block in reader:
                block = block[list(COLUMNS)]
                ts, tz = _parse_ts(block["ts"])
                if ts is None or block.isna().to_numpy().any():
                    raise _Broken()
                tzs.add(tz)
                st, me = block["station"].cat, block["metric"].cat
                parts.append((st.categories, st.codes.to_numpy(), me.categories,
                              me.codes.to_numpy(), ts, block["value"].to_numpy(np.float64)))
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


def _check_header(path: Path) -> None:
    with open(path, encoding="utf-8-sig") as f:
        header = f.readline().strip()
    names = [h.strip() for h in header.split(",")]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise BacktestInputError(
            f"{path}:1: header {header!r} lacks {', '.join(missing)}: the first line must be "
            "ts,station,metric,value")


def _parse_ts(text: pd.Series) -> tuple[np.ndarray | None, str]:
    """Epoch ms and the offset's name, or None when some row needs a closer look."""
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
    order = np.argsort(ts, kind="stable")  # file order among equal times, as a gateway keeps it
    tz: tzinfo = timezone.utc
    if len(tzs) == 1:
        name = next(iter(tzs))
        tz = pd.Timestamp(0, tz=name).tzinfo if name != "UTC" else timezone.utc
    return Readings([str(s) for s in stations], [str(m) for m in metrics], si[order], mi[order],
                    ts[order], val[order], tz)


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
            "ts in ISO 8601 with a UTC offset (2025-06-01T08:00:00+08:00) and a numeric "
            "value:\n" + "\n".join(bad) + "\nFix or delete these rows and run again.")


def _row_problems(block: pd.DataFrame) -> list[tuple[int, str]]:
    """(row index in block, reason) for every bad row; vectorised per column."""
    text = {c: block[c].astype("str").str.strip() for c in COLUMNS}
    blank = np.logical_and.reduce([(text[c] == "").to_numpy() for c in COLUMNS])
    ts = pd.to_datetime(text["ts"], format="ISO8601", utc=True, errors="coerce")
    no_offset = ~text["ts"].str.contains(_OFFSET).to_numpy()
    value = pd.to_numeric(text["value"], errors="coerce")
    checks = [
        (blank, lambda i: "blank line: delete it"),
        ((text["ts"] == "").to_numpy(), lambda i: "ts is empty"),
        (ts.isna().to_numpy(), lambda i: f"ts {text['ts'].iloc[i]!r} is not an ISO 8601 time"),
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
        now = int(cols.ts[-1])
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

    from .registry import load_registry
    from .rules.loader import load_rules

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


def _note_references(console, rules_dir: Path, registry: Registry) -> None:  # noqa: ANN001
    """Say where a rule cannot fire for want of a registry field: not an error (a backtest
    over part of the city is fine), but a silent rule would read as "no warnings"."""
    try:
        from .rules.loader import check_references, load_rules_located
    except ImportError:  # an engine without the check
        return
    problems = check_references(load_rules_located(rules_dir), registry)
    for p in problems[:5]:
        console.print(f"note: {p}", markup=False)
    if len(problems) > 5:
        console.print(f"note: ... and {len(problems) - 5} more (yujing rules check "
                      f"{rules_dir} --registry FILE lists them)", markup=False)


def _progress(console, quiet: bool):  # noqa: ANN001, ANN202
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                               TextColumn, TimeElapsedColumn, TimeRemainingColumn)
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
    from .domain import GRADE_NAMES
    return GRADE_NAMES[int(g) - 1] if pd.notna(g) and int(g) > 0 else ""


def _write(rep: Report, folder: Path, tz: tzinfo) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ev = rep.events
    tr = pd.DataFrame({"ts": [_iso(t, tz) for t in ev["ts"]], "station": ev["station"],
                       "rule": ev["rule"], "kind": ev["kind"],
                       "grade": [_grade(g) for g in ev["grade"]],
                       "previous": [_grade(g) for g in ev["previous"]], "value": ev["value"],
                       "window": ev["window"], "reason": ev["reason"],
                       "incident": ev["incident"]})
    paths = [folder / "transitions.csv", folder / "summary.csv"]
    tr.to_csv(paths[0], index=False)
    ms_cols = [c for c in rep.summary.columns if c.endswith("_ms")]
    summ = _iso_columns(rep.summary, ms_cols, tz).rename(
        columns={c: c.removesuffix("_ms") for c in ms_cols})
    summ.to_csv(paths[1], index=False)
    return paths


def _print_summary(console, rep: Report, tz: tzinfo) -> None:  # noqa: ANN001
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


def _print_compare(console, cmp: pd.DataFrame, a: str, b: str, tz: tzinfo) -> None:  # noqa: ANN001
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
    from . import backtest_plots as bp

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
