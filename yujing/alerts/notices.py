"""Safety notices (安全提示/通知): the bureau tells a set of enterprises, and tracks who
acknowledged. Pure, ``now`` passed in.

The bureau chooses enterprises by industry tag (粉尘涉爆, 危化 ...), by town or park, or
by an explicit list (:class:`Selector`); :func:`select` resolves that against the
registry of enterprises (:mod:`yujing.alerts.orgs`) at send time, and the resolved list
is stored with the notice: a registry edited later does not change who was told.

Each enterprise is a :class:`Target` of the notice with its own tracking: who was sent
it, who acknowledged (已收到 received, or 已落实 carried out) and when, how many
reminders went out. :func:`reminders_due` says which targets are due a reminder (not
acknowledged ``remind_after`` after the notice or the last reminder, fewer than
``reminders`` so far); a target past its last reminder is 未确认 (unconfirmed), which the
bureau's tracking lists. The edge (``streams/notices.py``) keeps notices in a
changelog-backed table and delivers through apprise like a warning's messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from yujing.alerts.notice_settings import NoticeSettings
from yujing.alerts.orgs import Orgs
from yujing.alerts.phrases import Text
from yujing.alerts.records import Rendered
from yujing.alerts.templates import SMS_LIMIT
from yujing.clock import DEFAULT_ZONE, local_time

ACKS = {"received": Text("已收到", "received"), "done": Text("已落实", "carried out")}
_ACK_OF = {**{k: k for k in ACKS}, **{t.zh: k for k, t in ACKS.items()}}
SEVERITIES = {"info": Text("一般", "information"), "warning": Text("重要", "important"),
              "urgent": Text("紧急", "urgent")}
EXAMPLE = ('{"title": "高温天气粉尘防爆提示", "body": "请检查除尘器温度与清灰", "kind": "防御提示", '
           '"to": {"tags": ["粉尘涉爆"]}}')


class NoticeError(ValueError):
    """A notice that cannot be sent; the text says every reason and how to write it."""


class Selector(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Who a notice goes to: enterprises with any of ``tags``, in any of ``towns``, or
    listed in ``enterprises`` (the union of the three)."""

    tags: list[str] = []
    towns: list[str] = []
    enterprises: list[str] = []

    def words(self) -> str:
        parts = ([f"行业 {'、'.join(self.tags)}"] if self.tags else []) \
            + ([f"镇街 {'、'.join(self.towns)}"] if self.towns else []) \
            + ([f"企业 {'、'.join(self.enterprises)}"] if self.enterprises else [])
        return "；".join(parts)


