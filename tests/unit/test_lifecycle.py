"""The warning state machine (yujing.alerts.lifecycle)."""

from __future__ import annotations

import re
import zlib

import pytest

from yujing.alerts.incident_ids import incident_id
from yujing.alerts.lifecycle import Lifecycle, RuleMeta
from yujing.domain import EventKind, Finding, Grade, episode_ref

META = RuleMeta("暴雨", "rainstorm")
# 2025-06-01 08:00:00 UTC
T = 1_748_764_800_000
MIN = 60_000


def finding(grade: Grade = Grade.NONE, clear: bool = False, ts: int = T, station: str = "g1",
            rule: str = "rain", value: float = 50.0) -> Finding:
    label = "clear" if clear else grade.label
    return Finding(rule, station, ts, grade, clear, value, "3h", f"sum(3h) = {value:g} ({label})")


def test_raise_creates_an_active_warning_and_a_raised_event():
    lc = Lifecycle()
    ev = lc.apply(finding(Grade.ORANGE), META, now_ms=T + 5)
    assert ev is not None
    assert ev.kind == EventKind.RAISED
    assert (ev.key, ev.rule, ev.station, ev.grade, ev.previous) == (
        "rain@g1", "rain", "g1", Grade.ORANGE, Grade.NONE)
    assert (ev.rule_name, ev.hazard, ev.ts, ev.emitted_ms, ev.value, ev.window) == (
        "暴雨", "rainstorm", T, T + 5, 50.0, "3h")
    assert ev.reason.startswith("raised orange: ")
    assert "sum(3h) = 50" in ev.reason
    assert lc.active["rain@g1"].grade == Grade.ORANGE
    assert ev.episode == episode_ref("rain@g1", lc.active["rain@g1"].since_ts)
    assert ev.opened_ts == lc.active["rain@g1"].since_ts == T


def test_upgrade_keeps_the_incident_and_names_both_grades():
    lc = Lifecycle()
    raised = lc.apply(finding(Grade.ORANGE), META, T)
    up = lc.apply(finding(Grade.RED, ts=T + 10 * MIN, value=100), META, T + 10 * MIN)
    assert up is not None and up.kind == EventKind.UPGRADED
    assert (up.grade, up.previous) == (Grade.RED, Grade.ORANGE)
    assert up.episode == raised.episode
    assert up.reason.startswith("upgraded orange -> red: ")
    assert lc.active["rain@g1"].grade == Grade.RED
    assert lc.active["rain@g1"].since_ts == T  # the incident began at the raise


def test_same_grade_while_active_is_a_no_op():
    lc = Lifecycle()
    lc.apply(finding(Grade.ORANGE), META, T)
    assert lc.apply(finding(Grade.ORANGE, ts=T + MIN), META, T + MIN) is None
    assert lc.active["rain@g1"].grade == Grade.ORANGE


@pytest.mark.parametrize("second", [Grade.YELLOW, Grade.BLUE])
def test_lower_grade_while_active_is_a_downgrade_of_the_same_incident(second):
    lc = Lifecycle()
    raised = lc.apply(finding(Grade.ORANGE), META, T)
    down = lc.apply(finding(second, ts=T + MIN), META, T + MIN)
    assert down is not None and down.kind == EventKind.DOWNGRADED
    assert (down.grade, down.previous, down.episode) == (second, Grade.ORANGE, raised.episode)
    assert down.reason.startswith(f"downgraded orange -> {second.label}: ")
    assert lc.active["rain@g1"].grade == second


def test_redelivered_findings_change_nothing():
    lc = Lifecycle()
    findings = [finding(Grade.ORANGE), finding(Grade.RED, ts=T + MIN)]
    first = [lc.apply(f, META, T) for f in findings]
    assert [e.kind for e in first] == [EventKind.RAISED, EventKind.UPGRADED]
    assert [lc.apply(f, META, T) for f in findings] == [None, None]


