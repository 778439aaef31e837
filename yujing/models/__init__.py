"""Anomaly detectors (scikit-learn and robust statistics), their registry and evaluation.

Pure: no broker, MQTT, HTTP or sink library is imported here (tests/unit/test_purity.py).
"""

from __future__ import annotations

from yujing.models.base import Detector, SeriesState
from yujing.models.baseline import SeasonalBaseline
from yujing.models.ensemble import EnsembleDetector
from yujing.models.entropy import EntropyDetector
from yujing.models.errors import ChecksumError, ModelError, SchemaError, SignatureError
from yujing.models.iforest import IsolationForestDetector
from yujing.models.mcd import RobustMahalanobis
from yujing.models.novelty import NoveltyDetector
from yujing.models.pca import PcaT2Q
from yujing.models.persist import load_model
from yujing.models.residual import StationResidual
from yujing.models.signing import ModelKey
from yujing.models.spike import SpikeDetector
from yujing.models.station import StationDetector

KINDS: dict[str, type[Detector]] = {
    SeasonalBaseline.kind: SeasonalBaseline,
    IsolationForestDetector.kind: IsolationForestDetector,
    SpikeDetector.kind: SpikeDetector,
    EnsembleDetector.kind: EnsembleDetector,
    NoveltyDetector.kind: NoveltyDetector,
    EntropyDetector.kind: EntropyDetector,
}

# station-level detectors: one model over several metrics of a station (station.py); they
# score station rows, not one series, so the per-series contract and NAB do not apply
STATION_KINDS: dict[str, type[StationDetector]] = {
    PcaT2Q.kind: PcaT2Q,
    RobustMahalanobis.kind: RobustMahalanobis,
    StationResidual.kind: StationResidual,
}
ALL_KINDS: dict[str, type[Detector]] = {**KINDS, **STATION_KINDS}


def make_detector(kind: str, **hyper) -> Detector:
    """A fresh detector of a kind: baseline, iforest, spike, ensemble, novelty, entropy (one
    metric) or pca, mcd, residual (station models over several metrics)."""
    try:
        cls = ALL_KINDS[kind]
    except KeyError:
        raise ModelError(f"unknown detector {kind!r}: choose one of "
                         f"{', '.join(sorted(ALL_KINDS))}") from None
    return cls(**hyper)


# the group model (group.py) last: it imports alarm.py, which needs make_detector above
from yujing.models.group import GroupNeighbours  # noqa: E402
from yujing.models.sensor_faults import SensorFaults  # noqa: E402

# a group of stations scored together (neighbours.py): a model kind of the registry
# (persist.py loads it), trained and scored through its own path (train.py, labelled.py);
# not in ALL_KINDS, the kinds that score one series or one station in a worker's stream
# sensor-faults (sensor_faults.py): the bench's best fault detector, neighbours among its parts
GROUP_KINDS: dict[str, type[Detector]] = {GroupNeighbours.kind: GroupNeighbours,
                                          SensorFaults.kind: SensorFaults}

__all__ = ["ALL_KINDS", "GROUP_KINDS", "KINDS", "STATION_KINDS", "ChecksumError", "Detector",
           "EnsembleDetector", "EntropyDetector", "GroupNeighbours",
           "IsolationForestDetector", "ModelError", "ModelKey", "NoveltyDetector", "PcaT2Q",
           "RobustMahalanobis",
           "SchemaError", "SeasonalBaseline", "SensorFaults", "SeriesState", "SignatureError",
           "SpikeDetector",
           "StationDetector", "StationResidual", "load_model", "make_detector"]
