"""A group model (neighbours) in the worker: rows closed in time order as the group's
readings come in (models/group_stream.py), anomaly() in rules, the checkpoint, and the
partition key that puts a group's stations in one worker."""

from __future__ import annotations

import msgspec
import numpy as np
import pandas as pd
import pytest

from yujing.connectors.kafka import by_partition
from yujing.domain import Reading
from yujing.envelope import partition_for
from yujing.models import ModelKey
from yujing.models.group_stream import GroupScorer
from yujing.models.registry import ModelRegistry
from yujing.models.stream import StreamScorer
from yujing.models.train import train
from yujing.rules.engine import Engine
from yujing.rules.schema import Rule
from yujing.stations import Registry, Station
from yujing.yamlsrc import SourceError, parse_yaml

from .test_model_group import HOUR, STATIONS, readings

KEY = ModelKey.from_text("group-stream-key-" + "0" * 32, "test")
T0 = 1_735_660_800_000  # 2025-01-01T00:00:00Z: the probe's hour 0 (the engine keys times from 2000)


def at(hour: int) -> int:
    return T0 + hour * HOUR


FAULT = (at(4800), at(4847))  # station b's TEMP two days 6 degrees high


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A signed neighbours model (loaded from the registry, so it has a sha256)."""
    reg = ModelRegistry(tmp_path_factory.mktemp("models"), KEY)
    reg.publish("nb", train(readings(4000, 1), None, "neighbours", far=0.01).model)
    return reg.load_latest("nb")


@pytest.fixture(scope="module")
def probe() -> pd.DataFrame:
    new = readings(400, 2)
    new["ts"] += at(4700)
    step = (new["station"] == "b") & (new["metric"] == "TEMP") & new["ts"].between(*FAULT)
    new.loc[step, "value"] += 6.0
    return new.sort_values(["ts", "station", "metric"], kind="stable", ignore_index=True)


def as_series(frame: pd.DataFrame) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    return {s: {m: (g["ts"].to_numpy(np.int64), g["value"].to_numpy(np.float64))
                for m, g in sf.groupby("metric")} for s, sf in frame.groupby("station")}


def one_pass(model, frame: pd.DataFrame) -> dict[tuple[str, int], float]:
    scored = model.score_group(frame)
    return dict(zip(zip(scored["station"], scored["ts"]), scored["score"]))


def streamed(scorer: GroupScorer, model, frame: pd.DataFrame, out: dict) -> None:
    for station, (row_ts, scores) in scorer.update(model, as_series(frame)).items():
        out.update(zip(zip([station] * row_ts.size, row_ts.tolist()), scores.tolist()))


def test_rows_fed_hour_by_hour_score_as_one_pass(model, probe):
    scorer, got = GroupScorer(), {}
    for t in range(4700, 5100):
        streamed(scorer, model, probe[probe["ts"].between(at(t - 3), at(t))], got)
    want = one_pass(model, probe)
    assert set(got) == set(want)  # every station row closed: each hour had all four
    assert np.allclose([got[k] for k in want], list(want.values()))
    assert scorer.scored == len(want) and scorer.late == 0
    fault = [got[("b", t)] for t in range(FAULT[0] + 3 * HOUR, FAULT[1], HOUR)]
    assert np.mean(np.array(fault) > 0.5) > 0.5


def test_a_row_waits_for_the_stations_of_its_time_then_closes(model, probe):
    scorer, got = GroupScorer(), {}
    first = probe[probe["ts"] <= at(4710)]
    streamed(scorer, model, first, got)
    assert max(t for _, t in got) == at(4710)
    row = probe[probe["ts"].between(at(4709), at(4711))]
    only_a = row[(row["ts"] <= at(4710)) | (row["station"] == "a")]
    streamed(scorer, model, only_a, got)
    assert ("a", at(4711)) not in got  # b, c, d have not reported 4711 h yet
    streamed(scorer, model, row, got)
    want = one_pass(model, probe[probe["ts"] <= at(4711)])
    assert {k: round(v, 9) for k, v in got.items()} == {k: round(v, 9) for k, v in want.items()}


def test_a_station_later_than_a_row_step_is_scored_missing_and_counted_late(model, probe):
    scorer, got = GroupScorer(), {}
    part = probe[probe["ts"] <= at(4720)]
    slow_b = (part["station"] == "b") & (part["ts"] == at(4719))
    streamed(scorer, model, part[~slow_b & (part["ts"] <= at(4719))], got)
    streamed(scorer, model, part[~slow_b], got)  # a, c, d are at 4720 h: 4719 h closes
    assert ("a", at(4719)) in got and ("b", at(4719)) not in got
    streamed(scorer, model, part, got)  # b's 4719 h reading comes after its row closed
    assert ("b", at(4719)) not in got and scorer.late == 1  # b's row of 4719 h
    streamed(scorer, model, part, got)
    assert scorer.late == 1  # counted once


def test_one_stations_backlog_does_not_close_the_rows_its_neighbours_have_not_reported(
        model, probe):
    scorer, got = GroupScorer(), {}
    streamed(scorer, model, probe[probe["ts"] <= at(4710)], got)
    ahead = probe[(probe["station"] == "a") & probe["ts"].between(at(4711), at(4720))]
    streamed(scorer, model, pd.concat([probe[probe["ts"] <= at(4710)], ahead]), got)
    assert max(t for _, t in got) == at(4710) and scorer.late == 0  # a's flush waits
    streamed(scorer, model, probe[probe["ts"] <= at(4720)], got)  # the others catch up
    want = one_pass(model, probe[probe["ts"] <= at(4720)])
    assert {k: round(v, 9) for k, v in got.items()} == {k: round(v, 9) for k, v in want.items()}


def test_the_checkpoint_resumes_the_group_as_one_pass(model, probe):
    whole, got = StreamScorer(), {}
    first, rest = probe[probe["ts"] < at(4900)], probe[probe["ts"] >= at(4897)]
    for part in (first, rest):
        for station, (t, s) in whole.group(model, as_series(part)).items():
            got.update(zip(zip([station] * t.size, t.tolist()), s.tolist()))
    again, resumed = StreamScorer(), {}
    before = StreamScorer()
    before.group(model, as_series(first))
    again.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(before.snapshot())))
    for station, (t, s) in again.group(model, as_series(rest)).items():
        resumed.update(zip(zip([station] * t.size, t.tolist()), s.tolist()))
    later = {k: v for k, v in got.items() if k[1] >= at(4900)}  # the rows the rings keep
    assert later and all(resumed[k] == pytest.approx(v) for k, v in later.items())
    assert again.groups.scored == 4 * (5100 - 4900)  # only the rows after the checkpoint


def test_a_model_without_a_signed_payload_is_not_checkpointed(probe):
    fresh = train(readings(4000, 1), None, "neighbours", far=0.01).model
    s = StreamScorer()
    s.group(fresh, as_series(probe[probe["ts"] < at(4710)]))
    assert "groups" not in s.snapshot()


# --- anomaly() in rules ----------------------------------------------------------------------


class Models(dict):
    def get(self, name):
        return super().get(name)


def engine_for(model) -> Engine:
    rule = Rule.model_validate({"id": "nb", "name": "邻站比对", "hazard": "sensor",
                                "grades": {"blue": "anomaly(model=nb) > 0.5"},
                                "clear": "anomaly(model=nb) <= 0.5"})
    return Engine([rule], models=Models({"nb": model}), scorer=StreamScorer())


def feed(engine: Engine, frame: pd.DataFrame):
    names = sorted(set(frame["metric"]))
    st = list(STATIONS)
    found, _ = engine.process(
        st, np.asarray([st.index(s) for s in frame["station"]], np.uint32), names,
        np.asarray([names.index(m) for m in frame["metric"]], np.uint32),
        frame["ts"].to_numpy(np.int64), frame["value"].to_numpy(np.float64))
    return found


def transitions(model, frame: pd.DataFrame) -> list[tuple[str, int, bool]]:
    """(station, ts, clear) where a station's one-pass score crosses the threshold, and
    each station's first judgement (the engine reports it, a clear included)."""
    out, raised, seen = [], set(), set()
    for (station, ts), score in sorted(one_pass(model, frame).items(), key=lambda x: x[0][::-1]):
        if station not in seen and score <= 0.5:
            out.append((station, ts, True))
        seen.add(station)
        if (score > 0.5) != (station in raised):
            out.append((station, ts, station in raised))
            raised ^= {station}
    return sorted(out, key=lambda x: (x[1], x[0]))


