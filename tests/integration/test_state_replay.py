"""streams/state.py against a real broker (Tansu and Apache Kafka), without Faust: a checkpoint plus
the re-processing of the readings after it gives the same events as one uninterrupted
pipeline, and re-processing stops where it is told (the agent's catch-up)."""

from __future__ import annotations

import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer

from yujing.connectors.kafka import ensure_topics
from yujing.domain import Reading
from yujing.envelope import decode, encode_readings
from yujing.pipeline import Pipeline
from yujing.rules.loader import load_rules
from yujing.stations import load_registry
from yujing.streams.state import PartitionState, Pipelines, dict_table, load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
MIN = 60_000
T0 = 1_750_000_000_000 - 1_750_000_000_000 % 3_600_000


def storm_envelopes() -> list[bytes]:
    """Six hours of minute rain at two gauges (blue, orange, red, clear), 30 minutes a record."""
    out = []
    for part in range(12):
        rs = [Reading(st, "rain_mm", T0 + m * MIN, (1.4 if st.endswith("1") else 0.7)
                      if 60 <= m < 200 else 0.0)
              for m in range(part * 30, part * 30 + 30) for st in ("DG-HM-R01", "DG-CA-R01")]
        out.append(encode_readings(rs))
    return out


def strip(evs: list) -> list[tuple]:
    return [(e.kind.value, e.key, e.episode, int(e.grade), e.ts, e.reason) for e in evs]


async def test_checkpoint_and_replay_on_a_real_topic(broker):
    kafka = broker.bootstrap
    rules, registry = load_rules(ROOT / "rules"), load_registry(ROOT / "stations.yaml")
    envs = storm_envelopes()
    topic = f"yujing.readings.{uuid.uuid4().hex[:8]}"   # the module's Kafka is shared
    await ensure_topics(kafka, [topic], 1)
    prod = AIOKafkaProducer(bootstrap_servers=kafka, max_request_size=8 << 20)
    await prod.start()
    try:
        for e in envs:                      # one batch per record: offsets 0..11
            await (await prod.send(topic, e, partition=0))
    finally:
        await prod.stop()

    ref = Pipeline(rules, registry)
    want = [strip(ref.handle(decode(e), 0).events) for e in envs]
    table = dict_table()

    def pipes(sink: list) -> Pipelines:
        async def emit(out) -> None:
            sink.append(strip(out.events))

        async def flush() -> None:
            return None
        return Pipelines(rules, registry, 3_600_000, None, 1, table, kafka, topic, emit,
                         flush, interval_s=0.0, now_ms=lambda: 0)

    first_out: list = []
    first = pipes(first_out)
    ps = await first.get(0)                 # no checkpoint: starts empty
    assert ps.applied == -1 and ps.pipeline.lifecycle.forward_first_clear
    ps.pipeline.lifecycle.forward_first_clear = False   # compare with the plain pipeline
    for off in range(7):
        await first.apply(ps, off, envs[off])
        if off == 4:
            await first.checkpoint(ps, wait=True)
    assert first_out == want[:7]
    assert load_checkpoint(table.get, 0)[0].offset == 4

    # "SIGKILL" after offset 6: a new owner restores offset 4 and re-processes 5..11
    second_out: list = []
    second = pipes(second_out)
    ps2 = await second.get(0)
    assert ps2.applied == 11 and not ps2.pipeline.lifecycle.forward_first_clear
    assert second_out == want[5:]           # 5 and 6 again, identically: the book drops them
    assert sum(map(len, want)) > 5
    if ps2.writing is not None:
        await ps2.writing
    m, _ = load_checkpoint(table.get, 0)    # re-processing was followed by a checkpoint
    assert m.offset == 11

    # the agent's catch-up: the state ends at offset 4, the agent was handed offset 8
    third_out: list = []
    third = pipes(third_out)
    at4 = Pipeline(rules, registry)
    for e in envs[:5]:
        at4.handle(decode(e), 0)
    ps3 = third.states[0] = PartitionState(0, third._new_pipeline(0), applied=4)
    ps3.pipeline.restore(at4.snapshot())
    await third.catch_up(ps3, 8)
    assert ps3.applied == 7 and third_out == want[5:8]
