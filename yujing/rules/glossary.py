"""The glossary: every metric and station field the packs use, named in Chinese and English
with its unit (``glossary.yaml``, shipped with the package), read once."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import pydantic
import yaml


class Word(pydantic.BaseModel, frozen=True, extra="forbid"):
    """One metric: its name and unit in both languages, and how it reads."""

    zh: str
    en: str
    unit_zh: str = ""
    unit_en: str = ""
    digits: int = 1
    kind: Literal["measure", "event", "confidence", "beaufort"] = "measure"
    event_zh: str = ""   # event: 「探测到火花」
    event_en: str = ""
    none_en: str = ""    # event, not happening: "no spark"
    thing_zh: str = ""   # confidence: what is detected (烟雾)
    thing_en: str = ""


class FieldWord(pydantic.BaseModel, frozen=True, extra="forbid"):
    zh: str
    en: str


class Glossary(pydantic.BaseModel, frozen=True, extra="forbid"):
    metrics: dict[str, Word]
    fields: dict[str, FieldWord]


@cache
def glossary() -> Glossary:
    """The glossary shipped with the package (read once)."""
    text = resources.files("yujing.rules").joinpath("glossary.yaml").read_text("utf-8")
    return Glossary.model_validate(yaml.safe_load(text))


def word(metric: str) -> Word:
    """The glossary's entry; a metric it lacks (a site's own pack) reads by its id."""
    return glossary().metrics.get(metric) or Word(zh=metric, en=metric)


def field(name: str) -> FieldWord:
    return glossary().fields.get(name) or FieldWord(zh=name, en=name)
