"""The system's own warning (系统自身故障) in words, and when to send it.

:func:`describe` says what stopped, why the watchdog thinks so and what to do, in
Chinese and English; :func:`message` makes the duty room's message (Chinese first,
English below it, as one text: the duty room may forward it to a vendor).
:class:`Notices` decides, with ``now`` passed in like Alertmanager's dedup, which
faults are sent this round: a new one at once, an active one again every ``repeat``,
a cleared one as 已恢复 (recovered); a delivery that failed is tried again after
``retry``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from yujing.alerts.selfcheck import Fault
from yujing.clock import DEFAULT_ZONE, local_time

_PART_ZH = {"kafka": "Kafka", "worker": "预警引擎（worker）", "gateway": "接入网关（gateway）",
            "sink": "入库进程（sink）"}
_PART_EN = {"kafka": "Kafka", "worker": "the worker", "gateway": "the gateway",
            "sink": "the InfluxDB sink"}
_TODO_ZH = {
    "kafka": "检查 Kafka 代理进程、磁盘与网络；恢复前读数无法入队，预警不会发出。",
    "worker": "检查 worker 进程（日志、CPU，是否被挂起或卡死），必要时重启；期间预警延迟或漏发，"
              "请人工关注雨量、水位等关键站点。",
    "gateway": "检查网关进程及其日志，必要时重启；期间站点数据无法接入。",
    "sink": "检查入库进程与 InfluxDB；期间看板数据缺失，预警不受影响。",
}
_TODO_EN = {
    "kafka": "check the Kafka broker process, its disk and the network; until it answers no "
             "reading is queued and no warning is raised.",
    "worker": "check the worker process (log, CPU, whether it is stopped or hung) and restart "
              "it if needed; meanwhile warnings are late or missing: watch the key gauges by hand.",
    "gateway": "check the gateway process and its log, restart it if needed; meanwhile no "
               "station data comes in.",
    "sink": "check the sink and InfluxDB; dashboards miss data meanwhile, warnings do not.",
}


@dataclass(frozen=True)
class Words:
    what: str
    why: str
    todo: str


def _zh(f: Fault, where: str) -> Words:
    x, key = f.facts, f.key
    at = f"（{where}）" if where else ""
    if key.endswith("-unreachable"):
        return Words(f"{_PART_ZH[f.part]}无应答", f"{_PART_ZH[f.part]}{at}未应答探测："
                     f"{x.get('error') or '超时'}", _TODO_ZH[f.part])
    if key == "worker-stalled":
        parts = "、".join(str(p) for p in x.get("partitions", []))
        return Words("预警引擎停止消费", f"读数主题分区 {parts} 的已提交位点不再前进，而新读数在等待"
                     f"（至少 {x.get('behind', 0)} 条未处理）", _TODO_ZH["worker"])
    if key == "gateway-mqtt":
        return Words("接入网关 MQTT 连接中断", f"网关{at}与 MQTT 代理的会话已断开",
                     "检查 MQTT 代理（Mosquitto/amqtt）与网络；期间经 MQTT 上报的站点数据无法接入。")
    if key == "gateway-kafka":
        return Words("接入网关无法写入 Kafka", f"网关{at}的数据包写入 Kafka 失败 "
                     f"{int(x.get('failed', 0))} 次且无一成功", _TODO_ZH["kafka"])
    if key == "sink-backlog":
        return Words("入库积压持续增长", f"入库积压 {int(x.get('backlog', 0))} 点，高于阈值且未减少",
                     _TODO_ZH["sink"])
    name = x.get("channel", key)
    return Words(f"通知渠道 {name} 持续失败", f"通过 {name} 的通知连续失败 {int(x.get('failed', 0))} 次，"
                 "期间无一成功", f"检查 {name} 渠道（账号、令牌、网关、网络）；期间值班人员可能收不到预警，"
                 "请电话通知。")


def _en(f: Fault, where: str) -> Words:
    x, key = f.facts, f.key
    at = f" ({where})" if where else ""
    if key.endswith("-unreachable"):
        return Words(f"{_PART_EN[f.part]} is not answering", f"{_PART_EN[f.part]}{at} did not "
                     f"answer: {x.get('error') or 'timeout'}", _TODO_EN[f.part])
    if key == "worker-stalled":
        parts = ", ".join(str(p) for p in x.get("partitions", []))
        return Words("the worker stopped consuming", f"the committed offsets of readings "
                     f"partition(s) {parts} stand still while new readings wait (at least "
                     f"{x.get('behind', 0)} unprocessed)", _TODO_EN["worker"])
    if key == "gateway-mqtt":
        return Words("the gateway lost MQTT", f"the gateway{at} has no MQTT session",
                     "check the MQTT broker and the network; meanwhile readings sent over MQTT "
                     "do not come in.")
    if key == "gateway-kafka":
        return Words("the gateway cannot write to Kafka", f"the gateway{at} failed to store "
                     f"{int(x.get('failed', 0))} envelope(s) and stored none", _TODO_EN["kafka"])
    if key == "sink-backlog":
        return Words("the sink's backlog keeps growing", f"{int(x.get('backlog', 0))} points "
                     "wait, above the limit and not shrinking", _TODO_EN["sink"])
    name = x.get("channel", key)
    return Words(f"notification channel {name} keeps failing", f"{int(x.get('failed', 0))} "
                 f"deliveries over {name} failed in a row, none succeeded",
                 f"check the {name} channel (account, token, gateway, network); meanwhile "
                 "people on duty may not get warnings: call them.")


def describe(f: Fault, lang: str = "zh", where: str = "") -> Words:
    """What stopped, why, what to do; ``where`` names the part's address (a URL, a bootstrap)."""
    return _en(f, where) if lang == "en" else _zh(f, where)


