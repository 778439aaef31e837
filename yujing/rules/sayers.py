"""The sentences of the terms that are not one measured value against a threshold, and
the records every sentence fills.

``wording.say`` turns a window function's value and its threshold into words and hands
the other kinds of term here: eta() (hours to reach a level, rising or falling), a gauge
silent during an open warning, stations counted over a town, no data, a detector's
confidence, the fire index, an anomaly score and combined values. Apart from
``wording.py`` because each of these speaks its own sentence and shares with the rest
only the ``Said``/``Words`` records, the comparison symbols and the number format below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from yujing.domain import Grade, Term
from yujing.durations import duration_en, duration_zh
from yujing.rules.glossary import Word
from yujing.rules.glossary import field as _field
from yujing.rules.glossary import word as _word

SYMBOL = {">=": "≥", ">": "＞", "<": "＜", "<=": "≤", "==": "＝", "!=": "≠"}
SYMBOL_EN = {">=": "≥", ">": ">", "<": "<", "<=": "≤", "==": "=", "!=": "≠"}
GROUP_BY = {"town": ("镇街", "town"), "enterprise": ("企业", "enterprise"),
            "kind": ("类型", "kind")}


@dataclass(frozen=True)
class Words:
    """A reason in words, and the measured value alone, in both languages."""

    zh: str
    en: str
    measure_zh: str
    measure_en: str


def num(x: float | None) -> str:
    """A threshold or a count as written: 50, 0.3, 6.5 (at most six digits)."""
    return "" if x is None else f"{x:.6g}"


@dataclass
class Said:
    """One term in words: the measured side with its value, and the threshold."""

    zh: str
    en: str
    thr_zh: str = ""
    thr_en: str = ""
    short_zh: str = ""   # without 过去/累计: for SMS
    short_en: str = ""
    base_zh: str = ""    # the measured side and value alone (no 「超警戒水位…」), to merge twins
    base_en: str = ""


def hours(h: float) -> tuple[str, str]:
    """1.5小时 / 1.5 h from one hour on, else whole minutes (at least 1)."""
    if h >= 1:
        return f"{h:.1f}".rstrip("0").rstrip(".") + "小时", f"{h:.1f}".rstrip("0").rstrip(".") + " h"
    m = max(1, round(h * 60))
    return f"{m}分钟", f"{m} min"


def say_eta(t: Term) -> Said:
    """「按近1小时趋势，预计1.5小时内达到警戒水位6.5米」: the value is hours to go (None:
    the trend never gets there), ``raw`` the level and ``field`` its registry name."""
    w = _word(t.metric)
    wz, we = duration_zh(t.window_ms), duration_en(t.window_ms)
    level_zh = level_en = ""
    if t.raw is not None:
        level_zh, level_en = f"{num(t.raw)}{w.unit_zh}", f"{num(t.raw)} {w.unit_en}".rstrip()
        if t.field and not t.offset and t.scale == 1.0:
            f = _field(t.field)
            level_zh, level_en = f"{f.zh}{level_zh}", f"the {f.en} {level_en}"
    # falling:eta looks down to a low level (「降至」) where eta looks up to one (「达到」)
    down = t.fn.startswith("falling:")
    reach_zh, reached_zh, reach_en = ("降至", "已降至", "fall to") if down else ("达到", "已达到", "reach")
    short_zh_to, has_en = ("降至", "has fallen to") if down else ("达", "has reached")
    if t.value is None:  # never on this trend, or (not fitted) not within the limit
        lz, le = hours(t.threshold) if t.threshold else ("", "")
        zh = f"按近{wz}趋势，{w.zh}预计{lz}内不会{reach_zh}{level_zh}" if lz else \
            f"按近{wz}趋势，{w.zh}不会{reach_zh}{level_zh}"
        en = f"on the {we} trend {w.en} will not {reach_en} {level_en}" + (f" within {le}" if le else "")
        short_zh, short_en = ((f"{w.zh}未见下降趋势", f"{w.en} not falling") if down else
                              (f"{w.zh}未见上涨趋势", f"{w.en} not rising"))
    elif t.value == 0:
        zh, en = f"{w.zh}{reached_zh}{level_zh}", f"{w.en} {has_en} {level_en}"
        short_zh, short_en = f"{w.zh}已{short_zh_to}{level_zh}", f"{w.en} at {level_en}"
    else:
        hz, he = hours(t.value)
        zh = f"按近{wz}趋势，预计{hz}内{reach_zh}{level_zh}"
        en = f"on the {we} trend {w.en} expected to {reach_en} {level_en} within {he}"
        short_zh, short_en = f"预计{hz}{short_zh_to}{level_zh}", f"{w.en} to {reach_en} {level_en} in {he}"
    thr_zh = thr_en = ""
    if t.threshold is not None:
        lz, le = hours(t.threshold)
        thr_zh, thr_en = f"预计到达时间{SYMBOL[t.op]}{lz}", f"time to reach {SYMBOL_EN[t.op]} {le}"
    return Said(zh, en, thr_zh, thr_en, short_zh, short_en)


def say_group(t: Term) -> Said:
    things_zh = "或".join(_word(m).thing_zh or _word(m).zh for m in t.metrics)
    things_en = " or ".join(_word(m).thing_en or _word(m).en for m in t.metrics)
    by_zh, by_en = GROUP_BY.get(t.by, (t.by, t.by))
    wz, we = duration_zh(t.window_ms), duration_en(t.window_ms)
    n = num(t.value) or "0"
    zh = f"过去{wz}同一{by_zh}有{n}个站点监测到{things_zh}"
    en = f"{n} stations of the same {by_en} detected {things_en} in the past {we}"
    return Said(zh, en, f"{SYMBOL[t.op]}{num(t.threshold)}个站点",
                f"{SYMBOL_EN[t.op]} {num(t.threshold)} stations", f"同{by_zh}{n}站{things_zh}",
                f"{n} stations {things_en}")


def say_other(t: Term) -> Said:
    fn = t.fn.split(":")[-1]
    v = num(t.value) or "无数据"
    if fn == "fire_index":
        zh, en = f"森林火险指数{t.value:.0f}" if t.value is not None else "森林火险指数无数据", \
            f"forest fire danger index {num(t.value)}"
        return Said(zh, en, f"{SYMBOL[t.op]}{num(t.threshold)}",
                    f"{SYMBOL_EN[t.op]} {num(t.threshold)}", zh, en)
    if fn == "anomaly":
        return Said(f"异常检测评分{v}", f"anomaly score {v}", f"{SYMBOL[t.op]}{num(t.threshold)}",
                    f"{SYMBOL_EN[t.op]} {num(t.threshold)}", f"异常评分{v}", f"anomaly score {v}")
    names_zh = "或".join(_word(m).zh for m in t.metrics) or "数据"
    names_en = " or ".join(_word(m).en for m in t.metrics) or "data"
    if fn == "fresh":
        wz, we = duration_zh(t.window_ms), duration_en(t.window_ms)
        if t.op in (">", ">="):
            zh, en = f"最近{wz}有新的{names_zh}读数", f"new {names_en} readings in the last {we}"
        else:
            zh, en = f"最近{wz}无新的{names_zh}读数", f"no new {names_en} readings in the last {we}"
        return Said(zh, en, short_zh=zh, short_en=en)
    if fn == "count" and t.op in (">=", ">") and (t.threshold or 0) <= 1:
        wz, we = duration_zh(t.window_ms), duration_en(t.window_ms)
        zh, en = f"过去{wz}有{names_zh}读数", f"{names_en} readings in the past {we}"
        return Said(zh, en, short_zh=zh, short_en=en)
    return Said(f"{names_zh}综合值{v}", f"{names_en} combined {v}",
                f"{SYMBOL[t.op]}{num(t.threshold)}", f"{SYMBOL_EN[t.op]} {num(t.threshold)}",
                f"{names_zh}{v}", f"{names_en} {v}")


def say_confidence(t: Term, w: Word) -> Said:
    """A detector's confidence: 「过去10分钟识别到烟雾（置信度0.80）」 / 「过去1小时未识别到烟雾」."""
    wz, we = duration_zh(t.window_ms), duration_en(t.window_ms)
    within_zh, within_en = (f"过去{wz}", f" in the past {we}") if t.window_ms else ("", "")
    thing_zh, thing_en = w.thing_zh or w.zh, w.thing_en or w.en
    if t.op in (">=", ">") and t.value is not None:
        v = f"{t.value:.{w.digits}f}"
        return Said(f"{within_zh}识别到{thing_zh}（置信度{v}）", f"{thing_en} detected{within_en} "
                    f"(confidence {v})", f"置信度{SYMBOL[t.op]}{num(t.threshold)}",
                    f"confidence {SYMBOL_EN[t.op]} {num(t.threshold)}", f"识别到{thing_zh}{v}",
                    f"{thing_en} {v}")
    return Said(f"{within_zh}未识别到{thing_zh}", f"no {thing_en} detected{within_en}",
                short_zh=f"未识别到{thing_zh}", short_en=f"no {thing_en}")


