"""The ``alerts.reports:`` section of config.yaml: report-back (回报) rules (pydantic, unknown
keys rejected).

Example::

    alerts:
      reports:
        required_for: [orange, red]   # a manual clear (销警) of these grades needs a report first
        photos_max: 10
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

GradeName = Literal["blue", "yellow", "orange", "red"]


class ReportSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required_for: list[GradeName] = Field(
        default_factory=lambda: ["orange", "red"],
        description="grades whose manual clear (销警) is refused until a report-back (回报) is "
                    "in; a rule's own clear still closes them, marked 待回报 until one arrives")
    photos_max: int = Field(10, ge=0, le=100, description="photo links in one report")
    measures_max: int = Field(2_000, ge=1, le=100_000, description="characters of the measures")
    people_max: int = Field(1_000_000, ge=1, description="largest number of people in a report")
