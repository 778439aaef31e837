"""How book-tables-9533f5c.json was made: run with a checkout of commit 9533f5c (the worker
still proposed incident ids), e.g. ``PYTHONPATH=<that checkout> python
tests/data/make_book_tables_9533f5c.py tests/data/book-tables-9533f5c.json``. It does not
run on later code (Lifecycle lost shard_of): it is kept to show what the fixture holds."""
import sys

import msgspec

from yujing.alerts.book import Book, Store
from yujing.alerts.lifecycle import Lifecycle, RuleMeta
from yujing.alerts.records import Command
from yujing.alerts.settings import AlertsSettings
from yujing.domain import Finding, Grade

T = 1_748_764_800_000
MIN = 60_000
RAIN = RuleMeta("暴雨", "rainstorm")
s = AlertsSettings(grouping={"wait": "0s", "interval": "0s"})
store = Store()
book = Book(s, store, fallback_urls=lambda g: ["json://x.example/hook"], partitions=2)
lc = Lifecycle(shard_of=lambda key: 1, shards=2)
enc = msgspec.json.Encoder()

def f(station, grade=Grade.NONE, ts=T, clear=False):
    return Finding("rain", station, ts, grade, clear, 60.0, "3h", f"sum(3h) = 60 ({grade.label})")

def send(fi, now):
    ev = lc.apply(fi, RAIN, now)
    assert ev is not None
    ev = msgspec.structs.replace(ev, town="虎门镇")
    book.on_event(1, ev, now)
    return ev

sent = [send(f("g1", Grade.ORANGE), T), send(f("g2", Grade.YELLOW), T),
        send(f("g3", Grade.BLUE), T)]
g3 = store.open["1:rain@g3"]
book.on_command(1, Command("clear", id="c1", actor="a1", incident=g3, text="leaves"), T + MIN)
sent.append(send(f("g3", Grade.RED, ts=T + 2 * MIN), T + 2 * MIN))   # reopens
snapshot = lc.snapshot()
# what the old worker sends next, not yet seen by the book
later = []
for fi, now in ((f("g1", Grade.RED, ts=T + 10 * MIN), T + 10 * MIN),
                (f("g2", clear=True, ts=T + 20 * MIN), T + 20 * MIN),
                (f("g3", clear=True, ts=T + 30 * MIN), T + 30 * MIN)):
    later.append(msgspec.structs.replace(lc.apply(fi, RAIN, now), town="虎门镇"))

def table(m):
    return {k: (enc.encode(v).decode() if isinstance(v, msgspec.Struct) else v) for k, v in m.items()}

doc = {"commit": "9533f5c", "T": T,
       "tables": {name: table(getattr(store, name)) for name in
                  ("incidents", "open", "alias", "groups", "deliveries", "silences", "due")},
       "lifecycle": snapshot,
       "sent": [enc.encode(e).decode() for e in sent],
       "later": [enc.encode(e).decode() for e in later]}
open(sys.argv[1], "w").write(msgspec.json.format(msgspec.json.encode(doc).decode(), indent=1))
