"""The tokens of the rule language and the cursor the parser walks them with.

Apart from the grammar (``expr.py``) because the argument readers of its functions
(``trendargs.py`` for eta(), project() and the forecast functions, and the rest in
``expr.py``) all take their metric names, windows and numbers through the same cursor,
and each of those modules builds on it rather than on one another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from yujing.durations import parse_duration_ms
from yujing.rules.tree import UNBOUNDED_MS, Expr


class ExprError(ValueError):
    def __init__(self, message: str, col: int) -> None:
        self.col = col
        super().__init__(f"col {col + 1}: {message}")


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<duration>\d+(?:\.\d+)?(?:ms|s|m|h|d|w)(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))*(?![A-Za-z0-9_]))
  | (?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>>=|<=|==|!=|[-+*/(),.<>=])
""", re.VERBOSE)
KEYWORDS = {"and", "or", "not"}


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str
    col: int


def tokenize(text: str) -> list[Tok]:
    pos, out = 0, []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ExprError(f"unexpected character {text[pos]!r}", pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(Tok(kind, m.group(), pos))
        pos = m.end()
    out.append(Tok("end", "", len(text)))
    return out


class Cursor:
    """The tokens of one expression, the position in them, and what the parse has gathered
    so far (``info``: metrics, windows, station fields, how far back the rule reads)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.info = Expr(text, None)
        self._in_default = 0
        self._required: set[str] = set()

    def peek(self) -> Tok:
        return self.toks[self.i]

    def take(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, text: str) -> Tok:
        t = self.take()
        if t.text != text:
            found = "the end" if t.kind == "end" else repr(t.text)
            raise ExprError(f"expected {text!r} but found {found}", t.col)
        return t

    def _metric(self) -> str:
        t = self.take()
        if t.kind != "name" or t.text in KEYWORDS or t.text == "station":
            raise ExprError("expected a metric name such as rain_mm", t.col)
        self.info.metrics.add(t.text)
        return t.text

    def _duration(self) -> int:
        t = self.take()
        if t.kind != "duration":
            raise ExprError("expected a window such as 10m, 3h or 1d", t.col)
        ms = parse_duration_ms(t.text)
        if ms <= 0:
            raise ExprError("a window must be longer than zero", t.col)
        return ms

    def _number(self) -> float:
        neg = False
        if self.peek().text == "-":
            self.take()
            neg = True
        t = self.take()
        if t.kind != "number":
            raise ExprError("expected a number", t.col)
        return -float(t.text) if neg else float(t.text)

    def _horizon(self, ms: int) -> None:
        self.info.horizon_ms = max(self.info.horizon_ms, ms if ms < UNBOUNDED_MS else 0)
