"""Reasons in the duty officer's words, Chinese first and English on the toggle.

A finding carries the comparisons of the branch that decided it
(:class:`yujing.domain.Term`, made by ``facts.py``); this module turns them into
「过去3小时累计雨量52.5毫米，达到橙色标准（≥50毫米）」 with the glossary of metric
names and units (``glossary.yaml``), and into the measured value alone
(「3小时雨量52.5毫米」) for SMS. The rule expression stays on the event as the
analysts' detail line; nothing here is parsed back.

The glossary itself is ``glossary.py``. Here ``say`` words a window function's value
against its threshold (the value, subject and threshold helpers) and hands the other kinds
of term (eta(), a silent gauge, stations counted, no data, a detector's confidence) to
``sayers.py``; ``describe`` composes the terms' sentences into the reason of one event.
"""

from __future__ import annotations

import numpy as np

from yujing.clock import DEFAULT_ZONE
from yujing.domain import Grade, Term
from yujing.durations import duration_en, duration_zh
from yujing.rules.glossary import Word
from yujing.rules.glossary import field as _field
from yujing.rules.glossary import word as _word
from yujing.rules.indices import beaufort
from yujing.rules.sayers import (
    SYMBOL,
    SYMBOL_EN,
    Said,
    Words,
    num,
    say_confidence,
    say_eta,
    say_group,
    say_nodata,
    say_other,
    say_silent,
)

NODATA_FNS = {"no_data", "never_reported", "data_back"}


# -- one term ---------------------------------------------------------------------------


def _value(t: Term, w: Word, unit_zh: str, unit_en: str, digits: int) -> tuple[str, str]:
    if t.value is None:
        return "无数据", "no data"
    v = f"{t.value:.{digits}f}"
    if w.kind == "beaufort" and t.fn.startswith("beaufort:") and t.raw is not None:
        raw = f"{t.raw:.{w.digits}f}"
        return f"{raw}{unit_zh}（{t.value:g}级）", f"{raw} {unit_en} (force {t.value:g})"
    if w.kind == "beaufort":
        force = float(beaufort(np.array([t.value]))[0])
        return f"{v}{unit_zh}（{force:g}级）", f"{v} {unit_en} (force {force:g})"
    return f"{v}{unit_zh}", f"{v} {unit_en}".rstrip()


def _subject(t: Term, w: Word) -> tuple[str, str, str, str]:
    """(zh, en, short zh, short en) of the measured side, without its value."""
    fn = t.fn.split(":")[-1]
    wz, we = duration_zh(t.window_ms), duration_en(t.window_ms)
    hz, he = duration_zh(t.horizon_ms), duration_en(t.horizon_ms)
    most = "最大" if w.kind == "beaufort" else "最高"
    table = {
        "sum": (f"过去{wz}累计{w.zh}", f"{we} {w.en} total", f"{wz}{w.zh}", f"{we} {w.en}"),
        "mean": (f"过去{wz}平均{w.zh}", f"{we} mean {w.en}", f"{wz}平均{w.zh}", f"{we} mean {w.en}"),
        "max": (f"过去{wz}{most}{w.zh}", f"{we} max {w.en}", f"{wz}{most}{w.zh}", f"{we} max {w.en}"),
        "min": (f"过去{wz}最低{w.zh}", f"{we} min {w.en}", f"{wz}最低{w.zh}", f"{we} min {w.en}"),
        "last": (w.zh, w.en, w.zh, w.en),
        "first": (f"过去{wz}首个{w.zh}读数", f"first {w.en} reading of {we}",
                  f"{wz}首个{w.zh}", f"first {w.en} of {we}"),
        "rate": (f"过去{wz}{w.zh}上涨速率", f"{w.en} rising over {we} at",
                 f"{w.zh}上涨速率", f"{w.en} rising at"),
        "delta": (f"过去{wz}{w.zh}变化", f"{w.en} change over {we}", f"{wz}{w.zh}变化",
                  f"{we} {w.en} change"),
        "spread": (f"过去{wz}{w.zh}变幅", f"{w.en} range over {we}", f"{wz}{w.zh}变幅",
                   f"{we} {w.en} range"),
        "jump": (f"{w.zh}相邻读数跳变", f"{w.en} jump between readings", f"{w.zh}跳变",
                 f"{w.en} jump"),
        "days_since": (f"连续无{w.zh}", f"days without {w.en}", f"无{w.zh}", f"no {w.en} for"),
        "project": (f"按近{wz}趋势，预计{hz}后{w.zh}", f"{w.en} projected {he} ahead on the {we} "
                    "trend at", f"预计{hz}后{w.zh}", f"{w.en} in {he}"),
        "sum_ahead": (f"未来{hz}{w.zh}", f"{w.en} over the next {he}", f"未来{hz}{w.zh}",
                      f"next {he} {w.en}"),
        "max_ahead": (f"未来{hz}最高{w.zh}", f"highest {w.en} in the next {he}",
                      f"未来{hz}最高{w.zh}", f"next {he} max {w.en}"),
        "sum_past_ahead": (f"过去{wz}实测与未来{hz}预报{w.zh}合计", f"{w.en} observed over the "
                           f"past {we} and forecast for the next {he}",
                           f"{wz}实测+{hz}预报{w.zh}", f"{we} observed + {he} forecast {w.en}"),
    }
    zh, en, szh, sen = table.get(fn, (w.zh, w.en, w.zh, w.en))
    if t.fn.startswith("deviation:"):
        f = _field(t.field)
        return (f"{zh}偏离{f.zh}", f"{en} off its {f.en} by", f"{szh}偏离{f.zh}",
                f"{w.en} off {f.en} by")
    return zh, en, szh, sen


