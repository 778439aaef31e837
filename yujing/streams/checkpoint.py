"""How a pipeline snapshot is stored in a key-value table, and found again. Pure.

A snapshot is zlib-compressed and cut into chunks below Kafka's default record
limit; a manifest (sequence number, offset, sizes, CRC) is written once its chunks
are stored. Two slots per partition alternate (``seq % 2``), so a checkpoint cut
short by a crash, or a changelog recovery that misses its tail, leaves the
previous one whole. Keys: ``"<partition>:<slot>:m"`` for the manifest,
``"<partition>:<slot>:<i>"`` for chunk ``i``.

The table is anything with ``get(key)`` and ``put(partition, key, value)``: the
Faust table through :class:`yujing.streams.tables.CheckpointTable` in the worker,
:class:`MemoryTable` in tests and benchmarks. Records written by the code before
this module existed (commit fd4cf5b) read back unchanged.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, MutableMapping
from typing import Any

import msgspec

log = logging.getLogger("yujing.state")

CHUNK_BYTES = 512 * 1024     # below Kafka's default 1 MB message.max.bytes, with room
ZLIB_LEVEL = 1               # 3-5x faster than the default level for a few % more bytes


class Manifest(msgspec.Struct):
    seq: int
    offset: int              # last envelope of yujing.readings[p] in the snapshot
    chunks: int
    raw_bytes: int
    stored_bytes: int
    crc: int                 # of the compressed document
    created_ms: int


_manifest_dec = msgspec.msgpack.Decoder(Manifest)
_enc = msgspec.msgpack.Encoder()


def encode_checkpoint(raw: bytes, seq: int, offset: int, created_ms: int,
                      chunk: int = CHUNK_BYTES) -> tuple[bytes, list[bytes]]:
    """(manifest, chunks) of one snapshot. The worker runs it in a thread."""
    z = zlib.compress(raw, ZLIB_LEVEL)
    parts = [z[i:i + chunk] for i in range(0, len(z), chunk)] or [b""]
    m = Manifest(seq, offset, len(parts), len(raw), len(z), zlib.crc32(z), created_ms)
    return _enc.encode(m), parts


def slot_keys(p: int, slot: int) -> tuple[str, Callable[[int], str]]:
    """(manifest key, chunk key of index i) of one slot of partition ``p``."""
    return f"{p}:{slot}:m", lambda i: f"{p}:{slot}:{i}"


def table_records(p: int, seq: int, manifest: bytes, parts: list[bytes]
                  ) -> tuple[list[tuple[str, bytes]], tuple[str, bytes]]:
    """The (key, value) records of checkpoint ``seq``: its chunks, and its manifest, which
    must be written only once the chunks are stored."""
    mkey, ckey = slot_keys(p, seq % 2)
    return [(ckey(i), part) for i, part in enumerate(parts)], (mkey, manifest)


def load_checkpoint(get: Callable[[str], Any], p: int) -> tuple[Manifest, bytes] | None:
    """The newest whole checkpoint of partition ``p`` from a table's ``get``, or None."""
    found = []
    for slot in (0, 1):
        mkey, ckey = slot_keys(p, slot)
        raw = _bytes(get(mkey))
        if raw is None:
            continue
        try:
            found.append((_manifest_dec.decode(raw), ckey))
        except msgspec.DecodeError:
            log.warning("partition %d: checkpoint manifest in slot %d is unreadable", p, slot)
    for m, ckey in sorted(found, key=lambda x: -x[0].seq):
        parts = [_bytes(get(ckey(i))) for i in range(m.chunks)]
        z = b"".join(x for x in parts if x is not None)
        if None in parts or len(z) != m.stored_bytes or zlib.crc32(z) != m.crc:
            log.warning("partition %d: checkpoint %d (offset %d) is incomplete; trying an older "
                        "one", p, m.seq, m.offset)
            continue
        return m, zlib.decompress(z)
    return None


def has_manifest(get: Callable[[str], Any], p: int) -> bool:
    """Whether a checkpoint manifest of partition ``p`` is in the table (whole or not)."""
    return any(_bytes(get(slot_keys(p, slot)[0])) is not None for slot in (0, 1))


def _bytes(v: Any) -> bytes | None:
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):  # a codec that decoded the record to text
        return v.encode("latin-1")
    raise TypeError(f"unexpected checkpoint value of type {type(v).__name__}")


class MemoryTable:
    """The checkpoint table in a dict (tests, benchmarks); ``sent`` lists what a changelog
    would have received: (partition, key, size)."""

    def __init__(self, data: MutableMapping[str, Any] | None = None) -> None:
        self.data = data if data is not None else {}
        self.sent: list[tuple[int, str, int]] = []

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def put(self, p: int, key: str, value: bytes) -> None:
        self.data[key] = value
        self.sent.append((p, key, len(value)))


def dict_table(d: MutableMapping[str, Any] | None = None) -> MemoryTable:
    """A :class:`MemoryTable`, over ``d`` if given."""
    return MemoryTable(d)
