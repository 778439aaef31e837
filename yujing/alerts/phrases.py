"""The book's own texts in the duty officer's words: why a person is paged now, and what the
timeline says happened (acknowledged, cleared, held, reminded), Chinese and English. Pure.

A rule's reason comes in words from the rule (``yujing.rules.wording``); these are the
texts the book writes itself. Every one is a :class:`Text`; the book keeps its old English
sentence in ``reason`` beside them (logs, old tests, the records of before words), and
messages and the console show ``zh`` or ``en``. A duty officer never reads a role code
("leader" is 带班领导) or a duration code ("90m" is 1小时30分钟).
"""

from __future__ import annotations

from typing import NamedTuple

from yujing.domain import Grade
from yujing.durations import duration_en, duration_zh

ROLE_ZH = {"A": "A岗", "B": "B岗", "leader": "带班领导", "informed": "知会",
           "enterprise": "企业值班安全员", "enterprise.B": "企业B岗安全员",
           "enterprise.leader": "企业安全负责人", "town": "镇街监管人员", "town.B": "镇街监管B岗",
           "town.leader": "镇街监管负责人", "bureau": "市局值班员", "bureau.B": "市局B岗值班员",
           "bureau.leader": "市局带班领导"}
ROLE_EN = {"A": "officer A", "B": "officer B", "leader": "the shift leader",
           "informed": "informed", "enterprise": "the enterprise's safety officer on duty",
           "enterprise.B": "the enterprise's officer B", "enterprise.leader": "the enterprise's "
           "safety manager", "town": "the town's regulator", "town.B": "the town's regulator B",
           "town.leader": "the town's lead regulator", "bureau": "the bureau's duty officer",
           "bureau.B": "the bureau's officer B", "bureau.leader": "the bureau's shift leader"}
LEVEL_ROLES = {r for r in ROLE_ZH if r.split(".")[0] in ("enterprise", "town", "bureau")}
KIND_ZH = {"raised": "发布", "upgraded": "升级", "downgraded": "降级", "cleared": "解除",
           "escalated": "未确认·升级呼叫", "reminder": "未确认·提醒", "unmuted": "恢复通知"}
KIND_EN = {"raised": "raise", "upgraded": "upgrade", "downgraded": "downgrade",
           "cleared": "all-clear", "escalated": "escalation", "reminder": "reminder",
           "unmuted": "release"}
STATE_ZH = {"pending": "待定", "active": "生效", "acknowledged": "已确认", "cleared": "已解除"}


class Text(NamedTuple):
    """One text in both languages."""

    zh: str
    en: str

    def kw(self) -> dict[str, str]:
        """As the ``reason_zh``/``reason_en`` of a timeline entry or a notice."""
        return {"reason_zh": self.zh, "reason_en": self.en}


def roles_zh(roles: list[str]) -> str:
    return "、".join(ROLE_ZH.get(r, r) for r in roles)


def roles_en(roles: list[str]) -> str:
    names = [ROLE_EN.get(r, r) for r in roles]
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


def _minutes(ms: int) -> int:
    """Waits read in whole minutes (a tick lands a few seconds late); under one, in seconds."""
    return ms // 60_000 * 60_000 if ms >= 60_000 else ms // 1000 * 1000


# -- why a person is paged now (notices) --------------------------------------------------


def first_page(kind: str, grade: Grade, roles: list[str]) -> Text:
    """「红色预警：按红色预警规程同时通知A岗、B岗」 — the first step of a grade's policy."""
    together_zh = "同时通知" if len(roles) > 1 else "先通知"
    together_en = "together" if len(roles) > 1 else "first"
    head_zh = {"upgraded": f"升级为{grade.zh}预警"}.get(kind, f"{grade.zh}预警")
    head_en = {"upgraded": f"Upgraded to {grade.label}"}.get(kind, f"{grade.label.capitalize()} warning")
    return Text(f"{head_zh}：按{grade.zh}预警规程{together_zh}{roles_zh(roles)}",
                f"{head_en}: the {grade.label} procedure pages {roles_en(roles)} {together_en}")


def released(why: Text) -> Text:
    """An incident whose notifications were held (inhibited, silenced) is paged now."""
    return Text(f"暂停通知已解除，现在通知。{why.zh}", f"No longer held, notifying now. {why.en}")


