"""Report-back (回报): what the people on the spot did about a warning. Pure, time passed in.

A report says the measures taken (措施), how many people were transferred (转移) or
withdrawn (撤离), whether production stopped (停产), photo links, a status (处置中,
已处置, 需支援) and free text. It reaches the book as a ``report`` command, like an
acknowledgement, so it lands on the timeline and survives restart with the rest of
the incident; the command id makes a replay harmless.

A manual clear (销警) of a grade in ``alerts.reports.required_for`` is refused until
a report is in: whoever clears must say what was done. A rule's own clear is not
refused (the rule says the hazard is over; holding the warning open would page people
about nothing): the incident closes and stays 待回报 (report due) until one arrives,
which the console and the period report show. The grade that counts is the peak, so
a red warning that fell back to yellow before its clear still needs one.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

import msgspec

from yujing.alerts.incidents import Change
from yujing.alerts.phrases import Text
from yujing.alerts.records import Report, State, Warning
from yujing.alerts.report_settings import ReportSettings
from yujing.domain import Grade

STATUS = {"handling": Text("处置中", "in hand"), "done": Text("已处置", "dealt with"),
          "support": Text("需支援", "support needed")}
_STATUS_OF = {**{k: k for k in STATUS}, **{t.zh: k for k, t in STATUS.items()}}
PHOTO_MAX_CHARS = 1_000
EXAMPLE = ('{"status": "handling", "measures": "关闭闸门，疏散下游住户", "evacuated": 23, '
           '"withdrawn": 0, "stopped": true, "photos": ["https://img.example/1.jpg"]}')


class ReportError(ValueError):
    """A report that cannot be taken; the text says what is wrong and how to write it."""


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    status: str = ""
    measures: str = ""
    evacuated: int = 0
    withdrawn: int = 0
    stopped: bool | None = None
    photos: list[str] = []
    text: str = ""


def parse_report(raw: bytes, s: ReportSettings, text_max: int) -> Report:
    """The report a JSON body asks for (``id``, ``at`` and ``by`` left empty for the
    caller), or ReportError saying why not."""
    try:
        body = msgspec.json.decode(raw.strip() or b"{}", type=_Body)
    except msgspec.ValidationError as exc:
        raise ReportError(f"回报内容无效 / bad report: {exc}; e.g. {EXAMPLE}") from None
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        raise ReportError(f"回报须为 JSON 对象 / a report is one JSON object in UTF-8, e.g. "
                          f"{EXAMPLE}") from None
    status = _STATUS_OF.get(body.status.strip())
    if status is None:
        raise ReportError(f"处置状态须为 处置中/已处置/需支援 / status {body.status!r}: write "
                          "handling (处置中), done (已处置) or support (需支援)")
    measures = _plain(body.measures.strip(), s.measures_max, "措施", "measures")
    text = _plain(body.text.strip(), text_max, "说明", "text")
    if not measures and not text:
        raise ReportError('回报须写明采取的措施 / say what was done: "measures": "..."')
    for key, n in (("evacuated", body.evacuated), ("withdrawn", body.withdrawn)):
        if not 0 <= n <= s.people_max:
            raise ReportError(f"{key} = {n}: a number of people between 0 and {s.people_max}")
    if len(body.photos) > s.photos_max:
        raise ReportError(f"{len(body.photos)} photo links: at most {s.photos_max} "
                          "(alerts.reports.photos_max)")
    photos = [photo_link(u) for u in body.photos]
    return Report(id="", at=0, by="", status=status, measures=measures,
                  evacuated=body.evacuated, withdrawn=body.withdrawn, stopped=body.stopped,
                  photos=photos, text=text)


def photo_link(url: str) -> str:
    """A photo link as given, if it is a plain http(s) URL with a host; ReportError if not
    (``javascript:``, ``data:`` and the like would run or hide in the console's links)."""
    url = url.strip()
    bad = len(url) > PHOTO_MAX_CHARS or any(c.isspace() or unicodedata.category(c) == "Cc"
                                            for c in url)
    parts = urlsplit(url) if not bad else None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ReportError(f"照片链接须为 http(s) 网址 / photo link {url[:80]!r}: give an http:// "
                          "or https:// URL of the picture")
    return url


def _plain(text: str, limit: int, what: str, key: str) -> str:
    if len(text) > limit:
        raise ReportError(f"{what}过长 / {key} is {len(text)} characters long: at most {limit}")
    bad = next((ch for ch in text if ch not in "\n\r\t" and unicodedata.category(ch) == "Cc"),
               None)
    if bad is not None:
        raise ReportError(f"{what}含控制字符 / {key} holds the control character U+{ord(bad):04X}")
    return text


def needs_report(w: Warning, s: ReportSettings) -> bool:
    """Whether the warning's peak grade is one whose manual clear needs a report."""
    return Grade(max(w.grade, w.peak, 0)).label in s.required_for


def report_due(w: Warning, s: ReportSettings) -> bool:
    """待回报: raised at a grade that needs a report, and none is in yet."""
    return w.state != State.PENDING and needs_report(w, s) and not w.reports


def clear_refusal(w: Warning, s: ReportSettings) -> Text | None:
    """Why a manual clear of ``w`` is refused now, or None if it may go ahead."""
    if w.state == State.CLEARED or not report_due(w, s):
        return None
    grades = sorted({Grade.parse(g) for g in s.required_for})
    if grades == list(range(grades[0], Grade.RED + 1)) and grades[0] < Grade.RED:
        zh, en = f"{grades[0].zh}及以上", f"{grades[0].label} and above"
    else:
        zh, en = "、".join(g.zh for g in grades), ", ".join(g.label for g in grades)
    return Text(f"{zh}预警销警前须先提交处置回报",
                f"a {en} warning needs a report-back (回报) before it is cleared: "
                f"POST /v1/warnings/{w.incident}/reports first")


def refuse_clear(w: Warning, who: str, why: Text, now_ms: int, command_id: str = "") -> Change:
    """Record on the timeline that a clear was refused (the book's own check: the API
    refuses first, from a snapshot that may be a moment old)."""
    if command_id and command_id in w.commands:
        return Change(w, applied=False)
    if command_id:
        w.commands = (w.commands + [command_id])[-50:]
    w.updated_ms = now_ms
    w.log(now_ms, "refused", f"clear by {who} refused: {why.en}", actor=who,
          reason_zh=f"{who} 销警未执行：{why.zh}", reason_en=f"clear by {who} refused: {why.en}")
    return Change(w, "note")


def add_report(w: Warning, r: Report, now_ms: int) -> Change:
    """Put a report on the warning and its timeline (once per command id)."""
    if r.id and r.id in w.commands:
        return Change(w, applied=False)
    if r.id:
        w.commands = (w.commands + [r.id])[-50:]
    r = msgspec.structs.replace(r, at=now_ms)
    w.reports.append(r)
    w.updated_ms = now_ms
    t = words(r)
    w.log(now_ms, "report", t.en, grade=w.grade, actor=r.by, **t.kw())
    return Change(w, "report")


def latest(w: Warning) -> Report | None:
    return w.reports[-1] if w.reports else None


def words(r: Report) -> Text:
    """The report in one line each language, for the timeline, CAP and the console."""
    st = STATUS.get(r.status, Text(r.status, r.status))
    zh, en = [f"回报（{st.zh}）"], [f"report ({st.en})"]
    if r.measures:
        zh.append(f"措施：{r.measures}")
        en.append(f"measures: {r.measures}")
    if r.evacuated or r.withdrawn:
        zh.append(f"转移{r.evacuated}人，撤离{r.withdrawn}人")
        en.append(f"{r.evacuated} transferred, {r.withdrawn} withdrawn")
    if r.stopped is not None:
        zh.append("已停产" if r.stopped else "未停产")
        en.append("production stopped" if r.stopped else "production goes on")
    if r.photos:
        zh.append(f"照片{len(r.photos)}张")
        en.append(f"{len(r.photos)} photo(s)")
    if r.text:
        zh.append(f"说明：{r.text}")
        en.append(f"note: {r.text}")
    return Text("；".join(zh), "; ".join(en))