def test_clear_ends_the_warning_with_its_last_grade():
    lc = Lifecycle()
    raised = lc.apply(finding(Grade.ORANGE), META, T)
    lc.apply(finding(Grade.RED, ts=T + MIN), META, T)
    ev = lc.apply(finding(clear=True, ts=T + 5 * 60 * MIN, value=4.0), META, T + 1)
    assert ev is not None and ev.kind == EventKind.CLEARED
    assert ev.episode == raised.episode
    assert (ev.grade, ev.previous) == (Grade.RED, Grade.RED)
    assert ev.reason.startswith("cleared after red: ")
    assert ev.value == 4.0
    assert "rain@g1" not in lc.active


def test_clear_while_idle_and_band_findings_are_no_ops():
    lc = Lifecycle()
    assert lc.apply(finding(clear=True), META, T) is None
    assert lc.apply(finding(Grade.NONE, clear=False), META, T) is None
    lc.apply(finding(Grade.YELLOW), META, T)
    assert lc.apply(finding(Grade.NONE, clear=False, ts=T + MIN), META, T) is None  # hysteresis band
    assert lc.active["rain@g1"].grade == Grade.YELLOW


def test_a_raise_after_a_clear_is_a_new_incident():
    lc = Lifecycle()
    first = lc.apply(finding(Grade.ORANGE), META, T)
    lc.apply(finding(clear=True, ts=T + 4 * 60 * MIN), META, T)
    again = lc.apply(finding(Grade.BLUE, ts=T + 6 * 60 * MIN), META, T)
    assert again is not None and again.kind == EventKind.RAISED
    assert again.previous == Grade.NONE
    assert again.episode != first.episode
    assert again.episode == episode_ref("rain@g1", T + 6 * 60 * MIN) == \
        "rain@g1@20250601T140000.000Z"
    assert again.opened_ts == T + 6 * 60 * MIN


def test_warnings_are_per_rule_and_station():
    lc = Lifecycle()
    a = lc.apply(finding(Grade.ORANGE, station="g1"), META, T)
    b = lc.apply(finding(Grade.ORANGE, station="g2"), META, T)
    c = lc.apply(finding(Grade.ORANGE, rule="wind"), META, T)
    assert [e.kind for e in (a, b, c)] == [EventKind.RAISED] * 3
    assert set(lc.active) == {"rain@g1", "rain@g2", "wind@g1"}
    lc.apply(finding(clear=True, station="g2", ts=T + MIN), META, T)
    assert set(lc.active) == {"rain@g1", "wind@g1"}


def test_incident_id_format_is_region_utc_time_and_four_digits():
    iid = incident_id("441900", "rainstorm-guangdong@DG001", T + 123)  # ms are dropped
    assert re.fullmatch(r"441900-\d{14}-\d{4}", iid)
    assert iid.startswith("441900-20250601080000-")
    seq = zlib.crc32(b"rainstorm-guangdong@DG001") % 10000
    assert iid.endswith(f"-{seq:04d}")


def test_incident_id_is_deterministic_in_key_and_time():
    assert incident_id("441900", "a@b", T) == incident_id("441900", "a@b", T + 999)
    assert incident_id("441900", "a@b", T) != incident_id("441900", "a@b", T + 1000)
    assert incident_id("441900", "a@b", T).split("-")[1] == "20250601080000"
    assert incident_id("440300", "a@b", T).startswith("440300-")


def test_the_same_findings_give_the_same_episodes_in_a_new_lifecycle():
    """Replay after a restart: the episode (and so the book's incident) is the same one."""
    f = finding(Grade.RED, ts=T + 17 * MIN)
    a, b = Lifecycle().apply(f, META, 1), Lifecycle().apply(f, META, 2)
    assert (a.episode, a.opened_ts) == (b.episode, b.opened_ts) == (
        "rain@g1@20250601T081700.000Z", T + 17 * MIN)


