"""Message text, per channel: SMS (one segment), markdown (DingTalk/WeCom), e-mail/text.

Chinese by default, English available. One message may carry several
warnings of a group (a storm over many gauges is one message with a list).
E-mail and text carry the response plan (一点一方案) and the acknowledge link;
SMS carries only what fits in one segment, so it never splits into parts that
arrive out of order: 70 characters of Chinese (UCS-2), 160 of English (GSM-7).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from yujing.alerts.phrases import KIND_ZH, ROLE_EN, ROLE_ZH
from yujing.alerts.records import Rendered, Warning
from yujing.clock import DEFAULT_ZONE, local_time
from yujing.domain import Grade

SMS_LIMIT = 70        # one SMS segment of Chinese (UCS-2)
SMS_LIMIT_EN = 160    # one SMS segment of English (GSM-7)
SMS_LIMITS = {"zh": SMS_LIMIT, "en": SMS_LIMIT_EN}

NOTICE_ZH = {**KIND_ZH, "unmuted": "发布"}


@dataclass
class Line:
    """One warning in a message."""

    kind: str        # notice kind
    warning: Warning
    reason: str      # the notice's reason (why this person hears about it now): the English
    reason_zh: str = ""   # sentence of before words; these are the words
    reason_en: str = ""

    def why_now(self, lang: str) -> str:
        return (self.reason_en if lang == "en" else self.reason_zh) or self.reason


def _grade(w: Warning) -> Grade:
    return Grade(max(1, w.grade))


def _kind_word(kind: str, lang: str) -> str:
    return NOTICE_ZH.get(kind, kind) if lang == "zh" else kind


def message_title(lines: list[Line], lang: str = "zh") -> str:
    top = max(lines, key=lambda ln: ln.warning.grade)
    w, g = top.warning, _grade(top.warning)
    kinds = {ln.kind for ln in lines}
    kind = top.kind if len(kinds) == 1 else ("cleared" if kinds == {"cleared"} else top.kind)
    n = stations(lines)
    if lang == "en":
        where = w.station_name or w.station if n == 1 else f"{n} stations"
        return f"[{g.label.upper()} {g.roman}] {w.rule_name} {kind} in {w.town}: {where}"
    where = (w.station_name or w.station) if n == 1 else f"{n}站"
    return f"【{g.zh}预警{_kind_word(kind, lang)}】{w.town} {where} {w.rule_name}"


def stations(lines: list[Line]) -> int:
    """How many stations a message is about: one station with two warnings is one."""
    return len({ln.warning.station for ln in lines})


def why(w: Warning, lang: str = "zh") -> str:
    """The warning's reason in words; the expression for a record of before words."""
    return (w.reason_en if lang == "en" else w.reason_zh) or w.reason


def _line_text(ln: Line, lang: str, plan: str, full: bool) -> str:
    w, g = ln.warning, _grade(ln.warning)
    place = f"{w.town} {w.station_name or w.station} ({w.station})".strip()
    detail = full and w.reason and why(w, lang) != w.reason  # the expression, for analysts
    if lang == "en":
        s = (f"{w.rule_name} {g.label} ({g.roman}) {ln.kind} at {place}: {why(w, lang)}. "
             f"Incident {w.incident}. Why now: {ln.why_now(lang)}.")
        if full and plan:
            s += f" Response plan: {plan}"
        if detail:
            s += f"\n  Detail: {w.reason}"
        return s
    s = (f"{place}{w.rule_name}{g.zh}（{g.roman}级）预警{_kind_word(ln.kind, lang)}。"
         f"依据：{why(w, lang)}。事件编号 {w.incident}。通知原因：{ln.why_now(lang)}。")
    if full and plan:
        s += f"\n  处置方案：{plan}"
    if detail:
        s += f"\n  明细：{w.reason}"
    return s