def escalated(waited_for: list[str], timeout_ms: int, since_ms: int, roles: list[str]) -> Text:
    """「A岗15分钟未确认（发布后已过17分钟），已升级通知B岗」."""
    since = _minutes(since_ms)
    if LEVEL_ROLES.intersection(roles):   # up a level: 「企业值班安全员未在10分钟内确认，升级至镇街监管人员」
        return Text(f"{roles_zh(waited_for)}未在{duration_zh(timeout_ms)}内确认（发布后已过"
                    f"{duration_zh(since)}），升级至{roles_zh(roles)}",
                    f"Not acknowledged by {roles_en(waited_for)} within {duration_en(timeout_ms)} "
                    f"({duration_en(since)} since it was raised): escalated to {roles_en(roles)}")
    return Text(f"{roles_zh(waited_for)}{duration_zh(timeout_ms)}未确认（发布后已过{duration_zh(since)}），"
                f"已升级通知{roles_zh(roles)}",
                f"Not acknowledged by {roles_en(waited_for)} in {duration_en(timeout_ms)} "
                f"({duration_en(since)} since it was raised): escalated to {roles_en(roles)}")


def reminder(n: int, since_ms: int, roles: list[str]) -> Text:
    """「仍未确认（已过1小时）：第2次提醒A岗、B岗」."""
    since = _minutes(since_ms)
    return Text(f"仍未确认（已过{duration_zh(since)}）：第{n}次提醒{roles_zh(roles)}",
                f"Still not acknowledged after {duration_en(since)}: reminder {n} to "
                f"{roles_en(roles)}")


# -- the timeline -------------------------------------------------------------------------


def waiting_for_hold(grade: Grade, rule: Text) -> Text:
    return Text(f"{grade.zh}预警条件已成立，待持续时间满足后升级：{rule.zh}",
                f"The {grade.label} condition holds, waiting until it has lasted long enough: "
                f"{rule.en}")


def held_after_manual_clear(grade: Grade, manual: Grade, rule: Text) -> Text:
    return Text(f"销警（{manual.zh}）后规则仍为{grade.zh}：等级升高或规则解除前不再发布。{rule.zh}",
                f"The rule is at {grade.label} after a manual clear at {manual.label}: not raised "
                f"again until the grade rises or the rule clears. {rule.en}")


def upgraded_needs_new_ack(previous: Grade, grade: Grade, acked_by: str, rule: Text) -> Text:
    return Text(f"{previous.zh}升至{grade.zh}；{acked_by}的确认针对{previous.zh}预警，需重新确认：{rule.zh}",
                f"{previous.label.capitalize()} to {grade.label}; the acknowledgement by {acked_by} "
                f"was for {previous.label}, a new one is needed: {rule.en}")


def rule_clear_after_manual(rule: Text) -> Text:
    return Text(f"销警后规则的解除条件也已满足：{rule.zh}",
                f"The rule's all-clear condition is met after the manual clear: {rule.en}")


def reopened(grade: Grade, incident: str) -> Text:
    return Text(f"销警后升至{grade.zh}：另开新事件 {incident}",
                f"Rose to {grade.label} after the manual clear: reopened as {incident}")


def opened_after(incident: str) -> Text:
    return Text(f"事件 {incident} 销警后等级升高，开此新事件",
                f"Opened after the manual clear of {incident}")


def ack_not_needed(who: str, state: str, acked_by: str, cleared_by: str, note: str) -> Text:
    why_zh = {"acknowledged": f"已由{acked_by}确认", "cleared": "已解除",
              "pending": "仍为待定预警，尚未通知任何人"}.get(state, STATE_ZH.get(state, state))
    why_en = {"acknowledged": f"already acknowledged by {acked_by}", "cleared": "already cleared",
              "pending": "still pending, nobody was told"}.get(state, state)
    return Text(f"{who}的确认无需执行：{why_zh}" + (f"；备注：{note}" if note else ""),
                f"Acknowledgement by {who} not needed: {why_en}" + (f"; note: {note}" if note else ""))


def acknowledged(who: str, note: str) -> Text:
    return Text(f"{who}已确认" + (f"：{note}" if note else "") + "；停止升级通知",
                f"Acknowledged by {who}" + (f": {note}" if note else "") + "; escalation stopped")


def clear_not_needed(who: str, cleared_by: str) -> Text:
    by_zh = "规则" if cleared_by == "rule" else cleared_by
    by_en = "the rule" if cleared_by == "rule" else cleared_by
    return Text(f"{who}的销警无需执行：已由{by_zh}解除",
                f"Clear by {who} not needed: already cleared by {by_en}")


def manual_cleared(who: str, reason: str) -> Text:
    return Text(f"{who}销警：{reason or '未填写原因'}", f"Cleared by {who}: {reason or 'no reason given'}")