def pending(grade: Grade, ts: int = T) -> Finding:
    return Finding("rain", "g1", ts, grade, False, 60.0, "3h", f"sum(3h) = 60 ({grade.label})",
                   pending=True)


def test_pending_then_for_met_raises_the_same_incident():
    lc = Lifecycle()
    p = lc.apply(pending(Grade.ORANGE), META, T)
    assert p is not None and p.kind == EventKind.PENDING
    assert p.reason.startswith("pending orange (for: not met yet)")
    assert lc.apply(pending(Grade.ORANGE, T + MIN), META, T) is None  # still pending: no news
    raised = lc.apply(finding(Grade.ORANGE, ts=T + 10 * MIN), META, T + 10 * MIN)
    assert raised.kind == EventKind.RAISED and raised.episode == p.episode
    assert "(for: met)" in raised.reason
    assert lc.active["rain@g1"].since_ts == T  # the incident began when the condition held


def test_pending_that_ends_before_for_is_cleared_with_a_reason():
    lc = Lifecycle()
    p = lc.apply(pending(Grade.YELLOW), META, T)
    ev = lc.apply(finding(clear=True, ts=T + 5 * MIN), META, T)
    assert ev.kind == EventKind.CLEARED and ev.episode == p.episode
    assert ev.reason.startswith("ended while pending (for: never met)")
    assert "rain@g1" not in lc.active


def test_pending_higher_grade_while_active_is_not_an_upgrade_yet():
    lc = Lifecycle()
    lc.apply(finding(Grade.YELLOW), META, T)
    assert lc.apply(pending(Grade.RED, T + MIN), META, T) is None
    assert lc.active["rain@g1"].grade == Grade.YELLOW


def test_colliding_keys_in_the_same_second_have_their_own_episodes():
    """The worker names no incidents, so keys whose id hashes collide cannot share one
    (the book's probing is in test_book_identity.py)."""
    seen: dict[str, str] = {}
    pair = None
    for i in range(20000):
        key = f"rain@s{i}"
        seq = zlib.crc32(key.encode()) % 10000
        if seq in seen:
            pair = (seen[seq], key)
            break
        seen[seq] = key
    assert pair is not None
    lc = Lifecycle()
    a = lc.apply(finding(Grade.BLUE, station=pair[0].split("@")[1]), META, T)
    b = lc.apply(finding(Grade.BLUE, station=pair[1].split("@")[1]), META, T)
    assert a.episode != b.episode
    assert (a.episode, b.episode) == (episode_ref(pair[0], T), episode_ref(pair[1], T))


def test_sharded_ids_stay_in_their_partition_residue_class():
    ids = {incident_id("441900", f"k{i}", T, shard=3, shards=4) for i in range(200)}
    assert all(int(i.rsplit("-", 1)[1]) % 4 == 3 for i in ids)
    other = {incident_id("441900", f"k{i}", T, shard=1, shards=4) for i in range(200)}
    assert ids.isdisjoint(other)


def test_a_full_second_grows_a_fifth_digit_instead_of_failing():
    taken = {f"441900-20250601080000-{s:04d}" for s in range(10000)}
    iid = incident_id("441900", "a@b", T, taken.__contains__)
    assert iid == "441900-20250601080000-10000"


def test_live_worker_forwards_the_first_clear_of_a_key_after_a_restart():
    """The book may hold a warning raised before the restart; the fresh lifecycle must not
    swallow the clear that ends it. Only the first look per key, and only when asked."""
    lc = Lifecycle()
    lc.forward_first_clear = True
    ev = lc.apply(finding(clear=True), META, T)
    assert ev is not None and ev.kind == EventKind.CLEARED and ev.grade == Grade.NONE
    assert "first look since start" in ev.reason
    assert lc.apply(finding(clear=True, ts=T + MIN), META, T) is None      # only once
    assert Lifecycle().apply(finding(clear=True), META, T) is None        # off by default