def say_nodata(t: Term) -> Said:
    wz, we = duration_zh(t.window_ms), duration_en(t.window_ms)
    if t.fn == "data_back":
        gap = f"{(t.value or 0):.0f}"
        return Said(f"数据恢复（中断{gap}分钟）", f"data arriving again after {gap} min",
                    short_zh=f"数据恢复，中断{gap}分钟", short_en=f"data back after {gap} min")
    if t.fn == "never_reported":
        return Said(f"超过{wz}从未收到数据", f"never reported in {we}",
                    short_zh=f"{wz}无数据", short_en=f"silent {we}")
    return Said(f"超过{wz}未收到数据", f"no data for more than {we}",
                short_zh=f"{wz}无数据", short_en=f"silent {we}")


def say_silent(t: Term, grade: Grade, zone: str) -> Words:
    """A gauge silent during an open warning: how long, its last reading and when, and the
    grade it stood at (「水位站已42分钟无数据；最后读数7.31米（14:05），当时为橙色预警」). A
    warning whose rule names no metric gives the time of the station's last reading alone."""
    wz, we = duration_zh(t.window_ms), duration_en(t.window_ms)
    w = _word(t.metric) if t.metric else Word(zh="", en="")
    at_zh, at_en = clock(t.at_ms, t.at_ms + t.window_ms, zone)
    who_zh, who_en = (f"{w.zh}站", f"{w.en} gauge") if t.metric else ("站点", "station")
    if t.raw is not None:
        v = f"{t.raw:.{w.digits}f}"
        last_zh = f"最后读数{v}{w.unit_zh}（{at_zh}）"
        last_en = f"last reading {v} {w.unit_en}".rstrip() + f" ({at_en})"
        short_zh, short_en = f"{wz}无数据，最后{v}{w.unit_zh}", f"silent {we}, last {v} {w.unit_en}".rstrip()
    else:
        last_zh, last_en = f"最后读数时间{at_zh}", f"last reading at {at_en}"
        short_zh, short_en = f"{wz}无数据", f"silent {we}"
    zh = f"{who_zh}已{wz}无数据；{last_zh}，当时为{grade.zh}预警"
    en = f"{who_en} silent for {we}; {last_en}, under the {grade.label} warning then"
    return Words(zh, en[:1].upper() + en[1:], short_zh, short_en)


def clock(at_ms: int, now_ms: int, zone: str) -> tuple[str, str]:
    """The wall time of ``at_ms``: 「14:05」 on the day of ``now_ms``, with the date before
    it on another day (a gauge silent 34 h)."""
    tz = ZoneInfo(zone)
    at, now = datetime.fromtimestamp(at_ms / 1000, tz), datetime.fromtimestamp(now_ms / 1000, tz)
    hm = at.strftime("%H:%M")
    if at.date() == now.date():
        return hm, hm
    return f"{at.month}月{at.day}日{hm}", f"{at.day} {at.strftime('%b')} {hm}"

