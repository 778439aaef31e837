"""The book's view of a Faust table (streams/alerting.py ``Coded``) reads what Faust's own
reads return: it reads the memory store's dict directly to skip Faust's per-get sensor call
and the KeyError of a missing key, and must not change an answer by doing so."""

from __future__ import annotations

import faust
import msgspec
import pytest

from yujing.alerts.records import Group
from yujing.streams.alerting import Coded


@pytest.fixture
def table():
    app = faust.App("coded-test", broker="kafka://127.0.0.1:1", store="memory://")
    schema = faust.Schema(key_type=str, key_serializer="json", value_serializer="raw")
    t = app.Table("yujing-groups", default=None, partitions=2, schema=schema)
    stored = t.data.data          # what Faust's recovery fills (memory store)
    # as written, as recovered (Faust's codec parsed it), a tombstone
    stored["0:a"] = msgspec.json.encode(Group(key="a", town="t", hazard="rain", members=["x"]))
    stored["0:b"] = {"key": "b", "town": "t", "hazard": "rain", "members": ["y", "z"]}
    stored["1:gone"] = None
    return t


def test_reads_answer_what_faust_reads_answer(table):
    c = Coded(table, Group)
    for k in ("0:a", "0:b", "1:gone", "1:never"):
        want = table.get(k)
        got = c.get(k, "missing")
        if want is None:
            assert got == "missing" and k not in c
            with pytest.raises(KeyError):
                c[k]
        else:
            assert got == msgspec.convert(msgspec.json.decode(want) if isinstance(want, bytes)
                                          else want, Group) == c[k] and k in c
    assert sorted(c) == ["0:a", "0:b"] and len(c) == 2
    assert dict(c.items()) == {"0:a": Group(key="a", town="t", hazard="rain", members=["x"]),
                               "0:b": Group(key="b", town="t", hazard="rain", members=["y", "z"])}


def test_a_table_without_a_memory_store_is_read_through_its_own_get():
    plain = {"0:k": b'"incident-1"'}
    c = Coded(plain, str)
    assert c.get("0:k") == "incident-1" and "0:k" in c and "0:x" not in c
    assert c.get("0:x") is None and list(c) == ["0:k"]


async def test_the_book_source_decodes_records_as_the_raw_codec_does():
    from faust.types.tuples import Message

    from yujing.streams.alerting import RawRecords
    app = faust.App("raw-test", broker="kafka://127.0.0.1:1", store="memory://")
    ours = RawRecords(key_serializer="raw", value_serializer="raw").compile(app)
    fausts = faust.Schema(key_serializer="raw", value_serializer="raw").compile(app)
    for key, value in ((b"DG|rain", b'{"kind":"cleared"}'), (None, b"{}"), (b"k", None),
                       (b"", b"")):
        msg = Message("yujing.warnings", 1, 7, 0.0, 0, None, key, value, None)
        a, b = await ours(msg), await fausts(msg)
        assert (a.key, a.value, a.message) == (b.key, b.value, b.message) == (key, value, msg)
