"""Decoders of the duty commands' JSON bodies: a checked request, or BodyError saying why.

Every body the /v1 API takes from a person goes through one of these before anything is
sent to the book, so a malformed one is a 400 with a reason, never a 500: bad UTF-8, bad
JSON, nesting deep enough to exhaust the decoder, a list where an object belongs, a value
of the wrong type, an unknown key, a text longer than ``alerts.commands`` allows, or
times outside the bounds a silence may have. Pure: the time is passed in.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import msgspec

from yujing.alerts.records import Matcher, Weekly
from yujing.alerts.settings import CommandLimits
from yujing.alerts.silences import PATTERN_MAX, parse_matcher, parse_weekly
from yujing.durations import parse_duration_ms

MS_MAX = 2**53          # epoch ms beyond any calendar; JSON numbers stay exact below it
_ID_MAX = 64


class BodyError(ValueError):
    """A malformed body; its text says what is wrong and how to write it."""


class _Text(msgspec.Struct, forbid_unknown_fields=True):
    note: str | None = None
    text: str | None = None
    reason: str | None = None


class _Silence(msgspec.Struct, forbid_unknown_fields=True):
    reason: str = ""
    matchers: list[str] = []
    incident: str = ""
    id: str = ""
    weekly: list[str] = []
    duration: str = ""
    starts_ms: int | None = None
    ends_ms: int | None = None


@dataclass(frozen=True)
class SilenceRequest:
    """A checked silence body: matchers parsed, times bounded."""

    matchers: list[Matcher]
    incident: str
    id: str
    weekly: list[Weekly]
    starts_ms: int
    ends_ms: int
    reason: str


def _decode(raw: bytes, type_: type, example: str):
    """``raw`` as ``type_``; an empty body is an empty object."""
    try:
        return msgspec.json.decode(raw.strip() or b"{}", type=type_)
    except msgspec.ValidationError as exc:
        raise BodyError(f"请求体无效 / bad body: {exc}; e.g. {example}") from None
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        raise BodyError(f"请求体不是 JSON 对象 / the body must be one JSON object in UTF-8, e.g. "
                        f"{example}") from None


def _bounded(text: str, limit: int, what: str, key: str) -> str:
    if len(text) > limit:
        raise BodyError(f"{what}过长 / {key} is {len(text)} characters long: at most {limit} "
                        "(alerts.commands)")
    bad = next((ch for ch in text if ch not in "\n\r\t" and unicodedata.category(ch) == "Cc"),
               None)
    if bad is not None:
        # terminal escapes would reach the CLI's listing, NULs the sinks: text only
        raise BodyError(f"{what}含控制字符 / {key} holds the control character U+{ord(bad):04X}: "
                        "plain text and line breaks only")
    return text


def command_text(raw: bytes, action: str, limits: CommandLimits) -> str:
    """The note (ack, note) or reason (clear) of a command on a warning."""
    example = {"ack": '{"note": "on my way"}', "note": '{"text": "pump team dispatched"}',
               "clear": '{"reason": "rain stopped, water receded"}'}.get(action, "{}")
    body = _decode(raw, _Text, example)
    text = body.note or body.text or body.reason or ""
    if action == "clear":
        text = _bounded(text, limits.reason_max, "原因", "reason")
        if not text:
            raise BodyError('销警需要原因 / a manual clear (销警) needs a reason: {"reason": "..."}')
    else:
        text = _bounded(text, limits.note_max, "备注", "note")
        if action == "note" and not text:
            raise BodyError('备注不能为空 / a note needs text: {"text": "..."}')
    return text


def expire_reason(raw: bytes, limits: CommandLimits) -> str:
    """Why a silence ends now ("expired" when no reason is given)."""
    body = _decode(raw, _Text, '{"reason": "maintenance done"}')
    text = body.reason or body.note or body.text or ""
    return _bounded(text, limits.reason_max, "原因", "reason") or "expired"


def _time(value: int, key: str) -> int:
    if not 0 <= value <= MS_MAX:
        raise BodyError(f"{key} = {value}: epoch milliseconds between 0 and {MS_MAX}, e.g. "
                        "1748764800000")
    return value


def _span(body: _Silence, limits: CommandLimits, now_ms: int) -> tuple[int, int]:
    """Start and end of the silence, within ``silence_ahead`` and ``silence_max``."""
    longest, ahead = limits.silence_max, limits.silence_ahead
    starts = now_ms if body.starts_ms is None else _time(body.starts_ms, "starts_ms")
    if starts > now_ms + ahead.ms:
        raise BodyError(f"starts_ms is more than {ahead} ahead (alerts.commands.silence_ahead)")
    if body.ends_ms is not None:
        ends = _time(body.ends_ms, "ends_ms")
        if ends <= starts:
            raise BodyError("ends_ms must be after starts_ms")
    elif body.duration:
        try:
            ms = parse_duration_ms(body.duration)
        except ValueError as exc:
            raise BodyError(f"duration: {exc}") from None
        if ms <= 0:
            raise BodyError(f"duration {body.duration!r} must be longer than 0s, e.g. \"2h\"")
        ends = starts + ms
    else:
        raise BodyError('持续多久？/ say how long: "duration": "2h" or "ends_ms"')
    if ends <= now_ms:
        raise BodyError("ends_ms is in the past: a silence must end after now")
    if ends - starts > longest.ms:
        raise BodyError(f"静默最长 {longest} / a silence lasts at most {longest} "
                        f"(alerts.commands.silence_max): add a new one when it ends")
    return starts, ends


def silence_request(raw: bytes, limits: CommandLimits, now_ms: int) -> SilenceRequest:
    """A new silence (or the replacement of one, when ``id`` names it)."""
    body = _decode(raw, _Silence, '{"matchers": ["town=虎门镇"], "duration": "2h", '
                                  '"reason": "gauge maintenance"}')
    reason = _bounded(body.reason, limits.reason_max, "原因", "reason")
    if not reason:
        raise BodyError("静默需要原因 / a silence needs a reason: who reads the list later must "
                        "know why")
    if len(body.matchers) > limits.matchers_max:
        raise BodyError(f"{len(body.matchers)} matchers: at most {limits.matchers_max} "
                        "(alerts.commands.matchers_max)")
    if len(body.weekly) > 7:
        raise BodyError(f"{len(body.weekly)} weekly windows: at most 7, one a day")
    for key in ("incident", "id", "duration"):
        _bounded(getattr(body, key), _ID_MAX, key, key)
    for text in body.matchers + body.weekly:
        _bounded(text, PATTERN_MAX + _ID_MAX, "匹配条件", "a matcher or weekly window")
    try:
        matchers = [parse_matcher(m) for m in body.matchers]
        weekly = [parse_weekly(w) for w in body.weekly]
    except ValueError as exc:
        raise BodyError(str(exc)) from None
    if not matchers and not body.incident:
        raise BodyError('静默需要匹配条件 / give at least one matcher, e.g. "matchers": '
                        '["town=虎门镇"], or "incident": id, or it would silence everything')
    starts, ends = _span(body, limits, now_ms)
    return SilenceRequest(matchers, body.incident, body.id, weekly, starts, ends, reason)
