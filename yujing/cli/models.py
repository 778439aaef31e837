"""``yujing models train|evaluate|list``: the command-line face of yujing.models.

Training and evaluation import pandas and the detectors' modules when they run
(about 0.25 s), not at the top: ``yujing --help`` and the other commands do not
need them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from yujing.cli.models_output import fmt, iso, print_tables
from yujing.models import ALL_KINDS, GROUP_KINDS, KINDS, STATION_KINDS
from yujing.models.errors import ModelError
from yujing.models.registry import ModelRegistry
from yujing.models.signing import ENV_KEY_FILE, NO_KEY_FIX, ModelKey, new_key_file, resolve_key
from yujing.stations import load_registry
from yujing.yamlsrc import SourceError

app = typer.Typer(help="Anomaly models: train (signed), evaluate against NAB, list the "
                         "registry, make a signing key.",
                         no_args_is_help=True)

DETECTOR_HELP = f"detector: {', '.join(sorted(KINDS))}"
TRAIN_DETECTOR_HELP = (f"detector: {', '.join(sorted(KINDS))} (one metric) or "
                       f"{', '.join(sorted(STATION_KINDS))} (a station model over --metrics) or "
                       f"{', '.join(sorted(GROUP_KINDS))} (a group of --stations, needs --far)")
KEY_HELP = (f"the model signing key (`yujing models keygen FILE`); default ${ENV_KEY_FILE}, "
            "then $YUJING_MODELS_KEY")


def _fail(msg: str, code: int = 2) -> NoReturn:
    typer.echo(msg, err=True)
    raise typer.Exit(code)


def _key(key_file: Path | None, command: str) -> ModelKey:
    """The signing key, or exit 2 naming the fix: no model is written or read unsigned."""
    try:
        key = resolve_key(key_file)
    except ModelError as exc:
        _fail(f"models {command}: {exc}")
    if key is None:
        _fail(f"models {command}: no model signing key: {NO_KEY_FIX}")
    return key


def _progress(quiet: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), disable=quiet, transient=False)


@app.command("train")
def train_cmd(
    data: Annotated[Path, typer.Option(help="readings CSV: ts,station,metric,value")],
    out: Annotated[Path, typer.Option(help="model registry folder (versions are added)")],
    metric: Annotated[str | None, typer.Option(
        help="the metric to model, e.g. water_level_m (one-metric detectors)")] = None,
    detector: Annotated[str, typer.Option(help=TRAIN_DETECTOR_HELP)] = "iforest",
    metrics: Annotated[str | None, typer.Option(
        help="station models: the station's metrics, comma-separated (default: every metric "
             "in the data)")] = None,
    stations: Annotated[str | None, typer.Option(
        help="group models (neighbours, sensor-faults): the group's stations, comma-separated "
             "(default: every station in "
             "the data); scoring needs the readings of all of them")] = None,
    far: Annotated[float | None, typer.Option(
        help="target false-alarm rate, e.g. 0.001: fit on the first 70 percent of the range, set "
             "the alarm threshold on the rest (stored, signed, in meta.json)")] = None,
    series: Annotated[int, typer.Option(
        min=1, help="with --far: the number of series a station alarms on (Sidak "
                    "correction; e.g. 4 per-metric models combined by any sensor)")] = 1,
    name: Annotated[str | None, typer.Option(
        help="model name in the registry (default: <metric>-<detector>)")] = None,
    per: Annotated[str, typer.Option(help="station: parameters per station; group: per "
                                          "registry group (--registry, --group-field)")] = "station",
    registry: Annotated[Path | None, typer.Option(help="station registry (for --per group)")] = None,
    group_field: Annotated[str, typer.Option(help="registry field that groups stations")] = "town",
    exclude: Annotated[Path | None, typer.Option(
        help="hazard periods not to learn from: station,start,end CSV or a backtest "
             "transitions.csv")] = None,
    include_hazards: Annotated[bool, typer.Option(
        help="learn from the --exclude periods anyway")] = False,
    seed: Annotated[int, typer.Option(help="random seed (IsolationForest)")] = 0,
    key_file: Annotated[Path | None, typer.Option(help=KEY_HELP)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Train one detector on a readings CSV and add it to the registry as a new version,
    signed with the key workers check (worker.models_key_file)."""
    # lazy: pandas and the detectors (see the module's docstring)
    from yujing.models.train import exclusion_periods, train

    if detector not in ALL_KINDS and detector not in GROUP_KINDS:
        _fail(f"models train: unknown detector {detector!r}: choose one of "
              f"{', '.join(sorted([*ALL_KINDS, *GROUP_KINDS]))}")
    if per not in ("station", "group"):
        _fail(f"models train: --per {per!r}: use station or group")
    station_model = detector in STATION_KINDS or detector in GROUP_KINDS
    if not station_model and (not metric or metrics):
        _fail(f"models train: {detector} models one metric: pass --metric, e.g. water_level_m "
              f"(--metrics is for the station models {', '.join(sorted(STATION_KINDS))})")
    hyper = {"metrics": [m.strip() for m in metrics.split(",") if m.strip()]} if metrics else {}
    if stations:
        if detector not in GROUP_KINDS:
            _fail(f"models train: --stations is for the group models {', '.join(GROUP_KINDS)}")
        hyper["stations"] = [s.strip() for s in stations.split(",") if s.strip()]
    what = ("group" if detector in GROUP_KINDS else "station" if station_model
            else str(metric).replace("_", "-"))
    name = name or f"{what}-{detector}"
    key = _key(key_file, "train")
    with _progress(quiet) as bar:
        frame = _read_frame(data, bar, "train")
        groups = _groups(registry, group_field) if per == "group" else None
        try:
            periods = exclusion_periods(exclude) if exclude else None
            fit_task = bar.add_task(f"fitting {detector} on {metric or 'the station'}", total=1)
            result = train(frame, metric, detector, seed, groups, periods, include_hazards,
                           hyper, far, series)
            bar.advance(fit_task)
            version = ModelRegistry(out, key).publish(name, result.model, {
                "data": str(data), "exclusions": str(exclude) if exclude else None})
        except ModelError as exc:
            _fail(f"models train: {exc}")
    t = result.model.meta["training"]
    on = "+".join(result.model.metrics) if station_model else metric
    typer.echo(f"{name} version {version.name}: {detector} on {on}, {t['rows']} "
               f"{'rows' if station_model else 'readings'} of {t['series']} stations "
               f"({t['keys']} {per} keys), {result.excluded} readings in hazard periods "
               f"{'kept' if include_hazards else 'left out'} → {version}")
    cal = result.model.meta.get("alarm")
    if cal:
        typer.echo(f"alarm threshold {cal['threshold']:.6g} for a false-alarm rate of {far:g} "
                   f"({cal['per_series_far']:.3g} per series over {series}), set on "
                   f"{cal['calibration_scores']} held-out scores"
                   + ("" if cal["enough_scores"] else ": too few for this rate, no score "
                      "alarms; give a longer history or a larger --far"))


