"""Incident identity: which incident an evaluator event belongs to, and the id of a new one.

The warning book is the one place that names incidents; the worker names
*episodes* (warning key and the event time the episode opened, see
:class:`~yujing.domain.WarningEvent`). Only the book sees every key of its
partition, so only its probe past ids already taken in a second is complete,
and reopening after a manual clear happens only here.

An incident is identified by its partition, warning key and ``first_ts`` (the
event time of the event that opened it): its id is :func:`incident_id` of
those, probing past ids stored for *another* key or time. So minting is
idempotent: whatever the book lost of its three tables at a kill (they are
separate changelogs), the re-consumed event finds the same incident again
instead of opening a second one.

Lookup, cheapest first: the episode's alias (``src:<episode>``), the key's open
incident (``open``), then the incident of (key, the episode's opened time) and
of (key, the event's time), followed to the incident that reopened it after a
manual clear. Every alias an incident gets is listed in its
``sources``, so :meth:`Identity.forget` removes them all with it.
"""

from __future__ import annotations

from yujing.alerts.incident_ids import incident_id
from yujing.alerts.records import State, Warning
from yujing.alerts.store import Store, pkey
from yujing.domain import WarningEvent

SOURCE = "src:"   # alias keys: src:<episode> (src:<proposed id> from older workers)


def _rule_cleared(w: Warning) -> bool:
    return w.state == State.CLEARED and w.cleared_by == "rule"


class Identity:
    """The book's ``alias`` and ``open`` tables and the ids it mints, over one :class:`Store`."""

    def __init__(self, store: Store, region_code: str, partitions: int = 1) -> None:
        self.store = store
        self.region_code = region_code
        self.partitions = partitions

    def _get(self, p: int, iid: str | None) -> Warning | None:
        return self.store.incidents.get(pkey(p, iid)) if iid else None

    def mint(self, p: int, key: str, ts: int, skip: str = "") -> tuple[str, Warning | None]:
        """The id of the incident of ``key`` first seen at ``ts`` in partition ``p``, and
        the incident if it is stored already. ``skip`` is an id not to take (the incident
        a reopen replaces, which may share key and time)."""
        seen: dict[str, Warning | None] = {}

        def taken(iid: str) -> bool:
            if iid == skip:
                return True
            w = seen[iid] = self._get(p, iid)
            return w is not None and (w.key != key or w.first_ts != ts)

        iid = incident_id(self.region_code, key, ts, taken, p, self.partitions)
        return iid, seen.get(iid)

    def incident_of(self, p: int, ev: WarningEvent) -> Warning | None:
        """The incident ``ev`` belongs to, or None if it would be a new one."""
        st = self.store
        w = self._get(p, st.alias.get(pkey(p, SOURCE + ev.episode)))
        if w is not None and w.key == ev.key:   # another key: a colliding id of an old worker
            return w
        w = self._get(p, st.open.get(pkey(p, ev.key)))
        if w is not None and _rule_cleared(w):
            w = None
        for ts in dict.fromkeys((ev.opened_ts, ev.ts)):
            if w is None and ts:
                w = self.mint(p, ev.key, ts)[1]
        if w is not None:
            w = self._newest(p, w)
            self.adopt(p, ev, w)
        return w

    def _newest(self, p: int, w: Warning) -> Warning:
        """The incident that reopened ``w`` after its manual clear, if any (the episode goes
        on there), else ``w``."""
        for _ in range(64):          # a chain of reopens; bounded against a corrupt cycle
            nxt = self._get(p, w.reopened_as)
            if nxt is None:
                break
            w = nxt
        return w

    def adopt(self, p: int, ev: WarningEvent, w: Warning) -> None:
        """Remember that ``ev``'s episode belongs to ``w``, so its next events find it at
        once; and that ``w`` is its key's open incident, if the key has none recorded."""
        st = self.store
        alias = pkey(p, SOURCE + ev.episode)
        if st.alias.get(alias) != w.incident:
            st.alias[alias] = w.incident
        if not _rule_cleared(w) and pkey(p, ev.key) not in st.open:
            st.open[pkey(p, ev.key)] = w.incident
        if ev.episode not in w.sources:
            w.sources.append(ev.episode)
            st.incidents[pkey(p, w.incident)] = w

    def opened(self, p: int, ev: WarningEvent, w: Warning) -> None:
        """``w`` is new (or a reopen): it is its key's open incident now."""
        if not _rule_cleared(w):
            self.store.open[pkey(p, w.key)] = w.incident
        self.adopt(p, ev, w)

    def closed(self, p: int, w: Warning) -> None:
        """The rule cleared ``w``: its key has no open incident any more."""
        if self.store.open.get(pkey(p, w.key)) == w.incident:
            del self.store.open[pkey(p, w.key)]

    def forget(self, p: int, w: Warning) -> None:
        """``w`` is collected: drop every alias and the open record pointing to it."""
        st = self.store
        for name in dict.fromkeys([*w.sources, w.source_id]):
            alias = pkey(p, SOURCE + name)
            if name and st.alias.get(alias) == w.incident:
                del st.alias[alias]
        self.closed(p, w)
