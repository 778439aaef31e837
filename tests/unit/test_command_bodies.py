"""Bodies of the duty commands (issue 12, finding 8): every malformed body is a 400 with a
reason, never a 500; note and reason texts are bounded (``alerts.commands``).

The decoders (yujing/console/bodies.py) are fuzzed with hypothesis: for any bytes and any
JSON value they return a checked request or raise BodyError, nothing else. The same bodies
then go to the /v1 API on a bus in memory, which must answer 400 and send nothing.
"""

from __future__ import annotations

import json

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_console_bus import MemoryBus, warning
from yujing.alerts.records import Matcher, Silence
from yujing.alerts.settings import CommandLimits, person_hash
from yujing.config import Config
from yujing.console.bodies import BodyError, command_text, expire_reason, silence_request
from yujing.console.state import Console
from yujing.console.web import mount_console

LIMITS = CommandLimits()
NOW = 1_748_764_800_000
TOKEN = "t-zhang-wei-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=5),
    max_leaves=20)
keys = st.sampled_from(["note", "text", "reason", "matchers", "weekly", "duration", "starts_ms",
                        "ends_ms", "incident", "id", "x"])
likely_objects = st.dictionaries(keys, json_values, max_size=6)
# near-valid silences: each field right or wrong in one of the ways a client gets it wrong
near_silences = st.fixed_dictionaries({
    "matchers": st.lists(st.sampled_from(["town=虎门镇", "grade=~orange|red", "rule=~(.*.*)*X",
                                          "town=~虎门.*", r"rule=~(a)\1", "nolabel=1", "town", ""]),
                         min_size=1, max_size=3),
    "reason": st.sampled_from(["雨量站检修", "", "x" * (LIMITS.reason_max + 1), "ok\x1b[2J"]),
}, optional={
    "duration": st.sampled_from(["2h", "7d", "8d", "0s", "-1h", "abc", "1e9d", ""]),
    "starts_ms": st.sampled_from([NOW, NOW - 3_600_000, NOW + 86_400_000 * 40, -1, 2**63, 1.5]),
    "ends_ms": st.sampled_from([NOW + 3_600_000, NOW - 1, 10**20, True]),
    "weekly": st.lists(st.sampled_from(["sat 02:00-04:00", "xyz", "mon 25:00-26:00"]), max_size=8),
    "incident": st.sampled_from(["441900-20250601080000-0001", "x" * 100])})
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    likely_objects.map(lambda v: json.dumps(v).encode()),
    near_silences.map(lambda v: json.dumps(v).encode()),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),          # deep nesting
    st.integers(1, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
)


def decoded_or_refused(fn, *args):
    try:
        return fn(*args)
    except BodyError as exc:
        assert str(exc), "a refusal says why"
        return None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=bodies, action=st.sampled_from(["ack", "note", "clear"]))
def test_command_text_decodes_or_refuses(raw, action):
    text = decoded_or_refused(command_text, raw, action, LIMITS)
    if text is not None:
        assert isinstance(text, str)
        assert len(text) <= max(LIMITS.note_max, LIMITS.reason_max)
        assert text or action == "ack"                         # note and clear need a text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=bodies)
def test_silence_request_decodes_or_refuses(raw):
    req = decoded_or_refused(silence_request, raw, LIMITS, NOW)
    if req is not None:
        assert req.reason and len(req.reason) <= LIMITS.reason_max
        assert 0 < req.ends_ms - req.starts_ms <= LIMITS.silence_max.ms
        assert req.matchers or req.incident
        assert len(req.matchers) <= LIMITS.matchers_max


valid_silences = st.fixed_dictionaries({
    "matchers": st.lists(st.sampled_from(["town=虎门镇", "grade=~orange|red", "rule=~(.*.*)*X",
                                          "station!=DG-HM-R01", "hazard!~gas|dust"]),
                         min_size=1, max_size=LIMITS.matchers_max),
    "reason": st.text(st.characters(categories=["L", "N", "Zs", "P"]), min_size=1,
                      max_size=LIMITS.reason_max),
    "starts_ms": st.integers(NOW - 3_600_000, NOW + LIMITS.silence_ahead.ms),
    "length_ms": st.integers(3_600_001, LIMITS.silence_max.ms)})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=valid_silences)
