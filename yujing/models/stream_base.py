"""What the worker's streaming scorers share (stream.py per station, group_stream.py per
group): which model a saved state belongs to, and arrays as checkpoint values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

Series = tuple[np.ndarray, np.ndarray]
NONE_SCORED = np.iinfo(np.int64).min  # "nothing scored yet" as a timestamp


def model_key(model: Any) -> str:
    """What a checkpointed state belongs to: the signed payload's sha256 (the same model
    after a restart), else the object (a model fitted in memory)."""
    sha = (getattr(model, "meta", None) or {}).get("sha256")
    return f"{model.kind}:{sha}" if sha else f"{model.kind}@{id(model)}"


def array_bytes(a: np.ndarray) -> dict[str, Any]:
    """An array as plain values and little-endian bytes (a checkpoint's msgpack)."""
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.newbyteorder("<").str, "shape": list(a.shape),
            "data": a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()}


def array_of(d: Mapping[str, Any]) -> np.ndarray:
    """The array :func:`array_bytes` wrote."""
    return np.frombuffer(d["data"], dtype=np.dtype(d["dtype"])).reshape(d["shape"]).astype(
        np.dtype(d["dtype"]).newbyteorder("="))
