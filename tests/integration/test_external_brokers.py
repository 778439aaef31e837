"""With kafka.bootstrap and mqtt.url set, `yujing run` starts no embedded broker."""

from __future__ import annotations

import time

import orjson
import pytest

from tests.support.readings import rain
from tests.support.run import alive, start_run, stop_run, write_config
from tests.support.services import mqtt_publish


@pytest.fixture
def external_brokers(kafka: str, amqtt_port: int) -> tuple[str, str, int]:
    """A Tansu and an amqtt of the test's own, as an operator's brokers would be."""
    return kafka, f"mqtt://127.0.0.1:{amqtt_port}", amqtt_port


async def test_run_uses_configured_brokers(tmp_path, receiver, external_brokers):
    bootstrap, mqtt_url, mqtt_port = external_brokers
    config, http_port, _ = write_config(tmp_path, receiver.port,
                                        kafka={"bootstrap": bootstrap, "rebalance_timeout_s": 6,
                                               "session_timeout_s": 6}, mqtt={"url": mqtt_url})
    r = start_run(tmp_path, config, http_port, mqtt_port)
    try:
        assert set(r.pids) == {"worker", "gateway", "watchdog"}, r.text()
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