def test_a_rule_on_a_group_model_raises_and_clears_where_the_scores_cross(model, probe):
    engine, found = engine_for(model), []
    for t in range(4700, 5100):  # one envelope per hour, all four stations
        found += feed(engine, probe[probe["ts"] == at(t)])
    got = [(f.station, f.ts, f.clear) for f in found]
    assert got == transitions(model, probe)
    assert ("b", FAULT[0], False) in got  # the fault's first hour


def test_a_catch_up_pass_of_many_rows_judges_every_row(model, probe):
    hourly, once = engine_for(model), engine_for(model)
    by_hour = []
    for t in range(4700, 5100):
        by_hour += feed(hourly, probe[probe["ts"] == at(t)])
    in_one = feed(once, probe)  # 400 rows in one pass, more than the ring keeps
    assert [(f.station, f.ts, f.clear) for f in in_one] == [
        (f.station, f.ts, f.clear) for f in by_hour]


def test_the_station_that_reported_first_is_judged_when_its_row_closes(model, probe):
    engine = engine_for(model)
    for t in range(4700, 4800):
        feed(engine, probe[probe["ts"] == at(t)])
    row = probe[probe["ts"] == FAULT[0]]
    assert feed(engine, row[row["station"] == "b"]) == []  # its neighbours are not in yet
    found = feed(engine, row[row["station"] != "b"])
    assert ("b", FAULT[0], False) in [(f.station, f.ts, f.clear) for f in found]


