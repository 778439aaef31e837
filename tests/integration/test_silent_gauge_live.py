"""A river gauge silent at orange, on `yujing run` (embedded Tansu and amqtt, a real webhook
receiver): the no-data warning pages the duty officer at orange, naming the last reading,
and when the gauge reports again the no-data incident clears while the river's stays open."""

from __future__ import annotations

import time

import aiohttp

from tests.integration.test_duty_e2e import wait_incident
from tests.support.duty import alert_config, write_roster

MIN, HOUR = 60_000, 3_600_000
RIVER = "DG-SL-H01"   # 东江石龙水文站: guaranteed level 8.0 m, 20-year level 7.9 m (orange)


def levels(start: int, values: list[float]) -> list[dict]:
    return [{"station": RIVER, "metric": "water_level_m", "ts": start + k * 5 * MIN, "value": v}
            for k, v in enumerate(values)]


async def post(http: aiohttp.ClientSession, base: str, readings: list[dict]) -> None:
    async with http.post(f"{base}/v1/readings", json=readings) as resp:
        assert resp.status == 200, await resp.text()


async def test_a_gauge_silent_at_orange_pages_at_orange_with_its_last_reading(hooks, smtp,
                                                                            run_factory, tmp_path):
    roster = write_roster(tmp_path, hooks, smtp)
    # one partition, so the rain gauge's readings move the river's pipeline's event time on;
    # the no-data check runs on event time, every half second
    r = run_factory(hooks.port, **alert_config(roster, 0), kafka={"partitions": 1},
                    worker={"nodata_clock": "event", "nodata_check_s": 0.5})
    start = int(time.time() * 1000) - 4 * HOUR
    rising = [round(7.0 + k * 1.2 / 13, 3) for k in range(14)]   # 7.0 → 8.2 m in 65 minutes
    async with aiohttp.ClientSession() as http:
        await post(http, r.http, levels(start, rising))
        river = await wait_incident(http, r.http, lambda w: w["rule"] == "river-level"
                                    and w["grade"] == 3, 60)   # 3: orange
        # two hours of the rain gauge beside it; the river says nothing
        await post(http, r.http, [{"station": "DG-SL-R01", "metric": "rain_mm", "value": 0.0,
                                   "ts": start + k * 5 * MIN} for k in range(40)])
        silent = await wait_incident(http, r.http, lambda w: w["rule"] == "nodata"
                                     and w["station"] == RIVER, 60)
        assert silent["grade"] == 3  # orange, not blue
        page = (await hooks.wait("a1-dead", lambda m: silent["incident"] in m["message"], 30))[0]
        assert "橙色" in page["title"]
        assert "水位站已15分钟无数据；最后读数8.20米" in page["message"]
        assert "当时为橙色预警" in page["message"]

        # the gauge reports again, still high: the no-data incident clears, the river's holds
        await post(http, r.http, levels(start + 200 * MIN, [8.3, 8.25]))
        back = await wait_incident(http, r.http, lambda w: w["incident"] == silent["incident"]
                                   and w["state"] == "cleared", 30)
        assert back["cleared_by"] == "rule"
        status_river = await wait_incident(http, r.http,
                                           lambda w: w["incident"] == river["incident"], 10)
        assert status_river["state"] != "cleared" and status_river["grade"] == 3
