"""The ``watchdog:`` section of config.yaml (pydantic, unknown keys rejected).

Kept beside the checks that use it (``selfcheck.py``), so config.py only names the
section. The defaults suit ``yujing run`` on one machine: a stalled worker is reported
after a minute of unconsumed readings, a process or broker that does not answer after
30 s, and a fault is repeated every 30 minutes until it clears.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from yujing.durations import Duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WatchdogSettings(_Strict):
    """Who watches the watchman: thresholds of the system's own fault checks (系统自身故障)."""

    enabled: bool = Field(True, description="`yujing run` starts the watchdog as a child; "
                          "deployments run `yujing watchdog` under its own unit instead")
    host: str = Field("127.0.0.1", description="where the watchdog serves /healthz and /heartbeat")
    port: int = Field(0, ge=0, le=65535, description="0: `yujing run` picks a free port and "
                      "tells its gateway; `yujing watchdog` then listens on a free port too")
    url: str | None = Field(None, description="where gateways read the watchdog's status, e.g. "
                            "http://watchdog-host:9109; null: http://host:port when port is set")
    interval: Duration = Field(Duration("5s"), description="how often every part is sampled")
    probe_timeout: Duration = Field(
        Duration("3s"), description="a probe unanswered this long failed: a frozen process "
                                    "still accepts connections and never answers")
    stall_after: Duration = Field(Duration("60s"), description="the worker group's committed "
                                  "offsets stood still this long while readings waited (keep it "
                                  "well above Faust's commit interval, 2.8 s)")
    unreachable_after: Duration = Field(
        Duration("30s"), description="Kafka, the gateway, the worker's or the sink's metrics "
                                     "did not answer this long")
    mqtt_after: Duration = Field(Duration("30s"), description="the gateway's MQTT session down "
                                 "this long")
    store_after: Duration = Field(Duration("30s"), description="the gateway's envelopes failed "
                                  "with none stored this long (it lost Kafka)")
    backlog_points: int = Field(50_000, ge=1, description="sink backlog (points) above which a "
                                "backlog that does not shrink is a fault")
    backlog_after: Duration = Field(Duration("2m"), description="... for this long")
    channel_failures: int = Field(3, ge=1, description="failed deliveries in a row on one "
                                  "notification channel (apprise scheme) make it faulty")
    channel_after: Duration = Field(Duration("10m"), description="... or failures without a "
                                    "single success for this long")
    repeat: Duration = Field(Duration("30m"), description="repeat a fault's message this often "
                             "while it lasts; 0s: only once")
    retry: Duration = Field(Duration("1m"), description="after a failed delivery of the "
                            "watchdog's own message, try again this much later")
    notify: list[str] | None = Field(
        None, description="apprise URLs of the duty room for the system's own faults; null: "
                          "notify.default. Sent directly, never through Kafka or the worker")
    ping_url: str | None = Field(
        None, description="dead man's switch: fetched every ping_interval while the watchdog "
                          "runs and nothing is faulty (healthchecks.io, an Alertmanager "
                          "Watchdog receiver); it stops when anything fails, so the outside "
                          "monitor notices")
    ping_interval: Duration = Field(Duration("1m"))

    @field_validator("interval", "probe_timeout", "ping_interval")
    @classmethod
    def _positive(cls, v: Duration) -> Duration:
        if v.ms <= 0:
            raise ValueError("must be longer than 0s, e.g. 5s")
        return v

    @field_validator("url", "ping_url")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("write an http:// or https:// URL")
        return v

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> WatchdogSettings:
        if self.probe_timeout.ms > self.interval.ms * 4:
            raise ValueError(f"probe_timeout ({self.probe_timeout}) must be at most four "
                             f"intervals ({self.interval}): the heartbeat would go stale "
                             "while the watchdog waits")
        return self

    def status_url(self, exported: str | None = None) -> str | None:
        """Where a gateway reads the watchdog: ``url``, else host:port when a port is set, else
        what ``yujing run`` exported to its children (``exported``), else None (no watchdog)."""
        if self.url:
            return self.url.rstrip("/")
        if self.port:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            return f"http://{host}:{self.port}"
        return exported or None
