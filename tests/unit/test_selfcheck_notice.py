"""When the watchdog tells the duty room, and in which words (yujing.alerts.selfcheck_notice)."""

from __future__ import annotations

from yujing.alerts.selfcheck import Fault
from yujing.alerts.selfcheck_notice import Notices, describe, lasted, message

S, M = 1000, 60_000
STALL = Fault("worker-stalled", "worker", 0, {"partitions": [0, 1], "behind": 420})
KAFKA = Fault("kafka-unreachable", "kafka", 5 * S, {"error": "no answer in time"})


def kinds(notices: Notices, faults: list[Fault], now: int, ok: bool = True) -> list[tuple[str, str]]:
    """The notices due at ``now``, each reported back as delivered (or not)."""
    due = notices.due(faults, now)
    for n in due:
        notices.sent(n, ok, now)
    return [(n.kind, n.fault.key) for n in due]


def test_a_new_fault_at_once_then_every_repeat_then_recovered_once():
    n = Notices(repeat_ms=30 * M, retry_ms=1 * M)
    assert kinds(n, [STALL], 0) == [("fault", "worker-stalled")]
    assert kinds(n, [STALL], 5 * S) == []
    assert kinds(n, [STALL], 30 * M - 1) == []
    assert kinds(n, [STALL], 30 * M) == [("repeat", "worker-stalled")]
    assert kinds(n, [], 31 * M) == [("recovered", "worker-stalled")]
    assert kinds(n, [], 32 * M) == []


def test_a_failed_delivery_is_tried_again_after_retry_still_as_news():
    n = Notices(repeat_ms=30 * M, retry_ms=1 * M)
    assert kinds(n, [KAFKA], 0, ok=False) == [("fault", "kafka-unreachable")]
    assert kinds(n, [KAFKA], 30 * S) == []
    assert kinds(n, [KAFKA], 1 * M) == [("fault", "kafka-unreachable")]


def test_a_notice_in_flight_is_not_handed_out_twice():
    n = Notices(repeat_ms=30 * M, retry_ms=1 * M)
    assert [x.kind for x in n.due([STALL], 0)] == ["fault"]   # not reported back yet
    assert n.due([STALL], 5 * S) == []


def test_a_fault_nobody_heard_of_clears_silently():
    n = Notices(repeat_ms=30 * M, retry_ms=1 * M)
    kinds(n, [KAFKA], 0, ok=False)
    assert kinds(n, [], 10 * S) == []


def test_a_failed_recovery_message_is_tried_again_and_dropped_if_the_fault_returns():
    n = Notices(repeat_ms=30 * M, retry_ms=1 * M)
    kinds(n, [STALL], 0)
    assert kinds(n, [], 10 * S, ok=False) == [("recovered", "worker-stalled")]
    assert kinds(n, [], 70 * S) == [("recovered", "worker-stalled")]
    kinds(n, [STALL], 80 * S)
    kinds(n, [], 90 * S, ok=False)
    assert kinds(n, [STALL], 100 * S) == [("fault", "worker-stalled")]   # news again
    assert kinds(n, [STALL], 200 * S) == []           # the stale recovery was dropped


def test_repeat_0s_says_it_once():
    n = Notices(repeat_ms=0, retry_ms=1 * M)
    assert kinds(n, [STALL], 0) == [("fault", "worker-stalled")]
    assert kinds(n, [STALL], 24 * 60 * M) == []


def test_the_message_is_chinese_first_with_since_why_and_what_to_do_then_english():
    title, body = message(STALL, "fault", 80 * S, "Asia/Shanghai")
    assert title == "【系统自身故障】预警引擎停止消费 / System fault: the worker stopped consuming"
    zh, en = body.split("\n\n")
    assert zh.startswith("预警引擎停止消费，自 1970-01-01 08:00 起，已持续 1分20秒。")
    assert "分区 0、1" in zh and "至少 420 条" in zh and "处置：" in zh
    assert en.startswith("The worker stopped consuming since 1970-01-01 08:00 (1m20s).")
    assert "What to do:" in en


def test_repeat_and_recovered_words():
    assert message(KAFKA, "repeat", 65 * S)[0].startswith("【系统自身故障·仍未恢复】")
    title, body = message(KAFKA, "recovered", 65 * S, where="127.0.0.1:9092")
    assert title == "【已恢复】Kafka无应答 / Recovered: Kafka is not answering"
    assert "持续 1分0秒" in body and "lasted 1m0s" in body


def test_the_part_address_is_named():
    assert "127.0.0.1:9092" in describe(KAFKA, "zh", "127.0.0.1:9092").why
    assert "no answer in time" in describe(KAFKA, "en").why


def test_channel_fault_words():
    f = Fault("channel:dingtalk", "channel", 0, {"channel": "dingtalk", "failed": 3})
    assert describe(f).what == "通知渠道 dingtalk 持续失败"
    assert "failed in a row" in describe(f, "en").why


def test_lasted():
    assert [lasted(ms) for ms in (45 * S, 200 * S, 7500 * S)] == ["45秒", "3分20秒", "2小时5分"]
    assert lasted(7500 * S, "en") == "2h5m"
