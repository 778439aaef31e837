"""The warning book's tables (:class:`Store`) and what one step of the book did (:class:`Effects`).

The tables are plain mappings, which the worker backs with changelog Faust
tables (streams/alerting.py), so a restarted worker resumes every deadline and
knows what it already delivered. Every key carries the partition (``"3:..."``,
see :func:`pkey`) because one worker holds several partitions in one table.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field

from yujing.alerts.records import Delivery, Group, Silence, Warning


def pkey(p: int, ident: str) -> str:
    """The table key of ``ident`` in partition ``p``."""
    return f"{p}:{ident}"


@dataclass
class Effects:
    """What the edge must do after one book step: send, publish, log."""

    dispatch: list[Delivery] = field(default_factory=list)
    changed: dict[str, Warning] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    reminders: list[tuple[str, str]] = field(default_factory=list)    # (person, text)
    silences: list[Silence] = field(default_factory=list)             # changed ones
    removed: list[str] = field(default_factory=list)                  # incidents past retention

    def touch(self, w: Warning) -> None:
        self.changed[w.incident] = w


@dataclass
class Store:
    """The book's tables. Keys are ``"<partition>:<id>"``.

    ``due`` holds what to look at and when: an incident id (escalation deadline,
    or 0 = every tick while muted), ``#<group>`` (the group's outbox flush) and
    ``gc:<incident>`` (forget a cleared incident after the retention period).
    """

    incidents: MutableMapping[str, Warning] = field(default_factory=dict)
    open: MutableMapping[str, str] = field(default_factory=dict)       # warning key -> incident
    alias: MutableMapping[str, str] = field(default_factory=dict)      # src:episode -> incident
    groups: MutableMapping[str, Group] = field(default_factory=dict)
    deliveries: MutableMapping[str, Delivery] = field(default_factory=dict)
    silences: MutableMapping[str, Silence] = field(default_factory=dict)
    due: MutableMapping[str, int] = field(default_factory=dict)        # what to look at, when

    def save(self, p: int, w: Warning, fx: Effects) -> None:
        """Write the incident back, report it changed, and file its next deadline."""
        self.incidents[pkey(p, w.incident)] = w
        fx.touch(w)
        dk = pkey(p, w.incident)
        if w.muted and w.open:
            self.due[dk] = 0  # re-check at every tick: a silence ends, a source clears
        elif w.esc is not None and w.esc.next_ms:
            self.due[dk] = w.esc.next_ms
        elif dk in self.due:
            del self.due[dk]

    def silences_in(self, p: int) -> list[Silence]:
        prefix = f"{p}:"
        return [s for k, s in self.silences.items() if k.startswith(prefix)]

    def peers(self, p: int, w: Warning) -> list[Warning]:
        """The open incidents of ``w``'s group (inhibition sources)."""
        g = self.groups.get(pkey(p, w.group))
        if g is None:
            return []
        out = []
        for iid in g.members:
            x = self.incidents.get(pkey(p, iid))
            if x is not None:
                out.append(x)
        return out
