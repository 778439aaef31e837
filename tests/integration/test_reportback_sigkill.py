"""A report-back (回报) survives the worker's SIGKILL (on Tansu and on Apache Kafka), issue 14.

An orange warning gets its report; the worker is killed and a new one started; a second
warning elsewhere shows the new worker is at work; then the manual clear of the first goes
through. The book checks the report itself when it applies a clear (the gateway's check
reads the console's snapshot, which a dead worker cannot take back), so a book restored
without the report would refuse it with a 销警被拒 entry. The report is on the incident
once, not replayed twice.

The broker, the gateway and the worker run as separate processes so the worker alone can die.
"""

from __future__ import annotations

import signal
import sys
import time

import aiohttp
import yaml

from tests.integration.test_duty_sigkill import NoSmtp, api, incident
from tests.support.duty import ROOT, alert_config, write_roster
from tests.support.readings import rain
from yujing.connectors.embedded import free_port, wait_port

HOUR = 3_600_000


async def test_a_report_survives_a_worker_sigkill_and_lets_the_clear_through(hooks, procs,
                                                                           tmp_path,
                                                                           broker_kind):
    broker = broker_kind.start(procs, tmp_path)
    hport = free_port()
    roster = write_roster(tmp_path, hooks, NoSmtp())
    cfg = {"kafka": {"bootstrap": broker.bootstrap, "partitions": 2},
           "http": {"port": hport},
           "worker": {"rules_dir": str(ROOT / "rules"), "registry": str(ROOT / "stations.yaml"),
                      "data_dir": str(tmp_path / "worker"), "nodata_check_s": 3600},
           "notify": {"default": [hooks.url("default")]},
           **alert_config(roster, hport, timeout="1h")}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    yj = [sys.executable, "-m", "yujing"]
    worker = [*yj, "worker", "--config", str(config), "--embedded-kafka"]
    procs.start("gateway", [*yj, "gateway", "--config", str(config)])
    procs.start("worker", worker)
    base = f"http://127.0.0.1:{hport}"
    assert wait_port("127.0.0.1", hport, 30)
    start = int(time.time() * 1000) - 4 * HOUR
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/v1/readings", json=rain("DG-CA-R01", start)) as r:
            assert r.status == 200
        ca = await incident(http, base, "长安镇", lambda w: w["state"] == "active"
                            and w["grade"] == 3, 120)   # a fresh Kafka waits for its coordinator
        iid = ca["incident"]
        await api(http, base, f"/v1/warnings/{iid}/reports",
                  {"status": "handling", "measures": "泵车抽排，封闭长青路", "evacuated": 8})
        await incident(http, base, "长安镇", lambda w: len(w["reports"]) == 1, 30)

        procs.procs["worker"].send_signal(signal.SIGKILL)
        procs.procs["worker"].wait(10)
        procs.start("worker2", worker)
        async with http.post(f"{base}/v1/readings", json=rain("DG-HJ-R01", start)) as r:
            assert r.status == 200
        await incident(http, base, "厚街镇", lambda w: w["state"] == "active", 120)

        await api(http, base, f"/v1/warnings/{iid}/clear", {"reason": "积水已退"})
        w = await incident(http, base, "长安镇", lambda w: w["state"] == "cleared", 30)
    kinds = [e["kind"] for e in w["timeline"]]
    assert w["cleared_by"] == "a1" and "refused" not in kinds
    assert kinds.count("report") == 1 and [r["evacuated"] for r in w["reports"]] == [8]