def lasted(ms: int, lang: str = "zh") -> str:
    """A duration for people: 45秒, 3分20秒, 2小时5分 (45s, 3m20s, 2h5m)."""
    s = max(0, ms // 1000)
    h, m, sec = s // 3600, s % 3600 // 60, s % 60
    if lang == "en":
        return f"{h}h{m}m" if h else (f"{m}m{sec}s" if m else f"{sec}s")
    return f"{h}小时{m}分" if h else (f"{m}分{sec}秒" if m else f"{sec}秒")


def message(f: Fault, kind: str, now_ms: int, zone: str = DEFAULT_ZONE,
            where: str = "") -> tuple[str, str]:
    """(title, body) of a notice: ``kind`` is fault, repeat or recovered."""
    zh, en = describe(f, "zh", where), describe(f, "en", where)
    since, dur = local_time(f.since_ms, zone), now_ms - f.since_ms
    if kind == "recovered":
        title = f"【已恢复】{zh.what} / Recovered: {en.what}"
        body = (f"系统自身故障已恢复：{zh.what}，自 {since} 起持续 {lasted(dur)}。\n\n"
                f"Recovered: {en.what}, since {since}, lasted {lasted(dur, 'en')}.")
        return title, body
    tag, tag_en = ("系统自身故障·仍未恢复", "still failing") if kind == "repeat" else \
        ("系统自身故障", "System fault")
    title = f"【{tag}】{zh.what} / {tag_en}: {en.what}"
    body = (f"{zh.what}，自 {since} 起，已持续 {lasted(dur)}。\n原因：{zh.why}。\n处置：{zh.todo}\n\n"
            f"{en.what[:1].upper()}{en.what[1:]} since {since} ({lasted(dur, 'en')}).\n"
            f"Why: {en.why}.\nWhat to do: {en.todo}")
    return title, body


@dataclass(frozen=True)
class Notice:
    kind: str       # fault | repeat | recovered
    fault: Fault


@dataclass
class _Sending:
    fault: Fault
    delivered: bool = False
    next_ms: int | None = None     # None: due now


@dataclass
class Notices:
    """Which notices are due; told back whether each was delivered."""

    repeat_ms: int
    retry_ms: int
    active: dict[str, _Sending] = field(default_factory=dict)
    recovering: dict[str, _Sending] = field(default_factory=dict)

    def due(self, faults: list[Fault], now_ms: int) -> list[Notice]:
        current = {f.key: f for f in faults}
        for key in list(self.active):
            if key not in current:
                gone = self.active.pop(key)
                if gone.delivered:          # nobody heard of a fault that was never delivered
                    self.recovering[key] = _Sending(gone.fault)
        out = []
        for key, f in current.items():
            self.recovering.pop(key, None)
            st = self.active.setdefault(key, _Sending(f))
            st.fault = f
            if st.next_ms is None or now_ms >= st.next_ms:
                out.append(Notice("repeat" if st.delivered else "fault", f))
                st.next_ms = now_ms + self.retry_ms     # in flight: not due again meanwhile
        for st in self.recovering.values():
            if st.next_ms is None or now_ms >= st.next_ms:
                out.append(Notice("recovered", st.fault))
                st.next_ms = now_ms + self.retry_ms
        return out

    def sent(self, n: Notice, ok: bool, now_ms: int) -> None:
        book = self.recovering if n.kind == "recovered" else self.active
        st = book.get(n.fault.key)
        if st is None:
            return
        if n.kind == "recovered" and ok:
            del book[n.fault.key]
            return
        if not ok:
            st.next_ms = now_ms + self.retry_ms
            return
        st.delivered = True
        # repeat 0s: said once, quiet until it clears
        st.next_ms = now_ms + self.repeat_ms if self.repeat_ms > 0 else 2 ** 62
