"""The deterministic stream of bench/malformed.py: malformed messages of many kinds, over
MQTT and the three HTTP endpoints, interleaved with a known set of valid readings.

Pure: no I/O. Every message (a ``Send``) states what the gateway must make of it: the valid
readings it holds, the dead letters it must cause (counted by reason code; one letter of a
whole refused message is one unit, a request with more than ``deadletters_per_request``
rejections is counted item by item, the summary letter carrying the rest), and for HTTP the
status it must answer. ``build`` draws kinds with a seeded generator, so one seed is one
stream.

Valid readings are ``rain_mm`` of fresh stations ``MFV-…`` (in the bench token's scope):
"cold" stations get 0.01-0.04 mm one minute apart (no rule fires), each "hot" station one
reading of 20 mm, which raises exactly one blue ``rain-short-intense`` (>= 16 mm in 1 h,
under the 50 mm of orange; rules/rain_intensity.yaml).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

MIN = 60_000
DAY = 86_400_000
HOT_MM = 20.0
SOURCE = "mfsrc"          # the bench's MQTT source (a tokens-file entry)
SCOPE = ["MFV-*", "MFX-*"]
OUT_OF_SCOPE = "DG-HM-R01"  # a registry station outside the scope
DEADLETTERS_PER_REQUEST = 100  # gateway.deadletters_per_request (the default)


@dataclass
class Send:
    """One message or request and what must come of it."""

    kind: str
    channel: str            # readings | write | events | mqtt
    target: str             # MQTT topic, or the query string of an HTTP request
    body: bytes
    codes: Counter[str] = field(default_factory=Counter)  # dead-letter units by reason code
    valid: int = 0          # readings that must be accepted
    hot: list[str] = field(default_factory=list)
    auth: str = "good"      # good | bad (HTTP token)
    status: int | None = None  # expected HTTP status

    @property
    def malformed(self) -> int:
        return sum(self.codes.values())


@dataclass
class Limits:
    """The gateway limits the stream is built against (the bench writes them to config)."""

    http_max_items: int = 2_000
    http_max_body: int = 512 * 1024
    mqtt_max_items: int = 500
    mqtt_max_payload: int = 128 * 1024


def j(obj: object) -> bytes:
    return orjson.dumps(obj)


def nested(levels: int, inner: bytes = b"1") -> bytes:
    return b'{"a":' * levels + inner + b"}" * levels


# --- item-level kinds: a JSON fragment naming its own station, and its reason code -----------

def _item_kinds(now: int) -> dict[str, Callable[[int], tuple[bytes, str]]]:
    def r(i: int, **over: object) -> dict:
        return {"station": f"MFX-{i % 97:02d}", "metric": "rain_mm", "ts": now - 10 * MIN - i % 500,
                "value": 1.0, **over}

    return {
        "value_text": lambda i: (j(r(i, value="12.5")), "invalid"),
        "station_number": lambda i: (j(r(i, station=12345)), "invalid"),
        "ts_boolean": lambda i: (j(r(i, ts=True)), "invalid"),
        "missing_value": lambda i: (j({k: v for k, v in r(i).items() if k != "value"}), "invalid"),
        "unknown_field": lambda i: (j(r(i, colour="red")), "invalid"),
        "nested_item_300": lambda i: (b"[" * 300 + b"]" * 300, "invalid"),
        "nested_value_300": lambda i: (j({k: v for k, v in r(i).items() if k != "value"})[:-1]
                                       + b',"value":' + nested(300) + b"}", "invalid"),
        "huge_station": lambda i: (j(r(i, station="A" * 20_000)), "invalid"),
        "id_newline": lambda i: (j(r(i, station=f"MFX-{i % 97:02d}\n")), "invalid"),
        "id_unicode": lambda i: (j(r(i, station="站点一")), "invalid"),
        "metric_bad": lambda i: (j(r(i, metric="Rain-MM")), "invalid"),
        "unit_wrong": lambda i: (j(r(i, unit="cm")), "unit"),
        "unit_not_text": lambda i: (j(r(i, unit=5)), "unit"),
        "range_high": lambda i: (j(r(i, value=900.0)), "range"),
        "range_negative": lambda i: (j(r(i, value=-3.0)), "range"),
        "humidity_150": lambda i: (j(r(i, metric="humidity_pct", value=150.0)), "range"),
        "future_1h": lambda i: (j(r(i, ts=now + 60 * MIN + i % 1000)), "future"),
        "old_8d": lambda i: (j(r(i, ts=now - 8 * DAY - i % 1000)), "too_old"),
        "ts_seconds": lambda i: (j(r(i, ts=(now - 10 * MIN) // 1000)), "invalid"),
        "ts_no_offset": lambda i: (j(r(i, ts="2025-06-01T08:00:00")), "invalid"),
        "ts_garbage": lambda i: (j(r(i, ts="yesterday")), "invalid"),
        "scalar_item": lambda i: ((b"0", b'"x"', b"null", b"true")[i % 4], "invalid"),
        "record_no_metric": lambda i: (j({"station": "MFX-01", "ts": now - MIN}), "invalid"),
        "out_of_scope": lambda i: (j(r(i, station=OUT_OF_SCOPE)), "forbidden"),
    }


# --- body-level kinds: the whole message is one unit -------------------------------------------

def _body_kinds(now: int, lim: Limits) -> dict[str, Callable[[int, str], tuple[bytes, str]]]:
    """(body, code) by kind; ``channel`` is readings, events or mqtt."""
    def too_many(i: int, ch: str) -> tuple[bytes, str]:
        n = (lim.mqtt_max_items if ch == "mqtt" else lim.http_max_items) + 1 + i % 7
        return b"[" + b",".join([b"0"] * n) + b"]", "too_many"

    def too_large(i: int, ch: str) -> tuple[bytes, str]:
        cap = lim.mqtt_max_payload if ch == "mqtt" else lim.http_max_body
        return b'["' + b"x" * (cap + 100 + i % 13) + b'"]', "too_large"

    return {
        "json_truncated": lambda i, ch: (b'[{"station":"MFX-01","metric":"rain', "json"),
        "json_empty": lambda i, ch: (b"", "json"),
        "json_binary": lambda i, ch: (random.Random(i).randbytes(64 + i % 200), "json"),
        "json_nan": lambda i, ch: (b'{"station":"MFX-01","metric":"rain_mm","ts":1,"value":NaN}',
                                   "json"),
        "json_inf": lambda i, ch: (b'[{"station":"MFX-01","metric":"rain_mm","ts":1,'
                                   b'"value":1e999}]', "json"),
        "json_depth_1100": lambda i, ch: (b"[" * 1100 + b"]" * 1100, "json"),
        "json_trailing": lambda i, ch: (b'{"station":"MFX-01"} {"x":1}', "json"),
        "too_many_items": too_many,
        "too_large": too_large,
    }


# --- line protocol -------------------------------------------------------------------------------

def _line_kinds(now: int) -> dict[str, Callable[[int], tuple[str, str]]]:
    t = now - 10 * MIN
    return {
        "lp_junk": lambda i: (f"hello world {i}", "invalid"),
        "lp_no_station": lambda i: (f"rain_gauge,site=MFX-01 rain_mm=1 {t}", "invalid"),
        "lp_bad_station": lambda i: (f"rain_gauge,station=bad\\ id rain_mm=1 {t}", "invalid"),
        "lp_bad_field": lambda i: (f"rain_gauge,station=MFX-01 Rain-MM=1 {t}", "invalid"),
        "lp_nan": lambda i: (f"rain_gauge,station=MFX-01 rain_mm=nan {t}", "invalid"),
        "lp_ts_seconds": lambda i: (f"rain_gauge,station=MFX-01 rain_mm=1 {t // 1000}", "invalid"),
        "lp_range": lambda i: (f"rain_gauge,station=MFX-01 rain_mm=900 {t - i % 500}", "range"),
        "lp_future": lambda i: (f"rain_gauge,station=MFX-01 rain_mm=1 {now + 60 * MIN + i}", "future"),
        "lp_out_of_scope": lambda i: (f"rain_gauge,station={OUT_OF_SCOPE} rain_mm=1 {t}", "forbidden"),
    }


# --- events --------------------------------------------------------------------------------------

def _event_kinds(now: int) -> dict[str, Callable[[int], tuple[bytes, str]]]:
    def ev(i: int, **over: object) -> dict:
        return {"type": "smoke", "camera": f"MFX-CAM{i % 9}", "ts": now - 5 * MIN,
                "confidence": 0.5, **over}

    return {
        "ev_bbox_short": lambda i: (j(ev(i, bbox=[1, 2, 3])), "invalid"),
        "ev_bbox_negative": lambda i: (j(ev(i, bbox=[0.1, -0.2, 0.3, 0.4])), "invalid"),
        "ev_url_js": lambda i: (j(ev(i, image_url="javascript:alert(1)")), "invalid"),
        "ev_url_long": lambda i: (j(ev(i, image_url="https://x/" + "a" * 3000)), "invalid"),
        "ev_type": lambda i: (j(ev(i, type="explosion")), "invalid"),
        "ev_confidence": lambda i: (j(ev(i, confidence=2)), "invalid"),
        "ev_detail_deep": lambda i: (j(ev(i))[:-1] + b',"detail":' + nested(20) + b"}", "invalid"),
        "ev_camera_station": lambda i: (j(ev(i, station="MFX-OTHER")), "invalid"),
        "ev_out_of_scope": lambda i: (j(ev(i, camera="DG-FF-C01")), "forbidden"),
        "ev_future": lambda i: (j(ev(i, ts=now + 60 * MIN)), "future"),
    }


# --- the stream ----------------------------------------------------------------------------------

SOLO = {"huge_station"}  # few per message: a list of them would be over the size caps


@dataclass
class Mix:
    sends: list[Send]
    valid: int
    hot: list[str]
    kinds: Counter[str]            # malformed units by kind
    codes: Counter[str]            # ... by reason code (what yujing.deadletter must hold)
    letters: int                   # dead-letter records (summaries count once)
    unauthorized: int              # requests with a bad token: 401, no dead letter

    @property
    def malformed(self) -> int:
        return sum(self.codes.values())


def valid_pool(n: int, hot: int, now: int) -> tuple[list[dict], list[str]]:
    """``n`` valid readings: ``hot`` of 20 mm at their own stations, the rest cold."""
    hot_names = [f"MFV-H{i:04d}" for i in range(hot)]
    out = [{"station": s, "metric": "rain_mm", "ts": now - 30 * MIN, "value": HOT_MM}
           for s in hot_names]
    cold = n - hot
    stations = max(1, cold // 25)
    per = -(-cold // stations)
    base = now - (per + 5) * MIN
    out += [{"station": f"MFV-C{k % stations:04d}", "metric": "rain_mm",
             "ts": base + (k // stations) * MIN, "value": (1 + k % 4) / 100} for k in range(cold)]
    return out, hot_names


class Builder:
    def __init__(self, seed: int, now: int, lim: Limits) -> None:
        self.rng = random.Random(seed)
        self.now, self.lim = now, lim
        self.items = _item_kinds(now)
        self.bodies = _body_kinds(now, lim)
        self.lines = _line_kinds(now)
        self.events = _event_kinds(now)
        self.sends: list[Send] = []
        self.kinds: Counter[str] = Counter()
        self.n = 0
        self.pool: list[dict] = []
        self.event_seq = 0

    def take(self, k: int) -> list[dict]:
        got, self.pool = self.pool[:k], self.pool[k:]
        return got

    def add(self, s: Send, kinds: Counter[str]) -> None:
        self.sends.append(s)
        self.kinds.update(kinds)

    # one message of item-level kinds, with some valid readings, over HTTP JSON or MQTT
    def item_list(self) -> None:
        ch = self.rng.choice(("readings", "mqtt"))
        m = self.rng.randint(1, 30)
        frags, codes, kinds = [], Counter(), Counter()
        names = list(self.items)
        for _ in range(m):
            kind = self.rng.choice(names)
            if kind in SOLO and kinds[kind] >= 2:
                kind = "value_text"
            frag, code = self.items[kind](self.n)
            self.n += 1
            frags.append(frag)
            codes[code] += 1
            kinds[kind] += 1
        good = self.take(self.rng.randint(0, 5))
        frags += [j(d) for d in good]
        self.rng.shuffle(frags)
        if m == 1 and not good and self.rng.random() < 0.5:
            body = frags[0]          # a single item, not a list
        else:
            body = b"[" + b",".join(frags) + b"]"
        s = Send("items", ch, f"yujing/{SOURCE}/_/rain_mm" if ch == "mqtt" else "", body, codes,
                 len(good), [d["station"] for d in good if d["value"] == HOT_MM])
        s.status = self.json_status(s)
        self.add(s, kinds)

    def json_status(self, s: Send) -> int:
        if s.valid or not s.codes:
            return 200
        return 403 if set(s.codes) == {"forbidden"} else 400

    def body(self) -> None:
        kind = self.rng.choice(list(self.bodies))
        ch = self.rng.choice(("readings", "events", "mqtt"))
        body, code = self.bodies[kind](self.n, ch)
        self.n += 1
        target = f"yujing/{SOURCE}/_/rain_mm" if ch == "mqtt" else ""
        status = 413 if code in ("too_many", "too_large") else 400
        self.add(Send(kind, ch, target, body, Counter({code: 1}), status=status), Counter({kind: 1}))

    def bulk(self) -> None:
        """A list of junk items past the per-request dead-letter cap (a summary letter)."""
        ch = self.rng.choice(("readings", "mqtt"))
        n = self.rng.randint(DEADLETTERS_PER_REQUEST + 1, self.lim.mqtt_max_items)
        body = b"[" + b",".join([b"0"] * n) + b"]"
        target = f"yujing/{SOURCE}/_/rain_mm" if ch == "mqtt" else ""
        self.add(Send("bulk_zeros", ch, target, body, Counter({"invalid": n}), status=400),
                 Counter({"bulk_zeros": n}))

    def lineproto(self) -> None:
        m = self.rng.randint(1, 30)
        lines, codes, kinds = [], Counter(), Counter()
        for _ in range(m):
            kind = self.rng.choice(list(self.lines))
            line, code = self.lines[kind](self.n)
            self.n += 1
            lines.append(line)
            codes[code] += 1
            kinds[kind] += 1
        good = self.take(self.rng.randint(0, 5))
        lines += [f"rain_gauge,station={d['station']} rain_mm={d['value']} {d['ts']}" for d in good]
        self.rng.shuffle(lines)
        s = Send("lines", "write", "precision=ms", "\n".join(lines).encode(), codes, len(good),
                 [d["station"] for d in good if d["value"] == HOT_MM])
        status = self.json_status(s)
        s.status = 400 if status == 200 else status
        self.add(s, kinds)

    def lineproto_body(self) -> None:
        kind = self.rng.choice(("lp_not_utf8", "lp_precision", "lp_too_many", "lp_too_large"))
        t = self.now - 10 * MIN
        code, status, query = "invalid", 400, "precision=ms"
        if kind == "lp_not_utf8":
            body = b"rain_gauge,station=MFX-01 rain_mm=1 " + b"\xff\xfe" * 8
        elif kind == "lp_precision":
            body, query = f"rain_gauge,station=MFX-01 rain_mm=1 {t}".encode(), "precision=h"
        elif kind == "lp_too_many":
            body = b"\n".join([b"x"] * (self.lim.http_max_items + 1))
            code, status = "too_many", 413
        else:
            body = b"x" * (self.lim.http_max_body + 100)
            code, status = "too_large", 413
        self.add(Send(kind, "write", query, body, Counter({code: 1}), status=status),
                 Counter({kind: 1}))

    def events_list(self) -> None:
        m = self.rng.randint(1, 20)
        frags, codes, kinds = [], Counter(), Counter()
        for _ in range(m):
            kind = self.rng.choice(list(self.events))
            frag, code = self.events[kind](self.n)
            self.n += 1
            frags.append(frag)
            codes[code] += 1
            kinds[kind] += 1
        good = self.rng.randint(0, 3)
        for _ in range(good):
            self.event_seq += 1
            frags.append(j({"type": "smoke", "camera": f"MFV-CAM{self.event_seq % 50:02d}",
                            "ts": self.now - 40 * MIN + self.event_seq, "confidence": 0.3}))
        self.rng.shuffle(frags)
        s = Send("events", "events", "", b"[" + b",".join(frags) + b"]", codes, good)
        s.status = self.json_status(s)
        self.add(s, kinds)

    def mqtt_topic(self) -> None:
        """What only MQTT has: the topic's station binds, its source is scoped."""
        kind = self.rng.choice(("topic_mismatch", "unknown_source", "topic_bad_station",
                                "topic_bad_kind"))
        t = self.now - 10 * MIN - self.n % 500
        self.n += 1
        if kind == "topic_mismatch":
            s = Send(kind, "mqtt", f"yujing/{SOURCE}/MFX-01/rain_mm",
                     j({"station": "MFX-02", "ts": t, "value": 1}), Counter({"topic_mismatch": 1}))
        elif kind == "unknown_source":
            k = self.rng.randint(1, 10)
            body = j([{"station": f"MFX-{i:02d}", "ts": t, "value": 1} for i in range(k)])
            s = Send(kind, "mqtt", "yujing/nobody/_/rain_mm", body, Counter({"forbidden": k}))
        elif kind == "topic_bad_station":
            s = Send(kind, "mqtt", f"yujing/{SOURCE}/bad!station/rain_mm",
                     j({"ts": t, "value": 1}), Counter({"invalid": 1}))
        else:
            s = Send(kind, "mqtt", f"yujing/{SOURCE}/MFX-01/Rain-MM", j({"ts": t, "value": 1}),
                     Counter({"invalid": 1}))
        self.add(s, Counter({kind: s.malformed}))

    def unauthorized(self) -> None:
        ch = self.rng.choice(("readings", "write", "events"))
        body = j([{"station": "MFX-01", "metric": "rain_mm", "ts": self.now - MIN, "value": 1}])
        self.sends.append(Send("bad_token", ch, "precision=ms" if ch == "write" else "", body,
                               auth="bad", status=401))

    def valid_carrier(self) -> None:
        """Valid readings alone, in each form a device sends."""
        form = self.rng.choice(("mqtt_one", "mqtt_list", "mqtt_record", "http_list", "lines"))
        if form == "mqtt_one":
            d = self.take(1)[0]
            s = Send(form, "mqtt", f"yujing/{SOURCE}/{d['station']}/rain_mm",
                     j({"ts": d["ts"], "value": d["value"]}), valid=1)
            good = [d]
        elif form == "mqtt_record":
            good = self.take(1)
            d = good[0]
            s = Send(form, "mqtt", f"yujing/{SOURCE}/{d['station']}/weather",
                     j({"ts": d["ts"], "rain_mm": d["value"]}), valid=1)
        elif form == "lines":
            good = self.take(self.rng.randint(1, 40))
            s = Send(form, "write", "precision=ms", "\n".join(
                f"rain_gauge,station={d['station']} rain_mm={d['value']} {d['ts']}"
                for d in good).encode(), valid=len(good), status=204)
        else:
            good = self.take(self.rng.randint(1, 40))
            ch = "mqtt" if form == "mqtt_list" else "readings"
            s = Send(form, ch, f"yujing/{SOURCE}/_/rain_mm" if ch == "mqtt" else "", j(good),
                     valid=len(good), status=200 if ch == "readings" else None)
        s.hot = [d["station"] for d in good if d["value"] == HOT_MM]
        self.add(s, Counter())


