"""MQTT subscriber for the gateway (paho-mqtt): persistent, acknowledged, shareable.

paho runs its network loop in its own thread; messages cross into asyncio
through ``call_soon_threadsafe`` onto a bounded queue.

Delivery: QoS 1 with a persistent session (MQTT 3.1.1 ``clean_session=False``;
MQTT 5 ``clean_start=False`` plus a Session Expiry Interval, without which an
MQTT 5 broker forgets the session at disconnect). Messages are acknowledged
*manually*, only after Kafka acknowledged the envelope holding their readings,
so a gateway that dies with readings in memory gets them again from the broker
(at-least-once; the engine's event-time slots make the repeat harmless). Under
MQTT 5 the Receive Maximum caps how many unacknowledged messages the broker
sends, which is our back-pressure when Kafka is slow.

A PUBACK names a packet id that is only meaningful within one connection; an
acknowledgement that completes after a reconnect is skipped (the broker
redelivers that message and the gateway's duplicate filter recognises it).

Shared subscriptions (MQTT 5, ``$share/<group>/<filter>``) let several gateways
split one stream; reconnects back off exponentially between
``reconnect_min_s`` and ``reconnect_max_s`` (paho's own reconnect loop).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from yujing.config import MqttConfig

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
                         unquote(u.username) if u.username else None,
                         unquote(u.password) if u.password else None)


# The station segment of a collector's batch that names several stations in its payload
# (``yujing/<source>/_/<kind>``). "_" can never be a station id (ids start with a letter or
# digit); each item then names its own station and only the source's scope applies.
MANY = "_"


@dataclass(frozen=True)
class Topic:
    """``yujing/<source>/<station>/<kind>``: who publishes (the tokens-file entry whose scope
    applies, and the broker user allowed to publish under it), for which station."""

    source: str
    station: str | None  # None: the MANY segment, every item names its station
    kind: str


def parse_topic(topic: str) -> Topic | None:
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == "yujing":
        return Topic(parts[1], None if parts[2] == MANY else parts[2], parts[3])
    return None


def topic_parts(topic: str, payload_kind: str | None = None) -> dict[str, str]:
    """``yujing/<source>/<station>/<kind>`` → what binds and completes the payload's readings.

    ``station`` is binding: an item naming another station is refused (parse.py), so a
    device cannot write a station by naming it in the payload. ``kind`` is the default
    metric of a single reading or a list (``…/rain_mm``); a multi-metric record names its
    metrics itself and ignores it.
    """
    t = parse_topic(topic)
    if t is None:
        return {}
    if payload_kind is not None and t.kind == payload_kind:  # the kind names the payload's form
        return {} if t.station is None else {"station": t.station}
    return {"metric": t.kind} if t.station is None else {"station": t.station, "metric": t.kind}


def subscription(cfg: MqttConfig) -> str:
    """The topic filter to subscribe to: shared (``$share/<group>/…``) when configured."""
    return f"$share/{cfg.shared_group}/{cfg.topic}" if cfg.shared_group else cfg.topic


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # which connection delivered it (a PUBACK is only valid on that one)


class MqttSubscriber:
    def __init__(self, url: str, cfg: MqttConfig, queue: asyncio.Queue[Message],
                 client_id: str | None = None) -> None:
        self.addr = parse_url(url)
        self.cfg = cfg
        self.filter = subscription(cfg)
        self.queue = queue
        self.loop = asyncio.get_running_loop()
        self.connected = asyncio.Event()
        self.dropped = 0
        self.generation = 0
        self.connects = 0
        self.v5 = cfg.protocol == "5"
        cid = client_id or cfg.client_id
        if self.v5:
            c = paho.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=paho.MQTTv5,
                            manual_ack=True)
        else:
            c = paho.Client(CallbackAPIVersion.VERSION2, client_id=cid, clean_session=False,
                            protocol=paho.MQTTv311, manual_ack=True)
        user = cfg.username or self.addr.username
        if user:
            c.username_pw_set(user, cfg.password if cfg.username else self.addr.password)
        if self.addr.tls or cfg.tls is not None:
            c.tls_set_context(tls_context(cfg))
            if cfg.tls is not None and cfg.tls.insecure:
                c.tls_insecure_set(True)
        c.reconnect_delay_set(min_delay=max(1, round(cfg.reconnect_min_s)),
                              max_delay=max(1, round(cfg.reconnect_max_s)))
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self.client = c

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker %s:%d refused the connection: %s (check username, password "
                      "and client id)", self.addr.host, self.addr.port, reason_code)
            return
        self.generation += 1
        self.connects += 1
        resumed = bool(getattr(flags, "session_present", False))
        client.subscribe(self.filter, qos=self.cfg.qos)
        log.info("MQTT connected to %s:%d (session %s), subscribing to %s", self.addr.host,
                 self.addr.port, "resumed" if resumed else "new", self.filter)
        self.loop.call_soon_threadsafe(self.connected.set)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        bad = [rc for rc in reason_codes if rc.is_failure]
        if bad:
            log.error("MQTT broker refused the subscription to %s: %s (shared subscriptions "
                      "need an MQTT 5 broker and protocol: '5')", self.filter, bad[0])

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        log.warning("MQTT disconnected from %s:%d (%s); reconnecting with backoff",
                    self.addr.host, self.addr.port, reason_code)
        self.loop.call_soon_threadsafe(self.connected.clear)

    def _on_message(self, client, userdata, msg) -> None:
        m = Message(msg.topic, msg.payload, msg.mid, msg.qos, self.generation)
        self.loop.call_soon_threadsafe(self._put, m)

    def _put(self, m: Message) -> None:
        try:
            self.queue.put_nowait(m)
        except asyncio.QueueFull:
            # not acknowledged: the broker redelivers it after our next reconnect
            self.dropped += 1
            log.error("MQTT ingest queue full: message on %s left unacknowledged", m.topic)

    def ack(self, m: Message) -> bool:
        """Acknowledge a stored message, if the connection that brought it is still up."""
        if m.qos == 0 or m.generation != self.generation:
            return False
        self.client.ack(m.mid, m.qos)
        return True

    def start(self) -> None:
        kw = {}
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.cfg.session_expiry_s
            props.ReceiveMaximum = self.cfg.receive_maximum
            kw = {"clean_start": False, "properties": props}
        self.client.connect_async(self.addr.host, self.addr.port, keepalive=self.cfg.keepalive_s,
                                  **kw)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def tls_context(cfg: MqttConfig) -> ssl.SSLContext:
    """Verifying TLS context from ``mqtt.tls`` (system CAs when no ca_file is given)."""
    t = cfg.tls
    ctx = ssl.create_default_context(cafile=str(t.ca_file) if t and t.ca_file else None)
    if t is not None and t.cert_file:
        ctx.load_cert_chain(str(t.cert_file), str(t.key_file) if t.key_file else None)
    if t is not None and t.insecure:
        ctx.check_hostname = False
    return ctx
