"""Apprise channel URLs: which message variant each takes.

Pure string work on URLs, shared by the roster (a person's contacts), the
routing stage (the notify: URLs without a roster) and the apprise adapter (which also
redacts them, with apprise's own knowledge of where each service keeps its secrets).
"""

from __future__ import annotations

_EMAIL = ("mailto", "mailtos", "email", "smtp")
_MARKDOWN = ("dingtalk", "wecombot", "wxteams", "feishu", "lark", "slack", "msteams",
             "mattermost", "rocket", "discord", "tgram", "matrix", "ntfy", "pushplus", "serverchan",
             "wxpusher", "qq")
_SMS = ("sms", "twilio", "sns", "clicksend", "smseagle", "httpsms", "msg91", "kavenegar",
        "bulksms", "d7sms", "seven", "sinch", "plivo", "vonage", "nexmo", "aliyun", "smsmgr",
        "signal", "bulkvs", "voipms", "burstsms", "messagebird", "africas")



def channel_kind(url: str) -> str:
    """Which template a channel gets: sms (≤ 70 characters), markdown, email or text."""
    scheme = url.split("://", 1)[0].lower()
    if scheme in _EMAIL:
        return "email"
    if scheme in _MARKDOWN:
        return "markdown"
    if scheme in _SMS:
        return "sms"
    return "text"

