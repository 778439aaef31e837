"""The ``alerts.notices:`` section of config.yaml: safety notices (安全提示/通知) to enterprises
(pydantic, unknown keys rejected).

Example::

    alerts:
      notices:
        remind_after: 30m     # an enterprise that has not acknowledged is reminded after this
        reminders: 2          # at most this many reminders; then it is listed 未确认
        link_ttl: 3d          # how long the acknowledge link in a notice works
        retention: 90d        # a notice is forgotten this long after it was sent
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from yujing.durations import Duration

DEFAULT_KINDS = ["安全提示", "防御提示", "停工提示", "通知"]


class NoticeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    remind_after: Duration = Field(Duration("30m"), description="an enterprise that has not "
                                   "acknowledged a notice is reminded this long after it was "
                                   "sent (and after each reminder)")
    reminders: int = Field(2, ge=0, le=20, description="reminders at most; an enterprise still "
                           "silent after the last is listed 未确认 (unconfirmed) to the bureau")
    link_ttl: Duration = Field(Duration("3d"), description="how long a notice's acknowledge "
                               "link works")
    retention: Duration = Field(Duration("90d"), description="a notice (its tracking and "
                                "acknowledgements) is forgotten this long after it was sent; "
                                "every tick looks at the notices kept, so they must not pile up")
    kinds: list[str] = Field(default_factory=lambda: list(DEFAULT_KINDS), min_length=1,
                             description="the kinds a notice may be (防御提示, 停工提示, ...)")
    title_max: int = Field(100, ge=1, le=1_000, description="characters of a title")
    body_max: int = Field(4_000, ge=1, le=100_000, description="characters of a body")