def _threshold(t: Term, unit_zh: str, unit_en: str) -> tuple[str, str]:
    if t.threshold is None:
        return "", ""
    sym, sym_en, thr = SYMBOL[t.op], SYMBOL_EN[t.op], num(t.threshold)
    if not t.field:
        return f"{sym}{thr}{unit_zh}", f"{SYMBOL_EN[t.op]} {thr} {unit_en}".rstrip()
    f = _field(t.field)
    fv = num(t.field_value)
    if t.scale != 1.0:
        pct = num(t.scale * 100)
        return (f"{sym}{f.zh}{fv}{unit_zh}的{pct}%，即{thr}{unit_zh}",
                f"{sym_en} {pct} % of the {f.en} {fv} {unit_en}, i.e. {thr} {unit_en}")
    if t.offset:
        side_zh, side_en = ("以下", "below") if t.offset < 0 else ("以上", "above")
        off = num(abs(t.offset))
        return (f"{sym}{f.zh}{fv}{unit_zh}{side_zh}{off}{unit_zh}，即{thr}{unit_zh}",
                f"{sym_en} {off} {unit_en} {side_en} the {f.en} {fv} {unit_en}, i.e. {thr} {unit_en}")
    return f"{sym}{f.zh}{fv}{unit_zh}", f"{sym_en} the {f.en} {fv} {unit_en}".rstrip()


def _beyond(t: Term, digits: int, unit_zh: str, unit_en: str) -> tuple[str, str]:
    """「超警戒水位0.23米」: how far a measurement is past a station threshold it crossed."""
    if not t.field or t.offset or t.scale != 1.0 or t.value is None or t.field_value is None:
        return "", ""
    f, diff = _field(t.field), t.value - t.field_value
    if t.op in (">=", ">") and diff > 0:
        d = f"{diff:.{digits}f}"
        return f"，超{f.zh}{d}{unit_zh}", f", {d} {unit_en} over the {f.en}"
    if t.op in ("<", "<=") and diff < 0:
        d = f"{-diff:.{digits}f}"
        return f"，低于{f.zh}{d}{unit_zh}", f", {d} {unit_en} under the {f.en}"
    return "", ""


