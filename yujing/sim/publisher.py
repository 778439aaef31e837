"""Publishes scenario steps over MQTT (paho), one list of readings per station and step."""

from __future__ import annotations

import time

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from yujing import clock
from yujing.connectors.mqtt import parse_url
from yujing.sim.scenario import Step


class Publisher:
    def __init__(self, url: str, source: str = "sim", client_id: str = "yujing-sim") -> None:
        addr = parse_url(url)
        self.source = source
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=paho.MQTTv311)
        if addr.username:
            self.client.username_pw_set(addr.username, addr.password)
        self.client.connect(addr.host, addr.port, keepalive=30)
        self.client.loop_start()
        self.published = 0

    def publish_step(self, step: Step, qos: int = 1) -> list[paho.MQTTMessageInfo]:
        infos = []
        by_station: dict[str, list[dict]] = {}
        for r in step.readings:
            by_station.setdefault(r.station, []).append(
                {"station": r.station, "metric": r.metric, "ts": r.ts, "value": r.value})
        for station, items in by_station.items():
            topic = f"yujing/{self.source}/{station}/{items[0]['metric']}"
            infos.append(self.client.publish(topic, orjson.dumps(items), qos=qos))
            self.published += len(items)
        return infos

    def run(self, steps: list[Step], duration_s: float, on_step=None) -> None:
        """Publish all steps evenly over ``duration_s`` (accelerated time)."""
        gap = duration_s / max(len(steps), 1)
        t0 = clock.monotonic()
        for i, step in enumerate(steps):
            for info in self.publish_step(step):
                info.wait_for_publish(timeout=10)
            if on_step:
                on_step(i, step)
            delay = t0 + (i + 1) * gap - clock.monotonic()
            if delay > 0:
                time.sleep(delay)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
