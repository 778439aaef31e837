"""Schema-driven fuzzing of the live gateway: schemathesis reads the server's own
``GET /openapi.yaml`` and sends bodies, paths, queries and headers made from it, valid ones
and ones that break the schema, to every operation of a real gateway with the duty console
(``yujing gateway``'s server, on Tansu), tokens configured. No answer may be a 5xx.

The console holds one warning (with a CAP message) and one silence, written to the incidents
topic as the worker writes them, and the ids, a signed acknowledge link and a station are in
schemathesis' dictionary, so half of the generated ids reach the code behind a known id
(commands, CAP, the link's POST) and not only the 404 in front of it.

The live stream (``/console/events``) is left out: it answers 200 and never ends, which is
its job. One worker: Python 3.11's ``ast`` is not thread-safe and hypothesis parses lambdas
with it (two workers ended a run in ``SystemError: AST constructor recursion depth``).
Figures: the run prints schemathesis' summary (operations, test cases, seconds).
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path

import aiohttp
import msgspec
import yaml
from aiokafka import AIOKafkaProducer

from tests.support.services import gateway_config
from yujing.alerts.records import CapRef, Matcher, Silence, State, Warning
from yujing.alerts.settings import person_hash
from yujing.alerts.signing import sign
from yujing.cli.serve import console_on
from yujing.connectors.auth import hash_token
from yujing.connectors.gateway import Gateway

TOKEN = "fuzz-0123456789abcdef0123456789abcdef"   # both an ingest and a person token
SECRET = "link-secret-for-the-fuzz-run-0123456789"
INCIDENT = "441900-20250601080000-0042"
SILENCE = "5ca1ab1e5ca1ab1e"
ST = Path(sys.executable).with_name("st")
# no 5xx anywhere, and every answer is one the document describes: its status code, content
# type, headers (Retry-After) and body schema
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance")
MAX_EXAMPLES = 40          # per operation and phase: the whole run stays near a minute
BUDGET_S = 240             # what the run may take on a loaded 2-core machine


def _config(tmp: Path):
    tokens = tmp / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"tokens": [
        {"gateway": "fuzz", "sha256": hash_token(TOKEN), "stations": ["DG-*"],
         "official_signals": True}]}))   # so POST /v1/cap is fuzzed past its 403
    roster = tmp / "roster.yaml"
    roster.write_text(yaml.safe_dump({
        "people": [{"id": "fz", "name": "模糊测试", "contacts": []}],
        "teams": [{"id": "flood", "name": "三防", "domain": "flood", "regions": ["*"],
                   "rotation": {"start": "2025-01-01", "slots": [{"A": "fz"}]}}]},
        allow_unicode=True))
    return gateway_config(tmp, http={"tokens_file": str(tokens)},
                          alerts={"roster": str(roster)},
                          console={"tokens": {"fz": person_hash(TOKEN)}, "admins": ["fz"],
                                   "link_secret": SECRET,
                                   # the run sends wrong tokens on purpose; at the default 5
                                   # a minute the client is soon refused (429) everywhere and
                                   # the code behind the login goes untested
                                   "login_failures": 1000, "login_window": "5s"})


async def _seed(bootstrap: str, topic: str) -> None:
    """One warning and one silence on the incidents topic, as the worker's book writes them."""
    now = int(time.time() * 1000)
    w = Warning(incident=INCIDENT, key="rainstorm|DG-HM-R01", rule="rainstorm-guangdong",
                rule_name="暴雨", hazard="rainstorm", station="DG-HM-R01", town="虎门镇",
                state=State.ACTIVE, grade=3, peak=3, value=52.0, raised_ms=now, updated_ms=now,
                cap=[CapRef(1, "Alert", now, 3)])
    s = Silence(id=SILENCE, matchers=[Matcher("town", "=", "虎门镇")], starts_ms=now,
                ends_ms=now + 3_600_000, created_by="fz", reason="gauge maintenance")
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await prod.start()
    try:
        await prod.send_and_wait(topic, msgspec.json.encode(w), key=INCIDENT.encode())
        await prod.send_and_wait(topic, msgspec.json.encode(s), key=f"silence:{SILENCE}".encode())
    finally:
        await prod.stop()


async def _until_seen(base: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        while time.monotonic() < deadline:
            async with http.get(f"{base}/v1/warnings/{INCIDENT}") as w, \
                    http.get(f"{base}/v1/silences") as s:
                if w.status == 200 and SILENCE in await s.text():
                    return
            await asyncio.sleep(0.2)
    raise AssertionError("the console never showed the seeded warning and silence")


def _st_config(tmp: Path) -> Path:
    link = sign(SECRET.encode(), "ack", "fz", [INCIDENT], int(time.time() * 1000) + 3_600_000)
    report = sign(SECRET.encode(), "report", "fz", [INCIDENT], int(time.time() * 1000) + 3_600_000)
    known = [INCIDENT, SILENCE, link, report, "DG-HM-R01", "console.js"]
    conf = tmp / "schemathesis.toml"
    conf.write_text("[dictionaries.known]\nvalues = [" + ", ".join(f'"{k}"' for k in known)
                    + "]\n\n[parameters]\n"
                    + "".join(f'"path.{p}" = {{ dictionary = "known", probability = 0.5 }}\n'
                              for p in ("id", "token", "filename")))
    return conf


async def test_no_operation_answers_a_server_error(kafka, tmp_path):
    cfg = _config(tmp_path)
    gw = Gateway(cfg, kafka, None)
    await gw.start(console_on(gw))   # the console mounted, as `yujing gateway` serves it
    try:
        base = f"http://127.0.0.1:{cfg.http.port}"
        await _seed(kafka, cfg.kafka.topics.incidents)
        await _until_seen(base)
        t0 = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            str(ST), "--config-file", str(_st_config(tmp_path)), "run", f"{base}/openapi.yaml",
            "--checks", CHECKS, "--max-examples", str(MAX_EXAMPLES),
            "--exclude-path", "/console/events", "--header", f"Authorization: Bearer {TOKEN}",
            "--phases", "examples,coverage,fuzzing", "--seed", "12",
            "--suppress-health-check", "all", "--request-timeout", "20", "--workers", "1",
            "--generation-database", "none", "--no-color", "--output-truncate", "false",
            "--report", "junit", "--report-junit-path", str(tmp_path / "junit.xml"),
            cwd=tmp_path,   # its cache folder (.schemathesis/) stays out of the repo
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), BUDGET_S)
        took = time.monotonic() - t0
        text = out.decode(errors="replace")
        print(text[-6000:])
        print(f"schemathesis: {took:.1f} s")
        assert proc.returncode == 0, text[-20000:]
        cases = re.search(r"Test cases:\s+(\d+) generated, (\d+) passed", text)
        assert cases, text[-20000:]
        generated, passed = int(cases[1]), int(cases[2])
        assert generated == passed and generated > 1000, text[-20000:]
        report = (tmp_path / "junit.xml").read_text()
        assert report.count("<testcase ") >= 35, "fewer operations tested than documented"
    finally:
        await gw.stop()
