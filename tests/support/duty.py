"""Real servers for the duty-workflow tests: a webhook receiver (apprise json://) whose
paths can be made to fail, an SMTP server (aiosmtpd, apprise mailto://), and a roster
and config writer, and the processes of a test. The fixtures (hooks, smtp, procs) are in
tests/conftest.py."""

from __future__ import annotations

import asyncio
import email
import email.policy
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from yujing.alerts.settings import person_hash
from yujing.connectors.embedded import die_with_parent as die_with_parent_hook

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {"a1": "token-a1-0123456789abcdef", "b1": "token-b1-0123456789abcdef",
          "l1": "token-l1-0123456789abcdef"}
HASHED = {p: person_hash(t) for p, t in TOKENS.items()}   # console.tokens keeps hashes only
SECRET = "link-secret-for-tests-0123456789"


@dataclass
class Hooks:
    """Records every POST by path; paths in ``failing`` answer 500 (a dead channel)."""

    port: int
    got: list[tuple[str, dict]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def to(self, path: str) -> list[dict]:
        return [m for p, m in self.got if p == path]

    async def wait(self, path: str, pred=lambda m: True, timeout: float = 30,
                   count: int = 1) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [m for m in self.to(path) if pred(m)]
            if len(hits) >= count:
                return hits
            await asyncio.sleep(0.1)
        raise AssertionError(f"no message to /{path} in {timeout}s; got {self.got}")


@dataclass
class Mailbox:
    port: int
    mails: list[email.message.EmailMessage] = field(default_factory=list)

    def url(self, to: str) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=yujing@example.org&to={to}&mode=insecure"

    def to(self, addr: str) -> list[email.message.EmailMessage]:
        return [m for m in self.mails if addr in m["To"]]

    async def wait(self, addr: str, timeout: float = 30) -> email.message.EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.to(addr):
                return self.to(addr)[0]
            await asyncio.sleep(0.1)
        raise AssertionError(f"no mail to {addr} in {timeout}s")


def body_text(msg: email.message.EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


def write_roster(tmp: Path, hooks: Hooks, smtp: Mailbox) -> Path:
    roster = {
        "people": [
            {"id": "a1", "name": "张三", "contacts": [hooks.url("a1-dead"), hooks.url("a1")]},
            {"id": "b1", "name": "李四", "contacts": [smtp.url("b1@example.org")]},
            {"id": "l1", "name": "王五", "contacts": [hooks.url("l1")]},
        ],
        "teams": [{"id": "room", "name": "值班室", "domain": "duty_room",
                   "rotation": {"start": "2025-01-01", "slots": [{"A": "a1", "B": "b1",
                                                                  "leader": "l1"}]}}],
    }
    path = tmp / "roster.yaml"
    path.write_text(yaml.safe_dump(roster, allow_unicode=True))
    return path


def alert_config(roster: Path, http_port: int, timeout: str = "4s") -> dict:
    """Shortened timeouts: the A→B→leader chain runs in seconds instead of minutes."""
    return {
        "alerts": {"roster": str(roster), "tick": "300ms",
                   "grouping": {"wait": "0s", "interval": "0s"},
                   "escalation": {"orange": {"first": ["A"], "ack_timeout": timeout,
                                             "then": [["B"], ["leader"]], "repeat": "0s"}},
                   "delivery": {"retries": 1, "backoff": "100ms", "timeout": "5s"}},
        "console": {"tokens": HASHED, "link_secret": SECRET,
                    **({"public_url": f"http://127.0.0.1:{http_port}"} if http_port else {})},
    }


class Procs:
    """Processes of a test, each logging to its own file, stopped in reverse order."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], die_with_parent: bool = False
              ) -> subprocess.Popen:
        """Start ``argv`` as ``name``; ``die_with_parent``: a killed pytest takes it along
        (a broker's JVM must not outlive the test run)."""
        log = open(self.tmp / f"{name}.log", "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp,
                             start_new_session=True,
                             preexec_fn=die_with_parent_hook if die_with_parent else None)
        self.procs[name] = p
        return p

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for p in reversed(list(self.procs.values())):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