# --- one partition per group -----------------------------------------------------------------


def registry(groups: dict[str, str]) -> Registry:
    return Registry([Station(id=s, name=s, kind="weather", group=groups.get(s, ""))
                     for s in ("a", "b", "c", "d", "x")])


def test_the_stations_of_a_group_share_a_partition_and_keep_their_order():
    reg = registry({s: "beijing" for s in STATIONS})
    rs = [Reading(station=s, metric="TEMP", ts=i * HOUR, value=float(i))
          for i in range(5) for s in ("a", "b", "c", "d", "x")]
    parts = by_partition(rs, 16, reg.partition_keys())
    group_p = partition_for("group:beijing", 16)
    assert [r.station for r in parts[group_p] if r.station != "x"] == [
        r.station for r in rs if r.station != "x"]
    assert [r.ts for r in parts[partition_for("x", 16)] if r.station == "x"] == [
        i * HOUR for i in range(5)]
    assert by_partition(rs, 16) == by_partition(rs, 16, registry({}).partition_keys())


def test_a_bad_group_name_fails_at_load_with_the_line():
    from yujing.stations import parse_registry_yaml

    text = "stations:\n  - id: a\n    name: A\n    kind: weather\n    group: 'two words'\n"
    with pytest.raises(SourceError) as err:
        parse_registry_yaml(parse_yaml(text, "stations.yaml"))
    assert "stations.yaml:5" in str(err.value) and "group" in str(err.value)


def test_a_model_loaded_from_the_registry_is_named_by_its_payload(model):
    from yujing.models.stream_base import model_key

    assert model_key(model) == f"neighbours:{model.meta['sha256']}"  # survives a restart


def test_a_rule_selects_a_group_and_an_unknown_group_is_refused_with_a_did_you_mean(tmp_path):
    from yujing.rules.compiled import compile_rule
    from yujing.rules.loader import check_references, load_rules_located

    reg = registry({"a": "beijing", "b": "beijing", "c": "tianjin"})
    rule = compile_rule(Rule.model_validate({
        "id": "nb", "name": "邻站比对", "hazard": "sensor", "select": {"group": "beijing"},
        "grades": {"blue": "anomaly(model=nb) > 0.5"}}))
    assert [s for s in "abcdx" if rule.eligible(s, reg.get(s))] == ["a", "b"]
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "nb.yaml").write_text(
        "rules:\n  - id: nb\n    name: 邻站比对\n    hazard: sensor\n"
        "    select: {group: beijng}\n    grades:\n      blue: anomaly(model=nb) > 0.5\n",
        encoding="utf-8")
    [p] = check_references(load_rules_located(folder), reg)
    assert p.key == "rules[0].select.group" and p.line == 5
    assert "unknown station group 'beijng'" in p.message and "did you mean 'beijing'?" in p.message


def test_a_rule_without_a_group_keeps_its_state_fingerprint():
    rule = Rule.model_validate({"id": "r", "name": "r", "hazard": "flood",
                                "select": {"town": "虎门镇"}, "grades": {"blue": "last(x) > 1"}})
    assert "group" not in rule.model_dump()["select"]  # checkpointed rule state is still claimed