# -- held back on the way out (stages) ------------------------------------------------------


def below_minimum(kind: str, grade: Grade, minimum: Grade) -> Text:
    return Text(f"{grade.zh}预警{KIND_ZH.get(kind, kind)}未通知：低于最低通知等级（{minimum.zh}）",
                f"{grade.label.capitalize()} {KIND_EN.get(kind, kind)} not notified: below the "
                f"lowest grade notified ({minimum.label})")


def dropped(kind: str, state: str, grouped: bool = False) -> Text:
    if grouped:
        return Text(f"{KIND_ZH.get(kind, kind)}通知未发出：合并发送前已解除",
                    f"{KIND_EN.get(kind, kind).capitalize()} not sent: cleared before the group "
                    "was sent")
    return Text(f"{KIND_ZH.get(kind, kind)}通知未发出：发出前{STATE_ZH.get(state, state)}",
                f"{KIND_EN.get(kind, kind).capitalize()} not sent: {state} before it went out")


def nobody_holds(role: str, why: str) -> Text:
    return Text(f"无人可通知（{ROLE_ZH.get(role, role)}）：本组和值班室当前均无人当班，请检查值班表",
                f"Nobody to page as {ROLE_EN.get(role, role)}: {why}")


def inhibited(grade: Grade, incident: str, rule_name: str, station: str) -> Text:
    return Text(f"暂停通知：{grade.zh}预警 {incident}（{station}{rule_name}）生效中",
                f"Notifications held: the {grade.label} warning {incident} ({rule_name} at "
                f"{station}) is open")


def silenced(silence_id: str, by: str, reason: str) -> Text:
    return Text(f"暂停通知：静默 {silence_id} 生效中（{by}设置：{reason}）",
                f"Notifications held: silence {silence_id} is on (set by {by}: {reason})")


def silence_ending(silence_id: str, what: str, reason: str, ends: str) -> Text:
    """To the person who set a silence, before it ends."""
    return Text(f"您设置的静默 {silence_id}（{what}；原因：{reason}）将于 {ends} 结束。"
                "如仍需静默请延长，否则到期后恢复通知。",
                f"Your silence {silence_id} ({what}; reason: {reason}) ends at {ends}. "
                "Extend it if it is still needed; otherwise notifications resume then.")


def unheld(was: Text) -> Text:
    return Text(f"恢复通知（此前{was.zh.removeprefix('暂停通知：')}），现在通知",
                f"Notifications resume (held before: {was.en.removeprefix('Notifications held: ')})")


# -- delivery ---------------------------------------------------------------------------------


def nobody_at_level(role: str, why: str) -> Text:
    return Text(f"无人可通知（{ROLE_ZH.get(role, role)}）：企业或镇街当前无人当班，请检查企业名录的值班安排",
                f"Nobody to page as {ROLE_EN.get(role, role)}: {why}")


def notified(name: str, roles: list[str], channel: str, failed: int, kind: str) -> Text:
    fell_zh = f"（此前{failed}次尝试失败）" if failed else ""
    fell_en = f" after {failed} failed attempt(s)" if failed else ""
    return Text(f"已通知{name}（{roles_zh(roles)}），渠道 {channel}{fell_zh}：{KIND_ZH.get(kind, kind)}",
                f"{name} ({roles_en(roles)}) notified via {channel}{fell_en}: {KIND_EN.get(kind, kind)}")


def attempt_failed(name: str, roles: list[str], channel: str, error: str) -> Text:
    return Text(f"{name}（{roles_zh(roles)}）经 {channel} 发送失败：{error}",
                f"{name} ({roles_en(roles)}) via {channel} failed: {error}")


def unreachable(name: str, roles: list[str], contacts: int) -> Text:
    return Text(f"{name}（{roles_zh(roles)}）的{contacts}个联系方式均未送达：升级通知继续",
                f"{name} ({roles_en(roles)}) could not be reached on any of {contacts} "
                "contact(s): escalation goes on")


def no_contacts(name: str, roles: list[str]) -> Text:
    return Text(f"{name}（{roles_zh(roles)}）没有联系方式：请在值班表中补充",
                f"{name} ({roles_en(roles)}) has no contacts: add some to the roster")


def resent(name: str) -> Text:
    return Text(f"给{name}的消息发出时工作进程中断：已重发（可能收到两次）",
                f"The message to {name} was in flight when its worker stopped: sent again (it "
                "may arrive twice)")
