"""With kafka.bootstrap and mqtt.url set, `yujing run` starts no embedded broker."""

from __future__ import annotations

import subprocess
import sys
import time

import orjson
import pytest

from yujing.connectors.embedded import free_port, tansu_command, wait_port

from .conftest import alive, start_run, stop_run, write_config
from .services import mqtt_publish
from .test_run import rain

pytestmark = pytest.mark.integration


@pytest.fixture
def external_brokers():
    kport, mport = free_port(), free_port()
    procs = [subprocess.Popen(tansu_command(kport), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL),
             subprocess.Popen([sys.executable, "-m", "yujing", "mqtt-broker", "--port", str(mport)])]
    assert wait_port("127.0.0.1", kport, 20) and wait_port("127.0.0.1", mport, 20)
    yield f"127.0.0.1:{kport}", f"mqtt://127.0.0.1:{mport}", mport
    for p in procs:
        p.terminate()
        p.wait(10)


async def test_run_uses_configured_brokers(tmp_path, receiver, external_brokers):
    bootstrap, mqtt_url, mqtt_port = external_brokers
    config, http_port, _ = write_config(tmp_path, receiver.port,
                                        kafka={"bootstrap": bootstrap, "rebalance_timeout_s": 6,
                                               "session_timeout_s": 6}, mqtt={"url": mqtt_url})
    r = start_run(tmp_path, config, http_port, mqtt_port)
    try:
        assert set(r.pids) == {"worker", "gateway"}, r.text()
        assert r.kafka == bootstrap
        start = int(time.time() * 1000) - 4 * 3_600_000
        # 36 × 3 mm = 108 mm in 3 h: orange, then red
        mqtt_publish(mqtt_port, [("yujing/test/DG-SL-R01/rain_mm",
                                  orjson.dumps(rain("DG-SL-R01", start, 36, 3.0)))])
        red = await receiver.wait_for(lambda m: "石龙" in m["title"] and "红色" in m["title"], 90)
        assert "upgraded orange -> red" in red["message"]
    finally:
        assert stop_run(r) == 0
    assert not any(alive(p) for p in r.pids.values())
