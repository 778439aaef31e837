"""Anomaly detectors (scikit-learn and robust statistics), their registry and evaluation.

Pure: no broker, MQTT, HTTP or sink library is imported here (tests/unit/test_purity.py).
"""

from __future__ import annotations

from yujing.models.base import Detector, SeriesState
from yujing.models.baseline import SeasonalBaseline
from yujing.models.ensemble import EnsembleDetector
from yujing.models.errors import ChecksumError, ModelError, SchemaError, SignatureError
from yujing.models.iforest import IsolationForestDetector
from yujing.models.persist import load_model
from yujing.models.signing import ModelKey
from yujing.models.spike import SpikeDetector

KINDS: dict[str, type[Detector]] = {
    SeasonalBaseline.kind: SeasonalBaseline,
    IsolationForestDetector.kind: IsolationForestDetector,
    SpikeDetector.kind: SpikeDetector,
    EnsembleDetector.kind: EnsembleDetector,
}


def make_detector(kind: str, **hyper) -> Detector:
    """A fresh detector of a kind: baseline, iforest, spike or ensemble."""
    try:
        cls = KINDS[kind]
    except KeyError:
        raise ModelError(f"unknown detector {kind!r}: choose one of "
                         f"{', '.join(sorted(KINDS))}") from None
    return cls(**hyper)


__all__ = ["KINDS", "ChecksumError", "Detector", "EnsembleDetector", "IsolationForestDetector",
           "ModelError", "ModelKey", "SchemaError", "SeasonalBaseline", "SeriesState",
           "SignatureError", "SpikeDetector", "load_model", "make_detector"]