def build(malformed: int, valid: int, hot: int, seed: int, now: int,
          lim: Limits | None = None) -> Mix:
    """About ``malformed`` dead-letter units (the last message may overshoot a little) among
    ``valid`` readings (``hot`` of them raising one warning each), shuffled; the last two
    messages are a hot reading over MQTT and one over HTTP (the stall probes)."""
    b = Builder(seed, now, lim or Limits())
    pool, hot_names = valid_pool(valid, hot, now)
    b.rng.shuffle(pool)
    probes = [d for d in pool if d["value"] == HOT_MM][-2:]  # held back to the end
    b.pool = [d for d in pool if d not in probes]
    makers = [(b.item_list, 30), (b.body, 6), (b.bulk, 0.3), (b.lineproto, 12),
              (b.lineproto_body, 2), (b.events_list, 8), (b.mqtt_topic, 10), (b.unauthorized, 1)]
    fns, weights = zip(*makers, strict=True)
    while sum(b.kinds.values()) < malformed:
        b.rng.choices(fns, weights)[0]()
    while b.pool:
        b.valid_carrier()
    b.rng.shuffle(b.sends)
    for d, ch in zip(probes, ("mqtt", "readings"), strict=False):
        b.sends.append(Send("probe", ch, f"yujing/{SOURCE}/_/rain_mm" if ch == "mqtt" else "",
                            j([d]), valid=1, hot=[d["station"]],
                            status=200 if ch == "readings" else None))
    codes = sum((s.codes for s in b.sends), Counter())
    letters = sum(min(s.malformed, DEADLETTERS_PER_REQUEST) + (s.malformed > DEADLETTERS_PER_REQUEST)
                  for s in b.sends)
    return Mix(b.sends, sum(s.valid for s in b.sends), sorted(hot_names), b.kinds, codes, letters,
               sum(s.auth == "bad" for s in b.sends))
