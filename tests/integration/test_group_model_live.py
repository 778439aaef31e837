"""A group model (neighbours) on `yujing run` (embedded Tansu and amqtt, four partitions):
the registry's group puts four weather stations in one worker, and a sensor fault at one of
them (its temperature six degrees high for two days) raises a warning on that station, where
the model's one-pass scores say, and nowhere the scores do not."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import numpy as np
import orjson
import yaml

from tests.unit.test_model_group import HOUR, STATIONS, readings
from yujing.connectors.snapshots import read_all
from yujing.envelope import partition_for
from yujing.models.registry import ModelRegistry
from yujing.models.signing import new_key_file
from yujing.models.train import train

ROWS, FAULT = 150, (100, 140)  # hourly rows posted; station b's fault rows
UNITS = {"TEMP": "air_temp_c", "WSPM": "wind_speed_ms"}  # the gateway wants names with units


def weather(rows: int, seed: int):
    data = readings(rows, seed)
    data["metric"] = data["metric"].map(UNITS)
    return data


def setup(tmp_path, now_ms: int):
    """The model (signed, in a registry folder), the registry with the group, the rule, and
    the readings to post (the last ROWS hours, b's TEMP +6 over FAULT)."""
    key = new_key_file(tmp_path / "model.key")
    model = train(weather(4000, 1), None, "neighbours", far=0.01).model
    ModelRegistry(tmp_path / "models", key).publish("nb", model)
    (tmp_path / "stations.yaml").write_text(yaml.safe_dump({"stations": [
        {"id": s, "name": f"气象站{s}", "kind": "weather", "town": "测试镇", "group": "beijing"}
        for s in STATIONS]}, allow_unicode=True))
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "nb.yaml").write_text(yaml.safe_dump({"rules": [{
        "id": "nb-sensor", "name": "邻站比对异常", "hazard": "sensor",
        "select": {"group": ["beijing"]},
        "grades": {"blue": "anomaly(model=nb) > 0.5"},
        "clear": "anomaly(model=nb) <= 0.5"}]}, allow_unicode=True))
    data = weather(ROWS, 2)
    start = now_ms - (ROWS + 1) * HOUR
    data["ts"] += start
    fault = (data["station"] == "b") & (data["metric"] == "air_temp_c") & data["ts"].between(
        start + FAULT[0] * HOUR, start + FAULT[1] * HOUR)
    data.loc[fault, "value"] += 6.0
    return model, data.sort_values(["ts", "station", "metric"], kind="stable"), start


def raises(model, data) -> set[tuple[str, int]]:
    """(station, ts) where the one-pass score goes above 0.5 (a warning is raised)."""
    scored = model.score_group(data).sort_values(["station", "ts"])
    out = set()
    for station, rows in scored.groupby("station"):
        up = rows["score"].to_numpy() > 0.5
        start = up & ~np.concatenate(([False], up[:-1]))
        out |= {(station, int(t)) for t in rows["ts"].to_numpy()[start]}
    return out


async def test_a_fault_at_one_station_of_a_group_is_warned_on_that_station(receiver, run_factory,
                                                                          tmp_path):
    assert len({partition_for(s, 4) for s in STATIONS}) > 1  # without the group, split up
    model, data, start = setup(tmp_path, int(time.time() * 1000))
    want = raises(model, data)
    assert ("b", start + FAULT[0] * HOUR) in want or any(
        s == "b" and start + FAULT[0] * HOUR <= t <= start + (FAULT[0] + 6) * HOUR for s, t in want)
    r = run_factory(receiver.port, kafka={"partitions": 4},
                    worker={"rules_dir": str(tmp_path / "rules"),
                            "registry": str(tmp_path / "stations.yaml"),
                            "models_dir": str(tmp_path / "models"),
                            "models_key_file": str(tmp_path / "model.key")})
    rows = [{"station": s, "metric": m, "ts": int(t), "value": float(v)}
            for t, s, m, v in data[["ts", "station", "metric", "value"]].itertuples(index=False)]
    async with aiohttp.ClientSession() as http:
        for a in range(0, len(rows), 80):  # ten hours of the four stations a request
            async with http.post(f"{r.http}/v1/readings", json=rows[a:a + 80]) as resp:
                assert resp.status == 200, await resp.text()
    got, events = await raised_events(r.kafka, want, 90)
    assert got == want, [(e["kind"], e["station"], (e["ts"] - start) // HOUR) for e in events]


async def raised_events(bootstrap: str, want: set, timeout: float
                        ) -> tuple[set[tuple[str, int]], list[dict]]:
    """(station, ts) of the raised events on yujing.warnings once ``want`` are all there (or
    what there is after ``timeout``), read with a plain consumer."""
    deadline = time.monotonic() + timeout
    while True:
        events = [orjson.loads(v) for _, v in await read_all(bootstrap, "yujing.warnings")]
        got = {(e["station"], e["ts"]) for e in events if e["kind"] == "raised"}
        if got >= want or time.monotonic() > deadline:
            return got, events
        await asyncio.sleep(0.5)
