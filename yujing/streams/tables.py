"""The Faust table that holds pipeline checkpoints, seen as ``get`` and ``put``.

The layout of the records is :mod:`yujing.streams.checkpoint`'s; this module only
knows how Faust must be told about them.
"""

from __future__ import annotations

import json
from typing import Any

import faust

TABLE_NAME = "yujing-pipeline"


class CheckpointTable:
    """``get(key)`` and ``put(partition, key, value)`` on a changelog-backed Faust table."""

    def __init__(self, table: Any) -> None:
        self.table = table

    @classmethod
    def declare(cls, app: faust.App, partitions: int) -> CheckpointTable:
        # value_type=bytes, not only a raw schema: Faust's changelog recovery decodes values with
        # the serializer derived from value_type (JSON otherwise), and one undecodable record
        # stalls the recovery of every table.
        return cls(app.Table(TABLE_NAME, default=None, partitions=partitions,
                             key_type=str, value_type=bytes,
                             schema=faust.Schema(key_type=str, value_type=bytes,
                                                 key_serializer="json", value_serializer="raw")))

    def get(self, key: str) -> Any:
        return self.table.get(key)

    @property
    def changelog(self) -> str:
        """The changelog topic's name (read directly when a recovery left a hole in it)."""
        return self.table.changelog_topic.get_topic_name()

    @staticmethod
    def key_of(raw: bytes | None) -> str | None:
        """A changelog record's key as the table's (``key_serializer="json"``)."""
        try:
            key = json.loads(raw) if raw is not None else None
        except ValueError:
            return None
        return key if isinstance(key, str) else None

    def put(self, p: int, key: str, value: bytes) -> None:
        # Written outside the agent's event context, so the partition is given explicitly:
        # the table's changelog partition p is recovered by whoever owns readings partition p.
        self.table.data[key] = value
        self.table.send_changelog(p, key, value)
