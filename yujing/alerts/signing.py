"""Signed, expiring one-click links (HMAC-SHA256), pure: time is passed in.

A message carries a link that acknowledges its warnings for the person it was
sent to, without a login: the token names the action, the person, the
incidents and an expiry, and is signed with the site's secret. Anyone holding
the link can use it until it expires, which is the point (one click from a
phone) and the risk (keep ``link_ttl`` short; a forwarded e-mail forwards
the power to acknowledge).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import msgspec


class Claim(msgspec.Struct):
    a: str            # action: ack
    p: str            # person
    i: list[str]      # incidents
    e: int            # expiry, epoch ms


class TokenError(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, action: str, person: str, incidents: list[str], expires_ms: int) -> str:
    payload = msgspec.json.encode(Claim(action, person, incidents, expires_ms))
    mac = hmac.new(secret, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def verify(secret: bytes, token: str, now_ms: int) -> Claim:
    """The claim of a valid token; TokenError saying what is wrong otherwise."""
    try:
        p64, m64 = token.split(".")
        payload, mac = _unb64(p64), _unb64(m64)
    except (ValueError, TypeError):
        raise TokenError("malformed link: copy the whole link from the message") from None
    if not hmac.compare_digest(hmac.new(secret, payload, hashlib.sha256).digest(), mac):
        raise TokenError("this link was not issued by this Yujing (bad signature): use the "
                         "link from the latest message, or acknowledge in the console")
    try:
        claim = msgspec.json.decode(payload, type=Claim)
    except msgspec.DecodeError:
        raise TokenError("malformed link payload") from None
    if now_ms >= claim.e:
        raise TokenError("this link has expired: acknowledge with `yujing ack` or the console")
    return claim
