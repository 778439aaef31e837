"""Who a console token or session belongs to, and how many wrong guesses a client gets.

- ``PersonTokens``: ``console.tokens`` holds ``sha256:<hex>`` of each person's token,
  never the token (like the gateways' tokens file): a leaked config gives no login.
  Tokens are long random strings (``yujing token new --person``), so a plain sha256
  is enough; a slow password hash would only cost CPU on every API call.
- ``Sessions``: a login makes a random session id; the browser's cookie holds that id,
  never the token. Sessions live in the gateway's memory, keyed by the id's hash: a
  logout removes one at once, a restart ends them all (people log in again), and each
  ends after ``console.session_ttl`` or ``console.session_idle`` without use.
- ``FailureLimit``: wrong tokens per client in a sliding window; past the limit the
  client waits (429 with Retry-After) — even with a right token, so the answer is no
  oracle, and a right login does not wipe the count (an insider with one good token
  cannot keep guessing others').

Time is passed in (milliseconds), so all of it is tested without a clock.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


class PersonTokens:
    """``console.tokens`` (person id → ``sha256:<hex>``) as a constant-time lookup."""

    def __init__(self, hashed: dict[str, str]) -> None:
        self.entries = [(bytes.fromhex(h.split(":", 1)[1]), who) for who, h in hashed.items()]

    def person_of(self, token: str) -> str | None:
        """The person whose token this is; every entry is compared, no early exit."""
        return self.person_of_digest(digest(token))

    def person_of_digest(self, given: bytes) -> str | None:
        found = None
        for stored, who in self.entries:
            if hmac.compare_digest(stored, given):
                found = who
        return found

    def __len__(self) -> int:
        return len(self.entries)


@dataclass
class Session:
    person: str
    token: bytes          # sha256 of the token it was made with: a changed token ends it
    created_ms: int
    seen_ms: int


class Sessions:
    """Server-side console sessions: random ids, an absolute and an idle lifetime."""

    def __init__(self, ttl_ms: int, idle_ms: int, per_person: int = 20) -> None:
        self.ttl_ms, self.idle_ms, self.per_person = ttl_ms, idle_ms, per_person
        self._by_id: OrderedDict[bytes, Session] = OrderedDict()   # oldest first

    def new(self, person: str, token: bytes, now_ms: int) -> str:
        """A fresh session id for ``person`` (shown once: only its hash is kept)."""
        self._expire(now_ms)
        mine = [k for k, s in self._by_id.items() if s.person == person]
        for k in mine[:max(0, len(mine) - self.per_person + 1)]:
            del self._by_id[k]                   # a person's oldest sessions end first
        sid = secrets.token_urlsafe(32)
        self._by_id[digest(sid)] = Session(person, token, now_ms, now_ms)
        return sid

    def get(self, sid: str, now_ms: int) -> Session | None:
        """The live session of this id (its idle time restarts), or None."""
        key = digest(sid)
        s = self._by_id.get(key)
        if s is None:
            return None
        if now_ms - s.created_ms > self.ttl_ms or now_ms - s.seen_ms > self.idle_ms:
            del self._by_id[key]
            return None
        s.seen_ms = max(s.seen_ms, now_ms)
        return s

    def end(self, sid: str) -> bool:
        return self._by_id.pop(digest(sid), None) is not None

    def _expire(self, now_ms: int) -> None:
        for key in [k for k, s in self._by_id.items()
                    if now_ms - s.created_ms > self.ttl_ms or now_ms - s.seen_ms > self.idle_ms]:
            del self._by_id[key]

    def __len__(self) -> int:
        return len(self._by_id)


class FailureLimit:
    """At most ``limit`` failures per client in ``window_ms``; clients beyond ``max_clients``
    are forgotten oldest first (memory stays bounded under a flood of addresses)."""

    def __init__(self, limit: int, window_ms: int, max_clients: int = 10_000) -> None:
        self.limit, self.window_ms, self.max_clients = limit, window_ms, max_clients
        self._fails: OrderedDict[str, deque[int]] = OrderedDict()

    def wait_s(self, client: str, now_ms: int) -> int:
        """Seconds the client must wait before its next try; 0 = it may try now."""
        times = self._fails.get(client)
        if not times:
            return 0
        while times and now_ms - times[0] >= self.window_ms:
            times.popleft()
        if len(times) < self.limit:
            return 0
        return max(1, math.ceil((times[0] + self.window_ms - now_ms) / 1000))

    def fail(self, client: str, now_ms: int) -> None:
        times = self._fails.pop(client, None) or deque(maxlen=self.limit)
        times.append(now_ms)
        self._fails[client] = times              # most recent last
        while len(self._fails) > self.max_clients:
            self._fails.popitem(last=False)

    def __len__(self) -> int:
        return len(self._fails)
