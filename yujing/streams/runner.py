"""One partition of ``yujing.readings`` and where its pipeline stands in it.

The decisions the worker makes per envelope and per checkpoint, without Faust,
Kafka or a clock, so they can be tested with plain envelopes and a fake ``now``:

* which envelope offsets the state already holds (skip), which leave a gap that
  must be re-processed first (catch up), which to apply;
* when a checkpoint is due, and what a checkpoint records (the snapshot, its
  sequence number and the offset of the last envelope in it);
* how a restored checkpoint, or the lack of one, sets the runner up.

The asyncio side (restore tasks, the replay consumer, writing to the table)
is :mod:`yujing.streams.state`; the agent's side is :mod:`yujing.streams.evaluator`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from yujing.envelope import Columns
from yujing.pipeline import Outcome, Pipeline


class Step(enum.Enum):
    SKIP = "skip"          # already in the state (restored or re-processed)
    CATCH_UP = "catch-up"  # the state ends before the envelope before this one
    APPLY = "apply"


@dataclass(frozen=True)
class Snapshot:
    """A checkpoint taken, not yet stored."""

    raw: bytes             # Pipeline.snapshot(), uncompressed
    seq: int
    offset: int            # last envelope in it


class PartitionRunner:
    """A pipeline and the offsets it has seen, for one partition.

    ``applied`` moves only after an envelope's events are sent (:meth:`done`), so an
    envelope whose sending failed is never taken for processed.
    """

    def __init__(self, partition: int, pipeline: Pipeline, applied: int = -1) -> None:
        self.partition = partition
        self.pipeline = pipeline
        self.applied = applied                 # last envelope offset in the pipeline's state
        self.seq = 0                           # of the last checkpoint written or restored
        self.checkpointed = -1                 # offset of that checkpoint
        self.last_checkpoint = float("-inf")   # when it was taken, on the caller's clock (s)
        self.writing: Any = None               # the edge's handle on a checkpoint being stored
        self.suspended = False                 # revoked, maybe not reassigned: write no checkpoint

    # -- envelopes -------------------------------------------------------------------------

    def step(self, offset: int) -> Step:
        """What to do with the envelope at ``offset``."""
        if offset <= self.applied:
            return Step.SKIP
        if self.applied >= 0 and offset > self.applied + 1:
            return Step.CATCH_UP  # the group's committed offset was ahead of the checkpoint
        return Step.APPLY

    def holds(self, offset: int) -> bool:
        """The state already contains the envelope at ``offset``."""
        return offset <= self.applied

    def handle(self, cols: Columns, now_ms: int) -> Outcome:
        return self.pipeline.handle(cols, now_ms)

    def done(self, offset: int) -> None:
        """The envelope at ``offset`` is in the state and its events are sent (or it was
        undecodable and dead-lettered)."""
        self.applied = offset

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint_due(self, now_s: float, interval_s: float) -> bool:
        """Something new since the last checkpoint, none being stored, still ours, and
        ``interval_s`` since the last one."""
        return (self.applied > self.checkpointed and self.writing is None
                and not self.suspended and now_s - self.last_checkpoint >= interval_s)

    def take_checkpoint(self, now_s: float) -> Snapshot:
        """Snapshot the pipeline as of ``applied``; the caller stores it."""
        raw = self.pipeline.snapshot()
        self.seq += 1
        self.checkpointed = self.applied
        self.last_checkpoint = now_s
        return Snapshot(raw, self.seq, self.applied)

    def restore_checkpoint(self, raw: bytes, seq: int, offset: int) -> None:
        """Continue from a stored checkpoint; the next checkpoint gets ``seq + 1``."""
        self.pipeline.restore(raw)
        self.applied = self.checkpointed = offset
        self.seq = seq

    def start_empty(self) -> None:
        """No checkpoint: start from nothing. The lifecycle forwards the first clear of each
        key, so warnings the book holds from before can still be closed by the rule."""
        self.pipeline.lifecycle.forward_first_clear = True

    def start_over(self, pipeline: Pipeline) -> None:
        """The restore failed half-way: drop what it loaded and start empty."""
        self.pipeline = pipeline
        self.start_empty()
        self.applied = self.checkpointed = -1