def render(lines: list[Line], person: str, roles: list[str], link: str | None,
           plan_of: Callable[[str], str], now_ms: int, lang: str = "zh",
           zone: str = DEFAULT_ZONE, report_links: dict[str, str] | None = None) -> Rendered:
    """All channel variants of one message; notify.py picks one per contact. Times are
    wall times in ``zone``, the duty officers' (config ``timezone:``).

    ``report_links``: incident → its signed report-back (回报) link, for warnings whose
    grade needs a report and that have none yet, cleared ones included (a warning a rule
    cleared while 待回报 has no acknowledge page to lead there). Text, e-mail and
    markdown carry them; SMS never does (a signed link alone is longer than 70
    characters, and a split SMS arrives in pieces)."""
    report_links = report_links or {}
    t = message_title(lines, lang)
    role = ("、".join(ROLE_ZH.get(r, r) for r in roles) if lang == "zh"
            else ", ".join(ROLE_EN.get(r, r) for r in roles))
    if lang == "zh":
        head = f"{person}（{role}）：{local_time(now_ms, zone)} 起，以下预警需要您处理。"
        ack = f"一键确认：{link}" if link else "请在值班系统或用 yujing ack 确认。"
    else:
        head = (f"{person} ({role}): as of {local_time(now_ms, zone)} ({zone}) "
                "these warnings need you.")
        ack = f"Acknowledge: {link}" if link else "Acknowledge in the console or with yujing ack."
    text_lines = [f"{i + 1}. {_line_text(ln, lang, plan_of(ln.warning.station), True)}"
                  + _report_line(report_links.get(ln.warning.incident), lang)
                  for i, ln in enumerate(lines)]
    actionable = any(ln.kind not in ("cleared", "downgraded") for ln in lines)
    text = "\n".join([head, *text_lines] + ([ack] if actionable else []))
    md_lines = []
    for ln in lines:
        w, g = ln.warning, _grade(ln.warning)
        md_lines.append(f"- **{g.zh if lang == 'zh' else g.label}** {w.station_name or w.station}"
                        f"（{w.station}）{_kind_word(ln.kind, lang)}：{why(w, lang)} `{w.incident}`"
                        + (f" [{'填写处置回报' if lang == 'zh' else 'report back'}]"
                           f"({report_links[w.incident]})" if w.incident in report_links else ""))
    md = "\n".join([f"### {t}", head, "", *md_lines]
                   + ([f"\n[{'一键确认' if lang == 'zh' else 'Acknowledge'}]({link})"]
                      if link and actionable else []))
    return Rendered(title=t, sms=sms(lines, lang), markdown=md, text=text)


def _report_line(link: str | None, lang: str) -> str:
    if not link:
        return ""
    return f"\n  填写处置回报：{link}" if lang == "zh" else f"\n  Report back: {link}"


def sms(lines: list[Line], lang: str = "zh", limit: int | None = None) -> str:
    """One short message within one SMS segment (``SMS_LIMITS`` of ``lang`` unless ``limit``):
    station, window, value, unit and grade (「虎门镇雨量站3小时雨量103.5毫米，红色预警发布」).
    A long station name is cut, never the measurement or the grade; the count of other
    stations and the ask come first to go."""
    limit = limit or SMS_LIMITS.get(lang, SMS_LIMIT)
    top = max(lines, key=lambda ln: ln.warning.grade)
    w, g = top.warning, _grade(top.warning)
    name = w.station_name or w.station
    n, others = stations(lines), len(lines) - 1
    if lang == "zh":
        measure = w.measure_zh or f"{w.rule_name}{w.value:g}"
        core = f"{measure}，{g.zh}预警{_kind_word(top.kind, lang)}"
        more = f"，等{n}站" if n > 1 else (f"，共{len(lines)}条预警" if others else "")
        extras = [f"{more}。请尽快确认。{w.incident[-4:]}", f"{more}。请尽快确认。", f"{more}。", "。"]
    else:
        measure = w.measure_en or f"{w.rule_name} {w.value:g}"
        core = f": {measure}, {g.label} warning {top.kind}"
        more = f" (+{n - 1} stations)" if n > 1 else (f" (+{others} more)" if others else "")
        extras = [f"{more}. Please acknowledge. Incident {w.incident}", f"{more}. Please "
                  "acknowledge.", f"{more}.", "."]
    for extra in extras:  # keep at least a few characters of the name before dropping extras
        room = limit - len(core) - len(extra)
        if room >= min(len(name), 6):
            break
    shown = name if len(name) <= room else name[: max(room - 1, 1)] + "…"
    text = f"{shown}{core}{extra}"
    return text if len(text) <= limit else text[: limit - 1] + "…"
