"""``yujing report``: the period report per town or enterprise, as CSV (or a table).

It reads the book's incidents from ``yujing.incidents`` (the snapshots the console
reads too) and the station registry (``town:``, ``enterprise:``); the counting is
``alerts/period_report.py``'s. Times are local times in the config's time zone.
"""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from yujing import clock
from yujing.alerts import period_report as pr
from yujing.cli.common import ConfigOpt, bootstrap_of, load
from yujing.stations import load_registry
from yujing.yamlsrc import SourceError


def parse_local(text: str, zone: ZoneInfo, option: str, end: bool = False) -> int:
    """A local date or time (``2026-12-01``, ``2026-12-01 08:00``) or an ISO time with an
    offset, as epoch ms; exit 2 with an example when it is neither. A date alone as the
    ``end`` of a period means the end of that day (the console's report page reads it so)."""
    try:
        dt = datetime.fromisoformat(text)
        if end and len(text.strip()) == 10:
            dt += timedelta(days=1)
    except ValueError:
        typer.echo(f"{option} {text!r}: write e.g. 2026-12-01 or '2026-12-01 08:00' "
                   f"({zone.key}) or an ISO time with an offset", err=True)
        raise typer.Exit(2) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)
    return int(dt.timestamp() * 1000)


def report(
        from_: Annotated[str | None, typer.Option("--from", help="start, local (default: a day "
                                                  "before --to)")] = None,
        to: Annotated[str | None, typer.Option("--to", help="end, local: a date is included, a time "
                                               "excluded (default: now)")] = None,
        by: Annotated[str, typer.Option("--by", help="town or enterprise")] = "town",
        out: Annotated[Path | None, typer.Option("--out", "-o", help="CSV file (default: stdout)")] = None,
        lang: Annotated[str, typer.Option("--lang", help="column headers: zh or en")] = "zh",
        config: ConfigOpt = None,
        kafka_bootstrap: Annotated[str | None, typer.Option(help="overrides kafka.bootstrap")] = None,
        timeout: Annotated[float, typer.Option(help="seconds to read the incidents")] = 60.0,
) -> None:
    """Warnings per town or enterprise over a period: by grade, time to acknowledge and to
    clear (median, p90), reports missing, people transferred and withdrawn."""
    # lazy: aiokafka takes about 50 ms to import, which --help and the other commands skip
    from yujing.connectors.snapshots import read_all

    if by not in pr.UNIT_HEADERS or lang not in ("zh", "en"):
        typer.echo(f"--by {by!r} --lang {lang!r}: --by town|enterprise, --lang zh|en", err=True)
        raise typer.Exit(2)
    cfg = load(config)
    logging.getLogger().setLevel(logging.WARNING)
    zone = ZoneInfo(cfg.timezone)
    to_ms = parse_local(to, zone, "--to", end=True) if to else clock.now_ms()
    from_ms = (parse_local(from_, zone, "--from") if from_
               else to_ms - int(timedelta(days=1).total_seconds() * 1000))
    if from_ms >= to_ms:
        typer.echo("--from must be before --to", err=True)
        raise typer.Exit(2)
    try:
        registry = load_registry(cfg.worker.registry) if cfg.worker.registry else None
    except SourceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    bootstrap = bootstrap_of(cfg, kafka_bootstrap, "report", " (yujing run prints it: 'ready kafka=…')")
    topic = cfg.kafka.topics.incidents
    try:
        records = asyncio.run(read_all(bootstrap, topic, timeout, cfg.kafka.security))
    except Exception as exc:
        typer.echo(f"report: cannot read {topic} from {bootstrap}: {exc}", err=True)
        raise typer.Exit(1) from None
    station_of = registry.get if registry is not None else (lambda sid: None)
    rows = pr.aggregate(pr.incidents_of(records).values(), pr.unit_of(by, station_of), from_ms,
                        to_ms, cfg.alerts.reports)
    why = pr.incomplete(from_ms, clock.now_ms(), cfg.alerts.retention)
    if why:
        typer.echo(f"{why.zh} / {why.en}", err=True)
    buf = io.StringIO()
    pr.write_csv(rows, by, lang, buf)
    if out is None:
        typer.echo(buf.getvalue(), nl=False)
    else:
        out.write_text(buf.getvalue(), encoding="utf-8-sig")   # with a BOM: Excel reads it as UTF-8
        typer.echo(f"{len(rows) - 1} {by} rows and a total: {out}", err=True)