def test_a_group_model_over_stations_the_registry_does_not_group_is_said_with_the_fix(model):
    from yujing.pipeline.models_view import split_groups

    rules = [Rule.model_validate({"id": "nb", "name": "邻站比对", "hazard": "sensor",
                                  "grades": {"blue": "anomaly(model=nb) > 0.5"}})]
    grouped = registry({s: "beijing" for s in STATIONS})
    assert split_groups(Models({"nb": model}), rules, grouped) == []
    [said] = split_groups(Models({"nb": model}), rules, registry({"a": "beijing", "b": "beijing"}))
    assert "anomaly model nb" in said and "c: —" in said and "give them one `group:`" in said


def test_the_worker_watches_a_grouped_station_on_its_groups_partition():
    from yujing.streams.state import Pipelines

    async def flush() -> None:
        return None

    reg = registry({s: "beijing" for s in STATIONS})
    pipes = Pipelines([], reg, 3_600_000, None, 8, None, "nowhere:9092", "yujing.readings",
                      lambda *a: None, flush, interval_s=5.0, now_ms=lambda: 0)
    home = partition_for("group:beijing", 8)
    owns = {p: pipes._new_pipeline(p).owns for p in range(8)}
    assert [p for p in range(8) if all(owns[p](s) for s in STATIONS)] == [home]
    assert [p for p in range(8) if owns[p]("x")] == [partition_for("x", 8)]  # not grouped
    pipes.set_registry(registry({}))  # the group removed on a reload: keyed by id again
    assert pipes._new_pipeline(partition_for("a", 8)).owns("a")


def test_rules_check_refuses_a_model_that_does_not_load_and_an_ungrouped_group_model(tmp_path):
    from typer.testing import CliRunner

    from yujing.cli.app import app
    from yujing.models.signing import new_key_file

    key = new_key_file(tmp_path / "model.key")
    ModelRegistry(tmp_path / "models", key).publish(
        "nb", train(readings(2000, 1), None, "neighbours", far=0.01).model)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "nb.yaml").write_text(
        "rules:\n  - id: nb\n    name: 邻站比对\n    hazard: sensor\n"
        "    grades:\n      blue: anomaly(model=nb) > 0.5\n"
        "  - id: other\n    name: 其他\n    hazard: sensor\n"
        "    grades:\n      blue: anomaly(model=nb-typo) > 0.5\n", encoding="utf-8")
    stations = tmp_path / "stations.yaml"
    stations.write_text("stations:\n" + "".join(
        f"  - {{id: {s}, name: {s}, kind: weather, group: {'bj' if s != 'd' else 'xx'}}}\n"
        for s in STATIONS), encoding="utf-8")
    args = ["rules", "check", str(rules), "--models", str(tmp_path / "models"),
            "--key-file", str(tmp_path / "model.key"), "--registry", str(stations)]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 2, out.output
    assert f"{rules / 'nb.yaml'}:11: rules[1].grades.blue: rule other: anomaly model 'nb-typo' " \
           "does not load" in out.output
    assert "anomaly model nb compares stations a, b, c, d" in out.output and "d: xx" in out.output
    assert "rule nb:" not in out.output  # the model that loads is not refused
    stations.write_text(stations.read_text().replace("group: xx", "group: bj"))
    (rules / "nb.yaml").write_text((rules / "nb.yaml").read_text().replace("nb-typo", "nb"))
    ok = CliRunner().invoke(app, args)
    assert ok.exit_code == 0 and "2 rules ok" in ok.output, ok.output


def test_a_detector_fitted_again_scores_with_its_new_parameters():
    """The stacked parameters of the worker's path (residual_all) follow a refit."""
    from yujing.models import GroupNeighbours
    from yujing.models.neighbours import NeighbourDetector

    def aligned(seed: int):
        g = GroupNeighbours(stations=STATIONS, metrics=["TEMP", "WSPM"])
        return g._aligned(readings(2000, seed), "training")

    (ts1, v1), (ts2, v2) = aligned(1), aligned(5)
    again = NeighbourDetector(STATIONS, ["TEMP", "WSPM"])
    again.fit(ts1, v1, 0.01)
    again.score({m: x[:50] for m, x in v2.items()})  # the first fit's parameters stacked
    again.fit(ts2, v2, 0.01)
    fresh = NeighbourDetector(STATIONS, ["TEMP", "WSPM"])
    fresh.fit(ts2, v2, 0.01)
    probe = {m: x[-200:] for m, x in v1.items()}
    np.testing.assert_array_equal(again.score(probe), fresh.score(probe))
