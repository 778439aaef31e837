"""Message text, per channel: SMS (≤ 70 characters), markdown (DingTalk/WeCom), e-mail/text.

Chinese by default, English available. One message may carry several
warnings of a group (a storm over many gauges is one message with a list).
E-mail and text carry the response plan (一点一方案) and the acknowledge link;
SMS carries only what fits in one 70-character message (one SMS segment of
Chinese text), so it never splits into parts that arrive out of order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from yujing.alerts.records import Rendered, Warning
from yujing.clock import DEFAULT_ZONE, local_time
from yujing.domain import Grade

SMS_LIMIT = 70

NOTICE_ZH = {"raised": "发布", "upgraded": "升级", "downgraded": "降级", "cleared": "解除",
             "escalated": "未确认·升级呼叫", "reminder": "未确认·提醒", "unmuted": "发布"}
ROLE_ZH = {"A": "A岗", "B": "B岗", "leader": "带班领导", "informed": "知会"}


@dataclass
class Line:
    """One warning in a message."""

    kind: str        # notice kind
    warning: Warning
    reason: str      # the notice's reason (why this person hears about it now)


def _grade(w: Warning) -> Grade:
    return Grade(max(1, w.grade))


def _kind_word(kind: str, lang: str) -> str:
    return NOTICE_ZH.get(kind, kind) if lang == "zh" else kind


def message_title(lines: list[Line], lang: str = "zh") -> str:
    top = max(lines, key=lambda ln: ln.warning.grade)
    w, g = top.warning, _grade(top.warning)
    kinds = {ln.kind for ln in lines}
    kind = top.kind if len(kinds) == 1 else ("cleared" if kinds == {"cleared"} else top.kind)
    if lang == "en":
        where = w.station_name or w.station if len(lines) == 1 else f"{len(lines)} stations"
        return f"[{g.label.upper()} {g.roman}] {w.rule_name} {kind} in {w.town}: {where}"
    where = (w.station_name or w.station) if len(lines) == 1 else f"{len(lines)}站"
    return f"【{g.zh}预警{_kind_word(kind, lang)}】{w.town} {where} {w.rule_name}"


def _line_text(ln: Line, lang: str, plan: str, full: bool) -> str:
    w, g = ln.warning, _grade(ln.warning)
    place = f"{w.town} {w.station_name or w.station} ({w.station})".strip()
    if lang == "en":
        s = (f"{w.rule_name} {g.label} ({g.roman}) {ln.kind} at {place}: {w.reason}. "
             f"Incident {w.incident}. Why now: {ln.reason}.")
        if full and plan:
            s += f" Response plan: {plan}"
        return s
    s = (f"{place}{w.rule_name}{g.zh}（{g.roman}级）预警{_kind_word(ln.kind, lang)}。"
         f"依据：{w.reason}。事件编号 {w.incident}。通知原因：{ln.reason}。")
    if full and plan:
        s += f"\n  处置方案：{plan}"
    return s


def render(lines: list[Line], person: str, roles: list[str], link: str | None,
           plan_of: Callable[[str], str], now_ms: int, lang: str = "zh",
           zone: str = DEFAULT_ZONE) -> Rendered:
    """All channel variants of one message; notify.py picks one per contact. Times are
    wall times in ``zone``, the duty officers' (config ``timezone:``)."""
    t = message_title(lines, lang)
    role = "、".join(ROLE_ZH.get(r, r) for r in roles) if lang == "zh" else ", ".join(roles)
    if lang == "zh":
        head = f"{person}（{role}）：{local_time(now_ms, zone)} 起，以下预警需要您处理。"
        ack = f"一键确认：{link}" if link else "请在值班系统或用 yujing ack 确认。"
    else:
        head = (f"{person} ({role}): as of {local_time(now_ms, zone)} ({zone}) "
                "these warnings need you.")
        ack = f"Acknowledge: {link}" if link else "Acknowledge in the console or with yujing ack."
    text_lines = [f"{i + 1}. {_line_text(ln, lang, plan_of(ln.warning.station), True)}"
                  for i, ln in enumerate(lines)]
    actionable = any(ln.kind not in ("cleared", "downgraded") for ln in lines)
    text = "\n".join([head, *text_lines] + ([ack] if actionable else []))
    md_lines = []
    for ln in lines:
        w, g = ln.warning, _grade(ln.warning)
        md_lines.append(f"- **{g.zh if lang == 'zh' else g.label}** {w.station_name or w.station}"
                        f"（{w.station}）{_kind_word(ln.kind, lang)}：{w.reason} `{w.incident}`")
    md = "\n".join([f"### {t}", head, "", *md_lines]
                   + ([f"\n[{'一键确认' if lang == 'zh' else 'Acknowledge'}]({link})"]
                      if link and actionable else []))
    return Rendered(title=t, sms=sms(lines, lang), markdown=md, text=text)


def sms(lines: list[Line], lang: str = "zh", limit: int = SMS_LIMIT) -> str:
    """One short message within ``limit`` characters, whatever the names' lengths."""
    top = max(lines, key=lambda ln: ln.warning.grade)
    w, g = top.warning, _grade(top.warning)
    where = w.station_name or w.station
    if len(lines) > 1:
        where += f"等{len(lines)}站" if lang == "zh" else f" +{len(lines) - 1}"
    if lang == "zh":
        text = (f"【预警】{w.town}{w.rule_name}{g.zh}预警{_kind_word(top.kind, lang)}："
                f"{where}，{w.value:g}。请尽快确认。{w.incident[-4:]}")
    else:
        text = f"{g.label.upper()} {w.rule_name} {top.kind} {w.town} {where} {w.value:g}. Ack pls."
    return text if len(text) <= limit else text[: limit - 1] + "…"
