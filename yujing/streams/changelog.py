"""The warning book's changelog records stay recoverable on Tansu; what a recovery restored.

Faust's recovery reads a changelog partition up to the end offset the broker reports
(ListOffsets). Tansu reports the base offset of the partition's last record batch plus
one, so when the producer packed several records into that last batch, every record
after its first is silently left out of the next recovery. The book writes in bursts
(a storm raises dozens of incidents in one partition; a silence or an acknowledgement
round touches many), and while one produce request is in flight the producer packs
the next writes into one batch, so a worker killed after a burst came back without
part of it: acknowledgements, silences, what was already delivered.

:class:`Fence` closes that gap: after a book step that wrote a table, it waits until the
producer has delivered everything (those records are acknowledged, in batches of their
own) and then sends one tombstone of a key nobody uses to each changelog partition the
step wrote. That tombstone starts a later batch, so no record of a finished step can sit
after the first record of a last batch; recovering it deletes a key that does not
exist. Apache Kafka reports true end offsets and needs none of this; it costs one
produce round trip per book step that wrote, on either broker.

:func:`digest` fingerprints a table's live records (sorted keys, values in one
canonical JSON form), so the worker's log after a recovery can be compared with the
changelog read back from the broker (tests/integration/test_book_recovery.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import msgspec

FENCE_KEY = "~fence"   # no book key looks like this: they all start with "<partition>:"

_enc = msgspec.json.Encoder(order="sorted")


class Written(Protocol):
    """A book table that remembers whether it was written since the last fence."""

    written: bool

    def fence(self, p: int) -> None:
        """Send a tombstone of :data:`FENCE_KEY` to changelog partition ``p``."""


class Fence:
    """After each book step: flush, then one tombstone per changelog partition written."""

    def __init__(self, tables: Iterable[Written], flush: Callable[[], Awaitable[None]]) -> None:
        self.tables = list(tables)
        self.flush = flush
        self.fences = 0

    async def after_step(self, p: int) -> None:
        """Close the step just processed on partition ``p`` (every book write of a step goes
        to the partition of the message being processed)."""
        written = [t for t in self.tables if t.written]
        if not written:
            return
        await self.flush()
        for t in written:
            t.fence(p)
            t.written = False
        self.fences += 1


def canonical(value: Any) -> bytes:
    """One JSON form of a table value, whether it is the encoded record (bytes, as written
    and as in the changelog) or already decoded (as Faust's recovery hands it back)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = msgspec.json.decode(bytes(value))
    return _enc.encode(value)


def digest(items: Iterable[tuple[str, Any]]) -> tuple[int, str]:
    """(number of live records, fingerprint) of a table's ``(key, value)`` pairs; ``None``
    values (deleted keys) are not live."""
    h = hashlib.sha256()
    n = 0
    for key, value in sorted((k, canonical(v)) for k, v in items if v is not None):
        h.update(key.encode() + b"\0" + value + b"\n")
        n += 1
    return n, h.hexdigest()[:16]


def partition_of(key: str) -> int | None:
    """The partition a book key belongs to (``"3:..."`` → 3), None for other keys."""
    head, sep, _ = key.partition(":")
    return int(head) if sep and head.isdigit() else None
