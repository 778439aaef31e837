"""Batch envelopes: the columnar record that travels on ``yujing.readings``.

One Kafka record carries hundreds of readings of one partition, because Faust
pays about 0.3 ms per record here while decoding columns is nearly free.
Columns are dictionary-encoded (station and metric names once, indices per
reading) and numeric columns are raw little-endian arrays inside msgpack, so
the worker gets numpy arrays without a per-reading loop.

Forecasts (:class:`yujing.domain.Forecast`) ride in the same envelope as their station's
readings, so they reach the worker on the station's partition in order with them: an
envelope holding any gets version 2 and one more column, ``iss`` (int64 issue time per
row, 0 for an observation; ``ts`` is then the valid time). An envelope without forecasts
is version 1 and byte for byte what it always was, and a worker older than forecasts
refuses a version 2 envelope with its reason instead of taking forecasts for observations.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

import msgspec
import numpy as np

from yujing.domain import Forecast, Reading

VERSION = 1
FORECAST_VERSION = 2  # an envelope holding forecasts: one more column, ``iss``


def partition_for(station: str, partitions: int) -> int:
    """Stable station → partition map, so one station's readings stay in order."""
    return zlib.crc32(station.encode()) % partitions


class Envelope(msgspec.Struct, array_like=True):
    v: int
    partition: int
    recv_ms: int
    stations: list[str]
    metrics: list[str]
    si: bytes  # uint32 index into stations, per reading
    mi: bytes  # uint32 index into metrics, per reading
    ts: bytes  # int64 event time, epoch ms
    val: bytes  # float64

    def __len__(self) -> int:
        return len(self.ts) // 8


class ForecastEnvelope(Envelope, array_like=True):
    """Version 2: the columns of :class:`Envelope` and the issue time of every row. The
    decoder reads both versions with this type (``iss`` is empty in version 1)."""

    iss: bytes = b""  # int64 issue time, epoch ms; 0 for an observation


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(ForecastEnvelope)


@dataclass
class Columns:
    """A decoded envelope as numpy arrays (zero-copy views of the record)."""

    partition: int
    recv_ms: int
    stations: list[str]
    metrics: list[str]
    si: np.ndarray
    mi: np.ndarray
    ts: np.ndarray
    val: np.ndarray
    issued: np.ndarray | None = None  # per row: the forecast's issue time, 0 for observations

    def __len__(self) -> int:
        return int(self.ts.size)

    def reading(self, i: int) -> Reading:
        st, m = self.stations[int(self.si[i])], self.metrics[int(self.mi[i])]
        if self.issued is not None and self.issued[i]:
            return Forecast(st, m, int(self.ts[i]), float(self.val[i]), int(self.issued[i]))
        return Reading(st, m, int(self.ts[i]), float(self.val[i]))

    def split(self) -> tuple[Columns, Columns | None]:
        """(observations, forecasts or None): the two go separate ways in the worker."""
        if self.issued is None:
            return self, None
        fc = self.issued != 0
        if not fc.any():
            return Columns(*self._take(slice(None))), None
        return Columns(*self._take(~fc)), Columns(*self._take(fc), self.issued[fc])

    def _take(self, rows: np.ndarray | slice) -> tuple:
        return (self.partition, self.recv_ms, self.stations, self.metrics, self.si[rows],
                self.mi[rows], self.ts[rows], self.val[rows])


_station, _metric, _ts, _value = (attrgetter(a) for a in ("station", "metric", "ts", "value"))


