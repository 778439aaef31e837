"""MQTT subscriber for the gateway (paho-mqtt).

paho runs its network loop in its own thread; messages cross into asyncio
through ``call_soon_threadsafe`` onto a bounded queue. paho reconnects by
itself; ``on_connect`` re-subscribes after every reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def parse_url(url: str) -> BrokerAddress:
    u = urlsplit(url)
    tls = u.scheme == "mqtts"
    return BrokerAddress(u.hostname or "127.0.0.1", u.port or (8883 if tls else 1883), tls,
                         u.username, u.password)


def topic_parts(topic: str) -> dict[str, str]:
    """``yujing/<source>/<station>/<kind>`` → defaults for the payload's readings."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == "yujing":
        return {"station": parts[2], "metric": parts[3]}
    return {}


class MqttSubscriber:
    def __init__(self, url: str, topic: str, qos: int, client_id: str,
                 queue: asyncio.Queue[tuple[str, bytes]]) -> None:
        self.addr = parse_url(url)
        self.topic, self.qos = topic, qos
        self.queue = queue
        self.loop = asyncio.get_running_loop()
        self.connected = asyncio.Event()
        self.dropped = 0
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                        protocol=paho.MQTTv311)
        if self.addr.username:
            c.username_pw_set(self.addr.username, self.addr.password)
        if self.addr.tls:
            c.tls_set()
        c.reconnect_delay_set(min_delay=1, max_delay=30)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        self.client = c

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            log.error("MQTT connect refused: %s", reason_code)
            return
        client.subscribe(self.topic, qos=self.qos)
        log.info("MQTT subscribed to %s on %s:%d", self.topic, self.addr.host, self.addr.port)
        self.loop.call_soon_threadsafe(self.connected.set)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        log.warning("MQTT disconnected (%s); paho will reconnect", reason_code)
        self.loop.call_soon_threadsafe(self.connected.clear)

    def _on_message(self, client, userdata, msg) -> None:  # noqa: ANN001
        self.loop.call_soon_threadsafe(self._put, msg.topic, msg.payload)

    def _put(self, topic: str, payload: bytes) -> None:
        try:
            self.queue.put_nowait((topic, payload))
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("MQTT ingest queue full: message on %s dropped", topic)

    def start(self) -> None:
        self.client.connect_async(self.addr.host, self.addr.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