def say(t: Term) -> Said:
    """One term in words."""
    fn = t.fn.split(":")[-1]
    if t.fn in NODATA_FNS:
        return say_nodata(t)
    if fn == "count_stations":
        return say_group(t)
    if fn == "eta" and t.metric:
        return say_eta(t)
    if fn in ("fire_index", "anomaly", "expr", "fresh") or not t.metric or (
            fn == "count" and len(t.metrics) > 1):
        return say_other(t)
    w = _word(t.metric)
    if fn == "count":
        wz, we = duration_zh(t.window_ms), duration_en(t.window_ms)
        n = num(t.value) or "0"
        return Said(f"过去{wz}{w.zh}读数{n}条", f"{n} {w.en} readings in the past {we}",
                    f"{SYMBOL[t.op]}{num(t.threshold)}条", f"{SYMBOL_EN[t.op]} {num(t.threshold)}",
                    f"{wz}{w.zh}读数{n}条", f"{n} {w.en} readings in {we}")
    if w.kind == "confidence" and fn in ("max", "last"):
        return say_confidence(t, w)
    if w.kind == "event" and fn in ("max", "sum", "last", "count") and (t.threshold or 0) <= 1:
        wz, we = duration_zh(t.window_ms), duration_en(t.window_ms)
        within_zh, within_en = (f"过去{wz}内", f" in the past {we}") if t.window_ms else ("", "")
        if t.op in (">=", ">"):
            return Said(f"{within_zh}{w.event_zh}", f"{w.event_en}{within_en}",
                        short_zh=w.event_zh, short_en=w.event_en)
        return Said(f"{within_zh}未再{w.event_zh}", f"{w.none_en or 'no ' + w.en}{within_en}",
                    short_zh=f"未再{w.event_zh}", short_en=w.none_en)
    unit_zh, unit_en, digits = w.unit_zh, w.unit_en, w.digits
    if fn == "spread" and t.op == "==" and t.threshold == 0:
        wz, we = duration_zh(t.window_ms), duration_en(t.window_ms)
        return Said(f"过去{wz}{w.zh}读数没有任何变化", f"{w.en} readings unchanged over {we}",
                    short_zh=f"{wz}{w.zh}无变化", short_en=f"{w.en} unchanged {we}")
    if fn == "rate":
        unit_zh, unit_en = f"{w.unit_zh}/小时", f"{w.unit_en}/h"
    elif fn == "days_since":
        unit_zh, unit_en, digits = "天", "d", 1
    vz, ve = _value(t, w, unit_zh, unit_en, digits)
    zh, en, szh, sen = _subject(t, w)
    bz, be = _beyond(t, digits, unit_zh, unit_en)
    tz, te = _threshold(t, unit_zh, unit_en)
    if w.kind == "beaufort" and t.fn.startswith("beaufort:"):
        tz, te = (f"{w.zh}{SYMBOL[t.op]}{num(t.threshold)}级",
                  f"{w.en} force {SYMBOL_EN[t.op]} {num(t.threshold)}")
    return Said(f"{zh}{vz}{bz}", f"{en} {ve}{be}", tz, te, f"{szh}{vz}", f"{sen} {ve}",
                f"{zh}{vz}", f"{en} {ve}")



# -- the sentence -----------------------------------------------------------------------


def _verdict(kind: str, grade: Grade, hold_ms: int) -> tuple[str, str, str, str]:
    """What the terms amount to, by the event's kind: (zh, zh after the threshold, en,
    en after the threshold)."""
    gz, ge = grade.zh, grade.label
    if kind == "pending":
        if not hold_ms:
            return f"达到{gz}标准", "，待持续时间满足后发布", f"meeting the {ge} threshold", \
                "; raised once it has held long enough"
        return (f"达到{gz}标准", f"，持续{duration_zh(hold_ms)}后发布", f"meeting the {ge} threshold",
                f"; raised once it holds for {duration_en(hold_ms)}")
    if kind == "downgraded":
        return f"降至{gz}标准", "", f"down to the {ge} threshold", ""
    if kind in ("cleared", "ended"):
        after_zh = f"，已持续{duration_zh(hold_ms)}" if hold_ms else ""
        after_en = f" for {duration_en(hold_ms)}" if hold_ms else ""
        if kind == "ended":
            after_zh += f"；待定的{gz}预警未发布"
            after_en += f"; the pending {ge} warning was never raised"
        return "达到解除条件", after_zh, "meeting the all-clear condition", after_en
    return f"达到{gz}标准", "", f"reaching the {ge} threshold", ""


def _with(text: str, thr: str, open_: str, close: str, sep: str) -> str:
    """「…3级）」 + threshold: inside the closing bracket if the text ends with one."""
    if not thr:
        return text
    if text.endswith(close):
        return f"{text[:-len(close)]}{sep}{thr}{close}"
    return f"{text}{open_}{thr}{close}"