def _read_frame(data: Path, bar: Progress, command: str):
    """A readings CSV as a frame (ts ms, station, metric, value), or exit 2 naming the fix."""
    # lazy: pandas (see the module's docstring)
    import pandas as pd

    from yujing.readings_csv import BacktestInputError, read_readings

    task = bar.add_task(f"reading {data.name}", total=None)
    try:
        r = read_readings(data, on_rows=lambda n: bar.advance(task, n))
    except BacktestInputError as exc:
        _fail(f"models {command}: {exc}")
    bar.update(task, total=len(r), completed=len(r))
    return pd.DataFrame({"ts": r.ts, "station": pd.Categorical.from_codes(r.si, r.stations),
                         "metric": pd.Categorical.from_codes(r.mi, r.metrics), "value": r.val})


def _groups(registry: Path | None, group_field: str) -> dict[str, str]:
    """Station → its group (the registry's ``group_field``) for ``--per group``."""
    if registry is None:
        _fail("models train: --per group needs --registry stations.yaml (and "
              "--group-field, default town)")
    try:
        reg = load_registry(registry)
    except SourceError as exc:
        _fail(str(exc))
    groups = {sid: str(getattr(st, group_field, "") or "") for sid, st in reg.stations.items()}
    groups = {k: v for k, v in groups.items() if v}
    if not groups:
        _fail(f"models train: no station in {registry} has a {group_field!r}: choose "
              "another --group-field")
    return groups


