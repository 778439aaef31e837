"""``yujing backtest``: replay a readings CSV through the rules, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from yujing.yamlsrc import SourceError


def backtest(
    rules: Annotated[Path, typer.Option(help="folder of *.yaml rule files (rule set A)")],
    data: Annotated[Path, typer.Option(help="readings CSV: ts,station,metric,value")],
    out: Annotated[Path, typer.Option(help="folder for transitions.csv, summary.csv, plots/")],
    registry: Annotated[Path | None, typer.Option(help="station registry (no-data checks, "
                                                          "thresholds, names)")] = None,
    compare: Annotated[Path | None, typer.Option(help="rule set B: report warnings added, "
                                                         "lost and shifted against A")] = None,
    chunk_readings: Annotated[int, typer.Option(min=1, help="readings per replayed chunk")] = 200_000,
    plots: Annotated[int, typer.Option(min=0, help="plot this many most-warned stations")] = 6,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Replay a readings CSV through the worker's rules: transitions, summary, plots, compare."""
    # lazy: the replay loads pandas and matplotlib (about 0.3 s), which no other command needs
    from yujing.backtest.replay import Options, run_backtest
    from yujing.readings_csv import BacktestInputError
    try:
        code = run_backtest(Options(rules, data, out, registry, compare, chunk_readings, plots,
                                    quiet))
    except (SourceError, BacktestInputError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)