class EnvelopeBuilder:
    """Accumulates readings for one partition until the gateway flushes them."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.clear()

    def clear(self) -> None:
        self._stations: dict[str, int] = {}
        self._metrics: dict[str, int] = {}
        self._si: list[int] = []
        self._mi: list[int] = []
        self._ts: list[int] = []
        self._val: list[float] = []
        self._iss: list[int] = []  # filled only once a forecast is added
        self.recv_ms = 0

    def __len__(self) -> int:
        return len(self._ts)

    def add(self, r: Reading, recv_ms: int) -> None:
        if not self._ts:
            self.recv_ms = recv_ms
        si = self._stations.setdefault(r.station, len(self._stations))
        mi = self._metrics.setdefault(r.metric, len(self._metrics))
        self._si.append(si)
        self._mi.append(mi)
        self._ts.append(r.ts)
        self._val.append(r.value)
        if isinstance(r, Forecast):
            self._iss.extend([0] * (len(self._ts) - 1 - len(self._iss)))
            self._iss.append(r.issued)

    def add_many(self, readings: Sequence[Reading], recv_ms: int) -> None:
        """:meth:`add` for each reading, as column appends (no per-reading call)."""
        if set(map(type, readings)) != {Reading}:   # forecasts, or nothing: one by one
            for r in readings:
                self.add(r, recv_ms)
            return
        if not self._ts:
            self.recv_ms = recv_ms
        st, mt = self._stations, self._metrics
        self._si.extend([st.setdefault(s, len(st)) for s in map(_station, readings)])
        self._mi.extend([mt.setdefault(m, len(mt)) for m in map(_metric, readings)])
        self._ts.extend(map(_ts, readings))
        self._val.extend(map(_value, readings))

    def build(self) -> bytes:
        cols = (self.partition, self.recv_ms, list(self._stations), list(self._metrics),
                np.asarray(self._si, "<u4").tobytes(), np.asarray(self._mi, "<u4").tobytes(),
                np.asarray(self._ts, "<i8").tobytes(), np.asarray(self._val, "<f8").tobytes())
        if not self._iss:
            return _encoder.encode(Envelope(VERSION, *cols))
        iss = self._iss + [0] * (len(self._ts) - len(self._iss))
        return _encoder.encode(ForecastEnvelope(FORECAST_VERSION, *cols,
                                                np.asarray(iss, "<i8").tobytes()))


def encode_readings(readings: list[Reading], partition: int = 0, recv_ms: int = 0) -> bytes:
    b = EnvelopeBuilder(partition)
    for r in readings:
        b.add(r, recv_ms)
    return b.build()


def decode(payload: bytes) -> Columns:
    """Decode an envelope; raises ValueError with the reason on a bad record."""
    try:
        env = _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a yujing envelope: {exc}") from None
    if env.v not in (VERSION, FORECAST_VERSION):
        raise ValueError(f"envelope version {env.v} is not supported (this worker reads "
                         f"{VERSION} and {FORECAST_VERSION})")
    n = len(env.ts) // 8
    if not (len(env.si) == len(env.mi) == 4 * n and len(env.val) == 8 * n and len(env.ts) == 8 * n):
        raise ValueError("envelope columns differ in length")
    if (env.v == FORECAST_VERSION) != (len(env.iss) == 8 * n and n > 0):
        raise ValueError("envelope issue-time column does not fit its version")
    si = np.frombuffer(env.si, "<u4")
    mi = np.frombuffer(env.mi, "<u4")
    if n and (si.max() >= len(env.stations) or mi.max() >= len(env.metrics)):
        raise ValueError("envelope index out of range")
    return Columns(env.partition, env.recv_ms, env.stations, env.metrics, si, mi,
                   np.frombuffer(env.ts, "<i8"), np.frombuffer(env.val, "<f8"),
                   np.frombuffer(env.iss, "<i8") if env.v == FORECAST_VERSION else None)


def concat(parts: Sequence[Columns]) -> Columns:
    """Consecutive observation envelopes of one partition as one, rows in arrival order.

    The worker evaluates what is already waiting in one engine pass (streams/evaluator.py):
    its cost per pass is largely fixed, and the gateway's envelope boundaries carry no
    meaning (every reading is an evaluation point, lateness is judged in arrival order), so
    this is the envelope the gateway would have built had it waited. Station and metric
    names stay unique (the dictionaries are merged); ``recv_ms`` is the first part's."""
    if len(parts) == 1:
        return parts[0]
    stations: dict[str, int] = {}
    metrics: dict[str, int] = {}
    si, mi = [], []
    for c in parts:
        if c.issued is not None:
            raise ValueError("forecast envelopes are evaluated on their own")
        smap = np.fromiter((stations.setdefault(s, len(stations)) for s in c.stations),
                           np.uint32, len(c.stations))
        mmap = np.fromiter((metrics.setdefault(m, len(metrics)) for m in c.metrics),
                           np.uint32, len(c.metrics))
        si.append(smap[c.si])
        mi.append(mmap[c.mi])
    return Columns(parts[0].partition, parts[0].recv_ms, list(stations), list(metrics),
                   np.concatenate(si), np.concatenate(mi),
                   np.concatenate([c.ts for c in parts]), np.concatenate([c.val for c in parts]))


def count(payload: bytes) -> int:
    """Number of readings in an envelope without building arrays."""
    return len(_decoder.decode(payload))
