"""How ``yujing models`` prints: the NAB tables, ISO timestamps, numbers with "-" for none.

Kept apart from the commands in yujing/cli/models.py so that module stays about the
commands; pandas is imported when a function runs (see that module's docstring).
"""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table


def print_tables(rows: list[dict], corpus: list, files: bool, settings: str) -> None:
    """The totals per detector and profile, the standard profile per category, and (with
    ``--files``) per file."""
    console = Console(width=max(Console().width, 120))
    t = Table(title=f"NAB scores ({len(corpus)} files, {sum(len(s.windows) for s in corpus)} "
                    f"windows; {settings})")
    for col in ("detector", "profile", "NAB", "threshold", "found", "false alarms",
                "precision", "recall", "F1"):
        t.add_column(col, justify="left" if col in ("detector", "profile") else "right")
    for row in rows:
        if row["level"] != "total":
            continue
        t.add_row(row["detector"], row["profile"], fmt(row["normalised"], 1),
                  fmt(row["threshold"], 4), f"{row['found']}/{row['windows']}",
                  str(row["false_alarms"]), fmt(row["precision"], 2), fmt(row["recall"], 2),
                  fmt(row["f1"], 2))
    console.print(t)
    cats = Table(title="standard profile per category (NAB normalised; window F1)")
    cats.add_column("detector")
    cats.add_column("category")
    cats.add_column("NAB", justify="right")
    cats.add_column("F1", justify="right")
    for row in rows:
        if row["level"] == "category" and row["profile"] == "standard":
            cats.add_row(row["detector"], row["name"], fmt(row["normalised"], 1), fmt(row["f1"], 2))
    console.print(cats)
    if files:
        ft = Table(title="standard profile per file (raw NAB score at the corpus threshold)")
        for col in ("detector", "file", "raw", "found", "false alarms"):
            ft.add_column(col)
        for row in rows:
            if row["level"] == "file" and row["profile"] == "standard":
                ft.add_row(row["detector"], row["name"], fmt(row["raw"], 2),
                           f"{row['found']}/{row['windows']}", str(row["false_alarms"]))
        console.print(ft)


def iso(ts):
    # lazy: pandas (see the module's docstring)
    import pandas as pd

    return pd.to_datetime(ts, unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"


def fmt(x: float, digits: int) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


__all__ = ["fmt", "iso", "print_tables"]