def _guard(t: Term, terms: list[Term]) -> str:
    """What a term is if it only says the data is there or the machine runs, else ''.

    ``fresh`` (a reading arrived lately) and ``count`` (enough readings, or any reading of
    the collector's metrics) say the data is there; a mean of a metric above a fraction of
    its station field, beside a deviation of the same metric from that field, says the
    machine runs (the dust filter's idle guard). The sentence names what happened and
    gives these as a short clause, or leaves them out."""
    fn = t.fn.split(":")[-1]
    if t.fn == "fresh":
        return "fresh"
    if fn == "count" and t.op in (">=", ">"):
        return "count" if len(t.metrics) <= 1 else "fresh"
    if t.op in (">", ">=") and t.field and t.scale < 1 and not t.fn.startswith("deviation:") \
            and any(o.fn.startswith("deviation:") and o.metric == t.metric for o in terms):
        return "running"
    return ""


def _clause(t: Term, guard: str) -> tuple[str, str] | None:
    if guard == "count":
        n = num(t.value) or "0"
        return f"期间共{n}条读数", f"over {n} readings"
    if guard == "running":
        return "设备运行中", "the unit running"
    return None


def _merged(pairs: list[tuple[Term, Said]]) -> list[Said]:
    """Two comparisons of the same measured side read as one with both thresholds
    (「气温25.0℃（≥-5℃，≤45℃）」): a range check that holds, or its clear."""
    out: list[Said] = []
    keys: list[tuple] = []
    for t, s in pairs:
        key = (t.fn, t.metric, t.window_ms, t.value, s.base_zh or s.zh)
        if key in keys and s.thr_zh:
            twin = out[keys.index(key)]
            out[keys.index(key)] = Said(twin.base_zh or twin.zh, twin.base_en or twin.en,
                                        f"{twin.thr_zh}，{s.thr_zh}", f"{twin.thr_en}, {s.thr_en}",
                                        twin.short_zh, twin.short_en)
        else:
            out.append(s)
            keys.append(key)
    return out


def describe(kind: str, grade: Grade, terms: list[Term], hold_ms: int = 0,
             zone: str = DEFAULT_ZONE) -> Words:
    """The reason of one event in words. ``kind``: pending, raised, upgraded, downgraded,
    cleared, or ended (a pending warning whose condition went away). ``zone`` is the duty
    officers' time zone, for the time of a silent gauge's last reading."""
    if terms and terms[0].fn == "no_data" and terms[0].at_ms:
        return say_silent(terms[0], Grade(grade), zone)
    if terms and all(t.fn in NODATA_FNS for t in terms):
        s = say(terms[0])
        return Words(s.zh, s.en[:1].upper() + s.en[1:], s.short_zh, s.short_en)
    vz, az, ve, ae = _verdict(kind, Grade(grade), hold_ms)
    if not terms:
        return Words(f"规则条件成立，{vz}{az}", f"The rule's condition holds, {ve}{ae}", "", "")
    guards = [_guard(t, terms) for t in terms]
    if all(guards):
        guards = [""] * len(terms)  # a condition of guards alone reads as it is
    said = _merged([(t, say(t)) for t, g in zip(terms, guards) if not g])
    clauses = [c for t, g in zip(terms, guards) if g and (c := _clause(t, g))]
    extra_zh = "".join(f"，{c[0]}" for c in clauses)
    extra_en = "".join(f", {c[1]}" for c in clauses)
    if len(said) == 1 and not clauses:
        s = said[0]
        zh = f"{s.zh}，{vz}" + (f"（{s.thr_zh}）" if s.thr_zh else "") + az
        en = f"{s.en}, {ve}" + (f" ({s.thr_en})" if s.thr_en else "") + ae
    else:
        zh = "，且".join(_with(s.zh, s.thr_zh, "（", "）", "，") for s in said) + extra_zh + f"，{vz}{az}"
        en = "; and ".join(_with(s.en, s.thr_en, " (", ")", ", ") for s in said) + extra_en + \
            f": {ve}{ae}"
    first = said[0]
    return Words(zh, en[:1].upper() + en[1:], first.short_zh, first.short_en)