@app.command("evaluate")
def evaluate_cmd(
    data: Annotated[Path, typer.Option(help="NAB-format corpus folder (timestamp,value CSVs); "
                                            "with --model a readings CSV")],
    labels: Annotated[Path, typer.Option(help="windows JSON (NAB labels/combined_windows.json); "
                                              "with --model a labels CSV: points "
                                              "ts,station[,metric],label or windows "
                                              "start,end,station[,metric]")],
    model: Annotated[str | None, typer.Option(
        help="judge this trained model's calibrated alarms on --data (a readings CSV) "
             "against --labels (CSV) instead of running detectors on NAB")] = None,
    models: Annotated[Path | None, typer.Option(help="with --model: the model registry "
                                                      "folder")] = None,
    key_file: Annotated[Path | None, typer.Option(help=KEY_HELP)] = None,
    detector: Annotated[list[str], typer.Option(
        help=f"{DETECTOR_HELP} (repeatable; default all); with two or more single detectors "
             "the row max(...) of their scores is added")] = [],  # noqa: B006 - typer reads the default, never mutates it
    record: Annotated[int, typer.Option(
        help="alarm-style scores: keep a score only when it beats the previous N readings "
             "(0 = plain scores); for the ensemble, the memory of its members' filters")] = 1000,
    record_floor: Annotated[float, typer.Option(
        help="with --record: the least unusualness (1 = score 0.5) that can alarm (single "
             "detectors; the ensemble keeps its own floors: baseline 2, spike 2, "
             "iforest 1)")] = 2.0,
    record_fading: Annotated[bool, typer.Option(
        help="with --record: a fading record (N is its e-folding age in readings) instead "
             "of a window of N readings (single detectors; bench/README.md 'nab3')")] = False,
    refit_every: Annotated[int, typer.Option(
        help="retrain the baseline and the ensemble on all past rows every N rows "
             "(0 = never)")] = 1000,
    chunk: Annotated[int, typer.Option(min=1, help="readings per streamed envelope")] = 500,
    only: Annotated[list[str] | None, typer.Option(help="only files whose path contains this")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    out: Annotated[Path | None, typer.Option(help="write every row (file, category, total) "
                                                     "as CSV here")] = None,
    files: Annotated[bool, typer.Option(help="print the per-file table too")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Score detectors in streaming order against labelled windows: NAB scores, P/R/F1.
    With --model: a trained model's alarms on a readings CSV against a labels CSV."""
    # lazy: pandas and the detectors (see the module's docstring)
    import pandas as pd

    from yujing.models import evaluate as ev

    if model:
        _evaluate_model(model, models, data, labels, key_file, out, quiet)
        return

    kinds = list(detector) or sorted(KINDS)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        _fail(f"models evaluate: unknown detector {bad[0]!r}: choose from {', '.join(sorted(KINDS))}")
    try:
        corpus = ev.load_corpus(data, labels, only)
    except ModelError as exc:
        _fail(f"models evaluate: {exc}")
    scores: dict[str, dict] = {}
    with _progress(quiet) as bar:
        for kind in kinds:
            task = bar.add_task(f"{kind}", total=len(corpus))
            scores.update(ev.run(corpus, [kind], chunk, refit_every, seed, record=record,
                                 record_floor=record_floor, record_fading=record_fading,
                                 on_file=lambda k, f, t=task: bar.advance(t)))
    reports = [ev.evaluate(corpus, scores[k], k) for k in kinds]
    singles = [k for k in kinds if k != "ensemble"]
    if len(singles) > 1:
        reports.append(ev.evaluate(corpus, ev.combine(scores, singles),
                                   "max(" + ",".join(singles) + ")"))
    rows = [row for rep in reports for row in rep.rows(corpus)]
    print_tables(rows, corpus, files,
                  f"record={record}{' fading' if record_fading else ''}, "
                  f"record_floor={record_floor:g}, refit_every={refit_every}")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(out, index=False)
        typer.echo(f"wrote {out}")


def _load_model(name: str, models: Path | None, key_file: Path | None, command: str):
    if models is None:
        _fail(f"models {command}: --model {name} needs --models, the registry folder")
    try:
        return ModelRegistry(models, _key(key_file, command)).load_latest(name)
    except ModelError as exc:
        _fail(f"models {command}: {exc}")


def _score(name: str, models: Path | None, data: Path, key_file: Path | None, quiet: bool,
           command: str):
    # lazy: pandas and the detectors (see the module's docstring)
    from yujing.models.labelled import score_readings

    det = _load_model(name, models, key_file, command)
    with _progress(quiet) as bar:
        frame = _read_frame(data, bar, command)
        task = bar.add_task(f"scoring with {name}", total=1)
        try:
            scored = score_readings(det, frame)
        except ModelError as exc:
            _fail(f"models {command}: {exc}")
        bar.advance(task)
    return det, scored


def _evaluate_model(name: str, models: Path | None, data: Path, labels: Path,
                    key_file: Path | None, out: Path | None, quiet: bool) -> None:
    """F1, false- and missed-alarm rates, AUC and NAB of a model's calibrated alarms."""
    # lazy: pandas and the detectors (see the module's docstring)
    import pandas as pd

    from yujing.models.labelled import judge, read_labels

    det, scored = _score(name, models, data, key_file, quiet, "evaluate")
    try:
        result = judge(scored, read_labels(labels)).as_dict()
    except ModelError as exc:
        _fail(f"models evaluate: {exc}")
    cal = det.meta.get("alarm") or {}
    t = Table(title=f"{name} ({det.kind}) on {data.name}: alarms at threshold "
                    f"{cal.get('threshold', float('nan')):.4g} (target false-alarm rate "
                    f"{cal.get('far')}, set on training data)")
    t.add_column("measure")
    t.add_column("value", justify="right")
    for k, v in result.items():
        t.add_row(k.replace("_", " "), str(v) if isinstance(v, int) else fmt(v, 4))
    Console(width=max(Console().width, 100)).print(t)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame([dict(model=name, kind=det.kind, **result)]).to_csv(out, index=False)
        typer.echo(f"wrote {out}")


@app.command("list")
def list_cmd(registry: Annotated[Path, typer.Argument(help="model registry folder")]) -> None:
    """Models in a registry with their newest version, detector, metric and training range
    (as their metadata says: `list` checks no signature; workers do)."""
    reg = ModelRegistry(registry, None)
    names = reg.names()
    if not names:
        _fail(f"{registry}: no models (train one with `yujing models train`)", 1)
    for n in names:
        meta = reg.meta(n)
        tr = meta.get("training", {})
        typer.echo(f"{n}\tv{reg.latest_version(n)} ({len(reg.versions(n))} versions)\t"
                   f"{meta.get('kind')}\t{'+'.join(meta.get('metrics') or [str(meta.get('metric'))])}\t"
                   f"{tr.get('rows')} rows\t"
                   f"schema {meta.get('schema', {}).get('hash')}\t"
                   f"{'signed' if 'signature' in meta else 'UNSIGNED: retrain'}")


@app.command("keygen")
def keygen_cmd(file: Annotated[Path, typer.Argument(help="the key file to create (mode 0600)")]
               ) -> None:
    """Create a model signing key: `models train --key-file` signs with it, workers
    (worker.models_key_file) load only models signed with it. Keep it out of the registry."""
    try:
        key = new_key_file(file)
    except ModelError as exc:
        _fail(f"models keygen: {exc}")
    typer.echo(f"wrote a new model signing key to {file} (mode 0600, key id {key.id}); "
               f"point worker.models_key_file and `models train --key-file` at it")


@app.command("score")
def score_cmd(
    model: Annotated[str, typer.Option(help="model name in the registry")],
    models: Annotated[Path, typer.Option(help="the model registry folder")],
    data: Annotated[Path, typer.Option(help="readings CSV: ts,station,metric,value")],
    out: Annotated[Path, typer.Option(help="scores CSV to write: ts,station,metric,score,alarm")],
    key_file: Annotated[Path | None, typer.Option(help=KEY_HELP)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Score a readings CSV with a trained model in streaming order: one row per reading of
    its metric (a station model: per station row, metric a+b+c), with the calibrated alarm."""
    det, scored = _score(model, models, data, key_file, quiet, "score")
    scored = scored.assign(ts=iso(scored["ts"]))
    if "alarm" not in scored:
        scored["alarm"] = ""  # not calibrated: train with --far for alarms
    out.parent.mkdir(parents=True, exist_ok=True)
    scored[["ts", "station", "metric", "score", "alarm"]].to_csv(out, index=False)
    n = int((scored["alarm"] == True).sum())  # noqa: E712 - the column may be text ("")
    typer.echo(f"wrote {out}: {len(scored)} scores, {n} alarms"
               + ("" if det.meta.get("alarm") else
                  " (the model has no alarm threshold: train it with --far)"))


__all__ = ["app"]
