"""The watchdog's pure checks (yujing.alerts.selfcheck): synthetic series of samples, time
passed in. Each check fires exactly when its condition has held for its configured time,
not a round earlier, and clears when the condition ends."""

from __future__ import annotations

import pytest

from yujing.alerts.selfcheck import Checks, GatewayFigures, Probe, Sample
from yujing.alerts.selfcheck_settings import WatchdogSettings
from yujing.config import load_config
from yujing.yamlsrc import SourceError

S = 1000
SETTINGS = WatchdogSettings(stall_after="20s", unreachable_after="10s", mqtt_after="15s",
                            store_after="15s", backlog_points=1000, backlog_after="30s",
                            channel_failures=3, channel_after="60s")


def keys(checks: Checks, now: int) -> list[str]:
    return [f.key for f in checks.faults(now)]


def run(checks: Checks, samples: list[Sample]) -> dict[int, list[str]]:
    """Feed the samples; the active fault keys after each, by time in seconds."""
    out = {}
    for s in samples:
        checks.observe(s)
        out[s.at_ms // S] = keys(checks, s.at_ms)
    return out


def offsets(t: int, committed: dict[int, int | None], end: dict[int, int]) -> Sample:
    return Sample(t * S, probes={"kafka": Probe(True)},
                  offsets={p: (committed[p], end[p]) for p in end})


# --- stall ---------------------------------------------------------------------------------

def test_a_worker_whose_committed_offset_stands_while_readings_arrive_is_stalled_after_20s():
    c = Checks(SETTINGS)
    series = [offsets(t, {0: 100, 1: 50}, {0: 100, 1: 50}) for t in range(0, 10, 5)]   # caught up
    # from t=10 readings arrive on partition 0; the committed offset never moves again
    series += [offsets(t, {0: 100, 1: 50}, {0: 100 + t, 1: 50}) for t in range(10, 40, 5)]
    got = run(c, series)
    assert got[25] == []                       # 15 s of waiting readings: not yet
    assert got[30] == ["worker-stalled"]       # 20 s: now
    [f] = c.faults(35 * S)
    assert f.since_ms == 10 * S and f.part == "worker"
    assert f.facts["partitions"] == [0] and f.facts["behind"] == 35    # end 135 at t=35


def test_progress_clears_the_stall():
    c = Checks(SETTINGS)
    run(c, [offsets(t, {0: 10}, {0: 10 + t}) for t in range(0, 30, 5)])
    assert keys(c, 25 * S) == ["worker-stalled"]
    c.observe(offsets(30, {0: 35}, {0: 40}))
    assert keys(c, 30 * S) == []


def test_an_idle_worker_with_nothing_to_read_is_never_stalled():
    c = Checks(SETTINGS)
    got = run(c, [offsets(t, {0: 500}, {0: 500}) for t in range(0, 3600, 60)])
    assert all(v == [] for v in got.values())


def test_a_busy_worker_that_keeps_committing_is_not_stalled_even_while_behind():
    c = Checks(SETTINGS)
    got = run(c, [offsets(t, {0: t * 10}, {0: t * 10 + 200}) for t in range(0, 120, 5)])
    assert all(v == [] for v in got.values())


def test_tansu_end_offsets_below_the_committed_offset_still_show_a_stall_by_growing():
    """Tansu reports a partition's end as its last batch's base offset + 1: a consumer that
    read everything has committed 25 while the end says 16. A new batch moves the end."""
    c = Checks(SETTINGS)
    series = [offsets(t, {0: 25}, {0: 16}) for t in range(0, 60, 5)]     # idle: no stall
    series += [offsets(t, {0: 25}, {0: 16 + (t - 55) // 5}) for t in range(60, 100, 5)]
    got = run(c, series)
    assert got[55] == [] and got[75] == []
    assert got[80] == ["worker-stalled"]


def test_a_group_that_never_committed_while_readings_arrive_is_stalled():
    c = Checks(SETTINGS)
    got = run(c, [offsets(t, {0: None}, {0: t}) for t in range(0, 40, 5)])
    assert got[15] == [] and got[25] == ["worker-stalled"]


def test_an_empty_partition_the_group_never_committed_is_not_stalled():
    c = Checks(SETTINGS)
    got = run(c, [offsets(t, {0: None, 1: 40 + t}, {0: 0, 1: 40 + t}) for t in range(0, 60, 5)])
    assert all(v == [] for v in got.values())


def test_a_recreated_topic_starts_the_partition_again():
    c = Checks(SETTINGS)
    run(c, [offsets(t, {0: 10}, {0: 10 + t}) for t in range(0, 25, 5)])
    c.observe(offsets(25, {0: 10}, {0: 3}))            # end went down: a broker lost its topics
    assert keys(c, 25 * S) == []


# --- unreachable parts ---------------------------------------------------------------------

def test_kafka_that_does_not_answer_is_a_fault_after_10s_and_hides_the_stall():
    c = Checks(SETTINGS)
    run(c, [offsets(t, {0: 10}, {0: 10 + t}) for t in range(0, 15, 5)])
    down = [Sample(t * S, probes={"kafka": Probe(False, "no answer in time")})
            for t in range(15, 45, 5)]
    got = run(c, down)
    assert got[20] == [] and got[25] == ["kafka-unreachable"]     # stall not claimed blindly
    [f] = c.faults(40 * S)
    assert f.since_ms == 15 * S and f.facts["error"] == "no answer in time"
    c.observe(offsets(45, {0: 60}, {0: 60}))
    assert keys(c, 45 * S) == []


def test_a_frozen_worker_whose_metrics_do_not_answer():
    c = Checks(SETTINGS)
    got = run(c, [Sample(t * S, probes={"worker": Probe(t < 10, "" if t < 10 else "timeout")})
                  for t in range(0, 30, 5)])
    assert got[15] == [] and got[20] == ["worker-unreachable"]


def test_a_part_not_probed_this_round_is_not_faulty():
    c = Checks(SETTINGS)
    got = run(c, [Sample(t * S) for t in range(0, 100, 10)])
    assert all(v == [] for v in got.values())


# --- gateway -------------------------------------------------------------------------------

def gw(t: int, connected: bool = True, ok: int = 0, failed: int = 0, mqtt: bool = True) -> Sample:
    return Sample(t * S, probes={"gateway": Probe(True)},
                  gateway=GatewayFigures(mqtt, connected, ok, failed))


def test_the_gateway_losing_mqtt_for_15s():
    c = Checks(SETTINGS)
    got = run(c, [gw(t, connected=t < 5) for t in range(0, 30, 5)])
    assert got[15] == [] and got[20] == ["gateway-mqtt"]
    c.observe(gw(30, connected=True))
    assert keys(c, 30 * S) == []


def test_a_gateway_without_mqtt_is_never_an_mqtt_fault():
    c = Checks(SETTINGS)
    got = run(c, [gw(t, connected=False, mqtt=False) for t in range(0, 60, 5)])
    assert all(v == [] for v in got.values())


def test_the_gateway_failing_to_store_with_no_success_for_15s():
    c = Checks(SETTINGS)
    got = run(c, [gw(t, ok=100, failed=max(0, t - 5)) for t in range(0, 40, 5)])
    assert got[20] == [] and got[25] == ["gateway-kafka"]       # first failure seen at t=10
    c.observe(gw(40, ok=101, failed=40))                           # one envelope stored
    assert keys(c, 40 * S) == []


def test_a_restarted_gateway_counts_from_zero_again():
    c = Checks(SETTINGS)
    run(c, [gw(t, ok=100, failed=t) for t in range(0, 30, 5)])
    c.observe(gw(30, ok=0, failed=0))
    assert keys(c, 30 * S) == []


# --- sink backlog --------------------------------------------------------------------------

def backlog(t: int, v: float) -> Sample:
    return Sample(t * S, probes={"sink": Probe(True)}, backlog=v)


def test_a_backlog_above_the_limit_and_growing_for_30s():
    c = Checks(SETTINGS)
    got = run(c, [backlog(t, 500 + t * 100) for t in range(0, 60, 5)])   # above 1000 from t=10
    assert got[35] == [] and got[40] == ["sink-backlog"]
    [f] = c.faults(55 * S)
    assert f.since_ms == 10 * S and f.facts["backlog"] == 6000


def test_a_backlog_stuck_at_its_maximum_is_a_fault_and_a_draining_one_is_not():
    stuck = Checks(SETTINGS)
    assert run(stuck, [backlog(t, 200_000) for t in range(0, 60, 5)])[55] == ["sink-backlog"]
    draining = Checks(SETTINGS)
    got = run(draining, [backlog(t, 200_000 - t * 1000) for t in range(0, 120, 5)])
    assert all(v == [] for v in got.values())


def test_a_backlog_under_the_limit_is_fine():
    c = Checks(SETTINGS)
    got = run(c, [backlog(t, 900) for t in range(0, 120, 5)])
    assert all(v == [] for v in got.values())


# --- channels ------------------------------------------------------------------------------

def channel(t: int, sent: float, failed: float, name: str = "dingtalk") -> Sample:
    return Sample(t * S, channels={name: (sent, failed)})


def test_three_failures_in_a_row_on_one_channel():
    c = Checks(SETTINGS)
    got = run(c, [channel(0, 5, 0), channel(5, 5, 2), channel(10, 5, 3)])
    assert got[5] == [] and got[10] == ["channel:dingtalk"]
    [f] = c.faults(10 * S)
    assert f.since_ms == 5 * S and f.facts["failed"] == 3
    c.observe(channel(15, 6, 3))
    assert keys(c, 15 * S) == []


def test_a_channel_first_seen_with_failures_and_no_success_counts_them():
    """A labelled counter is exported only from its first increment: a channel that failed
    before the first look, and never worked, is failing; one that also worked is not judged."""
    c = Checks(SETTINGS)
    got = run(c, [Sample(0, channels={"json": (0, 2), "mailto": (5, 9)}),
                  Sample(5 * S, channels={"json": (0, 3), "mailto": (5, 9)})])
    assert got[0] == [] and got[5] == ["channel:json"]
    assert c.faults(5 * S)[0].since_ms == 0


def test_one_failure_and_no_success_for_60s():
    c = Checks(SETTINGS)
    got = run(c, [channel(0, 5, 0), channel(10, 5, 1)] + [channel(t, 5, 1) for t in (60, 70)])
    assert got[60] == [] and got[70] == ["channel:dingtalk"]


def test_channels_are_judged_apart():
    c = Checks(SETTINGS)
    for t, f in ((0, 0), (5, 3)):
        c.observe(Sample(t * S, channels={"dingtalk": (1, f), "mailto": (4 + t, 0)}))
    assert keys(c, 5 * S) == ["channel:dingtalk"]


# --- settings ------------------------------------------------------------------------------

def test_the_watchdog_section_is_strict_and_located(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("watchdog:\n  interval: 5s\n  stall_afer: 30s\n", encoding="utf-8")
    with pytest.raises(SourceError) as exc:
        load_config(path)
    [p] = exc.value.problems
    assert (p.line, p.key) == (3, "watchdog.stall_afer")
    assert "stall_after" in p.message


def test_a_probe_timeout_longer_than_four_intervals_is_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("watchdog:\n  interval: 1s\n  probe_timeout: 10s\n", encoding="utf-8")
    with pytest.raises(SourceError) as exc:
        load_config(path)
    assert "probe_timeout (10s) must be at most four intervals" in str(exc.value)


def test_where_a_gateway_reads_the_watchdog():
    assert WatchdogSettings().status_url() is None
    assert WatchdogSettings().status_url("http://127.0.0.1:4000") == "http://127.0.0.1:4000"
    assert WatchdogSettings(host="0.0.0.0", port=9109).status_url() == "http://127.0.0.1:9109"
    assert WatchdogSettings(url="http://wd:1/", port=9).status_url("x") == "http://wd:1"
