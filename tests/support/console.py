"""What the duty-console tests share: the people and tokens of the console's roster, a
webhook receiver per person, an MQTT publisher, a plain HTTP client and the incident
queries. The `duty` fixture (one `yujing run` with the console) is in tests/conftest.py."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from yujing.alerts.settings import person_hash
from yujing.connectors.embedded import free_port

TOKENS = {p: f"token-{p}-0123456789abcdef" for p in ("a1", "b1", "l1", "c1")}
HASHED = {p: person_hash(t) for p, t in TOKENS.items()}   # console.tokens keeps hashes only
STEP_S = 5          # ack timeout of each escalation step


class Hooks:
    """A real webhook receiver for apprise's json:// (one path per person)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.got: list[tuple[str, dict]] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hooks.got.append((self.path.strip("/"), json.loads(body or b"{}")))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def about(self, person: str, incident: str) -> list[dict]:
        return [m for p, m in self.got if p == person and incident in m.get("message", "")]


class Mqtt:
    """A connected publisher (connect and teardown stay out of the latency measured)."""

    def __init__(self, port: int) -> None:
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"console-{time.monotonic_ns()}",
                             protocol=paho.MQTTv311)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        deadline = time.monotonic() + 10
        while not self.c.is_connected():
            assert time.monotonic() < deadline, "no MQTT connection"
            time.sleep(0.01)

    def send(self, station: str, readings: list[dict]) -> None:
        self.c.publish(f"yujing/test/{station}/rain_mm", json.dumps(readings), qos=1
                       ).wait_for_publish(timeout=10)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def publish(port: int, station: str, readings: list[dict]) -> None:
    m = Mqtt(port)
    try:
        m.send(station, readings)
    finally:
        m.close()


def http(method: str, url: str, token: str | None = None, body: object = None,
         headers: dict | None = None, raw: bytes | None = None):
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    if body is not None:
        h.setdefault("Content-Type", "application/json")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kw):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def incidents(base: str, token: str = TOKENS["l1"]) -> list[dict]:
    status, _, body = http("GET", f"{base}/v1/warnings?state=all", token)
    assert status == 200, body
    return json.loads(body)


def wait_incident(base: str, station: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in incidents(base):
            if w["station"] == station and w["rule"] == "rainstorm-guangdong":
                return w
        time.sleep(0.2)
    raise AssertionError(f"no rainstorm warning at {station} in {timeout}s")
