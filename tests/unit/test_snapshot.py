"""Pipeline snapshots (durability): a pipeline restored from a snapshot continues exactly
where the saved one stood, and re-processing the readings after a checkpoint (what a
restarted worker does) re-emits the same events, which the warning book ignores."""

from __future__ import annotations

import zlib
from pathlib import Path

import msgspec
import numpy as np
import pytest

from tests.support.book import book_run
from yujing.alerts.book import Book, Store
from yujing.alerts.lifecycle import Lifecycle, RuleMeta
from yujing.alerts.records import State
from yujing.alerts.settings import AlertsSettings
from yujing.domain import EventKind, Finding, Grade, Reading
from yujing.envelope import decode, encode_readings
from yujing.pipeline import Pipeline
from yujing.rules.loader import load_rules
from yujing.stations import load_registry
from yujing.streams.checkpoint import dict_table, encode_checkpoint, load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
MIN, H = 60_000, 3_600_000
T0 = 1_750_000_000_000 - 1_750_000_000_000 % H


@pytest.fixture(scope="module")
def setup():
    rules = load_rules(ROOT / "rules")
    registry = load_registry(ROOT / "stations.yaml")
    return rules, registry


def storm() -> list[Reading]:
    """8 h of minute data: two gauges in a storm (orange, red, clear), one goes silent for an
    hour (no-data), a river that rises past its warning level and falls, a gas leak that
    clears only after its ``for: 5m``, and a weather station with a gust."""
    rng = np.random.default_rng(7)
    out: list[Reading] = []
    for m in range(8 * 60):
        t = T0 + m * MIN
        storm_on = 60 <= m < 200
        for st, scale in (("DG-HM-R01", 1.0), ("DG-CA-R01", 0.55)):
            if st == "DG-CA-R01" and 300 <= m < 370:
                continue  # silent for 70 minutes
            mm = scale * (0.9 + 0.4 * rng.random()) if storm_on else 0.0
            out.append(Reading(st, "rain_mm", t, round(mm, 2)))
        level = 5.0 + 2.4 * np.sin(np.pi * min(max(m - 90, 0), 300) / 300)
        out.append(Reading("DG-SL-H01", "water_level_m", t, round(float(level), 3)))
        lel = 30.0 if 120 <= m < 140 else (18.0 if 140 <= m < 150 else 3.0)
        out.append(Reading("DG-ST-G01", "gas_lel_pct", t, lel))
        out.append(Reading("DG-HM-W01", "wind_speed_ms", t, 26.0 if 200 <= m < 260 else 5.0))
    return out


