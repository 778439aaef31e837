"""The worker's core without Faust: envelope columns → findings → warning events.

``core`` is the pipeline itself (engine, lifecycle, no-data, snapshots);
``models_view`` is how its rules find anomaly models. The Faust agent, the
in-memory pipeline tests and the backtest all run this same code.
"""

from yujing.pipeline.core import Outcome, Pipeline
from yujing.pipeline.models_view import ModelsView

__all__ = ["ModelsView", "Outcome", "Pipeline"]
