"""config.yaml as pydantic models; ``load_config`` gives exact, located errors.

Unset broker addresses mean "start the embedded one": ``kafka.bootstrap`` null
starts Tansu (or Apache Kafka with ``kafka.embedded: kafka``), ``mqtt.url`` null starts
amqtt. Paths in the file are relative to the file's own folder, so a config works from any
working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import limits
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from yujing.alerts.cap_settings import CapSettings
from yujing.alerts.selfcheck_settings import WatchdogSettings
from yujing.alerts.settings import AlertsSettings, ConsoleSettings
from yujing.domain import GRADE_NAMES
from yujing.durations import Duration
from yujing.kafka_settings import KafkaSecurity, security_problems
from yujing.yamlsrc import Problem, SourceError, load_yaml, validate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Topics(_Strict):
    readings: str = "yujing.readings"
    warnings: str = "yujing.warnings"
    deadletter: str = "yujing.deadletter"
    commands: str = Field("yujing.commands", description="ack/note/clear/silence, ticks, "
                          "delivery results; keyed like warnings")
    incidents: str = Field("yujing.incidents", description="incident snapshots for the "
                           "console and the CAP feed")
    events: str = Field("yujing.events", description="camera/industrial event detail for the console")


class Retention(_Strict):
    """How long Kafka keeps each time-retained topic (``yujing topics`` declares and checks it;
    incidents and the worker's table changelogs are compacted instead)."""

    readings: Duration = Field(Duration("7d"), description="at least worker.checkpoint_interval "
                               "plus the longest downtime a restarted worker must catch up "
                               "from: it re-processes the readings since its checkpoint")
    warnings: Duration = Field(Duration("30d"), description="warning events, worker → book")
    commands: Duration = Field(Duration("30d"), description="acks, notes, clears, silences, "
                               "delivery results: the duty record")
    deadletter: Duration = Duration("7d")
    events: Duration = Duration("7d")


class KafkaConfig(_Strict):
    bootstrap: str | None = Field(
        None, description="host:port[,host:port]; null starts the embedded broker (embedded:)")
    embedded: Literal["tansu", "kafka"] = Field(
        "tansu", description="the broker `yujing run` starts when bootstrap is null: tansu "
                             "(no Java; memory only, a restart loses every topic) or kafka "
                             "(Apache Kafka from `make kafka`; kept on disk under "
                             "worker.data_dir/kafka across restarts)")
    home: Path | None = Field(None, description="the folder `make kafka` printed; null: "
                              "$YUJING_KAFKA_HOME, else ~/.cache/yujing/kafka-<version>")
    heap_mb: int = Field(512, ge=128, le=65536, description="the embedded Kafka's JVM heap")
    partitions: int = Field(4, ge=1, le=1024,
                            description="one partition count for every topic (Faust needs it)")
    replication: int | None = Field(
        None, ge=1, le=16, description="replicas of every topic; null: 3 when the cluster has "
                                       "three brokers or more, else 1 (one server, embedded)")
    retention: Retention = Retention()
    topics: Topics = Topics()
    embedded_port: int = Field(0, ge=0, le=65535, description="0: Tansu on a free port; "
                               "Kafka on the port of its last start (kept in its data dir)")
    compression: Literal["none", "gzip"] = "gzip"
    rebalance_timeout_s: float | None = Field(
        None, gt=0, description="null: 6 s on an embedded broker (Tansu or Kafka), Faust's "
                                "default otherwise")
    session_timeout_s: float | None = Field(None, gt=0)
    fetch_max_wait_ms: int = Field(100, ge=1, le=5000, description="longest a worker's fetch "
                                   "waits for data (Faust's own default is 1500)")
    security: KafkaSecurity = Field(KafkaSecurity(), description="TLS and SASL/SCRAM of every "
                                    "client (yujing/kafka_settings.py)")

    @model_validator(mode="after")
    def _security_needs_a_cluster(self) -> KafkaConfig:
        if self.bootstrap is None and self.security.protocol != "PLAINTEXT":
            raise ValueError("security: the embedded broker listens on loopback without TLS or "
                             "SASL; set kafka.bootstrap to the secured cluster, or remove security")
        return self


class MqttTls(_Strict):
    ca_file: Path | None = Field(None, description="CA bundle; null uses the system CAs")
    cert_file: Path | None = Field(None, description="client certificate (mutual TLS)")
    key_file: Path | None = None
    insecure: bool = Field(False, description="skip the broker hostname check (test brokers only)")


class MqttConfig(_Strict):
    url: str | None = Field(None, description="mqtt://[user:pass@]host:port; null starts amqtt")
    embedded_port: int = Field(0, ge=0, le=65535)
    topic: str = "yujing/+/+/+"
    qos: Literal[0, 1, 2] = 1
    client_id: str = Field("yujing-gateway", description="stable per gateway: the broker keeps "
                           "its persistent session under this id; give every gateway its own")
    protocol: Literal["3.1.1", "5"] = Field(
        "3.1.1", description="5 for shared subscriptions (Mosquitto, EMQX); amqtt speaks 3.1.1")
    shared_group: str | None = Field(
        None, description="MQTT 5 shared subscription group: gateways with the same group "
                          "split the messages ($share/<group>/<topic>)")
    username: str | None = None
    password: str | None = None
    tls: MqttTls | None = Field(None, description="TLS options; mqtts:// alone uses system CAs")
    keepalive_s: int = Field(30, ge=5, le=3600)
    session_expiry_s: int = Field(86_400, ge=0, description="MQTT 5: how long the broker keeps "
                                  "the session (and queues QoS 1 messages) while we are away")
    reconnect_min_s: float = Field(1.0, gt=0)
    reconnect_max_s: float = Field(60.0, gt=0)
    receive_maximum: int = Field(1000, ge=1, le=65535, description="MQTT 5: unacknowledged "
                                 "QoS 1 messages the broker may send us at once")
    max_payload_bytes: int = Field(1024 * 1024, ge=1, description="larger messages are "
                                   "dead-lettered (truncated) and acknowledged, not parsed")
    max_items: int = Field(10_000, ge=1, description="items per message; more: the message is "
                           "dead-lettered whole")

    @field_validator("shared_group")
    @classmethod
    def _group(cls, v: str | None) -> str | None:
        if v is not None and (not v or any(c in v for c in "/+#")):
            raise ValueError("a shared group name is one topic level without '/', '+' or '#'")
        return v

    @model_validator(mode="after")
    def _shared_needs_v5(self) -> MqttConfig:
        if self.shared_group and self.protocol != "5":
            raise ValueError("shared_group needs protocol: '5' (MQTT 5 shared subscriptions)")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        return self

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("mqtt://", "mqtts://")):
            raise ValueError("write the broker as mqtt://host:port or mqtts://host:port")
        return v


class HttpConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0, description="larger requests get 413")
    tokens_file: Path | None = Field(
        None, description="per-gateway bearer tokens (hashed); null = open ingest, for drills")
    store_timeout_s: float = Field(10.0, gt=0, description="wait this long for Kafka, then 503")
    retry_after_s: int = Field(5, ge=1, description="Retry-After of a 503")
    max_items: int = Field(100_000, ge=1, description="items (readings, records, events, "
                           "lines) per request; more refuses the request whole (413)")
    max_listed: int = Field(100, ge=1, description="rejected items listed in a reply; the "
                            "rest are counted (rejected_more)")
    rate_limit: str | None = Field(
        "1000000/minute", description="items one token (or open ingest) may send per period, "
                                      "e.g. 20000/second or 1000000/minute; more: 429 with "
                                      "Retry-After; null: no limit")

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                limits.parse(v)
            except ValueError:
                raise ValueError(f"rate_limit {v!r}: write it as <count>/<second|minute|hour>, "
                                 "e.g. 1000000/minute") from None
        return v


class GatewayConfig(_Strict):
    batching: Literal["adaptive", "fixed"] = Field(
        "adaptive", description="adaptive: a reading goes at once when its partition sent "
                                "nothing in the last linger_ms, else waits for the next envelope "
                                "(low rates: no wait; high rates: big envelopes); fixed: every "
                                "reading waits linger_ms")
    linger_ms: int = Field(20, ge=0, le=5000,
                           description="longest a reading waits to join an envelope (adaptive: "
                                       "the least time between two envelopes of a partition)")
    max_envelope: int = Field(500, ge=1, le=100_000)
    deadletter_raw_bytes: int = Field(1024, ge=16, description="raw payload kept per dead letter")
    deadletters_per_request: int = Field(100, ge=1, description="rejected items of one request "
                                         "or message dead-lettered one by one; the rest share "
                                         "one summary letter")
    unknown_station: Literal["accept", "reject"] = Field(
        "accept", description="a station missing from the registry: accept (as unregistered) "
                              "or reject to the dead letters")
    max_future: Duration = Field(Duration("5m"),
                                 description="event times further ahead of the clock are rejected")
    max_age: Duration = Field(Duration("7d"), description="event times older than this are rejected")
    ranges: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="metric: [min, max]; adds to or overrides the "
                                          "built-in physical ranges")
    dedup_keys: int = Field(200_000, ge=0, description="recent (station, metric, ts) keys "
                            "remembered to drop exact repeats; 0 = off")

    @field_validator("ranges")
    @classmethod
    def _ranges(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for metric, (lo, hi) in v.items():
            if lo > hi:
                raise ValueError(f"range of {metric}: min {lo} is above max {hi}")
        return v


class WorkerConfig(_Strict):
    rules_dir: Path = Path("rules")
    registry: Path | None = None
    data_dir: Path = Path(".yujing/worker")
    lateness: Duration = Field(Duration("1h"), description="readings older than this behind "
                                                         "their series are dropped")
    nodata_clock: Literal["wall", "event"] = Field(
        "wall", description="wall: silence measured on the clock; event: on the newest event time "
                            "(replays and the accelerated demo)")
    nodata_check_s: float = Field(5.0, gt=0, description="how often silent stations are checked")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus /metrics; 0 = off")
    metrics_host: str = "127.0.0.1"
    models_dir: Path | None = Field(None, description="anomaly model registry for anomaly() in "
                                                      "rules; checked for new versions on a timer")
    models_reload_s: float = Field(30.0, gt=0)
    models_key_file: Path | None = Field(None, description="the key model versions must be "
                                         "signed with (`yujing models keygen FILE`, mode 0600); "
                                         "null: $YUJING_MODELS_KEY_FILE or $YUJING_MODELS_KEY")
    checkpoint_interval: Duration = Field(
        Duration("5m"), description="at most how often each partition's window and warning state is "
                           "checkpointed; a restart re-processes the readings since then")
    coalesce_wait: Duration = Field(
        Duration("5ms"), description="a busy worker (engine passes over 40 % of its recent "
                                     "time) waits this long once before a pass, so envelopes "
                                     "on their way share it; 0 = never wait (streams/pacing.py)")
    commit_stall: Duration = Field(
        Duration("30s"), description="a partition whose offset commit has waited this long "
                                     "behind records that never came is read again from its "
                                     "committed offset (streams/commit_stall.py)")



class NotifyConfig(_Strict):
    default: list[str] = Field(default_factory=lambda: ["yujing://"])
    grades: dict[str, list[str]] = Field(default_factory=dict)
    cleared: list[str] | None = None
    language: Literal["zh", "en"] = "zh"

    @field_validator("grades")
    @classmethod
    def _grade_names(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name in v:
            if name not in GRADE_NAMES:
                raise ValueError(f"unknown grade {name!r}: use {', '.join(GRADE_NAMES)}")
        return v

    def urls_for(self, grade: str, cleared: bool = False) -> list[str]:
        if cleared and self.cleared is not None:
            return self.cleared
        return self.grades.get(grade) or self.default


class InfluxConfig(_Strict):
    """The InfluxDB sink (``yujing sink``); the whole section null = no sink."""

    url: str = Field(description="e.g. http://influx:8086")
    token: str = ""
    org: str = "yujing"
    bucket: str = "yujing"
    group_id: str = Field("yujing-sink", description="the sink's own Kafka consumer group")
    batch_points: int = Field(5000, ge=1, le=1_000_000)
    flush_ms: int = Field(1000, ge=10, le=60_000)
    buffer_points: int = Field(200_000, ge=1, description="consumption pauses when this many "
                               "points wait for InfluxDB")
    timeout_s: float = Field(10.0, gt=0)
    retry_max_s: float = Field(30.0, gt=0, description="longest pause between retries")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus /metrics; 0 = off")
    metrics_host: str = "127.0.0.1"


class Config(_Strict):
    kafka: KafkaConfig = KafkaConfig()
    mqtt: MqttConfig = MqttConfig()
    http: HttpConfig = HttpConfig()
    gateway: GatewayConfig = GatewayConfig()
    worker: WorkerConfig = WorkerConfig()
    notify: NotifyConfig = NotifyConfig()
    alerts: AlertsSettings = AlertsSettings()
    console: ConsoleSettings = ConsoleSettings()
    influx: InfluxConfig | None = None
    watchdog: WatchdogSettings = WatchdogSettings()
    cap: CapSettings = Field(CapSettings(), description="official signals in (CAP 1.2)")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    timezone: str = Field("Asia/Shanghai", description="IANA time zone of the people on duty: "
                          "local times in messages, the console and the demo")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}: write an IANA zone name such as "
                             "Asia/Shanghai, Asia/Urumqi or UTC") from None
        return v

    @model_validator(mode="after")
    def _readings_outlive_a_checkpoint(self) -> Config:
        kept, every = self.kafka.retention.readings, self.worker.checkpoint_interval
        if kept.ms <= every.ms:
            raise ValueError(f"kafka.retention.readings ({kept}) must be longer than "
                             f"worker.checkpoint_interval ({every}) plus the longest downtime "
                             "to recover from: a restarted worker re-reads the readings since "
                             "its checkpoint (default 7d)")
        return self

    @property
    def tz(self) -> ZoneInfo:
        """``timezone`` as a ZoneInfo (checked at load, so this never fails)."""
        return ZoneInfo(self.timezone)

    def resolve_paths(self, base: Path) -> Config:
        w = self.worker
        def fix(p: Path | None) -> Path | None:
            return p if p is None or p.is_absolute() else (base / p)

        self = self.model_copy(update={"alerts": self.alerts.model_copy(
            update={"roster": fix(self.alerts.roster),
                    "enterprises": fix(self.alerts.enterprises)})})
        tls = self.mqtt.tls
        if tls is not None:
            tls = tls.model_copy(update={k: fix(getattr(tls, k))
                                         for k in ("ca_file", "cert_file", "key_file")})
        return self.model_copy(update={"worker": w.model_copy(update={
            "rules_dir": fix(w.rules_dir), "registry": fix(w.registry), "data_dir": fix(w.data_dir),
            "models_dir": fix(w.models_dir), "models_key_file": fix(w.models_key_file)}),
            "http": self.http.model_copy(update={"tokens_file": fix(self.http.tokens_file)}),
            "mqtt": self.mqtt.model_copy(update={"tls": tls}),
            "kafka": self.kafka.model_copy(update={"home": fix(self.kafka.home),
                                                   "security": self.kafka.security.resolve_paths(base)})})


def load_config(path: str | Path | None) -> Config:
    """Load and validate config.yaml; a None path gives the defaults.

    Raises :class:`yujing.yamlsrc.SourceError` naming file, line, key and fix.
    """
    if path is None:
        return Config().resolve_paths(Path.cwd())
    src = load_yaml(path)
    if src.data is not None and not isinstance(src.data, dict):
        raise SourceError([Problem(str(path), 1, "", "the config must be a mapping of sections "
                                   "(kafka:, mqtt:, http:, ...)")])
    cfg: Config = validate(Config, src)
    cfg = cfg.resolve_paths(Path(path).resolve().parent)
    if problems := security_problems(cfg.kafka.security, src):
        raise SourceError(problems)
    return cfg