def test_a_valid_silence_decodes_to_what_was_sent(body):
    length = body.pop("length_ms")
    body["ends_ms"] = body["starts_ms"] + length
    req = silence_request(json.dumps(body).encode(), LIMITS, NOW)
    assert [str(m) for m in req.matchers] == body["matchers"]
    assert (req.starts_ms, req.ends_ms, req.reason) == (body["starts_ms"], body["ends_ms"],
                                                        body["reason"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=bodies)
def test_expire_reason_decodes_or_refuses(raw):
    reason = decoded_or_refused(expire_reason, raw, LIMITS)
    if reason is not None:
        assert isinstance(reason, str) and 0 < len(reason) <= LIMITS.reason_max


def test_texts_are_bounded_by_config():
    small = CommandLimits(note_max=10, reason_max=5)
    assert command_text(b'{"note": "0123456789"}', "ack", small) == "0123456789"
    with pytest.raises(BodyError, match="10"):
        command_text(b'{"note": "0123456789X"}', "ack", small)
    with pytest.raises(BodyError, match="5"):
        command_text(b'{"reason": "123456"}', "clear", small)
    with pytest.raises(BodyError, match="5"):
        expire_reason(b'{"reason": "123456"}', small)


@pytest.mark.parametrize("text", ["\u001b[31mred", "a\u0000b", "\u0007", "x\u009bq"])
def test_control_characters_are_refused_line_breaks_kept(text):
    raw = json.dumps({"note": text}).encode()
    with pytest.raises(BodyError, match="control character"):
        command_text(raw, "ack", LIMITS)
    assert command_text(json.dumps({"note": "第一行\n第二行\tx"}).encode(), "ack",
                        LIMITS) == "第一行\n第二行\tx"


# --- the API answers 400 with a reason ------------------------------------------------------

MALFORMED = [b"not json", b"[1, 2]", b'"text"', b"3", b"null", b"{", b"\xff\xfe",
             b"[" * 5000 + b"]" * 5000, b'{"note": ["x"]}', b'{"note": {"a": 1}}',
             b'{"reason": 7}', b'{"unknown": "x"}']


@pytest.fixture
async def api():
    bus = MemoryBus()
    cfg = Config.model_validate({"console": {"tokens": {"zhang.wei": person_hash(TOKEN)}},
                                 "alerts": {"commands": {"note_max": 100, "reason_max": 50}},
                                 "worker": {"rules_dir": "/nonexistent/rules"}})
    app = web.Application()
    mount_console(app, Console(cfg, bus))
    client = TestClient(TestServer(app))
    await client.start_server()
    w = warning()
    bus.followed["yujing.incidents"](w.incident.encode(), msgspec.json.encode(w))
    client.bus, client.iid = bus, w.incident
    yield client
    await client.close()


async def answer(client, path: str, raw: bytes) -> tuple[int, dict]:
    r = await client.post(path, data=raw, headers={**AUTH, "Content-Type": "application/json"})
    body = await r.text()
    return r.status, json.loads(body) if r.content_type == "application/json" else {"raw": body}


@pytest.mark.parametrize("raw", MALFORMED)
@pytest.mark.parametrize("action", ["ack", "note", "clear"])
async def test_malformed_command_bodies_are_400_with_a_reason(api, raw, action):
    status, out = await answer(api, f"/v1/warnings/{api.iid}/{action}", raw)
    assert status == 400 and out.get("error"), out
    assert api.bus.sent == []


BAD_SILENCES = [b'{"matchers": "town=x", "duration": "1h", "reason": "r"}',
                b'{"matchers": [1], "duration": "1h", "reason": "r"}',
                b'{"matchers": ["town=x"], "duration": 5, "reason": "r"}',
                b'{"matchers": ["town=x"], "weekly": "sat", "duration": "1h", "reason": "r"}',
                b'{"matchers": ["town=x"], "duration": "1h"}']


@pytest.mark.parametrize("raw", MALFORMED + BAD_SILENCES)
async def test_malformed_silence_bodies_are_400_with_a_reason(api, raw):
    status, out = await answer(api, "/v1/silences", raw)
    assert status == 400 and out.get("error"), out
    assert api.bus.sent == []
    r = await api.get("/v1/silences", headers=AUTH)
    assert r.status == 200


async def test_malformed_expire_bodies_are_400_with_a_reason(api):
    s = Silence(id="s0000000001", matchers=[Matcher("town", "=", "x")], starts_ms=1,
                ends_ms=2**40, created_by="zhang.wei", reason="r")
    api.bus.followed["yujing.incidents"](b"silence:0:s0000000001",
                                         msgspec.json.encode(s))
    for raw in MALFORMED:
        status, out = await answer(api, "/v1/silences/s0000000001/expire", raw)
        assert status == 400 and out.get("error"), (raw[:20], out)
    assert api.bus.sent == []


async def test_texts_over_the_configured_limit_are_400(api):
    status, out = await answer(api, f"/v1/warnings/{api.iid}/note",
                               json.dumps({"text": "长" * 101}).encode())
    assert status == 400 and "100" in out["error"]
    status, out = await answer(api, f"/v1/warnings/{api.iid}/note",
                               json.dumps({"text": "长" * 100}).encode())
    assert status == 202
    status, out = await answer(api, "/v1/silences", json.dumps(
        {"matchers": ["town=x"], "duration": "1h", "reason": "r" * 51}).encode())
    assert status == 400 and "50" in out["error"]


async def test_a_body_over_the_byte_limit_is_413(api):
    status, out = await answer(api, f"/v1/warnings/{api.iid}/ack",
                               json.dumps({"note": "x" * (LIMITS.body_max + 10)}).encode())
    assert status == 413 and out.get("error")
    assert api.bus.sent == []


def test_limits_are_checked_at_load():
    with pytest.raises(ValueError, match="positive duration"):
        CommandLimits(silence_max="0s")
    with pytest.raises(ValueError):
        CommandLimits(body_max=10)                             # below 1 KiB: nothing would fit
    assert CommandLimits(silence_max="1d").silence_max.ms == 86_400_000