class Order(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /v1/notices``."""

    title: str
    body: str
    to: Selector
    kind: str = "安全提示"
    severity: str = "warning"
    link: str = ""


class Ack(msgspec.Struct, omit_defaults=True):
    kind: str          # received | done
    by: str
    at: int


class Target(msgspec.Struct, omit_defaults=True):
    """One enterprise of a notice and its tracking."""

    enterprise: str
    name: str
    town: str
    people: list[str] = []        # who it was sent to (and reminded)
    delivered_ms: int = 0         # the first delivery that reached someone
    failed: str = ""              # the last delivery failure, if none reached anyone
    acks: list[Ack] = []
    reminders: int = 0
    reminded_ms: int = 0

    @property
    def acked(self) -> bool:
        return bool(self.acks)


class Notice(msgspec.Struct, omit_defaults=True):
    id: str
    title: str
    body: str
    kind: str
    severity: str
    by: str
    at: int
    to: Selector
    targets: list[Target]
    link: str = ""
    commands: list[str] = []      # command ids applied (a replayed command changes nothing)

    def target(self, enterprise: str) -> Target | None:
        return next((t for t in self.targets if t.enterprise == enterprise), None)


def select(orgs: Orgs, sel: Selector) -> tuple[list[str], list[str]]:
    """(enterprise ids in registry order, problems): every tag, town and id must exist."""
    problems = []
    tags = {t for e in orgs.spec.enterprises for t in e.industry}
    for t in sel.tags:
        if t not in tags:
            problems.append(f"没有企业带行业标签 {t!r} / no enterprise has the industry tag {t!r}: "
                            f"use one of {', '.join(sorted(tags)) or '(none yet)'}")
    for t in sel.towns:
        if t not in orgs.towns:
            problems.append(f"未知镇街/园区 {t!r} / unknown town {t!r}: use one of "
                            f"{', '.join(sorted(orgs.towns)) or '(none yet)'}")
    for e in sel.enterprises:
        if e not in orgs.enterprises:
            problems.append(f"未知企业 {e!r} / unknown enterprise {e!r}: the ids are in the "
                            "enterprises file")
    chosen = [e.id for e in orgs.spec.enterprises
              if set(e.industry) & set(sel.tags) or e.town in sel.towns or e.id in sel.enterprises]
    if not problems and not chosen:
        problems.append("未选中任何企业 / the notice reaches no enterprise: give to.tags, "
                        "to.towns or to.enterprises")
    return chosen, problems


def for_town(orgs: Orgs, sel: Selector, chosen: list[str], town: str,
             own: frozenset[str] = frozenset()) -> tuple[list[str], list[str]]:
    """A town regulator's send: only the enterprises of ``town`` (and ``own``, the
    enterprises it oversees in a neighbouring town's area). Tags select within them; naming
    another town or one of its enterprises is refused, not silently dropped, so the sender
    learns the notice would not have reached them."""
    mine = {e.id for e in orgs.spec.enterprises if e.town == town} | set(own)
    problems = [f"无权发送给镇街 {t!r}：只能发送给本镇街（{town}）的企业 / a town sends to its own "
                f"enterprises only, not to {t!r}" for t in sel.towns if t != town]
    problems += [f"无权发送给企业 {e!r}：它不属于{town} / {e!r} is not an enterprise of {town}"
                 for e in sel.enterprises if e not in mine]
    kept = [e for e in chosen if e in mine]
    if not problems and not kept:
        problems.append(f"本镇街（{town}）没有符合条件的企业 / no enterprise of {town} matches")
    return kept, problems


def parse_order(raw: bytes, orgs: Orgs | None, s: NoticeSettings) -> tuple[Order, list[str]]:
    """The order a JSON body asks for and the enterprises it resolves to, or NoticeError
    with every reason."""
    try:
        order = msgspec.json.decode(raw.strip() or b"{}", type=Order)
    except msgspec.ValidationError as exc:
        raise NoticeError(f"通知内容无效 / bad notice: {exc}; e.g. {EXAMPLE}") from None
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        raise NoticeError(f"通知须为 JSON 对象 / a notice is one JSON object in UTF-8, e.g. "
                          f"{EXAMPLE}") from None
    problems = []
    if not order.title.strip():
        problems.append("标题不能为空 / title is empty")
    if len(order.title) > s.title_max:
        problems.append(f"标题过长 / title has {len(order.title)} characters: at most "
                        f"{s.title_max} (alerts.notices.title_max)")
    if not order.body.strip():
        problems.append("正文不能为空 / body is empty")
    if len(order.body) > s.body_max:
        problems.append(f"正文过长 / body has {len(order.body)} characters: at most {s.body_max} "
                        "(alerts.notices.body_max)")
    if order.kind not in s.kinds:
        problems.append(f"未知通知类别 {order.kind!r} / unknown kind: use one of "
                        f"{', '.join(s.kinds)} (alerts.notices.kinds)")
    if order.severity not in SEVERITIES:
        problems.append(f"未知紧急程度 {order.severity!r} / unknown severity: use one of "
                        f"{', '.join(SEVERITIES)}")
    if order.link and not order.link.startswith(("https://", "http://")):
        problems.append(f"链接须以 http(s):// 开头 / link {order.link[:80]!r} is not a web link")
    chosen: list[str] = []
    if orgs is None:
        problems.append("未配置企业名录 / no enterprises registry: set alerts.enterprises in "
                        "config.yaml")
    else:
        chosen, found = select(orgs, order.to)
        problems += found
    if problems:
        raise NoticeError("; ".join(problems))
    return order, chosen


def new_notice(nid: str, order: Order, chosen: list[str], orgs: Orgs, by: str,
               now_ms: int) -> Notice:
    targets = [Target(e, orgs.enterprises[e].name, orgs.enterprises[e].town) for e in chosen]
    return Notice(nid, order.title.strip(), order.body.strip(), order.kind, order.severity, by,
                  now_ms, order.to, targets, order.link)


def ack_kind(text: str) -> str:
    """``received``/``done`` (or 已收到/已落实) → the ack kind; NoticeError otherwise."""
    kind = _ACK_OF.get((text or "received").strip())
    if kind is None:
        raise NoticeError(f"未知确认类型 {text!r} / unknown acknowledgement: use received "
                          "(已收到) or done (已落实)")
    return kind


def acknowledge(n: Notice, enterprise: str, person: str, kind: str, now_ms: int,
                command_id: str = "") -> bool:
    """Record an enterprise's acknowledgement; False when it changes nothing (unknown
    enterprise, a replayed command, or the same kind already recorded)."""
    t = n.target(enterprise)
    if t is None or (command_id and command_id in n.commands):
        return False
    if any(a.kind == kind for a in t.acks):
        return False
    t.acks.append(Ack(kind, person, now_ms))
    if command_id:
        n.commands.append(command_id)
    return True


def reminders_due(n: Notice, now_ms: int, s: NoticeSettings) -> list[Target]:
    """The targets to remind now: not acknowledged ``remind_after`` after the notice or
    their last reminder, and fewer than ``reminders`` reminders so far."""
    return [t for t in n.targets if not t.acked and t.reminders < s.reminders
            and now_ms >= (t.reminded_ms or n.at) + s.remind_after.ms]


def next_due(n: Notice, s: NoticeSettings) -> int | None:
    """When this notice next needs a look (its earliest reminder), or None."""
    times = [(t.reminded_ms or n.at) + s.remind_after.ms for t in n.targets
             if not t.acked and t.reminders < s.reminders]
    return min(times) if times else None


def status(t: Target, n: Notice, now_ms: int, s: NoticeSettings) -> str:
    """acked | waiting | reminded | unconfirmed (reminders spent and the last one's wait over)."""
    if t.acked:
        return "acked"
    if t.reminders >= s.reminders and now_ms >= (t.reminded_ms or n.at) + s.remind_after.ms:
        return "unconfirmed"
    return "reminded" if t.reminders else "waiting"


STATUS_WORDS = {"acked": Text("已确认", "acknowledged"), "waiting": Text("待确认", "waiting"),
                "reminded": Text("已提醒", "reminded"), "unconfirmed": Text("未确认", "unconfirmed")}


@dataclass
class Tally:
    acked: int
    total: int
    missing: list[Target] = field(default_factory=list)       # not acknowledged
    unconfirmed: list[Target] = field(default_factory=list)   # reminders spent

    def words(self) -> str:
        return f"已确认 {self.acked}/{self.total}"


def tally(n: Notice, now_ms: int, s: NoticeSettings) -> Tally:
    missing = [t for t in n.targets if not t.acked]
    return Tally(len(n.targets) - len(missing), len(n.targets), missing,
                 [t for t in missing if status(t, n, now_ms, s) == "unconfirmed"])


def visible_to(n: Notice, level: str, key: str) -> bool:
    """Whether a person of scope (level, key) sees the notice: the bureau all, a town its
    enterprises', an enterprise its own."""
    if level == "bureau":
        return True
    if level == "town":
        return any(t.town == key for t in n.targets)
    return n.target(key) is not None


def message(n: Notice, t: Target, person: str, link: str | None, now_ms: int,
            reminder: int = 0, zone: str = DEFAULT_ZONE) -> Rendered:
    """The notice as one person of ``t`` gets it: Chinese first, English below; SMS the
    title and the ask only (a signed link does not fit in 70 characters)."""
    sev = SEVERITIES.get(n.severity, SEVERITIES["warning"])
    again = f"（第{reminder}次提醒，尚未确认）" if reminder else ""
    again_en = f" (reminder {reminder}: not acknowledged yet)" if reminder else ""
    title = f"【{n.kind}·{sev.zh}】{n.title}{again}"
    when = local_time(n.at, zone)
    ask = f"请确认：{link}" if link else "请在值班台确认收到。"
    ask_en = f"Acknowledge: {link}" if link else "Acknowledge in the console."
    extra = [f"详情：{n.link}"] if n.link else []
    text = "\n".join([f"{person}（{t.name}）：市应急管理局 {when} 发布{n.kind}{again}。", n.body,
                      *extra, ask, "", f"{n.kind} ({sev.en}) from the bureau at {when}{again_en}: "
                      f"{n.title}", ask_en])
    md = "\n".join([f"### {title}", f"{person}（{t.name}）：", "", n.body, *extra, ""]
                   + ([f"[已收到 / 一键确认]({link})"] if link else ["请在值班台确认收到。"]))
    sms_text = f"{title}，请确认收到。{n.id[-4:]}"
    if len(sms_text) > SMS_LIMIT:
        sms_text = sms_text[:SMS_LIMIT - 1] + "…"
    return Rendered(title=title, sms=sms_text, markdown=md, text=text)
