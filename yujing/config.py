"""config.yaml as pydantic models; ``load_config`` gives exact, located errors.

Unset broker addresses mean "start the embedded one": ``kafka.bootstrap`` null
starts Tansu, ``mqtt.url`` null starts amqtt. Paths in the file are relative to
the file's own folder, so a config works from any working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .durations import parse_duration_ms
from .yamlsrc import SourceError, load_yaml, validate
from .domain import GRADE_NAMES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Topics(_Strict):
    readings: str = "yujing.readings"
    warnings: str = "yujing.warnings"
    deadletter: str = "yujing.deadletter"


class KafkaConfig(_Strict):
    bootstrap: str | None = Field(
        None, description="host:port[,host:port]; null starts the embedded Tansu broker")
    partitions: int = Field(4, ge=1, le=1024,
                            description="one partition count for every topic (Faust needs it)")
    topics: Topics = Topics()
    embedded_port: int = Field(0, ge=0, le=65535, description="0 picks a free port")
    compression: Literal["none", "gzip"] = "gzip"
    rebalance_timeout_s: float | None = Field(
        None, gt=0, description="null: 6 s on the embedded broker, Faust's default otherwise")
    session_timeout_s: float | None = Field(None, gt=0)


class MqttConfig(_Strict):
    url: str | None = Field(None, description="mqtt://[user:pass@]host:port; null starts amqtt")
    embedded_port: int = Field(0, ge=0, le=65535)
    topic: str = "yujing/+/+/+"
    qos: Literal[0, 1, 2] = 1
    client_id: str = "yujing-gateway"

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("mqtt://", "mqtts://")):
            raise ValueError("write the broker as mqtt://host:port or mqtts://host:port")
        return v


class HttpConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)


class GatewayConfig(_Strict):
    linger_ms: int = Field(50, ge=0, le=5000,
                           description="longest a reading waits to join an envelope")
    max_envelope: int = Field(500, ge=1, le=100_000)
    deadletter_raw_bytes: int = Field(1024, ge=16, description="raw payload kept per dead letter")


class WorkerConfig(_Strict):
    rules_dir: Path = Path("rules")
    registry: Path | None = None
    data_dir: Path = Path(".yujing/worker")
    lateness: str = Field("1h", description="readings older than this behind their series are dropped")
    nodata_clock: Literal["wall", "event"] = Field(
        "wall", description="wall: silence measured on the clock; event: on the newest event time "
                            "(replays and the accelerated demo)")
    nodata_check_s: float = Field(5.0, gt=0, description="how often silent stations are checked")

    @field_validator("lateness")
    @classmethod
    def _lateness(cls, v: str) -> str:
        # Checked here so a typo ('1hour') is a located config error, not a crash at start.
        parse_duration_ms(v)
        return v


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


class Config(_Strict):
    kafka: KafkaConfig = KafkaConfig()
    mqtt: MqttConfig = MqttConfig()
    http: HttpConfig = HttpConfig()
    gateway: GatewayConfig = GatewayConfig()
    worker: WorkerConfig = WorkerConfig()
    notify: NotifyConfig = NotifyConfig()
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def resolve_paths(self, base: Path) -> "Config":
        w = self.worker
        fix = lambda p: p if p is None or p.is_absolute() else (base / p)  # noqa: E731
        return self.model_copy(update={"worker": w.model_copy(update={
            "rules_dir": fix(w.rules_dir), "registry": fix(w.registry), "data_dir": fix(w.data_dir)})})


def load_config(path: str | Path | None) -> Config:
    """Load and validate config.yaml; a None path gives the defaults.

    Raises :class:`yujing.yamlsrc.SourceError` naming file, line, key and fix.
    """
    if path is None:
        return Config().resolve_paths(Path.cwd())
    src = load_yaml(path)
    if src.data is not None and not isinstance(src.data, dict):
        from .yamlsrc import Problem
        raise SourceError([Problem(str(path), 1, "", "the config must be a mapping of sections "
                                   "(kafka:, mqtt:, http:, ...)")])
    cfg: Config = validate(Config, src)
    return cfg.resolve_paths(Path(path).resolve().parent)