def chunks(readings: list[Reading], minutes: int) -> list[list[Reading]]:
    out: dict[int, list[Reading]] = {}
    for r in readings:
        out.setdefault((r.ts - T0) // (minutes * MIN), []).append(r)
    return [out[k] for k in sorted(out)]


def feed(p: Pipeline, parts: list[list[Reading]]) -> list:
    evs = []
    for part in parts:
        cols = decode(encode_readings(part))
        now = max(r.ts for r in part)
        evs += p.handle(cols, now).events
        evs += p.check_nodata(now, clock="event")
    return evs


def strip(evs: list) -> list[tuple]:
    return [(e.kind.value, e.key, e.episode, int(e.grade), e.ts, e.reason) for e in evs]


def fresh(setup) -> Pipeline:
    rules, registry = setup
    return Pipeline(rules, registry)


def test_a_restored_pipeline_continues_exactly(setup):
    parts = chunks(storm(), 23)
    ref = fresh(setup)
    want = strip(feed(ref, parts))
    kinds = {k for k, *_ in want}
    assert {"raised", "upgraded", "cleared"} <= kinds and any("nodata@" in k for _, k, *_ in want)
    for cut in (3, 7, 11, 15):
        a = fresh(setup)
        got = feed(a, parts[:cut])
        b = fresh(setup)
        b.restore(a.snapshot())
        got += feed(b, parts[cut:])
        assert strip(got) == want, f"cut at chunk {cut}"
        assert msgspec.msgpack.decode(b.snapshot()) == msgspec.msgpack.decode(ref.snapshot())


def test_restoring_after_every_envelope_changes_nothing(setup):
    parts = chunks(storm(), 11)
    want = strip(feed(fresh(setup), parts))
    p, got = fresh(setup), []
    for part in parts:
        got += feed(p, [part])
        q = fresh(setup)
        q.restore(p.snapshot())
        p = q
    assert strip(got) == want


def test_replay_after_a_checkpoint_re_emits_the_same_events_and_the_book_ignores_them(setup):
    """The worker checkpoints at chunk 8, goes on to chunk 12 and dies; its successor
    restores the checkpoint and re-processes chunks 8-11 before new data. The replayed
    events are the same (same incident ids); the book notifies exactly as without the crash."""
    parts = chunks(storm(), 23)
    ref_events = feed(fresh(setup), parts)

    first = fresh(setup)
    before = feed(first, parts[:8])
    checkpoint = first.snapshot()
    lost = feed(first, parts[8:12])             # sent, but not in the checkpoint
    second = fresh(setup)
    second.restore(checkpoint)
    replayed = feed(second, parts[8:12])
    assert strip(replayed) == strip(lost)
    after = feed(second, parts[12:])
    assert strip(before + lost + after) == strip(ref_events)

    sent_ref, states_ref = book_run(ref_events)
    sent, states = book_run(before + lost + replayed + after)
    assert sent_ref and sent == sent_ref
    assert states == states_ref


def test_a_changed_rule_starts_fresh_and_the_others_resume(setup):
    rules, registry = setup
    parts = chunks(storm(), 23)
    a = Pipeline(rules, registry)
    feed(a, parts[:6])                          # the storm has raised the rain warnings
    changed = [r.model_copy(update={"name": r.name + " (v2)"}) if r.id == "rainstorm-guangdong"
               else r for r in rules]
    b = Pipeline(changed, registry)
    b.restore(a.snapshot())
    st = b.engine.station_index["DG-HM-R01"]
    assert b.engine._state["rainstorm-guangdong"].last_eval.a[st] < 0          # fresh
    assert b.engine._state["rain-short-intense"].last_eval.a[st] > 0           # resumed
    assert b.lifecycle.active.keys() == a.lifecycle.active.keys()
    # the series themselves are kept: the changed rule judges the full 3 h at once
    assert len(b.engine.series[("DG-HM-R01", "rain_mm")].ts) == \
        len(a.engine.series[("DG-HM-R01", "rain_mm")].ts)


def test_snapshot_is_a_plain_document_that_compresses_well(setup):
    p = fresh(setup)
    feed(p, chunks(storm(), 23))
    raw = p.snapshot()
    assert len(zlib.compress(raw, 1)) < len(raw) / 3
    with pytest.raises(ValueError, match="snapshot"):
        fresh(setup).restore(b"\x93\x01\x02\x03")
    used = fresh(setup)
    feed(used, chunks(storm(), 23)[:1])
    with pytest.raises(ValueError, match="fresh engine"):
        used.restore(raw)


def test_per_partition_pipelines_watch_only_their_own_stations_for_silence(setup):
    rules, registry = setup
    mine = {"DG-HM-R01", "DG-SL-H01"}
    p = Pipeline(rules, registry, owns=mine.__contains__)
    assert set(p.nodata.intervals_ms) == mine
    p.set_registry(registry)
    assert set(p.nodata.intervals_ms) == mine


def test_first_clears_after_a_start_without_checkpoint_close_each_key_s_own_warning():
    """Fallback when no checkpoint was found: the fresh lifecycle passes on the first clear
    of each key. Each carries an id of its own, so every open warning closes, not just one."""
    meta = RuleMeta("暴雨", "rainstorm")
    book = Book(AlertsSettings(grouping={"wait": "0s", "interval": "0s"}), Store(),
                fallback_urls=lambda g: ["json://x.example/hook"])
    lc = Lifecycle()
    for st in ("g1", "g2"):
        ev = lc.apply(Finding("rain", st, T0, Grade.ORANGE, False, 60, "3h", "x"), meta, T0)
        book.on_event(0, msgspec.structs.replace(ev, town="虎门镇"), T0)
    restarted = Lifecycle()
    restarted.forward_first_clear = True
    for st in ("g1", "g2"):
        ev = restarted.apply(Finding("rain", st, T0 + H, Grade.NONE, True, 0, "3h", "y"), meta,
                             T0 + H)
        assert ev is not None and ev.kind == EventKind.CLEARED
        book.on_event(0, msgspec.structs.replace(ev, town="虎门镇"), T0 + H)
    assert sorted(w.state for w in book.store.incidents.values()) == [State.CLEARED] * 2


# -- the checkpoint store (yujing/streams/checkpoint.py) ---------------------------------------

def stored(table, p: int, seq: int, offset: int, raw: bytes, chunk: int = 1000) -> None:
    manifest, parts = encode_checkpoint(raw, seq, offset, 0, chunk)
    for i, part in enumerate(parts):
        table.data[f"{p}:{seq % 2}:{i}"] = part
    table.data[f"{p}:{seq % 2}:m"] = manifest


def test_checkpoints_are_chunked_and_the_newest_whole_one_wins(setup):
    p = fresh(setup)
    feed(p, chunks(storm(), 23)[:8])
    raw = p.snapshot()
    t = dict_table()
    assert load_checkpoint(t.get, 0) is None
    stored(t, 0, 1, 10, b"older" * 100)
    stored(t, 0, 2, 20, raw)
    assert len([k for k in t.data if k.startswith("0:0:") and k[-1] != "m"]) > 3   # chunked
    m, back = load_checkpoint(t.get, 0)
    assert (m.seq, m.offset, back) == (2, 20, raw)
    assert load_checkpoint(t.get, 1) is None                  # partitions are apart
    q = fresh(setup)
    q.restore(back)
    assert q.snapshot() == raw


@pytest.mark.parametrize("damage", ["chunk", "manifest-missing", "chunk-missing"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_other_slot(damage: str):
    t = dict_table()
    rng = np.random.default_rng(3)
    old, new = rng.bytes(5000), rng.bytes(5000)     # incompressible: 5 chunks each
    stored(t, 3, 7, 70, old)
    stored(t, 3, 8, 80, new)
    assert load_checkpoint(t.get, 3)[1] == new
    if damage == "chunk":            # cut short by a crash: a chunk of the previous round
        t.data["3:0:1"] = t.data["3:1:1"]
    elif damage == "manifest-missing":
        del t.data["3:0:m"]
    else:
        del t.data["3:0:2"]
    m, raw = load_checkpoint(t.get, 3)
    assert (m.seq, m.offset, raw) == (7, 70, old)


def test_rewording_a_rule_s_message_keeps_its_state(setup):
    rules, registry = setup
    a = Pipeline(rules, registry)
    feed(a, chunks(storm(), 23)[:6])
    reworded = [r.model_copy(update={"message": {"zh": "{station_name}雨量{value:.1f}毫米"}})
                if r.id == "rainstorm-guangdong" else r for r in rules]
    b = Pipeline(reworded, registry)
    b.restore(a.snapshot())
    st = b.engine.station_index["DG-HM-R01"]
    assert b.engine._state["rainstorm-guangdong"].last_eval.a[st] > 0          # resumed
